//! AWS capabilities for runbooks: typed calls over the `rds`, `ec2`,
//! `route53`, `cloudwatch`, `autoscaling` and `ecs` WIT interfaces, and
//! [`reads`]: independent reads sent at once. Call them inside [`crate::Ctx::step`] bodies (the agent
//! refuses them elsewhere, since their results must be journaled). Mutating
//! calls are idempotent under replay: the agent tags what they create with
//! the step's idempotency key and adopts what an earlier attempt made.
//! Errors say which operation failed on which resource in which region, with
//! the AWS error code and request id; throttling and 5xx are retryable.

use std::time::Duration;

use crate::Error;

pub mod reads;

fn secs(d: Duration) -> u32 {
    d.as_secs().clamp(1, u64::from(u32::MAX)) as u32
}

/// Amazon RDS.
pub mod rds {
    use super::*;
    use crate::host::rds as wit;

    pub use wit::{DbCluster, DbInstance, DbSnapshot, GlobalCluster, GlobalFailoverMode, GlobalMember, LagReading, SnapshotInfo};

    /// Describes instance `identifier` in `region`.
    pub fn describe_instance(region: &str, identifier: &str) -> Result<DbInstance, Error> {
        wit::describe_instance(region, identifier).map_err(Error::from_wit)
    }

    /// Takes snapshot `snapshot` of `instance` (adopts one an earlier attempt made).
    pub fn create_snapshot(region: &str, instance: &str, snapshot: &str) -> Result<DbSnapshot, Error> {
        wit::create_snapshot(region, instance, snapshot).map_err(Error::from_wit)
    }

    /// Copies snapshot `source_arn` into `target_region` as `target`.
    pub fn copy_snapshot(source_arn: &str, target_region: &str, target: &str, kms_key: Option<&str>) -> Result<DbSnapshot, Error> {
        wit::copy_snapshot(source_arn, target_region, target, kms_key).map_err(Error::from_wit)
    }

    /// Describes snapshot `identifier` in `region`.
    pub fn describe_snapshot(region: &str, identifier: &str) -> Result<DbSnapshot, Error> {
        wit::describe_snapshot(region, identifier).map_err(Error::from_wit)
    }

    /// Creates read replica `identifier` in `region` of `source_arn` (adopts one an earlier attempt made).
    pub fn create_read_replica(source_arn: &str, region: &str, identifier: &str, instance_class: Option<&str>) -> Result<DbInstance, Error> {
        wit::create_read_replica(source_arn, region, identifier, instance_class).map_err(Error::from_wit)
    }

    /// Promotes read replica `identifier` to a standalone instance.
    pub fn promote_read_replica(region: &str, identifier: &str) -> Result<DbInstance, Error> {
        wit::promote_read_replica(region, identifier).map_err(Error::from_wit)
    }

    /// Waits until instance `identifier` is `available`.
    pub fn wait_instance_available(region: &str, identifier: &str, timeout: Duration) -> Result<DbInstance, Error> {
        wit::wait_instance_available(region, identifier, secs(timeout)).map_err(Error::from_wit)
    }

    /// Waits until instance `identifier` is `available` and no longer a read
    /// replica: a promotion has finished. An instance that is `available` but
    /// still replicates is not promoted (yet: RDS may take a moment to show
    /// a promotion it accepted, or the promotion never happened): that is a
    /// retryable `not-promoted-yet` error, so run it in a step whose retry
    /// policy gives the promotion time, and never treat "available" alone as
    /// "promoted".
    pub fn wait_promoted(region: &str, identifier: &str, timeout: Duration) -> Result<DbInstance, Error> {
        let i = wait_instance_available(region, identifier, timeout)?;
        promoted(&i)?;
        Ok(i)
    }

    /// `Ok` if `i` is a promoted (standalone) instance: it has no
    /// replication source any more. Else the retryable `not-promoted-yet`.
    pub fn promoted(i: &DbInstance) -> Result<(), Error> {
        match &i.replica_source {
            None => Ok(()),
            Some(src) => Err(Error::retryable(
                "not-promoted-yet",
                format!("{} in {} is '{}' but still replicates from {src}: it is not promoted (yet), so it is not writable", i.identifier, i.region, i.status),
            )
            .with_resource(i.arn.clone())),
        }
    }

