//! The simulated cloud's backend (`drover test`): every call answered by
//! `drover-sim`, as the step and attempt making it.

use std::sync::Arc;

use async_trait::async_trait;
use drover_cloud::CloudError;
use drover_cloud::autoscaling::{Capacity, ScalingGroup};
use drover_cloud::cloudwatch::Alarm;
use drover_cloud::ec2::{Image, Instance, Snapshot};
use drover_cloud::ecs::EcsService;
use drover_cloud::rds::{DbCluster, DbInstance, DbSnapshot, GlobalCluster, GlobalFailoverMode, LagReading, SnapshotInfo};
use drover_cloud::route53::{FailoverRecord, HealthCheck, RecordChange, RecordSet, WeightedTarget};
use drover_sim::Cloud;

use super::{Answer, AutoscalingBackend, CallCx, CloudWatchBackend, Ec2Backend, EcsBackend, RdsBackend, Route53Backend};
use crate::simulation::Simulation;

/// Answers from the simulated cloud.
pub(crate) struct SimBackend(pub Arc<Simulation>);

impl SimBackend {
    fn call<T>(&self, cx: &CallCx, f: impl FnOnce(&mut Cloud) -> Result<T, CloudError>) -> Answer<T> {
        Ok(self.0.call(Some((cx.step.clone(), cx.attempt)), f))
    }
}

