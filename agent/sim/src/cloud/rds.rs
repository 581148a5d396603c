//! Simulated Amazon RDS: instances, read replicas, snapshots, Aurora global
//! databases. Creations carry the step's idempotency key (as the real
//! capability tags them), so a repeated attempt adopts what it made.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ACCOUNT, Cloud, Regional, Target, aws_error, ms_timestamp};
use crate::scenario::RdsSeed;
use drover_cloud::CloudError;
use drover_cloud::rds::{
    DbCluster, DbInstance, DbSnapshot, GlobalCluster, GlobalFailoverMode, GlobalMember, LagReading, PromotionState, SnapshotInfo, promotion_state,
};

/// A simulated DB instance.
#[derive(Debug, Clone, Serialize)]
pub struct Db {
    /// What `describe-instance` returns once it is available.
    pub instance: DbInstance,
    /// Replica lag in seconds, if CloudWatch has a reading (`-1`:
    /// replication not running).
    pub lag_seconds: Option<f64>,
    /// How old the newest lag reading is, in seconds.
    pub lag_age_seconds: u64,
    /// During a promotion: the source it still replicates from until the
    /// promotion is done (`ready_at`), as RDS shows it.
    pub promoting_from: Option<String>,
    /// When a creation or promotion under way is done (ms).
    pub ready_at: i64,
    /// The status until then.
    pub pending_status: String,
    /// Tags: `drover:run`, `drover:idempotency-key`, `drover:promoted-by`.
    pub tags: BTreeMap<String, String>,
    /// Turns busy once this many calls named it: (calls, status, for how long in ms).
    #[serde(skip)]
    pub busy_later: Option<(u32, String, i64)>,
    /// How many calls have named it.
    #[serde(skip)]
    pub named: u32,
}