    /// Waits until snapshot `identifier` is `available`.
    pub fn wait_snapshot_available(region: &str, identifier: &str, timeout: Duration) -> Result<DbSnapshot, Error> {
        wit::wait_snapshot_available(region, identifier, secs(timeout)).map_err(Error::from_wit)
    }

    /// The newest available snapshot of `instance` held in `region` (taken or
    /// copied there), with when its data was taken; `None` if there is none.
    pub fn latest_snapshot(region: &str, instance: &str) -> Result<Option<SnapshotInfo>, Error> {
        wit::latest_snapshot(region, instance).map_err(Error::from_wit)
    }

    /// Restores `snapshot` into a new instance `identifier`, tagged with the
    /// run's id (an earlier attempt's restore is adopted).
    pub fn restore_from_snapshot(region: &str, snapshot: &str, identifier: &str, instance_class: Option<&str>) -> Result<DbInstance, Error> {
        wit::restore_from_snapshot(region, snapshot, identifier, instance_class).map_err(Error::from_wit)
    }

    /// Deletes instance `identifier`, which this run must have created; gone already is fine.
    pub fn delete_instance(region: &str, identifier: &str) -> Result<(), Error> {
        wit::delete_instance(region, identifier).map_err(Error::from_wit)
    }

    /// The instances in `region` this run created that still exist.
    pub fn run_instances(region: &str) -> Result<Vec<String>, Error> {
        wit::run_instances(region).map_err(Error::from_wit)
    }

    /// The replica lag of `identifier` from CloudWatch (`ReplicaLag`, the
    /// newest reading of the last five minutes); `None` without a reading.
    pub fn replica_lag(region: &str, identifier: &str) -> Result<Option<LagReading>, Error> {
        wit::replica_lag(region, identifier).map_err(Error::from_wit)
    }

