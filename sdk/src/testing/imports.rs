//! The runbook's imports when it is compiled natively for `cargo test`: the
//! same functions, with the same signatures, as the WIT bindings, answered by
//! the [`TestRun`](super::TestRun) of the calling thread and its simulated
//! cloud instead of the agent. `crate::host` picks these or the bindings.

use drover_cloud::CloudError;
use drover_sim::Cloud;

use super::convert::ToWit;
use super::run::with_live;
use crate::bindings::drover::runbook::types::Error;

/// An AWS call: only inside a step (or a cleanup or undo), as in the agent;
/// the cloud learns which step and attempt is calling, and its answer is
/// handed over in the contract's types.
fn aws<T: ToWit>(what: &str, f: impl FnOnce(&mut Cloud, &str, &str) -> Result<T, CloudError>) -> Result<T::Wit, Error> {
    with_live(|l| {
        let (key, attempt, step) = l
            .current()
            .unwrap_or_else(|| panic!("{what} was called outside a step; wrap AWS calls in ctx.step so that their results are journaled and replayed"));
        let run_id = l.run_id();
        l.cloud.set_caller(Some((step, attempt)));
        let out = f(&mut l.cloud, &key, &run_id);
        l.cloud.set_caller(None);
        out.map(ToWit::to_wit).map_err(ToWit::to_wit)
    })
}

pub mod steps {
    pub use crate::bindings::drover::runbook::steps::*;
    use crate::bindings::drover::runbook::types::Error;

    pub fn begin(key: &str, retry: RetryPolicy) -> Started {
        super::with_live(|l| l.begin_step(key, retry))
    }

    pub fn complete(key: &str, output: &str) {
        super::with_live(|l| l.complete(key, output))
    }

    pub fn fail(key: &str, error: &Error) -> AfterFailure {
        super::with_live(|l| l.fail(key, error))
    }

    pub fn fail_with(key: &str, error: &Error, on_failure: &OnFailure) -> Started {
        super::with_live(|l| l.fail_with(key, error, on_failure))
    }
}

pub mod branches {
    pub use crate::bindings::drover::runbook::branches::*;

    pub fn run(key: &str, branches: &[Branch], mode: JoinMode) -> Vec<BranchOutcome> {
        crate::testing::run::run_section(key, branches, mode)
    }

    pub fn current() -> Option<Branch> {
        super::with_live(|l| l.current_branch())
    }
}

pub mod cleanup {
    use crate::bindings::drover::runbook::steps::RetryPolicy;

    pub fn defer(key: &str, payload: &str, retry: RetryPolicy) {
        super::with_live(|l| l.register(drover_replay::ActionKind::Cleanup, key, payload, retry))
    }

    pub fn compensate(key: &str, payload: &str, retry: RetryPolicy) {
        super::with_live(|l| l.register(drover_replay::ActionKind::Undo, key, payload, retry))
    }
}

pub mod clock {
    use crate::bindings::drover::runbook::types::Timestamp;

    pub fn now() -> Timestamp {
        {
            let ms = super::with_live(|l| l.now_ms());
            Timestamp { seconds: ms.div_euclid(1000), nanoseconds: (ms.rem_euclid(1000) * 1_000_000) as u32 }
        }
    }

    pub fn sleep(milliseconds: u64) {
        super::with_live(|l| l.sleep(milliseconds))
    }
}

pub mod approval {
    pub use crate::bindings::drover::runbook::approval::*;
    use crate::bindings::drover::runbook::types::Error;

    pub fn request(gate: &str, message: &str, timeout_seconds: u64) -> Result<Approved, Error> {
        super::with_live(|l| l.approval(gate, message, timeout_seconds)).map(|(by, comment)| Approved { by, comment })
    }
}

pub mod random {

    pub fn random_u64() -> u64 {
        let b = super::with_live(|l| l.random_bytes(8));
        u64::from_le_bytes(b.try_into().expect("8 bytes"))
    }

    pub fn random_bytes(len: u32) -> Vec<u8> {
        super::with_live(|l| l.random_bytes(len))
    }
}

pub mod log {
    pub use crate::bindings::drover::runbook::log::*;

    pub fn event(level: Level, message: &str, fields: &[(String, String)]) {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        super::with_live(|l| l.log(level, message, fields))
    }
}

pub mod run_context {
    pub use crate::bindings::drover::runbook::run_context::*;
    use crate::bindings::drover::runbook::steps::Attempt;

    pub fn run_id() -> String {
        super::with_live(|l| l.run_id())
    }

    pub fn current_attempt() -> Option<Attempt> {
        super::with_live(|l| l.current_attempt())
    }

    pub fn mode() -> RunMode {
        super::with_live(|l| l.mode())
    }
}

pub mod rds {
    pub use crate::bindings::drover::runbook::rds::*;