/// A simulated DB snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct DbSnap {
    /// What `describe-snapshot` returns once it is available.
    pub snapshot: DbSnapshot,
    /// When it was taken (ms).
    pub taken_ms: i64,
    /// When it is available (ms).
    pub ready_at: i64,
    /// The idempotency key of the step that made it.
    pub made_by: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Cluster {
    cluster: DbCluster,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Rds {
    pub(crate) instances: Regional<Db>,
    pub(crate) snapshots: Regional<DbSnap>,
    clusters: Regional<Cluster>,
    /// Global database → (writer cluster ARN, member cluster ARNs).
    globals: BTreeMap<String, (String, Vec<String>)>,
    /// Each resource as it was before its last change: what a stale read
    /// answers (see [`crate::FaultEffect::Stale`]).
    #[serde(skip)]
    before: BTreeMap<(String, String), Before>,
    /// Set while a stale read is answered.
    #[serde(skip)]
    pub(crate) stale: bool,
}

/// An instance and a snapshot of one name, as they were (`None`: none existed).
#[derive(Debug, Clone, Default)]
pub(crate) struct Before {
    instance: Option<DbInstance>,
    snapshot: Option<DbSnapshot>,
}

pub(crate) fn db_arn(region: &str, id: &str) -> String {
    format!("arn:aws:rds:{region}:{ACCOUNT}:db:{id}")
}

fn snapshot_arn(region: &str, id: &str) -> String {
    format!("arn:aws:rds:{region}:{ACCOUNT}:snapshot:{id}")
}

fn cluster_arn(region: &str, id: &str) -> String {
    format!("arn:aws:rds:{region}:{ACCOUNT}:cluster:{id}")
}

/// `arn:aws:rds:REGION:ACCOUNT:KIND:NAME` → (region, name).
fn parse_arn(arn: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    (parts.len() == 7 && parts[2] == "rds").then(|| (parts[3], parts[6]))
}

fn db_not_found(t: &Target, region: &str, id: &str) -> CloudError {
    aws_error(t, "DBInstanceNotFound", &format!("no DB instance {id} in {region}"), false)
}

fn snap_not_found(t: &Target, region: &str, id: &str) -> CloudError {
    aws_error(t, "DBSnapshotNotFound", &format!("no DB snapshot {id} in {region}"), false)
}

fn endpoint(region: &str, id: &str) -> String {
    format!("{id}.c0ffee.{region}.rds.amazonaws.com")
}

impl Db {
    /// A call names this instance: it may turn busy now (see `busy_later`).
    pub(crate) fn named(&mut self, now: i64) {
        self.named = self.named.saturating_add(1);
        if let Some((calls, status, ms)) = &self.busy_later
            && self.named > *calls
            && self.promoting_from.is_none()
            && now >= self.ready_at
        {
            self.pending_status = status.clone();
            self.ready_at = now.saturating_add(*ms);
            self.busy_later = None;
        }
    }

    fn view(&self, now: i64) -> DbInstance {
        let mut i = self.instance.clone();
        if now < self.ready_at {
            i.status = self.pending_status.clone();
            if self.pending_status == "creating" {
                i.endpoint = None;
                i.port = None;
            }
            // A promotion under way: still a replica until it is done.
            if let Some(src) = &self.promoting_from {
                i.replica_source = Some(src.clone());
            }
        }
        i
    }
}

impl DbSnap {
    fn view(&self, now: i64) -> DbSnapshot {
        let mut s = self.snapshot.clone();
        if now < self.ready_at {
            s.status = "creating".into();
        }
        s
    }
}

impl Rds {
    pub(crate) fn load(&mut self, seed: &RdsSeed, now: i64) -> Result<(), String> {
        for i in &seed.instances {
            let source = match &i.replica_of {
                Some(r) => {
                    let (region, id) =
                        r.split_once('/').ok_or_else(|| format!("rds instance {}: replica_of must be REGION/IDENTIFIER, not '{r}'", i.identifier))?;
                    Some(db_arn(region, id))
                }
                None => None,
            };
            let instance = DbInstance {
                identifier: i.identifier.clone(),
                arn: db_arn(&i.region, &i.identifier),
                region: i.region.clone(),
                status: i.status.clone(),
                engine: i.engine.clone(),
                engine_version: i.engine_version.clone(),
                endpoint: Some(endpoint(&i.region, &i.identifier)),
                port: Some(5432),
                replica_source: source,
                replicas: Vec::new(),
            };
            // Busy for a while (then available), or in its status for good;
            // or busy later, from a given call on.
            let busy_later = match (i.busy_after_calls, i.busy_seconds) {
                (Some(calls), Some(secs)) if i.status != "available" => {
                    Some((calls, i.status.clone(), i64::try_from(secs).unwrap_or(i64::MAX / 4).saturating_mul(1000)))
                }
                _ => None,
            };
            let (instance, ready_at) = match i.busy_seconds {
                _ if busy_later.is_some() => (DbInstance { status: "available".into(), ..instance }, now),
                Some(secs) if i.status != "available" => {
                    let busy_ms = i64::try_from(secs).unwrap_or(i64::MAX / 4).saturating_mul(1000);
                    (DbInstance { status: "available".into(), ..instance }, now.saturating_add(busy_ms))
                }
                _ => (instance, now),
            };
            let db = Db {
                instance,
                lag_seconds: i.lag_seconds,
                lag_age_seconds: i.lag_age_seconds,
                promoting_from: None,
                ready_at,
                pending_status: i.status.clone(),
                tags: BTreeMap::new(),
                busy_later,
                named: 0,
            };
            self.instances.entry(i.region.clone()).or_default().insert(i.identifier.clone(), db);
        }
        // Sources list their replicas.
        let links: Vec<(String, String)> =
            self.instances.values().flat_map(|m| m.values()).filter_map(|d| Some((d.instance.replica_source.clone()?, d.instance.arn.clone()))).collect();
        for (source, replica) in links {
            let (region, id) = parse_arn(&source).ok_or_else(|| format!("rds instance {replica}: its source '{source}' is not an instance ARN"))?;
            let src = self
                .instances
                .get_mut(region)
                .and_then(|m| m.get_mut(id))
                .ok_or_else(|| format!("rds instance {replica} replicates {id} in {region}, which the scenario does not define"))?;
            src.instance.replicas.push(replica);
        }
        for s in &seed.snapshots {
            let taken = now - (s.age_seconds as i64) * 1000;
            let snap = DbSnap {
                snapshot: DbSnapshot {
                    identifier: s.identifier.clone(),
                    arn: snapshot_arn(&s.region, &s.identifier),
                    region: s.region.clone(),
                    status: s.status.clone(),
                    instance: s.instance.clone(),
                    engine: String::new(),
                    engine_version: String::new(),
                },
                taken_ms: taken,
                ready_at: taken,
                made_by: None,
            };
            self.snapshots.entry(s.region.clone()).or_default().insert(s.identifier.clone(), snap);
        }
        for g in &seed.global_clusters {
            self.globals.insert(g.identifier.clone(), (String::new(), Vec::new()));
        }
        for c in &seed.clusters {
            let arn = cluster_arn(&c.region, &c.identifier);
            if let Some(g) = &c.global_cluster {
                let entry = self
                    .globals
                    .get_mut(g)
                    .ok_or_else(|| format!("rds cluster {} names global cluster {g}, which the scenario does not define", c.identifier))?;
                entry.1.push(arn.clone());
                if c.writer {
                    entry.0 = arn.clone();
                }
            }
            let cluster = DbCluster {
                identifier: c.identifier.clone(),
                arn,
                region: c.region.clone(),
                status: "available".into(),
                engine: "aurora-postgresql".into(),
                endpoint: Some(format!("{}.cluster-c0ffee.{}.rds.amazonaws.com", c.identifier, c.region)),
                reader_endpoint: Some(format!("{}.cluster-ro-c0ffee.{}.rds.amazonaws.com", c.identifier, c.region)),
                members: vec![(format!("{}-1", c.identifier), true)],
                global_cluster: c.global_cluster.clone(),
            };
            self.clusters.entry(c.region.clone()).or_default().insert(c.identifier.clone(), Cluster { cluster });
        }
        Ok(())
    }

    /// Instance and snapshot `id` in `region` as they are now.
    pub(crate) fn before(&self, region: &str, id: &str, now: i64) -> Before {
        Before {
            instance: self.instances.get(region).and_then(|m| m.get(id)).map(|d| d.view(now)),
            snapshot: self.snapshots.get(region).and_then(|m| m.get(id)).map(|s| s.view(now)),
        }
    }

    /// A call changed `id` in `region`, which was `before` it: stale reads
    /// answer that from now on.
    pub(crate) fn remember(&mut self, region: &str, id: &str, before: Before) {
        let now_exists = |r: &Rds| r.instances.get(region).is_some_and(|m| m.contains_key(id)) || r.snapshots.get(region).is_some_and(|m| m.contains_key(id));
        if before.instance.is_some() || before.snapshot.is_some() || now_exists(self) {
            self.before.insert((region.to_string(), id.to_string()), before);
        }
    }

    /// What a read of instance `id` answers: the instance as it is, or
    /// during a stale read as it was before its last change.
    fn seen_db(&self, t: &Target, region: &str, id: &str, now: i64) -> Result<DbInstance, CloudError> {
        if self.stale
            && let Some(before) = self.before.get(&(region.to_string(), id.to_string()))
        {
            return before.instance.clone().ok_or_else(|| db_not_found(t, region, id));
        }
        Ok(self.db(t, region, id)?.view(now))
    }

    /// What a read of snapshot `id` answers (as [`Rds::seen_db`]).
    fn seen_snap(&self, t: &Target, region: &str, id: &str, now: i64) -> Result<DbSnapshot, CloudError> {
        if self.stale
            && let Some(before) = self.before.get(&(region.to_string(), id.to_string()))
        {
            return before.snapshot.clone().ok_or_else(|| snap_not_found(t, region, id));
        }
        Ok(self.snap(t, region, id)?.view(now))
    }

    fn db(&self, t: &Target, region: &str, id: &str) -> Result<&Db, CloudError> {
        self.instances.get(region).and_then(|m| m.get(id)).ok_or_else(|| db_not_found(t, region, id))
    }

    fn db_mut(&mut self, t: &Target, region: &str, id: &str) -> Result<&mut Db, CloudError> {
        self.instances.get_mut(region).and_then(|m| m.get_mut(id)).ok_or_else(|| db_not_found(t, region, id))
    }

    fn snap(&self, t: &Target, region: &str, id: &str) -> Result<&DbSnap, CloudError> {
        self.snapshots.get(region).and_then(|m| m.get(id)).ok_or_else(|| snap_not_found(t, region, id))
    }

    fn global(&self, t: &Target, id: &str) -> Result<GlobalCluster, CloudError> {
        let (writer, members) = self.globals.get(id).ok_or_else(|| aws_error(t, "GlobalClusterNotFoundFault", &format!("no global cluster {id}"), false))?;
        Ok(GlobalCluster {
            identifier: id.to_string(),
            arn: format!("arn:aws:rds::{ACCOUNT}:global-cluster:{id}"),
            status: "available".into(),
            engine: "aurora-postgresql".into(),
            // The simulated move is instant: never under way when read.
            moving_to: None,
            members: members
                .iter()
                .map(|arn| GlobalMember {
                    cluster_arn: arn.clone(),
                    region: parse_arn(arn).map(|(r, _)| r.to_string()).unwrap_or_default(),
                    writer: arn == writer,
                })
                .collect(),
        })
    }
}

fn target<'a>(operation: &'static str, api: &'static str, region: &'a str, resource: &'a str) -> Target<'a> {
    Target { service: "rds", operation, api, region, resource }
}

impl Cloud {
    /// `rds.describe-instance`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_describe_instance(&mut self, region: &str, id: &str) -> Result<DbInstance, CloudError> {
        self.call(target("describe-instance", "DescribeDBInstances", region, id), |c, t| Ok((c.rds.seen_db(t, region, id, c.now_ms)?, false)))
    }

    /// `rds.create-snapshot`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_create_snapshot(&mut self, region: &str, inst: &str, name: &str, key: &str) -> Result<DbSnapshot, CloudError> {
        self.call(target("create-snapshot", "CreateDBSnapshot", region, name), |c, t| {
            if let Some(existing) = c.rds.snapshots.get(region).and_then(|m| m.get(name)) {
                if existing.made_by.as_deref() == Some(key) {
                    return Ok((existing.view(c.now_ms), false));
                }
                return Err(aws_error(t, "DBSnapshotAlreadyExists", &format!("a snapshot named {name} already exists in {region}"), false));
            }
            let db = c.rds.db(t, region, inst)?.view(c.now_ms);
            if db.status != "available" {
                return Err(aws_error(t, "InvalidDBInstanceState", &format!("{inst} is '{}', not available", db.status), false));
            }
            let snap = DbSnap {
                snapshot: DbSnapshot {
                    identifier: name.into(),
                    arn: snapshot_arn(region, name),
                    region: region.into(),
                    status: "available".into(),
                    instance: inst.into(),
                    engine: db.engine.clone(),
                    engine_version: db.engine_version.clone(),
                },
                taken_ms: c.now_ms,
                ready_at: c.ready_at(),
                made_by: Some(key.into()),
            };
            let view = snap.view(c.now_ms);
            c.rds.snapshots.entry(region.into()).or_default().insert(name.into(), snap);
            Ok((view, true))
        })
    }

    /// `rds.copy-snapshot`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_copy_snapshot(&mut self, source_arn: &str, target_region: &str, name: &str, key: &str) -> Result<DbSnapshot, CloudError> {
        self.call(target("copy-snapshot", "CopyDBSnapshot", target_region, name), |c, t| {
            if let Some(existing) = c.rds.snapshots.get(target_region).and_then(|m| m.get(name)) {
                if existing.made_by.as_deref() == Some(key) {
                    return Ok((existing.view(c.now_ms), false));
                }
                return Err(aws_error(t, "DBSnapshotAlreadyExists", &format!("a snapshot named {name} already exists in {target_region}"), false));
            }
            let (src_region, src_name) =
                parse_arn(source_arn).ok_or_else(|| aws_error(t, "InvalidParameterValue", &format!("'{source_arn}' is not an RDS snapshot ARN"), false))?;
            let src = c.rds.snap(t, src_region, src_name)?;
            if c.now_ms < src.ready_at {
                return Err(aws_error(t, "InvalidDBSnapshotState", &format!("snapshot {src_name} is still being created"), false));
            }
            let snap = DbSnap {
                snapshot: DbSnapshot {
                    identifier: name.into(),
                    arn: snapshot_arn(target_region, name),
                    region: target_region.into(),
                    status: "available".into(),
                    instance: src.snapshot.instance.clone(),
                    engine: src.snapshot.engine.clone(),
                    engine_version: src.snapshot.engine_version.clone(),
                },
                taken_ms: src.taken_ms,
                ready_at: c.ready_at(),
                made_by: Some(key.into()),
            };
            let view = snap.view(c.now_ms);
            c.rds.snapshots.entry(target_region.into()).or_default().insert(name.into(), snap);
            Ok((view, true))
        })
    }

    /// `rds.describe-snapshot`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_describe_snapshot(&mut self, region: &str, id: &str) -> Result<DbSnapshot, CloudError> {
        self.call(target("describe-snapshot", "DescribeDBSnapshots", region, id), |c, t| Ok((c.rds.seen_snap(t, region, id, c.now_ms)?, false)))
    }

    /// `rds.create-read-replica`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_create_read_replica(&mut self, source_arn: &str, region: &str, id: &str, key: &str, run_id: &str) -> Result<DbInstance, CloudError> {
        self.call(target("create-read-replica", "CreateDBInstanceReadReplica", region, id), |c, t| {
            if let Some(existing) = c.rds.instances.get(region).and_then(|m| m.get(id)) {
                // A blind resend is refused as a second request by RDS.
                if !c.raw && existing.tags.get("drover:idempotency-key").map(String::as_str) == Some(key) {
                    return Ok((existing.view(c.now_ms), false));
                }
                return Err(aws_error(t, "DBInstanceAlreadyExists", &format!("an instance named {id} already exists in {region}"), false));
            }
            let (src_region, src_id) =
                parse_arn(source_arn).ok_or_else(|| aws_error(t, "InvalidParameterValue", &format!("'{source_arn}' is not an RDS instance ARN"), false))?;
            let src = c.rds.db(t, src_region, src_id)?.instance.clone();
            let arn = db_arn(region, id);
            let db = Db {
                instance: DbInstance {
                    identifier: id.into(),
                    arn: arn.clone(),
                    region: region.into(),
                    status: "available".into(),
                    engine: src.engine.clone(),
                    engine_version: src.engine_version.clone(),
                    endpoint: Some(endpoint(region, id)),
                    port: src.port,
                    replica_source: Some(src.arn.clone()),
                    replicas: Vec::new(),
                },
                lag_seconds: Some(0.0),
                lag_age_seconds: 60,
                promoting_from: None,
                ready_at: c.ready_at(),
                pending_status: "creating".into(),
                tags: [("drover:run".to_string(), run_id.to_string()), ("drover:idempotency-key".to_string(), key.to_string())].into(),
                busy_later: None,
                named: 0,
            };
            let view = db.view(c.now_ms);
            c.rds.instances.entry(region.into()).or_default().insert(id.into(), db);
            c.rds.db_mut(t, src_region, src_id)?.instance.replicas.push(arn);
            Ok((view, true))
        })
    }

    /// `rds.promote-read-replica`, as the agent's capability behaves, on the
    /// simulated cloud: a standalone instance is left as it is; this step's
    /// own promotion under way is adopted; a replica busy with anything else
    /// is refused (`replica-busy`, retryable; RDS answers
    /// `InvalidDBInstanceState`); a promotion takes `settle_seconds`, during
    /// which the instance is `modifying` and still shows its source, as RDS does.
    pub fn rds_promote_read_replica(&mut self, region: &str, id: &str, key: &str) -> Result<DbInstance, CloudError> {
        self.call(target("promote-read-replica", "PromoteReadReplica", region, id), |c, t| {
            let now = c.now_ms;
            let ready = c.ready_at();
            let db = c.rds.db_mut(t, region, id)?;
            let view = db.view(now);
            // The agent's own rule decides, as it does against AWS.
            match promotion_state(&view, db.tags.get("drover:promoted-by").map(String::as_str), key) {
                // Not a replica (any more): left as it is, as the real capability does.
                PromotionState::Standalone => return Ok((view, false)),
                PromotionState::OursUnderWay => {
                    if db.promoting_from.is_none() {
                        // Taken for this step's promotion under way, but no
                        // promotion was ever requested: the answer is untrue.
                        c.untrue(format!(
                            "rds.promote-read-replica answered that the promotion of {id} in {region} is under way, but none was requested (it is '{}')",
                            view.status
                        ));
                    }
                    return Ok((view, false));
                }
                PromotionState::Busy => {
                    return Err(aws_error(
                        t,
                        "replica-busy",
                        &format!(
                            "replica {id} in {region} is '{}' and still replicates from {}: RDS cannot promote it now (InvalidDBInstanceState)",
                            view.status,
                            view.replica_source.as_deref().unwrap_or("?")
                        ),
                        true,
                    ));
                }
                PromotionState::Promotable => {}
            }
            let source = view.replica_source.clone().unwrap_or_default();
            db.instance.replica_source = None;
            db.promoting_from = Some(source.clone());
            db.tags.insert("drover:promoted-by".into(), key.into());
            db.lag_seconds = None;
            db.ready_at = ready;
            db.pending_status = "modifying".into();
            let view = db.view(now);
            let arn = db.instance.arn.clone();
            if let Some((src_region, src_id)) = parse_arn(&source)
                && let Some(src) = c.rds.instances.get_mut(src_region).and_then(|m| m.get_mut(src_id))
            {
                src.instance.replicas.retain(|r| *r != arn);
            }
            Ok((view, true))
        })
    }

    /// `rds.wait-instance-available`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_wait_instance_available(&mut self, region: &str, id: &str, timeout_seconds: u32) -> Result<DbInstance, CloudError> {
        self.call(target("wait-instance-available", "DescribeDBInstances", region, id), |c, t| {
            // A stale first read: an `available` from before the last change
            // ends the wait at once, as the polling capability's would.
            if c.rds.stale {
                let seen = c.rds.seen_db(t, region, id, c.now_ms)?;
                if seen.status == "available" {
                    return Ok((seen, false));
                }
            }
            let db = c.rds.db(t, region, id)?;
            // A status that holds for good never becomes available.
            let ready_at = if db.view(i64::MAX).status == "available" { db.ready_at } else { i64::MAX };
            c.wait_until(t, ready_at, timeout_seconds, id)?;
            Ok((c.rds.db(t, region, id)?.view(c.now_ms), false))
        })
    }

    /// `rds.wait-snapshot-available`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_wait_snapshot_available(&mut self, region: &str, id: &str, timeout_seconds: u32) -> Result<DbSnapshot, CloudError> {
        self.call(target("wait-snapshot-available", "DescribeDBSnapshots", region, id), |c, t| {
            if c.rds.stale {
                let seen = c.rds.seen_snap(t, region, id, c.now_ms)?;
                if seen.status == "available" {
                    return Ok((seen, false));
                }
            }
            let ready_at = c.rds.snap(t, region, id)?.ready_at;
            c.wait_until(t, ready_at, timeout_seconds, id)?;
            Ok((c.rds.snap(t, region, id)?.view(c.now_ms), false))
        })
    }

    /// `rds.latest-snapshot`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_latest_snapshot(&mut self, region: &str, inst: &str) -> Result<Option<SnapshotInfo>, CloudError> {
        self.call(target("latest-snapshot", "DescribeDBSnapshots", region, inst), |c, _| {
            let now = c.now_ms;
            let newest = c
                .rds
                .snapshots
                .get(region)
                .into_iter()
                .flat_map(|m| m.values())
                .filter(|s| s.snapshot.instance == inst && s.ready_at <= now)
                .max_by_key(|s| s.taken_ms)
                .map(|s| SnapshotInfo { snapshot: s.view(now), taken: ms_timestamp(s.taken_ms) });
            Ok((newest, false))
        })
    }

    /// `rds.restore-from-snapshot`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_restore_from_snapshot(&mut self, region: &str, snapshot: &str, id: &str, key: &str, run_id: &str) -> Result<DbInstance, CloudError> {
        self.call(target("restore-from-snapshot", "RestoreDBInstanceFromDBSnapshot", region, id), |c, t| {
            if let Some(existing) = c.rds.instances.get(region).and_then(|m| m.get(id)) {
                // A blind resend is refused as a second request by RDS.
                if !c.raw && existing.tags.get("drover:idempotency-key").map(String::as_str) == Some(key) {
                    return Ok((existing.view(c.now_ms), false));
                }
                return Err(aws_error(t, "DBInstanceAlreadyExists", &format!("an instance named {id} already exists in {region}"), false));
            }
            let snap = c.rds.snap(t, region, snapshot)?;
            if c.now_ms < snap.ready_at {
                return Err(aws_error(t, "InvalidDBSnapshotState", &format!("snapshot {snapshot} is still being created"), false));
            }
            let engine = c
                .rds
                .instances
                .values()
                .flat_map(|m| m.values())
                .find(|d| d.instance.identifier == snap.snapshot.instance)
                .map(|d| (d.instance.engine.clone(), d.instance.engine_version.clone()));
            let (engine, engine_version) = engine.unwrap_or_else(|| ("postgres".into(), "16.3".into()));
            let db = Db {
                instance: DbInstance {
                    identifier: id.into(),
                    arn: db_arn(region, id),
                    region: region.into(),
                    status: "available".into(),
                    engine,
                    engine_version,
                    endpoint: Some(endpoint(region, id)),
                    port: Some(5432),
                    replica_source: None,
                    replicas: Vec::new(),
                },
                lag_seconds: None,
                lag_age_seconds: 60,
                promoting_from: None,
                ready_at: c.ready_at(),
                pending_status: "creating".into(),
                tags: [("drover:run".to_string(), run_id.to_string()), ("drover:idempotency-key".to_string(), key.to_string())].into(),
                busy_later: None,
                named: 0,
            };
            let view = db.view(c.now_ms);
            c.rds.instances.entry(region.into()).or_default().insert(id.into(), db);
            Ok((view, true))
        })
    }

    /// `rds.delete-instance`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_delete_instance(&mut self, region: &str, id: &str, run_id: &str) -> Result<(), CloudError> {
        self.call(target("delete-instance", "DeleteDBInstance", region, id), |c, t| {
            let Some(db) = c.rds.instances.get(region).and_then(|m| m.get(id)) else {
                return Ok(((), false));
            };
            if db.tags.get("drover:run").map(String::as_str) != Some(run_id) {
                return Err(aws_error(
                    t,
                    "not-created-by-this-run",
                    &format!(
                        "refusing to delete {id} in {region}: it does not carry the tag drover:run={run_id}; drover deletes only instances the same run created"
                    ),
                    false,
                ));
            }
            c.rds.instances.get_mut(region).map(|m| m.remove(id));
            Ok(((), true))
        })
    }

    /// `rds.run-instances`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_run_instances(&mut self, region: &str, run_id: &str) -> Result<Vec<String>, CloudError> {
        self.call(target("run-instances", "DescribeDBInstances", region, "*"), |c, _| {
            let ids = c
                .rds
                .instances
                .get(region)
                .into_iter()
                .flat_map(|m| m.values())
                .filter(|d| d.tags.get("drover:run").map(String::as_str) == Some(run_id))
                .map(|d| d.instance.identifier.clone())
                .collect();
            Ok((ids, false))
        })
    }

    /// `rds.replica-lag`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_replica_lag(&mut self, region: &str, id: &str) -> Result<Option<LagReading>, CloudError> {
        self.call(Target { service: "rds", operation: "replica-lag", api: "GetMetricStatistics", region, resource: id }, |c, t| {
            let db = c.rds.db(t, region, id)?;
            Ok((db.lag_seconds.map(|seconds| LagReading { seconds, age_seconds: db.lag_age_seconds }), false))
        })
    }

    /// `rds.describe-cluster`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_describe_cluster(&mut self, region: &str, id: &str) -> Result<DbCluster, CloudError> {
        self.call(target("describe-cluster", "DescribeDBClusters", region, id), |c, t| {
            let cluster = c
                .rds
                .clusters
                .get(region)
                .and_then(|m| m.get(id))
                .ok_or_else(|| aws_error(t, "DBClusterNotFoundFault", &format!("no DB cluster {id} in {region}"), false))?;
            Ok((cluster.cluster.clone(), false))
        })
    }

    /// `rds.describe-global-cluster`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_describe_global_cluster(&mut self, region: &str, id: &str) -> Result<GlobalCluster, CloudError> {
        self.call(target("describe-global-cluster", "DescribeGlobalClusters", region, id), |c, t| Ok((c.rds.global(t, id)?, false)))
    }

    /// `rds.failover-global-cluster`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_failover_global_cluster(&mut self, region: &str, id: &str, target_arn: &str, _mode: GlobalFailoverMode) -> Result<GlobalCluster, CloudError> {
        self.call(target("failover-global-cluster", "FailoverGlobalCluster", region, id), |c, t| {
            let current = c.rds.global(t, id)?;
            if !current.members.iter().any(|m| m.cluster_arn == target_arn) {
                return Err(aws_error(t, "InvalidParameterValue", &format!("{target_arn} is not a member of global cluster {id}"), false));
            }
            if current.members.iter().any(|m| m.cluster_arn == target_arn && m.writer) {
                return Ok((current, false));
            }
            if let Some(g) = c.rds.globals.get_mut(id) {
                g.0 = target_arn.to_string();
            }
            Ok((c.rds.global(t, id)?, true))
        })
    }

    /// `rds.wait-global-writer`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_wait_global_writer(&mut self, region: &str, id: &str, target_arn: &str, timeout_seconds: u32) -> Result<GlobalCluster, CloudError> {
        self.call(target("wait-global-writer", "DescribeGlobalClusters", region, id), |c, t| {
            let g = c.rds.global(t, id)?;
            if g.members.iter().any(|m| m.cluster_arn == target_arn && m.writer) {
                let ready = c.ready_at();
                c.wait_until(t, ready, timeout_seconds, id)?;
                Ok((g, false))
            } else {
                c.wait_until(t, i64::MAX, timeout_seconds, id)?;
                unreachable!("a wait for what never happens times out")
            }
        })
    }

    /// `rds.detach-from-global-cluster`, as the agent's capability behaves, on the simulated cloud.
    pub fn rds_detach_from_global_cluster(&mut self, region: &str, id: &str, cluster_arn: &str) -> Result<bool, CloudError> {
        self.call(target("detach-from-global-cluster", "RemoveFromGlobalCluster", region, id), |c, t| {
            let g = c.rds.globals.get_mut(id).ok_or_else(|| aws_error(t, "GlobalClusterNotFoundFault", &format!("no global cluster {id}"), false))?;
            let before = g.1.len();
            g.1.retain(|m| m != cluster_arn);
            let detached = g.1.len() != before;
            if detached
                && let Some((r, name)) = parse_arn(cluster_arn)
                && let Some(cl) = c.rds.clusters.get_mut(r).and_then(|m| m.get_mut(name))
            {
                cl.cluster.global_cluster = None;
            }
            Ok((detached, detached))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Cloud, Fault, FaultEffect, Scenario};

    const SCENARIO: &str = r#"
[[rds.instance]]
region = "us-east-1"
identifier = "orders-db"

[[rds.instance]]
region = "us-west-2"
identifier = "orders-db-replica"
replica_of = "us-east-1/orders-db"
lag_seconds = 2.0
"#;

    fn cloud(faults: &[Fault]) -> Cloud {
        let mut sc = Scenario::from_toml(SCENARIO).unwrap();
        sc.faults.extend(faults.iter().cloned());
        Cloud::new(&sc).unwrap()
    }

    #[test]
    fn a_stale_read_answers_as_the_resource_was_before_its_last_change() {
        let stale = Fault::new("rds.describe-instance", "stale").effect(FaultEffect::Stale).times(1);
        let mut c = cloud(std::slice::from_ref(&stale));
        // Nothing changed yet: a stale read is the truth.
        assert!(c.rds_describe_instance("us-west-2", "orders-db-replica").unwrap().replica_source.is_some());

        let mut c2 = cloud(&[stale.clone().after(0)]);
        c2.rds_promote_read_replica("us-west-2", "orders-db-replica", "k1").unwrap();
        c2.advance_ms(3_600_000);
        // The first read after the promotion is stale: still a replica, and available.
        let seen = c2.rds_describe_instance("us-west-2", "orders-db-replica").unwrap();
        assert_eq!((seen.status.as_str(), seen.replica_source.is_some()), ("available", true), "{seen:?}");
        // The next is the truth.
        assert!(c2.rds_describe_instance("us-west-2", "orders-db-replica").unwrap().replica_source.is_none());

        // A read of what the last change created: not found.
        let arn = c.rds_describe_instance("us-east-1", "orders-db").unwrap().arn;
        let mut c3 = cloud(&[Fault::new("rds.wait-instance-available", "stale").effect(FaultEffect::Stale)]);
        c3.rds_create_read_replica(&arn, "us-west-2", "second", "k2", "run-1").unwrap();
        let e = c3.rds_wait_instance_available("us-west-2", "second", 600).unwrap_err();
        assert_eq!(e.code, "DBInstanceNotFound", "{e:?}");
        assert_eq!(c3.rds_wait_instance_available("us-west-2", "second", 600).unwrap().status, "available");
    }

    #[test]
    fn a_stale_wait_returns_the_available_it_saw_before_a_promotion() {
        let mut c = cloud(&[Fault::new("rds.wait-instance-available", "stale").effect(FaultEffect::Stale)]);
        c.rds_promote_read_replica("us-west-2", "orders-db-replica", "k1").unwrap();
        let seen = c.rds_wait_instance_available("us-west-2", "orders-db-replica", 600).unwrap();
        // 'available', yet still a replica: what `wait_promoted` must not take for promoted.
        assert_eq!((seen.status.as_str(), seen.replica_source.is_some()), ("available", true));
        let now = c.rds_wait_instance_available("us-west-2", "orders-db-replica", 600).unwrap();
        assert!(now.replica_source.is_none(), "{now:?}");
    }
}