    /// What a replica's lag says about the data a promotion now would lose.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Lag {
        /// A trustworthy reading: seconds behind, and the reading's age in seconds.
        Known(f64, u64),
        /// Nothing trustworthy, and why.
        Unknown(String),
    }

    /// Judges `reading`, the [`replica_lag`] of `replica`: no reading, a
    /// reading of `-1` (replication is not running) or one older than
    /// `max_age_seconds` is unknown lag, never "no lag".
    pub fn judge_lag(reading: Option<LagReading>, replica: &str, max_age_seconds: u32) -> Lag {
        match reading {
            None => Lag::Unknown(format!("no ReplicaLag reading for {replica} in CloudWatch for the last 5 minutes")),
            Some(l) if l.seconds < 0.0 => Lag::Unknown(format!("ReplicaLag of {replica} is {} (replication is not running)", l.seconds)),
            Some(l) if l.age_seconds > u64::from(max_age_seconds) => Lag::Unknown(format!(
                "the newest ReplicaLag reading of {replica} ({:.0} s) is {} s old, older than max_lag_age_seconds={max_age_seconds}",
                l.seconds, l.age_seconds
            )),
            Some(l) => Lag::Known(l.seconds, l.age_seconds),
        }
    }

    /// The name in an RDS ARN (`arn:aws:rds:REGION:ACCOUNT:db:NAME`), or the
    /// identifier itself.
    pub fn name_of(arn: &str) -> &str {
        arn.rsplit(':').next().unwrap_or(arn)
    }

    /// The lag gate of a promotion: how much lag (seconds of writes a
    /// promotion would lose) a failover accepts, and what it does with a lag
    /// it cannot know. One rule for every runbook that promotes a replica.
    #[derive(Debug, Clone, Copy)]
    pub struct LagGate {
        /// Most lag accepted without the operator's word (`rpo_seconds`).
        pub rpo_seconds: u32,
        /// The operator accepts a lag over the RPO (recorded with the run).
        pub accept_replica_lag: bool,
        /// The operator accepts an unknown lag (recorded with the run).
        pub accept_unknown_lag: bool,
    }

    /// What the lag gate let through: the lag (the estimated RPO; none when
    /// unknown), the age of its reading, and the warning an override leaves.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Admitted {
        /// Seconds behind the source, when known.
        pub seconds: Option<f64>,
        /// Age of the reading, in seconds, when known.
        pub age_seconds: Option<u64>,
        /// Set when the operator's override let it through.
        pub warning: Option<String>,
    }

    impl LagGate {
        /// Lets `lag` of `replica` (ARN `arn`) through, or refuses the
        /// promotion with what it would lose and how to override.
        pub fn admit(&self, lag: Lag, replica: &str, arn: &str) -> Result<Admitted, Error> {
            let rpo = self.rpo_seconds;
            match lag {
                Lag::Known(seconds, _) if seconds > f64::from(rpo) && !self.accept_replica_lag => Err(Error::new(
                    "replica-lag-over-rpo",
                    format!(
                        "replica {replica} lags {seconds:.0} s behind its source, over the RPO budget of {rpo} s: promoting now would lose up to \
                         {seconds:.0} s of writes. Nothing was changed. Wait for it to catch up, or fail over anyway with \
                         --param accept_replica_lag=true (recorded with the run)"
                    ),
                )
                .with_resource(arn)),
                Lag::Known(seconds, age) if seconds > f64::from(rpo) => Ok(Admitted {
                    seconds: Some(seconds),
                    age_seconds: Some(age),
                    warning: Some(format!("replica lag {seconds:.0} s (read {age} s ago) over the RPO budget of {rpo} s, accepted by the operator")),
                }),
                Lag::Known(seconds, age) => Ok(Admitted { seconds: Some(seconds), age_seconds: Some(age), warning: None }),
                Lag::Unknown(why) if !self.accept_unknown_lag => Err(Error::new(
                    "replica-lag-unknown",
                    format!(
                        "{why}: the data a promotion now would lose is unknown. Nothing was changed. Check the replication (RDS events, \
                         ReplicaLag in CloudWatch) and run again, or fail over anyway with --param accept_unknown_lag=true (recorded with the run)"
                    ),
                )
                .with_resource(arn)),
                Lag::Unknown(why) => {
                    Ok(Admitted { seconds: None, age_seconds: None, warning: Some(format!("{why}: the data lost is unknown, accepted by the operator")) })
                }
            }
        }
    }

    /// Describes Aurora DB cluster `identifier` in `region`.
    pub fn describe_cluster(region: &str, identifier: &str) -> Result<DbCluster, Error> {
        wit::describe_cluster(region, identifier).map_err(Error::from_wit)
    }

    /// Describes Aurora global database `identifier` (through `region`'s endpoint).
    pub fn describe_global_cluster(region: &str, identifier: &str) -> Result<GlobalCluster, Error> {
        wit::describe_global_cluster(region, identifier).map_err(Error::from_wit)
    }

    /// Makes cluster `target_cluster_arn` the writer of global database
    /// `identifier` (nothing is sent if it already is); wait with
    /// [`wait_global_writer`]. `unsupported-by-endpoint` on the emulators.
    pub fn failover_global_cluster(region: &str, identifier: &str, target_cluster_arn: &str, mode: GlobalFailoverMode) -> Result<GlobalCluster, Error> {
        wit::failover_global_cluster(region, identifier, target_cluster_arn, mode).map_err(Error::from_wit)
    }

    /// Waits until `target_cluster_arn` is the writer and the global database is available.
    pub fn wait_global_writer(region: &str, identifier: &str, target_cluster_arn: &str, timeout: Duration) -> Result<GlobalCluster, Error> {
        wit::wait_global_writer(region, identifier, target_cluster_arn, secs(timeout)).map_err(Error::from_wit)
    }

    /// Detaches `cluster_arn` from global database `identifier` (it becomes
    /// standalone and writable) and waits until it is no longer a member;
    /// false if it was not one.
    pub fn detach_from_global_cluster(region: &str, identifier: &str, cluster_arn: &str, timeout: Duration) -> Result<bool, Error> {
        wit::detach_from_global_cluster(region, identifier, cluster_arn, secs(timeout)).map_err(Error::from_wit)
    }
}

/// Amazon EC2.
pub mod ec2 {
    use super::*;
    use crate::host::ec2 as wit;

    pub use wit::{Image, Instance, Snapshot};

    /// Describes instance `instance_id` in `region`.
    pub fn describe_instance(region: &str, instance_id: &str) -> Result<Instance, Error> {
        wit::describe_instance(region, instance_id).map_err(Error::from_wit)
    }

    /// Snapshots EBS volume `volume_id` as `name` (adopts one an earlier attempt made).
    pub fn snapshot_volume(region: &str, volume_id: &str, name: &str, lineage: Option<&str>) -> Result<Snapshot, Error> {
        wit::snapshot_volume(region, volume_id, name, lineage).map_err(Error::from_wit)
    }

