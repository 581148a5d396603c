//! `failback`: the way home once the primary region is healthy again, after
//! `regional-failover` moved the database and the app to the DR region.
//!
//! 1. `preflight`: the instance now serving in the DR region is standalone
//!    and available, and the home region answers.
//! 2. `create-home-replica`: a new cross-region read replica of it in the
//!    home region (named by `home_instance`), and `wait-home-replica`. If
//!    the failback then fails or is cancelled, its undo `drop-home-instance`
//!    deletes that instance (only the one this run created, and never while
//!    the database record points at it): nothing is left behind unsaid, and
//!    the next failback starts clean (it could not adopt another run's
//!    instance of the same name). Found by the deterministic simulation.
//! 3. `promote-home` and `wait-promoted`: the home replica becomes the writer.
//! 4. `point-db-record` at it, `shift-app-weights` back home, `verify`.
//!
//! With `asg_name` and/or `ecs_cluster`+`ecs_service`, the compute follows:
//! `scale-home-compute` (first) scales the home region's group and service
//! to the capacity the DR region's hold now (undone if the failback fails),
//! `wait-home-compute` waits for it before the DNS moves home, and
//! `scale-down-dr-compute` (after `verify`) scales the DR region's back to
//! `standby_capacity` / `standby_tasks` (a failure there is a warning).
//!
//! Like every reference runbook, each step is idempotent: a crash and a
//! resume end in the same state, with one replica and one promotion.

use std::time::Duration;

use drover_sdk::aws::{rds, route53};
use drover_sdk::compute::{Compute, Scaled};
use drover_sdk::{Action, Capability, Ctx, Describe, Error, Param, Retry, Runbook, export_runbook};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Params {
    home_region: String,
    dr_region: String,
    current: String,
    home_instance: String,
    hosted_zone: String,
    db_record: String,
    app_record: String,
    timeout_seconds: u64,
    #[serde(default)]
    asg_name: String,
    #[serde(default)]
    ecs_cluster: String,
    #[serde(default)]
    ecs_service: String,
    #[serde(default)]
    standby_capacity: u32,
    #[serde(default)]
    standby_tasks: u32,
}

#[derive(Serialize, Deserialize)]
struct Current {
    arn: String,
    targets: Vec<(String, u8, String)>,
}

/// The undo of `create-home-replica`.
#[derive(Serialize, Deserialize)]
struct DropHome {
    region: String,
    instance: String,
    zone: String,
    db_record: String,
}

#[derive(Serialize)]
struct Outcome {
    writer: String,
    endpoint: String,
    warnings: Vec<String>,
}

struct Failback;

impl Runbook for Failback {
    type Params = Params;
    type Output = Outcome;

    fn describe() -> Describe {
        let described = Describe::new("failback", env!("CARGO_PKG_VERSION"))
            .description(
                "Brings the database and the app back to the home region after a regional failover: a new \
                 cross-region replica of the serving DR instance in the home region, its promotion, the DB \
                 record pointed at it and the app weights shifted home, verified. Defaults match the demo.",
            )
            .param(Param::string("home_region", "The region to come back to").default("us-east-1"))
            .param(Param::string("dr_region", "The region serving now").default("us-west-2"))
            .param(Param::string("current", "The instance serving now, in the DR region").default("orders-db-replica"))
            .param(Param::string("home_instance", "Name of the new writer in the home region").default("orders-db-home"))
            .param(Param::string("hosted_zone", "Route 53 hosted zone").default("orders.example.internal"))
            .param(Param::string("db_record", "CNAME clients use for the database").default("db.orders.example.internal"))
            .param(Param::string("app_record", "Weighted records of the application").default("app.orders.example.internal"))
            .param(Param::integer("timeout_seconds", "Longest wait for any one resource").default(3600))
            .param(Param::string("asg_name", "An Auto Scaling group of the same name in both regions: the home one is scaled to the DR one's capacity before DNS moves home, the DR one back to standby_capacity after; empty: none").default(""))
            .param(Param::string("ecs_cluster", "The ECS cluster of ecs_service, the same name in both regions").default(""))
            .param(Param::string("ecs_service", "An ECS service in both regions, scaled like asg_name (to standby_tasks in the DR region after); empty: none").default(""))
            .param(Param::integer("standby_capacity", "The DR group's desired capacity once traffic is home (its warm standby)").default(0))
            .param(Param::integer("standby_tasks", "The DR service's desired count once traffic is home").default(0))
            .capability(
                Capability::new("rds")
                    .operations(["describe-instance", "create-read-replica", "promote-read-replica", "wait-instance-available", "delete-instance"])
                    .regions(["{home_region}", "{dr_region}"])
                    .resources(["db/{current}", "db/{home_instance}"]),
            )
            .capability(Capability::new("route53").operations(["get-records", "upsert-cname", "set-weights"]).resources([
                "zone/{hosted_zone}",
                "record/{db_record}",
                "record/{app_record}",
            ]));
        drover_sdk::compute::declare(described, ["{home_region}", "{dr_region}"])
    }

