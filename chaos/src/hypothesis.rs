//! The steady-state hypothesis of a game-day: named facts about the demo
//! topology, read from the emulators directly (never through the fault
//! proxy), checked before the run (the world is as the scenario assumes)
//! and after it (the run left it as it should).

use drover_aws::{Clients, autoscaling, ecs, rds, route53};
use serde::{Deserialize, Serialize};

use crate::topology::Seeded;

/// A fact a scenario can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Probe {
    /// The DB record points at the primary's endpoint.
    DbRecordOnPrimary,
    /// The DB record points at the (promoted) replica's endpoint.
    DbRecordOnReplica,
    /// The app's weights are primary 100, DR 0.
    AppWeightsOnPrimary,
    /// The app's weights are primary 0, DR 100.
    AppWeightsOnDr,
    /// The app's weights sum to 100.
    #[serde(rename = "app-weights-sum-100")]
    AppWeightsSum100,
    /// The replica exists, is available and replicates.
    ReplicaAvailable,
    /// The replica is available, no longer replicates (promoted: what AWS
    /// shows, and the emulators as the tests run them), and drover announced
    /// the promotion (its `drover:promoted-by` tag). Exactly once is the
    /// proxy's count of accepted `PromoteReadReplica` requests.
    ReplicaPromotedOnce,
    /// The replica was not promoted: it still replicates (or is gone).
    ReplicaNotPromoted,
    /// Exactly one final snapshot of the primary was copied to the DR region.
    OneFinalSnapshotCopy,
    /// No final snapshot was copied to the DR region.
    NoFinalSnapshotCopy,
    /// The DR region's compute took over the primary's: its Auto Scaling
    /// group asks for the primary's desired capacity and holds it in
    /// service, and its ECS service asks for the primary's desired count
    /// and is steady.
    DrComputeAtPrimaryCapacity,
    /// The DR region's compute stands by: its Auto Scaling group and its
    /// ECS service both ask for 0.
    DrComputeAtStandby,
}

/// One probe's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The probe.
    pub probe: Probe,
    /// Whether it holds.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

/// Checks `probe` on topology `s`.
pub async fn check(c: &Clients, s: &Seeded, probe: Probe) -> Check {
    let (ok, detail) = match evaluate(c, s, probe).await {
        Ok(v) => v,
        Err(e) => (false, format!("could not be read: {e}")),
    };
    Check { probe, ok, detail }
}

async fn weights(c: &Clients, s: &Seeded) -> Result<(Option<u8>, Option<u8>), drover_aws::CapabilityError> {
    let t = &s.topology;
    let app = route53::get_records(c, &t.hosted_zone, &t.app_record).await?;
    // Every record of a set identifier (an A and an AAAA set, say) must
    // carry the same weight; a set whose records disagree has none.
    let w = |set: &str| {
        let mut found = app.iter().filter(|r| r.set_identifier.as_deref() == Some(set)).map(|r| r.weight);
        let first = found.next().flatten()?;
        found.all(|w| w == Some(first)).then_some(first)
    };
    Ok((w(&t.primary_region), w(&t.dr_region)))
}

async fn db_record(c: &Clients, s: &Seeded) -> Result<String, drover_aws::CapabilityError> {
    let t = &s.topology;
    let db = route53::get_records(c, &t.hosted_zone, &t.db_record).await?;
    Ok(db.first().and_then(|r| r.values.first()).map(|v| route53::fqdn(v)).unwrap_or_default())
}

async fn final_copies(c: &Clients, s: &Seeded) -> Result<usize, drover_aws::CapabilityError> {
    let t = &s.topology;
    let prefix = format!("{}-final-", t.db_instance);
    let out = c
        .rds(&t.dr_region)
        .describe_db_snapshots()
        .db_instance_identifier(&t.db_instance)
        .send()
        .await
        .map_err(|e| drover_aws::from_sdk("rds", "DescribeDBSnapshots", &t.dr_region, &t.db_instance, e))?;
    Ok(out.db_snapshots().iter().filter(|s| s.db_snapshot_identifier().is_some_and(|id| id.starts_with(&prefix))).count())
}

async fn promotions(c: &Clients, s: &Seeded) -> Result<Option<(rds::DbInstance, usize)>, drover_aws::CapabilityError> {
    let t = &s.topology;
    let replica = match rds::describe_instance(c, &t.dr_region, &t.replica).await {
        Ok(r) => r,
        Err(e) if e.is("DBInstanceNotFound") => return Ok(None),
        Err(e) => return Err(e),
    };
    let tags = c
        .rds(&t.dr_region)
        .list_tags_for_resource()
        .resource_name(&replica.arn)
        .send()
        .await
        .map_err(|e| drover_aws::from_sdk("rds", "ListTagsForResource", &t.dr_region, &t.replica, e))?;
    let n = tags.tag_list().iter().filter(|t| t.key() == Some(rds::PROMOTED_TAG)).count();
    Ok(Some((replica, n)))
}