    /// Copies snapshot `snapshot_id` from `source_region` into `target_region` as `name`.
    pub fn copy_snapshot(source_region: &str, snapshot_id: &str, target_region: &str, name: &str, lineage: Option<&str>) -> Result<Snapshot, Error> {
        wit::copy_snapshot(source_region, snapshot_id, target_region, name, lineage).map_err(Error::from_wit)
    }

    /// Creates AMI `name` from instance `instance_id`.
    pub fn create_image(region: &str, instance_id: &str, name: &str, lineage: Option<&str>) -> Result<Image, Error> {
        wit::create_image(region, instance_id, name, lineage).map_err(Error::from_wit)
    }

    /// Copies AMI `image_id` from `source_region` into `target_region` as `name`.
    pub fn copy_image(source_region: &str, image_id: &str, target_region: &str, name: &str, lineage: Option<&str>) -> Result<Image, Error> {
        wit::copy_image(source_region, image_id, target_region, name, lineage).map_err(Error::from_wit)
    }

    /// Waits until AMI `image_id` is `available`.
    pub fn wait_image_available(region: &str, image_id: &str, timeout: Duration) -> Result<Image, Error> {
        wit::wait_image_available(region, image_id, secs(timeout)).map_err(Error::from_wit)
    }

    /// Launches one instance `name` of `instance_type` from `image_id`.
    pub fn run_instance(region: &str, image_id: &str, instance_type: &str, name: &str) -> Result<Instance, Error> {
        wit::run_instance(region, image_id, instance_type, name).map_err(Error::from_wit)
    }

    /// Deregisters the AMIs of `lineage` beyond the newest `keep`; returns their ids.
    pub fn prune_images(region: &str, lineage: &str, keep: u32) -> Result<Vec<String>, Error> {
        wit::prune_images(region, lineage, keep).map_err(Error::from_wit)
    }

    /// The newest available AMI of `lineage` in `region`, if any.
    pub fn latest_image(region: &str, lineage: &str) -> Result<Option<Image>, Error> {
        wit::latest_image(region, lineage).map_err(Error::from_wit)
    }

    /// Terminates `instance_id`, which this run must have launched; gone already is fine.
    pub fn terminate_instance(region: &str, instance_id: &str) -> Result<(), Error> {
        wit::terminate_instance(region, instance_id).map_err(Error::from_wit)
    }

    /// Sets tags (key, value) on EC2 resource `id` in `region`; tags already
    /// so are left alone. Whether anything changed.
    pub fn tag(region: &str, id: &str, tags: &[(String, String)]) -> Result<bool, Error> {
        wit::tag(region, id, tags).map_err(Error::from_wit)
    }

    /// The instances in `region` this run launched that are not terminated.
    pub fn run_instances(region: &str) -> Result<Vec<String>, Error> {
        wit::run_instances(region).map_err(Error::from_wit)
    }
}

/// Amazon Route 53.
pub mod route53 {
    use super::*;
    use crate::host::route53 as wit;

    pub use wit::{CnameTarget, FailoverRole, HealthCheck, RecordChange, RecordSet, WeightedTarget, WeightsChange};

    /// The record sets named `name` in hosted zone `zone`.
    pub fn get_records(zone: &str, name: &str) -> Result<Vec<RecordSet>, Error> {
        wit::get_records(zone, name).map_err(Error::from_wit)
    }

    /// The record sets named any of `names` in hosted zone `zone`, in the
    /// order of `names`, read together (one listing of a small zone): a
    /// fleet's records in one request where [`get_records`] per name would
    /// spend Route 53's 5 requests a second.
    pub fn get_records_of(zone: &str, names: &[String]) -> Result<Vec<RecordSet>, Error> {
        wit::get_records_of(zone, names).map_err(Error::from_wit)
    }

    /// The sets among `sets` named `name` (as [`get_records_of`] answers
    /// for several names: Route 53's names end in a dot, in lower case).
    pub fn named(sets: &[RecordSet], name: &str) -> Vec<RecordSet> {
        let want = format!("{}.", name.trim_end_matches('.').to_ascii_lowercase());
        sets.iter().filter(|r| format!("{}.", r.name.trim_end_matches('.').to_ascii_lowercase()) == want).cloned().collect()
    }