    fn run(ctx: &Ctx, p: Params) -> Result<Outcome, Error> {
        let wait = Duration::from_secs(p.timeout_seconds);
        let current: Current = ctx.step("preflight", || {
            let i =
                rds::describe_instance(&p.dr_region, &p.current).map_err(|e| e.context(format!("the serving instance {} in {}", p.current, p.dr_region)))?;
            if i.status != "available" {
                return Err(Error::new("not-available", format!("{} is '{}', not available", p.current, i.status)).with_resource(i.arn));
            }
            if let Some(src) = &i.replica_source {
                return Err(Error::new(
                    "not-the-writer",
                    format!(
                        "{} in {} still replicates from {src}: it is not the writer, so there is nothing to fail back from. Nothing was changed",
                        p.current, p.dr_region
                    ),
                )
                .with_resource(i.arn));
            }
            let app = route53::get_records(&p.hosted_zone, &p.app_record)?;
            let targets: Vec<(String, u8, String)> = route53::weighted_targets(&app).into_iter().map(|t| (t.set_identifier, t.weight, t.value)).collect();
            if !targets.iter().any(|(set, _, _)| *set == p.home_region) {
                return Err(Error::new("record-not-found", format!("no weighted record for {} under {}", p.home_region, p.app_record)));
            }
            Ok(Current { arn: i.arn, targets })
        })?;
        // Registered before the creation: a creation that took effect in an
        // attempt that then crashed (and used up the step's attempts) is
        // undone as well. The undo deletes only what this run created.
        ctx.compensate(
            "drop-home-instance",
            &DropHome { region: p.home_region.clone(), instance: p.home_instance.clone(), zone: p.hosted_zone.clone(), db_record: p.db_record.clone() },
        )?;
        // Home compute scaled to what serves now, before traffic comes back
        // (put back as it was if the failback fails).
        let compute = Compute::new(&p.asg_name, &p.ecs_cluster, &p.ecs_service, 0, 0);
        if !compute.is_empty() {
            let scaled: Scaled = ctx.step("scale-home-compute", || compute.match_capacity(&p.dr_region, &p.home_region))?;
            ctx.compensate("restore-home-compute", &scaled)?;
        }
        ctx.step("create-home-replica", || Ok(rds::create_read_replica(&current.arn, &p.home_region, &p.home_instance, None)?.arn))?;
        ctx.step("wait-home-replica", || Ok(rds::wait_instance_available(&p.home_region, &p.home_instance, wait)?.arn))?;
        // A busy replica refuses a promotion: wait for it, never take it for promoted.
        ctx.step_with("promote-home", Retry::attempts(8).backoff(Duration::from_secs(2), Duration::from_secs(60)), || {
            Ok(rds::promote_read_replica(&p.home_region, &p.home_instance)?.arn)
        })?;
        // Promoted means available and no replication source any more.
        let endpoint: String = ctx.step_with("wait-promoted", Retry::attempts(20).backoff(Duration::from_secs(5), Duration::from_secs(30)), || {
            let i = rds::wait_promoted(&p.home_region, &p.home_instance, wait)?;
            i.endpoint.ok_or_else(|| Error::retryable("no-endpoint", format!("{} has no endpoint yet", p.home_instance)))
        })?;
        if !compute.is_empty() {
            ctx.step_with("wait-home-compute", Retry::attempts(5).backoff(Duration::from_secs(5), Duration::from_secs(30)), || {
                compute.wait(&p.home_region, wait)
            })?;
        }
        ctx.step("point-db-record", || {
            route53::upsert_cname(&p.hosted_zone, &p.db_record, &endpoint, 60, wait)?;
            Ok(())
        })?;
        let to: Vec<route53::WeightedTarget> = current
            .targets
            .iter()
            .map(|(set, _, v)| route53::WeightedTarget { set_identifier: set.clone(), weight: if *set == p.home_region { 100 } else { 0 }, value: v.clone() })
            .collect();
        ctx.step("shift-app-weights", || {
            route53::set_weights(&p.hosted_zone, &p.app_record, &to, 60, wait)?;
            Ok(())
        })?;
        ctx.step("verify", || {
            let db = route53::get_records(&p.hosted_zone, &p.db_record)?;
            if !db.iter().any(|r| r.values.iter().any(|v| v.trim_end_matches('.') == endpoint.trim_end_matches('.'))) {
                return Err(Error::new("verify-failed", format!("{} does not point at {endpoint}", p.db_record)));
            }
            let app = route53::get_records(&p.hosted_zone, &p.app_record)?;
            route53::check_weights(&p.app_record, &app, &to).map_err(|why| Error::new("verify-failed", why))?;
            let home = rds::describe_instance(&p.home_region, &p.home_instance)?;
            if home.status != "available" {
                return Err(Error::retryable("verify-failed", format!("{} is '{}'", p.home_instance, home.status)));
            }
            if let Some(src) = &home.replica_source {
                return Err(Error::new(
                    "verify-failed",
                    format!("{} still replicates from {src}: it is not promoted, so the database record points at a read-only replica", p.home_instance),
                )
                .with_resource(home.arn));
            }
            Ok(())
        })?;
        // Traffic is home: the DR compute goes back to standby. A failure
        // here is a warning (the failback itself has succeeded).
        let mut warnings = Vec::new();
        if !compute.is_empty() {
            let down: Result<Scaled, Error> = ctx.step("scale-down-dr-compute", || compute.scale_to(&p.dr_region, p.standby_capacity, p.standby_tasks));
            if let Err(e) = down {
                let w = format!("the DR compute in {} was not scaled back to standby: {}; scale it down by hand", p.dr_region, e.message());
                ctx.warn(&w);
                warnings.push(w);
            }
        }
        let writer: String = ctx.step("report", || Ok(rds::describe_instance(&p.home_region, &p.home_instance)?.arn))?;
        Ok(Outcome { writer, endpoint, warnings })
    }