    pub fn describe_instance(region: &str, identifier: &str) -> Result<DbInstance, Error> {
        super::aws("rds.describe-instance", |c, _, _| c.rds_describe_instance(region, identifier))
    }
    pub fn create_snapshot(region: &str, instance: &str, snapshot: &str) -> Result<DbSnapshot, Error> {
        super::aws("rds.create-snapshot", |c, key, _| c.rds_create_snapshot(region, instance, snapshot, key))
    }
    pub fn copy_snapshot(source_arn: &str, target_region: &str, target: &str, kms_key: Option<&str>) -> Result<DbSnapshot, Error> {
        let _ = kms_key;
        super::aws("rds.copy-snapshot", |c, key, _| c.rds_copy_snapshot(source_arn, target_region, target, key))
    }
    pub fn describe_snapshot(region: &str, identifier: &str) -> Result<DbSnapshot, Error> {
        super::aws("rds.describe-snapshot", |c, _, _| c.rds_describe_snapshot(region, identifier))
    }
    pub fn create_read_replica(source_arn: &str, region: &str, identifier: &str, instance_class: Option<&str>) -> Result<DbInstance, Error> {
        let _ = instance_class;
        super::aws("rds.create-read-replica", |c, key, run| c.rds_create_read_replica(source_arn, region, identifier, key, run))
    }
    pub fn promote_read_replica(region: &str, identifier: &str) -> Result<DbInstance, Error> {
        super::aws("rds.promote-read-replica", |c, key, _| c.rds_promote_read_replica(region, identifier, key))
    }
    pub fn wait_instance_available(region: &str, identifier: &str, timeout_seconds: u32) -> Result<DbInstance, Error> {
        super::aws("rds.wait-instance-available", |c, _, _| c.rds_wait_instance_available(region, identifier, timeout_seconds))
    }
    pub fn wait_snapshot_available(region: &str, identifier: &str, timeout_seconds: u32) -> Result<DbSnapshot, Error> {
        super::aws("rds.wait-snapshot-available", |c, _, _| c.rds_wait_snapshot_available(region, identifier, timeout_seconds))
    }
    pub fn latest_snapshot(region: &str, instance: &str) -> Result<Option<SnapshotInfo>, Error> {
        super::aws("rds.latest-snapshot", |c, _, _| c.rds_latest_snapshot(region, instance))
    }
    pub fn restore_from_snapshot(region: &str, snapshot: &str, identifier: &str, instance_class: Option<&str>) -> Result<DbInstance, Error> {
        let _ = instance_class;
        super::aws("rds.restore-from-snapshot", |c, key, run| c.rds_restore_from_snapshot(region, snapshot, identifier, key, run))
    }
    pub fn delete_instance(region: &str, identifier: &str) -> Result<(), Error> {
        super::aws("rds.delete-instance", |c, _, run| c.rds_delete_instance(region, identifier, run))
    }
    pub fn run_instances(region: &str) -> Result<Vec<String>, Error> {
        super::aws("rds.run-instances", |c, _, run| c.rds_run_instances(region, run))
    }
    pub fn replica_lag(region: &str, identifier: &str) -> Result<Option<LagReading>, Error> {
        super::aws("rds.replica-lag", |c, _, _| c.rds_replica_lag(region, identifier))
    }
    pub fn describe_cluster(region: &str, identifier: &str) -> Result<DbCluster, Error> {
        super::aws("rds.describe-cluster", |c, _, _| c.rds_describe_cluster(region, identifier))
    }
    pub fn describe_global_cluster(region: &str, identifier: &str) -> Result<GlobalCluster, Error> {
        super::aws("rds.describe-global-cluster", |c, _, _| c.rds_describe_global_cluster(region, identifier))
    }
    pub fn failover_global_cluster(region: &str, identifier: &str, target_cluster_arn: &str, mode: GlobalFailoverMode) -> Result<GlobalCluster, Error> {
        let mode = crate::testing::convert::failover_mode(mode);
        super::aws("rds.failover-global-cluster", |c, _, _| c.rds_failover_global_cluster(region, identifier, target_cluster_arn, mode))
    }
    pub fn wait_global_writer(region: &str, identifier: &str, target_cluster_arn: &str, timeout_seconds: u32) -> Result<GlobalCluster, Error> {
        super::aws("rds.wait-global-writer", |c, _, _| c.rds_wait_global_writer(region, identifier, target_cluster_arn, timeout_seconds))
    }
    pub fn detach_from_global_cluster(region: &str, identifier: &str, cluster_arn: &str, timeout_seconds: u32) -> Result<bool, Error> {
        let _ = timeout_seconds;
        super::aws("rds.detach-from-global-cluster", |c, _, _| c.rds_detach_from_global_cluster(region, identifier, cluster_arn))
    }
}