    /// Points CNAME `name` at `target` and waits until the change is INSYNC.
    pub fn upsert_cname(zone: &str, name: &str, target: &str, ttl: u32, timeout: Duration) -> Result<(), Error> {
        wit::upsert_cname(zone, name, target, ttl, secs(timeout)).map_err(Error::from_wit)
    }

    /// Makes every change of `changes` (CNAMEs pointed, weights set) in one
    /// change batch, and waits until it is INSYNC: Route 53 applies it whole
    /// or not at all, so a fleet's records and its application's weights
    /// move together or not at all. What is already so is left out.
    pub fn change_records(zone: &str, changes: &[RecordChange], ttl: u32, timeout: Duration) -> Result<(), Error> {
        wit::change_records(zone, changes, ttl, secs(timeout)).map_err(Error::from_wit)
    }

    /// A [`RecordChange`] pointing the simple CNAME `name` at `target`.
    pub fn point_cname(name: &str, target: &str) -> RecordChange {
        RecordChange::PointCname(CnameTarget { name: name.to_string(), target: target.to_string() })
    }

    /// A [`RecordChange`] giving the weighted records `name` the weights of `targets`.
    pub fn set_weights_of(name: &str, targets: Vec<WeightedTarget>) -> RecordChange {
        RecordChange::SetWeights(WeightsChange { name: name.to_string(), targets })
    }

    /// Sets the weights of the weighted records `name`, in one change batch,
    /// on the records of whatever type holds the name (A, AAAA, alias or
    /// CNAME: each keeps its type and values; see [`weighted_targets`]).
    pub fn set_weights(zone: &str, name: &str, targets: &[WeightedTarget], ttl: u32, timeout: Duration) -> Result<(), Error> {
        wit::set_weights(zone, name, targets, ttl, secs(timeout)).map_err(Error::from_wit)
    }

    /// The weighted sets among `sets` (as [`get_records`] returns them), one
    /// per set identifier, with their weight and first value (empty for an
    /// alias): what [`set_weights`] takes to give each set a new weight.
    pub fn weighted_targets(sets: &[RecordSet]) -> Vec<WeightedTarget> {
        weighted_targets_of(sets)
    }

    /// [`weighted_targets`] as (set identifier, weight, value) triples: a
    /// form a step can journal (its output) and hand back to [`weighted`].
    pub fn weight_triples(sets: &[RecordSet]) -> Vec<(String, u8, String)> {
        weighted_targets_of(sets).into_iter().map(|t| (t.set_identifier, t.weight, t.value)).collect()
    }

