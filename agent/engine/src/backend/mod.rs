//! Where a capability call is answered: one trait per AWS service, with
//! exactly three implementations, chosen once per run (`driver.rs`,
//! `new_store`):
//!
//! - [`aws::AwsBackend`]: the real calls (`drover-aws`);
//! - [`plan::PlanBackend`]: the plan of a dry run (or a readiness check):
//!   reads go to AWS (or to what the plan already changed), changes are
//!   recorded, never made;
//! - [`sim::SimBackend`]: the simulated cloud of `drover test` (`drover-sim`).
//!
//! Every method takes the call's context ([`CallCx`]: the step, its
//! idempotency key, the run, the AWS clients, the turn, the cancel signal)
//! and the contract's arguments, and answers in the cloud model's types
//! (`drover-cloud`). The gate (policy, audit, fencing) runs before, in
//! `capabilities.rs`; the conversion to the contract's types and the
//! masking of secrets after. A capability operation missing from a backend
//! does not compile.

pub(crate) mod aws;
pub(crate) mod plan;
pub(crate) mod sim;

use std::sync::Arc;

use async_trait::async_trait;
use drover_aws::Clients;
use drover_cloud::CloudError;
use drover_cloud::autoscaling::{Capacity, ScalingGroup};
use drover_cloud::cloudwatch::Alarm;
use drover_cloud::ec2::{Image, Instance, Snapshot};
use drover_cloud::ecs::EcsService;
use drover_cloud::rds::{DbCluster, DbInstance, DbSnapshot, GlobalCluster, GlobalFailoverMode, LagReading, SnapshotInfo};
use drover_cloud::route53::{FailoverRecord, HealthCheck, RecordChange, RecordSet, WeightedTarget};

use crate::cancel::CancelSignal;
use crate::host_calls::LentTurn;

/// A backend's answer: the model value or the cloud's error; the outer
/// error stops the runbook (a cancel during a long wait).
pub(crate) type Answer<T> = wasmtime::Result<Result<T, CloudError>>;

/// A capability call that passed the gate.
pub(crate) struct CallCx {
    /// The AWS clients (fenced when the call changes something).
    pub clients: Arc<Clients>,
    /// The step's idempotency key (client token and tag of what it creates).
    pub key: String,
    /// The run's id (the `drover:run` tag of what it creates).
    pub run_id: String,
    /// The step making the call (empty for a cleanup or undo).
    pub step: String,
    /// Its attempt.
    pub attempt: u32,
    /// The call's turn among the agent's AWS calls, lent by long waits.
    pub turn: Arc<LentTurn>,
    /// The run's cancel signal, while a cancel can still stop it.
    pub cancel: Option<Arc<CancelSignal>>,
    /// The step's span, parent of the call's `aws` span.
    pub span: Option<tracing::Id>,
    /// Where the call's AWS requests are counted (the attempt's count).
    pub requests: Option<Arc<std::sync::atomic::AtomicU32>>,
}