pub mod ec2 {
    pub use crate::bindings::drover::runbook::ec2::*;

    pub fn describe_instance(region: &str, instance_id: &str) -> Result<Instance, Error> {
        super::aws("ec2.describe-instance", |c, _, _| c.ec2_describe_instance(region, instance_id))
    }
    pub fn snapshot_volume(region: &str, volume_id: &str, name: &str, lineage: Option<&str>) -> Result<Snapshot, Error> {
        super::aws("ec2.snapshot-volume", |c, _, _| c.ec2_snapshot_volume(region, volume_id, name, lineage))
    }
    pub fn copy_snapshot(source_region: &str, snapshot_id: &str, target_region: &str, name: &str, lineage: Option<&str>) -> Result<Snapshot, Error> {
        super::aws("ec2.copy-snapshot", |c, _, _| c.ec2_copy_snapshot(source_region, snapshot_id, target_region, name, lineage))
    }
    pub fn create_image(region: &str, instance_id: &str, name: &str, lineage: Option<&str>) -> Result<Image, Error> {
        super::aws("ec2.create-image", |c, _, _| c.ec2_create_image(region, instance_id, name, lineage))
    }
    pub fn copy_image(source_region: &str, image_id: &str, target_region: &str, name: &str, lineage: Option<&str>) -> Result<Image, Error> {
        super::aws("ec2.copy-image", |c, _, _| c.ec2_copy_image(source_region, image_id, target_region, name, lineage))
    }
    pub fn wait_image_available(region: &str, image_id: &str, timeout_seconds: u32) -> Result<Image, Error> {
        super::aws("ec2.wait-image-available", |c, _, _| c.ec2_wait_image_available(region, image_id, timeout_seconds))
    }
    pub fn run_instance(region: &str, image_id: &str, instance_type: &str, name: &str) -> Result<Instance, Error> {
        let _ = instance_type;
        super::aws("ec2.run-instance", |c, _, run| c.ec2_run_instance(region, image_id, name, run))
    }
    pub fn prune_images(region: &str, lineage: &str, keep: u32) -> Result<Vec<String>, Error> {
        super::aws("ec2.prune-images", |c, _, _| c.ec2_prune_images(region, lineage, keep))
    }
    pub fn latest_image(region: &str, lineage: &str) -> Result<Option<Image>, Error> {
        super::aws("ec2.latest-image", |c, _, _| c.ec2_latest_image(region, lineage))
    }
    pub fn terminate_instance(region: &str, instance_id: &str) -> Result<(), Error> {
        super::aws("ec2.terminate-instance", |c, _, run| c.ec2_terminate_instance(region, instance_id, run))
    }
    pub fn run_instances(region: &str) -> Result<Vec<String>, Error> {
        super::aws("ec2.run-instances", |c, _, run| c.ec2_run_instances(region, run))
    }
    pub fn tag(region: &str, id: &str, tags: &[(String, String)]) -> Result<bool, Error> {
        super::aws("ec2.tag", |c, _, _| c.ec2_tag(region, id, tags))
    }
}

pub mod route53 {
    pub use crate::bindings::drover::runbook::route53::*;

    pub fn get_records(zone: &str, name: &str) -> Result<Vec<RecordSet>, Error> {
        super::aws("route53.get-records", |c, _, _| c.route53_get_records(zone, name))
    }
    pub fn upsert_cname(zone: &str, name: &str, target: &str, ttl: u32, timeout_seconds: u32) -> Result<(), Error> {
        super::aws("route53.upsert-cname", |c, _, _| c.route53_upsert_cname(zone, name, target, ttl, timeout_seconds))
    }
    pub fn get_records_of(zone: &str, names: &[String]) -> Result<Vec<RecordSet>, Error> {
        super::aws("route53.get-records-of", |c, _, _| c.route53_get_records_of(zone, names))
    }
    pub fn change_records(zone: &str, changes: &[RecordChange], ttl: u32, timeout_seconds: u32) -> Result<(), Error> {
        let changes = crate::testing::convert::record_changes(changes.to_vec());
        super::aws("route53.change-records", |c, _, _| c.route53_change_records(zone, &changes, ttl, timeout_seconds))
    }
    pub fn set_weights(zone: &str, name: &str, targets: &[WeightedTarget], ttl: u32, timeout_seconds: u32) -> Result<(), Error> {
        let _ = timeout_seconds;
        let targets = crate::testing::convert::weighted_targets(targets.to_vec());
        super::aws("route53.set-weights", |c, _, _| c.route53_set_weights(zone, name, &targets, ttl))
    }
    pub fn delete_cname(zone: &str, name: &str, timeout_seconds: u32) -> Result<(), Error> {
        let _ = timeout_seconds;
        super::aws("route53.delete-cname", |c, _, _| c.route53_delete_cname(zone, name))
    }
    pub fn get_health_check(id: &str) -> Result<HealthCheck, Error> {
        super::aws("route53.get-health-check", |c, _, _| c.route53_get_health_check(id))
    }
    pub fn update_health_check(id: &str, disabled: bool, inverted: bool) -> Result<HealthCheck, Error> {
        super::aws("route53.update-health-check", |c, _, _| c.route53_update_health_check(id, disabled, inverted))
    }
    #[allow(clippy::too_many_arguments)]
    pub fn upsert_failover(
        zone: &str,
        name: &str,
        role: FailoverRole,
        set_identifier: &str,
        target: &str,
        health_check: Option<&str>,
        ttl: u32,
        timeout_seconds: u32,
    ) -> Result<(), Error> {
        let _ = timeout_seconds;
        let record = drover_cloud::route53::FailoverRecord {
            role: crate::testing::convert::failover_role(role),
            set_identifier: set_identifier.into(),
            target: target.into(),
            health_check: health_check.map(str::to_string),
            ttl,
        };
        super::aws("route53.upsert-failover", |c, _, _| c.route53_upsert_failover(zone, name, &record))
    }
}