/// The app's compute in `region`: its Auto Scaling group and ECS service.
async fn compute(c: &Clients, s: &Seeded, region: &str) -> Result<(autoscaling::ScalingGroup, ecs::EcsService), drover_aws::CapabilityError> {
    let t = &s.topology;
    Ok((autoscaling::describe_group(c, region, &t.asg_name).await?, ecs::describe_service(c, region, &t.ecs_cluster, &t.ecs_service).await?))
}

fn show_compute(region: &str, g: &autoscaling::ScalingGroup, e: &ecs::EcsService) -> String {
    format!(
        "{region}: group {} desired {} ({} in service), service {} desired {} (running {}, pending {}, {} deployments)",
        g.name,
        g.desired_capacity,
        g.in_service(),
        ecs::EcsService::resource(&e.cluster, &e.name),
        e.desired_count,
        e.running_count,
        e.pending_count,
        e.deployments
    )
}

async fn evaluate(c: &Clients, s: &Seeded, probe: Probe) -> Result<(bool, String), drover_aws::CapabilityError> {
    let t = &s.topology;
    Ok(match probe {
        Probe::DbRecordOnPrimary => {
            let now = db_record(c, s).await?;
            (now == route53::fqdn(&s.primary_endpoint), format!("{} -> {now}", t.db_record))
        }
        Probe::DbRecordOnReplica => {
            let now = db_record(c, s).await?;
            let replica = rds::describe_instance(c, &t.dr_region, &t.replica).await?;
            let endpoint = replica.endpoint.as_deref().map(route53::fqdn).unwrap_or_default();
            (now == endpoint, format!("{} -> {now} (replica endpoint {endpoint})", t.db_record))
        }
        Probe::AppWeightsOnPrimary | Probe::AppWeightsOnDr | Probe::AppWeightsSum100 => {
            let (p, d) = weights(c, s).await?;
            let ok = match probe {
                Probe::AppWeightsOnPrimary => (p, d) == (Some(100), Some(0)),
                Probe::AppWeightsOnDr => (p, d) == (Some(0), Some(100)),
                _ => p.unwrap_or(0) as u16 + d.unwrap_or(0) as u16 == 100,
            };
            (ok, format!("{} {p:?}, {} {d:?}", t.primary_region, t.dr_region))
        }
        Probe::ReplicaAvailable => match promotions(c, s).await? {
            Some((r, _)) => (r.status == "available" && r.replica_source.is_some(), format!("{} is '{}', source {:?}", t.replica, r.status, r.replica_source)),
            None => (false, format!("{} does not exist", t.replica)),
        },
        Probe::ReplicaPromotedOnce => match promotions(c, s).await? {
            Some((r, n)) => (
                r.status == "available" && r.replica_source.is_none() && n == 1,
                format!(
                    "{} is '{}', replication source {:?}, drover promotion tag {}",
                    t.replica,
                    r.status,
                    r.replica_source,
                    if n == 1 { "present" } else { "absent" }
                ),
            ),
            None => (false, format!("{} does not exist", t.replica)),
        },
        Probe::ReplicaNotPromoted => match promotions(c, s).await? {
            Some((r, _)) => (r.replica_source.is_some(), format!("{} is '{}', replication source {:?}", t.replica, r.status, r.replica_source)),
            None => (true, format!("{} does not exist", t.replica)),
        },
        Probe::OneFinalSnapshotCopy | Probe::NoFinalSnapshotCopy => {
            let n = final_copies(c, s).await?;
            let want = if probe == Probe::OneFinalSnapshotCopy { 1 } else { 0 };
            (n == want, format!("{n} final snapshot copies of {} in {}", t.db_instance, t.dr_region))
        }
        Probe::DrComputeAtPrimaryCapacity => {
            let (pg, pe) = compute(c, s, &t.primary_region).await?;
            let (dg, de) = compute(c, s, &t.dr_region).await?;
            let ok = dg.desired_capacity == pg.desired_capacity
                && dg.at_capacity()
                && de.desired_count == pe.desired_count
                && de.steadiness() == ecs::Steadiness::Steady;
            (ok, format!("{}; {}", show_compute(&t.dr_region, &dg, &de), show_compute(&t.primary_region, &pg, &pe)))
        }
        Probe::DrComputeAtStandby => {
            let (dg, de) = compute(c, s, &t.dr_region).await?;
            (dg.desired_capacity == 0 && de.desired_count == 0, show_compute(&t.dr_region, &dg, &de))
        }
    })
}