#[async_trait]
impl RdsBackend for SimBackend {
    async fn describe_instance(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<DbInstance> {
        self.call(cx, |s| s.rds_describe_instance(region, identifier))
    }
    async fn create_snapshot(&self, cx: &CallCx, region: &str, instance: &str, snapshot: &str) -> Answer<DbSnapshot> {
        self.call(cx, |s| s.rds_create_snapshot(region, instance, snapshot, &cx.key))
    }
    async fn copy_snapshot(&self, cx: &CallCx, source_arn: &str, target_region: &str, target: &str, _kms_key: Option<&str>) -> Answer<DbSnapshot> {
        self.call(cx, |s| s.rds_copy_snapshot(source_arn, target_region, target, &cx.key))
    }
    async fn describe_snapshot(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<DbSnapshot> {
        self.call(cx, |s| s.rds_describe_snapshot(region, identifier))
    }
    async fn create_read_replica(&self, cx: &CallCx, source_arn: &str, region: &str, identifier: &str, _class: Option<&str>) -> Answer<DbInstance> {
        self.call(cx, |s| s.rds_create_read_replica(source_arn, region, identifier, &cx.key, &cx.run_id))
    }
    async fn promote_read_replica(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<DbInstance> {
        self.call(cx, |s| s.rds_promote_read_replica(region, identifier, &cx.key))
    }
    async fn wait_instance_available(&self, cx: &CallCx, region: &str, identifier: &str, timeout_seconds: u32) -> Answer<DbInstance> {
        self.call(cx, |s| s.rds_wait_instance_available(region, identifier, timeout_seconds))
    }
    async fn wait_snapshot_available(&self, cx: &CallCx, region: &str, identifier: &str, timeout_seconds: u32) -> Answer<DbSnapshot> {
        self.call(cx, |s| s.rds_wait_snapshot_available(region, identifier, timeout_seconds))
    }
    async fn latest_snapshot(&self, cx: &CallCx, region: &str, instance: &str) -> Answer<Option<SnapshotInfo>> {
        self.call(cx, |s| s.rds_latest_snapshot(region, instance))
    }
    async fn restore_from_snapshot(&self, cx: &CallCx, region: &str, snapshot: &str, identifier: &str, _class: Option<&str>) -> Answer<DbInstance> {
        self.call(cx, |s| s.rds_restore_from_snapshot(region, snapshot, identifier, &cx.key, &cx.run_id))
    }
    async fn delete_instance(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<()> {
        self.call(cx, |s| s.rds_delete_instance(region, identifier, &cx.run_id))
    }
    async fn replica_lag(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<Option<LagReading>> {
        self.call(cx, |s| s.rds_replica_lag(region, identifier))
    }
    async fn describe_cluster(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<DbCluster> {
        self.call(cx, |s| s.rds_describe_cluster(region, identifier))
    }
    async fn describe_global_cluster(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<GlobalCluster> {
        self.call(cx, |s| s.rds_describe_global_cluster(region, identifier))
    }
    async fn failover_global_cluster(&self, cx: &CallCx, region: &str, identifier: &str, target: &str, mode: GlobalFailoverMode) -> Answer<GlobalCluster> {
        self.call(cx, |s| s.rds_failover_global_cluster(region, identifier, target, mode))
    }
    async fn wait_global_writer(&self, cx: &CallCx, region: &str, identifier: &str, target: &str, timeout_seconds: u32) -> Answer<GlobalCluster> {
        self.call(cx, |s| s.rds_wait_global_writer(region, identifier, target, timeout_seconds))
    }
    async fn detach_from_global_cluster(&self, cx: &CallCx, region: &str, identifier: &str, cluster_arn: &str, _timeout_seconds: u32) -> Answer<bool> {
        self.call(cx, |s| s.rds_detach_from_global_cluster(region, identifier, cluster_arn))
    }
    async fn run_instances(&self, cx: &CallCx, region: &str) -> Answer<Vec<String>> {
        self.call(cx, |s| s.rds_run_instances(region, &cx.run_id))
    }
}

#[async_trait]
impl Ec2Backend for SimBackend {
    async fn describe_instance(&self, cx: &CallCx, region: &str, instance_id: &str) -> Answer<Instance> {
        self.call(cx, |s| s.ec2_describe_instance(region, instance_id))
    }
    async fn snapshot_volume(&self, cx: &CallCx, region: &str, volume_id: &str, name: &str, lineage: Option<&str>) -> Answer<Snapshot> {
        self.call(cx, |s| s.ec2_snapshot_volume(region, volume_id, name, lineage))
    }
    async fn copy_snapshot(
        &self,
        cx: &CallCx,
        source_region: &str,
        snapshot_id: &str,
        target_region: &str,
        name: &str,
        lineage: Option<&str>,
    ) -> Answer<Snapshot> {
        self.call(cx, |s| s.ec2_copy_snapshot(source_region, snapshot_id, target_region, name, lineage))
    }
    async fn create_image(&self, cx: &CallCx, region: &str, instance_id: &str, name: &str, lineage: Option<&str>) -> Answer<Image> {
        self.call(cx, |s| s.ec2_create_image(region, instance_id, name, lineage))
    }
    async fn copy_image(&self, cx: &CallCx, source_region: &str, image_id: &str, target_region: &str, name: &str, lineage: Option<&str>) -> Answer<Image> {
        self.call(cx, |s| s.ec2_copy_image(source_region, image_id, target_region, name, lineage))
    }
    async fn wait_image_available(&self, cx: &CallCx, region: &str, image_id: &str, timeout_seconds: u32) -> Answer<Image> {
        self.call(cx, |s| s.ec2_wait_image_available(region, image_id, timeout_seconds))
    }
    async fn run_instance(&self, cx: &CallCx, region: &str, image_id: &str, _instance_type: &str, name: &str) -> Answer<Instance> {
        self.call(cx, |s| s.ec2_run_instance(region, image_id, name, &cx.run_id))
    }
    async fn prune_images(&self, cx: &CallCx, region: &str, lineage: &str, keep: u32) -> Answer<Vec<String>> {
        self.call(cx, |s| s.ec2_prune_images(region, lineage, keep))
    }
    async fn latest_image(&self, cx: &CallCx, region: &str, lineage: &str) -> Answer<Option<Image>> {
        self.call(cx, |s| s.ec2_latest_image(region, lineage))
    }
    async fn terminate_instance(&self, cx: &CallCx, region: &str, instance_id: &str) -> Answer<()> {
        self.call(cx, |s| s.ec2_terminate_instance(region, instance_id, &cx.run_id))
    }
    async fn tag(&self, cx: &CallCx, region: &str, id: &str, tags: &[(String, String)]) -> Answer<bool> {
        self.call(cx, |s| s.ec2_tag(region, id, tags))
    }
    async fn run_instances(&self, cx: &CallCx, region: &str) -> Answer<Vec<String>> {
        self.call(cx, |s| s.ec2_run_instances(region, &cx.run_id))
    }
}

#[async_trait]
impl Route53Backend for SimBackend {
    async fn get_records(&self, cx: &CallCx, zone: &str, name: &str) -> Answer<Vec<RecordSet>> {
        self.call(cx, |s| s.route53_get_records(zone, name))
    }
    async fn upsert_cname(&self, cx: &CallCx, zone: &str, name: &str, target: &str, ttl: u32, timeout_seconds: u32) -> Answer<()> {
        self.call(cx, |s| s.route53_upsert_cname(zone, name, target, ttl, timeout_seconds))
    }
    async fn get_records_of(&self, cx: &CallCx, zone: &str, names: &[String]) -> Answer<Vec<RecordSet>> {
        self.call(cx, |s| s.route53_get_records_of(zone, names))
    }
    async fn change_records(&self, cx: &CallCx, zone: &str, changes: &[RecordChange], ttl: u32, timeout_seconds: u32) -> Answer<()> {
        self.call(cx, |s| s.route53_change_records(zone, changes, ttl, timeout_seconds))
    }
    async fn set_weights(&self, cx: &CallCx, zone: &str, name: &str, targets: &[WeightedTarget], ttl: u32, _timeout_seconds: u32) -> Answer<()> {
        self.call(cx, |s| s.route53_set_weights(zone, name, targets, ttl))
    }
    async fn get_health_check(&self, cx: &CallCx, id: &str) -> Answer<HealthCheck> {
        self.call(cx, |s| s.route53_get_health_check(id))
    }
    async fn update_health_check(&self, cx: &CallCx, id: &str, disabled: bool, inverted: bool) -> Answer<HealthCheck> {
        self.call(cx, |s| s.route53_update_health_check(id, disabled, inverted))
    }
    async fn upsert_failover(&self, cx: &CallCx, zone: &str, name: &str, record: &FailoverRecord, _timeout_seconds: u32) -> Answer<()> {
        self.call(cx, |s| s.route53_upsert_failover(zone, name, record))
    }
    async fn delete_cname(&self, cx: &CallCx, zone: &str, name: &str, _timeout_seconds: u32) -> Answer<()> {
        self.call(cx, |s| s.route53_delete_cname(zone, name))
    }
}

#[async_trait]
impl CloudWatchBackend for SimBackend {
    async fn describe_alarms(&self, cx: &CallCx, region: &str, names: &[String]) -> Answer<Vec<Alarm>> {
        self.call(cx, |s| s.cloudwatch_describe_alarms(region, names))
    }
}

#[async_trait]
impl AutoscalingBackend for SimBackend {
    async fn describe_group(&self, cx: &CallCx, region: &str, name: &str) -> Answer<ScalingGroup> {
        self.call(cx, |s| s.autoscaling_describe_group(region, name))
    }
    async fn set_capacity(&self, cx: &CallCx, region: &str, name: &str, capacity: &Capacity) -> Answer<ScalingGroup> {
        self.call(cx, |s| s.autoscaling_set_capacity(region, name, capacity))
    }
    async fn wait_in_service(&self, cx: &CallCx, region: &str, name: &str, timeout_seconds: u32) -> Answer<ScalingGroup> {
        self.call(cx, |s| s.autoscaling_wait_in_service(region, name, timeout_seconds))
    }
}

#[async_trait]
impl EcsBackend for SimBackend {
    async fn describe_service(&self, cx: &CallCx, region: &str, cluster: &str, name: &str) -> Answer<EcsService> {
        self.call(cx, |s| s.ecs_describe_service(region, cluster, name))
    }
    async fn set_desired_count(&self, cx: &CallCx, region: &str, cluster: &str, name: &str, desired: u32) -> Answer<EcsService> {
        self.call(cx, |s| s.ecs_set_desired_count(region, cluster, name, desired))
    }
    async fn wait_stable(&self, cx: &CallCx, region: &str, cluster: &str, name: &str, timeout_seconds: u32) -> Answer<EcsService> {
        self.call(cx, |s| s.ecs_wait_stable(region, cluster, name, timeout_seconds))
    }
}