pub mod cloudwatch {
    pub use crate::bindings::drover::runbook::cloudwatch::*;

    pub fn describe_alarms(region: &str, names: &[String]) -> Result<Vec<Alarm>, Error> {
        super::aws("cloudwatch.describe-alarms", |c, _, _| c.cloudwatch_describe_alarms(region, names))
    }
}

pub mod autoscaling {
    pub use crate::bindings::drover::runbook::autoscaling::*;

    use super::super::convert::capacity;

    pub fn describe_group(region: &str, name: &str) -> Result<ScalingGroup, Error> {
        super::aws("autoscaling.describe-group", |c, _, _| c.autoscaling_describe_group(region, name))
    }

    pub fn set_capacity(region: &str, name: &str, cap: Capacity) -> Result<ScalingGroup, Error> {
        let cap = capacity(cap);
        super::aws("autoscaling.set-capacity", |c, _, _| c.autoscaling_set_capacity(region, name, &cap))
    }

    pub fn wait_in_service(region: &str, name: &str, timeout_seconds: u32) -> Result<ScalingGroup, Error> {
        super::aws("autoscaling.wait-in-service", |c, _, _| c.autoscaling_wait_in_service(region, name, timeout_seconds))
    }
}

pub mod ecs {
    pub use crate::bindings::drover::runbook::ecs::*;

    pub fn describe_service(region: &str, cluster: &str, name: &str) -> Result<EcsService, Error> {
        super::aws("ecs.describe-service", |c, _, _| c.ecs_describe_service(region, cluster, name))
    }

    pub fn set_desired_count(region: &str, cluster: &str, name: &str, desired: u32) -> Result<EcsService, Error> {
        super::aws("ecs.set-desired-count", |c, _, _| c.ecs_set_desired_count(region, cluster, name, desired))
    }

    pub fn wait_stable(region: &str, cluster: &str, name: &str, timeout_seconds: u32) -> Result<EcsService, Error> {
        super::aws("ecs.wait-stable", |c, _, _| c.ecs_wait_stable(region, cluster, name, timeout_seconds))
    }
}

pub mod reads {
    pub use crate::bindings::drover::runbook::reads::*;

    use crate::aws::reads::MAX_READS;

    /// Each read answered by the call it names, in order (the simulated
    /// cloud answers at once: nothing to send together).
    pub fn read_all(reads: &[Read]) -> Vec<Answer> {
        assert!(reads.len() <= MAX_READS, "reads.read-all was given {} reads; at most {MAX_READS} go out at once: split them into several calls", reads.len());
        reads
            .iter()
            .map(|r| match r {
                Read::RdsDescribeInstance(r) => Answer::RdsDescribeInstance(super::rds::describe_instance(&r.region, &r.identifier)),
                Read::RdsReplicaLag(r) => Answer::RdsReplicaLag(super::rds::replica_lag(&r.region, &r.identifier)),
                Read::RdsLatestSnapshot(r) => Answer::RdsLatestSnapshot(super::rds::latest_snapshot(&r.region, &r.identifier)),
                Read::Route53GetRecordsOf(r) => Answer::Route53GetRecordsOf(super::route53::get_records_of(&r.zone, &r.names)),
                Read::AutoscalingDescribeGroup(r) => Answer::AutoscalingDescribeGroup(super::autoscaling::describe_group(&r.region, &r.name)),
                Read::EcsDescribeService(r) => Answer::EcsDescribeService(super::ecs::describe_service(&r.region, &r.cluster, &r.name)),
            })
            .collect()
    }
}