    /// The weights of the weighted records `name` (`sets`, as read) as
    /// [`weight_triples`], if their traffic can be moved to the set `to`:
    /// every record type that holds weighted sets (A and AAAA, say) has one
    /// for `to`, or its clients could not be moved. The error
    /// (`record-not-found`) says which and ends with `left` (what the
    /// runbook left as it was, e.g. "DNS left unchanged").
    pub fn movable_weights(name: &str, sets: &[RecordSet], to: &str, left: &str) -> Result<Vec<(String, u8, String)>, Error> {
        let mut kinds: Vec<&str> = sets.iter().filter(|r| r.weight.is_some()).map(|r| r.record_type.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        for kind in &kinds {
            if !sets.iter().any(|r| r.record_type == *kind && r.weight.is_some() && r.set_identifier.as_deref() == Some(to)) {
                return Err(Error::new(
                    "record-not-found",
                    format!("the weighted {kind} records of {name} have no set for {to}: its {kind} clients could not be moved; {left}"),
                ));
            }
        }
        let triples = weight_triples(sets);
        if !triples.iter().any(|(set, _, _)| set == to) {
            return Err(Error::new("record-not-found", format!("no weighted record for {to} under {name}; {left}")));
        }
        Ok(triples)
    }

    /// The undo of a weight shift, as the payload of `Ctx::compensate`: the
    /// weights to put back (triples of [`weight_triples`]).
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    pub struct RestoreWeights {
        /// The hosted zone.
        pub zone: String,
        /// The weighted records' name.
        pub record: String,
        /// The weights as they were.
        pub targets: Vec<(String, u8, String)>,
        /// How long to wait for the change to be in sync, in seconds.
        pub timeout_seconds: u64,
    }

    impl RestoreWeights {
        /// Puts the weights back.
        pub fn apply(&self) -> Result<(), Error> {
            set_weights(&self.zone, &self.record, &weighted(&self.targets), 60, Duration::from_secs(self.timeout_seconds))
        }
    }

    /// Triples of [`weight_triples`] as the targets [`set_weights`] takes.
    pub fn weighted(triples: &[(String, u8, String)]) -> Vec<WeightedTarget> {
        triples.iter().map(|(set, weight, value)| WeightedTarget { set_identifier: set.clone(), weight: *weight, value: value.clone() }).collect()
    }

    fn weighted_targets_of(sets: &[RecordSet]) -> Vec<WeightedTarget> {
        let mut out: Vec<WeightedTarget> = Vec::new();
        for r in sets {
            let (Some(set), Some(weight)) = (&r.set_identifier, r.weight) else { continue };
            if out.iter().any(|t| t.set_identifier == *set) {
                continue;
            }
            out.push(WeightedTarget { set_identifier: set.clone(), weight, value: r.values.first().cloned().unwrap_or_default() });
        }
        out
    }

    /// Checks that the weighted records `sets` (as read back) carry the
    /// weights of `expected`, on every record type that holds weighted sets
    /// (an A and an AAAA set of one identifier both), that every such type
    /// has a set for each expected identifier with weight above 0 (else
    /// that type's clients would still be served by the others), and that
    /// no CNAME stands beside records of another type. `Err` says what is off.
    pub fn check_weights(name: &str, sets: &[RecordSet], expected: &[WeightedTarget]) -> Result<(), String> {
        let mut types: Vec<&str> = sets.iter().filter(|r| r.weight.is_some()).map(|r| r.record_type.as_str()).collect();
        types.sort_unstable();
        types.dedup();
        if types.is_empty() {
            return Err(format!("{name} has no weighted records"));
        }
        if types.contains(&"CNAME") && types.len() > 1 {
            return Err(format!("{name} has weighted CNAME records beside {} records: Route 53 serves either, not both", types.join(", ")));
        }
        for kind in &types {
            for t in expected {
                let found = sets.iter().find(|r| r.record_type == *kind && r.set_identifier.as_deref() == Some(t.set_identifier.as_str()));
                match found.and_then(|r| r.weight) {
                    Some(w) if w == t.weight => {}
                    Some(w) => return Err(format!("the {kind} record '{}' of {name} has weight {w}, not {}", t.set_identifier, t.weight)),
                    None if t.weight == 0 => {}
                    None => {
                        return Err(format!(
                            "{name} has no weighted {kind} record '{}' (weight {} expected): its {kind} clients are not shifted",
                            t.set_identifier, t.weight
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Deletes the simple CNAME `name` in `zone` if there is one, and waits for INSYNC.
    pub fn delete_cname(zone: &str, name: &str, timeout: Duration) -> Result<(), Error> {
        wit::delete_cname(zone, name, secs(timeout)).map_err(Error::from_wit)
    }

    /// Reads health check `id` and what its checkers last reported.
    pub fn get_health_check(id: &str) -> Result<HealthCheck, Error> {
        wit::get_health_check(id).map_err(Error::from_wit)
    }

    /// Disables or enables, inverts or not, health check `id`.
    pub fn update_health_check(id: &str, disabled: bool, inverted: bool) -> Result<HealthCheck, Error> {
        wit::update_health_check(id, disabled, inverted).map_err(Error::from_wit)
    }

    /// UPSERTs the failover CNAME `name` with `role` and waits for INSYNC.
    #[allow(clippy::too_many_arguments)]
    pub fn upsert_failover(
        zone: &str,
        name: &str,
        role: FailoverRole,
        set_identifier: &str,
        target: &str,
        health_check: Option<&str>,
        ttl: u32,
        timeout: Duration,
    ) -> Result<(), Error> {
        wit::upsert_failover(zone, name, role, set_identifier, target, health_check, ttl, secs(timeout)).map_err(Error::from_wit)
    }
}

/// Amazon CloudWatch alarms, the signals a health gate reads.
pub mod cloudwatch {
    use super::*;
    use crate::host::cloudwatch as wit;

    pub use wit::{Alarm, AlarmState};

    /// The metric alarms `names` in `region`, in the order asked; a name
    /// CloudWatch does not know is an error (`alarm-not-found`).
    pub fn describe_alarms(region: &str, names: &[String]) -> Result<Vec<Alarm>, Error> {
        wit::describe_alarms(region, names).map_err(Error::from_wit)
    }
}

/// EC2 Auto Scaling: the capacity of a group (e.g. the DR region's warm
/// standby fleet).
pub mod autoscaling {
    use super::*;
    use crate::host::autoscaling as wit;

    pub use wit::{Capacity, GroupInstance, ScalingGroup};

    /// Group `name` in `region` (`group-not-found` when there is none).
    pub fn describe_group(region: &str, name: &str) -> Result<ScalingGroup, Error> {
        wit::describe_group(region, name).map_err(Error::from_wit)
    }

    /// Sets the group's capacity (what is already so is not sent).
    pub fn set_capacity(region: &str, name: &str, capacity: Capacity) -> Result<ScalingGroup, Error> {
        wit::set_capacity(region, name, capacity).map_err(Error::from_wit)
    }

    /// Waits until the group holds its desired capacity `InService` and `Healthy`.
    pub fn wait_in_service(region: &str, name: &str, timeout: Duration) -> Result<ScalingGroup, Error> {
        wit::wait_in_service(region, name, secs(timeout)).map_err(Error::from_wit)
    }

    /// The capacity that makes `group` hold `desired` instances: its
    /// maximum raised (and minimum lowered) only when they would not allow it.
    pub fn capacity_for(group: &ScalingGroup, desired: u32) -> Capacity {
        Capacity { min_size: (group.min_size > desired).then_some(desired), max_size: (group.max_size < desired).then_some(desired), desired }
    }

    /// A group's capacity as it was, to put back (the payload of an undo:
    /// `Ctx::compensate`).
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    pub struct RestoreCapacity {
        /// The region.
        pub region: String,
        /// The group.
        pub name: String,
        /// Its minimum size before.
        pub min_size: u32,
        /// Its maximum size before.
        pub max_size: u32,
        /// Its desired capacity before.
        pub desired: u32,
    }

    impl RestoreCapacity {
        /// The capacity of `group` now, to restore later.
        pub fn of(group: &ScalingGroup) -> Self {
            RestoreCapacity {
                region: group.region.clone(),
                name: group.name.clone(),
                min_size: group.min_size,
                max_size: group.max_size,
                desired: group.desired_capacity,
            }
        }

        /// Puts it back (instances in excess terminate; nothing waits for them).
        pub fn apply(&self) -> Result<ScalingGroup, Error> {
            set_capacity(&self.region, &self.name, Capacity { min_size: Some(self.min_size), max_size: Some(self.max_size), desired: self.desired })
        }
    }
}

/// Amazon ECS: the desired count of a service (e.g. the DR region's tasks).
pub mod ecs {
    use super::*;
    use crate::host::ecs as wit;

    pub use wit::EcsService;

    /// Service `name` of `cluster` in `region` (`service-not-found` when there is none).
    pub fn describe_service(region: &str, cluster: &str, name: &str) -> Result<EcsService, Error> {
        wit::describe_service(region, cluster, name).map_err(Error::from_wit)
    }

    /// Sets the service's desired count (a count already so is not sent).
    pub fn set_desired_count(region: &str, cluster: &str, name: &str, desired: u32) -> Result<EcsService, Error> {
        wit::set_desired_count(region, cluster, name, desired).map_err(Error::from_wit)
    }

    /// Waits until the service is steady (running = desired, none pending, one deployment).
    pub fn wait_stable(region: &str, cluster: &str, name: &str, timeout: Duration) -> Result<EcsService, Error> {
        wit::wait_stable(region, cluster, name, secs(timeout)).map_err(Error::from_wit)
    }

    /// A service's desired count as it was, to put back (the payload of an undo).
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    pub struct RestoreCount {
        /// The region.
        pub region: String,
        /// The cluster.
        pub cluster: String,
        /// The service.
        pub name: String,
        /// Its desired count before.
        pub desired: u32,
    }

    impl RestoreCount {
        /// The desired count of `service` now, to restore later.
        pub fn of(service: &EcsService) -> Self {
            RestoreCount { region: service.region.clone(), cluster: service.cluster.clone(), name: service.name.clone(), desired: service.desired_count }
        }

        /// Puts it back.
        pub fn apply(&self) -> Result<EcsService, Error> {
            set_desired_count(&self.region, &self.cluster, &self.name, self.desired)
        }
    }
}