/// RDS (Aurora included), as the `rds` interface of the contract.
#[async_trait]
pub(crate) trait RdsBackend: Send + Sync {
    async fn describe_instance(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<DbInstance>;
    async fn create_snapshot(&self, cx: &CallCx, region: &str, instance: &str, snapshot: &str) -> Answer<DbSnapshot>;
    async fn copy_snapshot(&self, cx: &CallCx, source_arn: &str, target_region: &str, target: &str, kms_key: Option<&str>) -> Answer<DbSnapshot>;
    async fn describe_snapshot(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<DbSnapshot>;
    async fn create_read_replica(&self, cx: &CallCx, source_arn: &str, region: &str, identifier: &str, instance_class: Option<&str>) -> Answer<DbInstance>;
    async fn promote_read_replica(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<DbInstance>;
    async fn wait_instance_available(&self, cx: &CallCx, region: &str, identifier: &str, timeout_seconds: u32) -> Answer<DbInstance>;
    async fn wait_snapshot_available(&self, cx: &CallCx, region: &str, identifier: &str, timeout_seconds: u32) -> Answer<DbSnapshot>;
    async fn latest_snapshot(&self, cx: &CallCx, region: &str, instance: &str) -> Answer<Option<SnapshotInfo>>;
    async fn restore_from_snapshot(&self, cx: &CallCx, region: &str, snapshot: &str, identifier: &str, instance_class: Option<&str>) -> Answer<DbInstance>;
    async fn delete_instance(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<()>;
    async fn replica_lag(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<Option<LagReading>>;
    async fn describe_cluster(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<DbCluster>;
    async fn describe_global_cluster(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<GlobalCluster>;
    async fn failover_global_cluster(
        &self,
        cx: &CallCx,
        region: &str,
        identifier: &str,
        target_cluster_arn: &str,
        mode: GlobalFailoverMode,
    ) -> Answer<GlobalCluster>;
    async fn wait_global_writer(&self, cx: &CallCx, region: &str, identifier: &str, target_cluster_arn: &str, timeout_seconds: u32) -> Answer<GlobalCluster>;
    async fn detach_from_global_cluster(&self, cx: &CallCx, region: &str, identifier: &str, cluster_arn: &str, timeout_seconds: u32) -> Answer<bool>;
    async fn run_instances(&self, cx: &CallCx, region: &str) -> Answer<Vec<String>>;
}

/// EC2: instances, EBS snapshots and AMIs, as the `ec2` interface.
#[async_trait]
pub(crate) trait Ec2Backend: Send + Sync {
    async fn describe_instance(&self, cx: &CallCx, region: &str, instance_id: &str) -> Answer<Instance>;
    async fn snapshot_volume(&self, cx: &CallCx, region: &str, volume_id: &str, name: &str, lineage: Option<&str>) -> Answer<Snapshot>;
    async fn copy_snapshot(
        &self,
        cx: &CallCx,
        source_region: &str,
        snapshot_id: &str,
        target_region: &str,
        name: &str,
        lineage: Option<&str>,
    ) -> Answer<Snapshot>;
    async fn create_image(&self, cx: &CallCx, region: &str, instance_id: &str, name: &str, lineage: Option<&str>) -> Answer<Image>;
    async fn copy_image(&self, cx: &CallCx, source_region: &str, image_id: &str, target_region: &str, name: &str, lineage: Option<&str>) -> Answer<Image>;
    async fn wait_image_available(&self, cx: &CallCx, region: &str, image_id: &str, timeout_seconds: u32) -> Answer<Image>;
    async fn run_instance(&self, cx: &CallCx, region: &str, image_id: &str, instance_type: &str, name: &str) -> Answer<Instance>;
    async fn prune_images(&self, cx: &CallCx, region: &str, lineage: &str, keep: u32) -> Answer<Vec<String>>;
    async fn latest_image(&self, cx: &CallCx, region: &str, lineage: &str) -> Answer<Option<Image>>;
    async fn terminate_instance(&self, cx: &CallCx, region: &str, instance_id: &str) -> Answer<()>;
    async fn tag(&self, cx: &CallCx, region: &str, id: &str, tags: &[(String, String)]) -> Answer<bool>;
    async fn run_instances(&self, cx: &CallCx, region: &str) -> Answer<Vec<String>>;
}

/// Route 53, as the `route53` interface.
#[async_trait]
pub(crate) trait Route53Backend: Send + Sync {
    async fn get_records(&self, cx: &CallCx, zone: &str, name: &str) -> Answer<Vec<RecordSet>>;
    async fn upsert_cname(&self, cx: &CallCx, zone: &str, name: &str, target: &str, ttl: u32, timeout_seconds: u32) -> Answer<()>;
    async fn get_records_of(&self, cx: &CallCx, zone: &str, names: &[String]) -> Answer<Vec<RecordSet>>;
    async fn change_records(&self, cx: &CallCx, zone: &str, changes: &[RecordChange], ttl: u32, timeout_seconds: u32) -> Answer<()>;
    async fn set_weights(&self, cx: &CallCx, zone: &str, name: &str, targets: &[WeightedTarget], ttl: u32, timeout_seconds: u32) -> Answer<()>;
    async fn get_health_check(&self, cx: &CallCx, id: &str) -> Answer<HealthCheck>;
    async fn update_health_check(&self, cx: &CallCx, id: &str, disabled: bool, inverted: bool) -> Answer<HealthCheck>;
    async fn upsert_failover(&self, cx: &CallCx, zone: &str, name: &str, record: &FailoverRecord, timeout_seconds: u32) -> Answer<()>;
    async fn delete_cname(&self, cx: &CallCx, zone: &str, name: &str, timeout_seconds: u32) -> Answer<()>;
}

/// CloudWatch, as the `cloudwatch` interface.
#[async_trait]
pub(crate) trait CloudWatchBackend: Send + Sync {
    async fn describe_alarms(&self, cx: &CallCx, region: &str, names: &[String]) -> Answer<Vec<Alarm>>;
}

/// EC2 Auto Scaling, as the `autoscaling` interface.
#[async_trait]
pub(crate) trait AutoscalingBackend: Send + Sync {
    async fn describe_group(&self, cx: &CallCx, region: &str, name: &str) -> Answer<ScalingGroup>;
    async fn set_capacity(&self, cx: &CallCx, region: &str, name: &str, capacity: &Capacity) -> Answer<ScalingGroup>;
    async fn wait_in_service(&self, cx: &CallCx, region: &str, name: &str, timeout_seconds: u32) -> Answer<ScalingGroup>;
}

/// Amazon ECS, as the `ecs` interface.
#[async_trait]
pub(crate) trait EcsBackend: Send + Sync {
    async fn describe_service(&self, cx: &CallCx, region: &str, cluster: &str, name: &str) -> Answer<EcsService>;
    async fn set_desired_count(&self, cx: &CallCx, region: &str, cluster: &str, name: &str, desired: u32) -> Answer<EcsService>;
    async fn wait_stable(&self, cx: &CallCx, region: &str, cluster: &str, name: &str, timeout_seconds: u32) -> Answer<EcsService>;
}

/// A run's backend, one per service.
#[derive(Clone)]
pub(crate) struct Backends {
    pub rds: Arc<dyn RdsBackend>,
    pub ec2: Arc<dyn Ec2Backend>,
    pub route53: Arc<dyn Route53Backend>,
    pub cloudwatch: Arc<dyn CloudWatchBackend>,
    pub autoscaling: Arc<dyn AutoscalingBackend>,
    pub ecs: Arc<dyn EcsBackend>,
}

impl Backends {
    /// Every service answered by `backend`.
    pub fn of<B: RdsBackend + Ec2Backend + Route53Backend + CloudWatchBackend + AutoscalingBackend + EcsBackend + 'static>(backend: B) -> Backends {
        let b = Arc::new(backend);
        Backends { rds: b.clone(), ec2: b.clone(), route53: b.clone(), cloudwatch: b.clone(), autoscaling: b.clone(), ecs: b }
    }
}