    fn finalize(_ctx: &Ctx, action: Action) -> Result<(), Error> {
        match action.key() {
            "restore-home-compute" => action.payload::<Scaled>()?.restore(),
            "drop-home-instance" => {
                let d: DropHome = action.payload()?;
                let home = match rds::describe_instance(&d.region, &d.instance) {
                    Ok(i) => i,
                    // Not found is no proof of absence: just after its
                    // creation, a read may not see it yet (RDS reads are
                    // eventually consistent; found by the simulation). The
                    // delete asks RDS itself: gone already is fine, and it
                    // deletes only an instance this run created. One not
                    // seen yet cannot be what the record points at.
                    Err(e) if e.code() == "DBInstanceNotFound" => return rds::delete_instance(&d.region, &d.instance),
                    Err(e) => return Err(e),
                };
                let db = route53::get_records(&d.zone, &d.db_record)?;
                let in_use =
                    home.endpoint.as_deref().is_some_and(|ep| db.iter().any(|r| r.values.iter().any(|v| v.trim_end_matches('.') == ep.trim_end_matches('.'))));
                if in_use {
                    return Err(Error::new(
                        "kept-in-use",
                        format!(
                            "{} in {} is kept: {} points at it, so it may hold writes. Finish the failback by hand (shift the app weights, verify), \
                             or point the record back and delete the instance",
                            d.instance, d.region, d.db_record
                        ),
                    ));
                }
                rds::delete_instance(&d.region, &d.instance)
            }
            other => Err(Error::new("unknown-action", format!("failback registered no action '{other}'"))),
        }
    }
}

export_runbook!(Failback);

#[cfg(test)]
mod tests;
