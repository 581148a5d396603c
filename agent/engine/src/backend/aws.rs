//! The real backend: each call made with `drover-aws`, in its `aws` span
//! (named by the AWS API it sends), the long waits lending their turn and
//! racing the run's cancel.

use async_trait::async_trait;
use drover_aws::{CapabilityError, aurora, autoscaling as asg, cloudwatch as cw, ec2, ecs, rds, route53 as r53};
use drover_cloud::CloudError;
use drover_cloud::autoscaling::{Capacity, ScalingGroup};
use drover_cloud::cloudwatch::Alarm;
use drover_cloud::ec2::{Image, Instance, Snapshot};
use drover_cloud::ecs::EcsService;
use drover_cloud::rds::{DbCluster, DbInstance, DbSnapshot, GlobalCluster, GlobalFailoverMode, LagReading, SnapshotInfo};
use drover_cloud::route53::{FailoverRecord, HealthCheck, RecordChange, RecordSet, WeightedTarget};
use tracing::Instrument;

use super::{Answer, AutoscalingBackend, CallCx, CloudWatchBackend, Ec2Backend, EcsBackend, RdsBackend, Route53Backend};
use crate::capabilities::{cancellable, lent, secs};

/// Answers from AWS.
pub(crate) struct AwsBackend;

/// The `aws` span of a call: service, API operation, region and resource;
/// the request id is filled in when AWS answers.
fn span(cx: &CallCx, service: &'static str, operation: &'static str, region: &str, resource: &str) -> tracing::Span {
    tracing::info_span!(parent: cx.span.clone(), "aws", request_id = tracing::field::Empty, service, operation, region = %region, resource = %resource)
}

/// An AWS failure as the runbook gets it (logged with what AWS said).
pub(crate) fn cloud_error(e: CapabilityError) -> CloudError {
    tracing::warn!(service = e.service, operation = e.operation, region = %e.region, resource = %e.resource, code = %e.code, request_id = ?e.request_id, "AWS call failed");
    CloudError { code: e.code.clone(), message: e.to_string(), retryable: e.retryable, resource: Some(e.resource.clone()) }
}

/// A call's outcome as a backend answer.
fn answer<T>(r: Result<T, CapabilityError>) -> Answer<T> {
    Ok(r.map_err(cloud_error))
}

/// A long wait: lends the call's turn to the other calls while it sleeps,
/// and ends early when the run is cancelled.
async fn wait<T>(cx: &CallCx, f: impl std::future::Future<Output = Result<T, CapabilityError>>) -> Answer<T> {
    Ok(cancellable(cx.cancel.clone(), lent(&cx.turn, f)).await?.map_err(cloud_error))
}

#[async_trait]
impl RdsBackend for AwsBackend {
    async fn describe_instance(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<DbInstance> {
        answer(rds::describe_instance(&cx.clients, region, identifier).instrument(span(cx, "rds", "DescribeDBInstances", region, identifier)).await)
    }
    async fn create_snapshot(&self, cx: &CallCx, region: &str, instance: &str, snapshot: &str) -> Answer<DbSnapshot> {
        answer(rds::create_snapshot(&cx.clients, region, instance, snapshot, &cx.key).instrument(span(cx, "rds", "CreateDBSnapshot", region, snapshot)).await)
    }
    async fn copy_snapshot(&self, cx: &CallCx, source_arn: &str, target_region: &str, target: &str, kms_key: Option<&str>) -> Answer<DbSnapshot> {
        let copy = rds::copy_snapshot(&cx.clients, source_arn, target_region, target, kms_key, &cx.key);
        answer(copy.instrument(span(cx, "rds", "CopyDBSnapshot", target_region, target)).await)
    }
    async fn describe_snapshot(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<DbSnapshot> {
        answer(rds::describe_snapshot(&cx.clients, region, identifier).instrument(span(cx, "rds", "DescribeDBSnapshots", region, identifier)).await)
    }
    async fn create_read_replica(&self, cx: &CallCx, source_arn: &str, region: &str, identifier: &str, class: Option<&str>) -> Answer<DbInstance> {
        let create = rds::create_read_replica(&cx.clients, source_arn, region, identifier, class, &cx.key);
        answer(create.instrument(span(cx, "rds", "CreateDBInstanceReadReplica", region, identifier)).await)
    }
    async fn promote_read_replica(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<DbInstance> {
        // A step's first attempt sends the promotion with its intent tag,
        // nothing read first (the preflight's describe gave the ARN).
        let promote = rds::promote_read_replica(&cx.clients, region, identifier, &cx.key, cx.attempt <= 1);
        answer(promote.instrument(span(cx, "rds", "PromoteReadReplica", region, identifier)).await)
    }
    async fn wait_instance_available(&self, cx: &CallCx, region: &str, identifier: &str, timeout_seconds: u32) -> Answer<DbInstance> {
        wait(cx, rds::wait_instance_available(&cx.clients, region, identifier, secs(timeout_seconds))).await
    }
    async fn wait_snapshot_available(&self, cx: &CallCx, region: &str, identifier: &str, timeout_seconds: u32) -> Answer<DbSnapshot> {
        wait(cx, rds::wait_snapshot_available(&cx.clients, region, identifier, secs(timeout_seconds))).await
    }
    async fn latest_snapshot(&self, cx: &CallCx, region: &str, instance: &str) -> Answer<Option<SnapshotInfo>> {
        answer(rds::latest_snapshot(&cx.clients, region, instance).instrument(span(cx, "rds", "DescribeDBSnapshots", region, instance)).await)
    }
    async fn restore_from_snapshot(&self, cx: &CallCx, region: &str, snapshot: &str, identifier: &str, class: Option<&str>) -> Answer<DbInstance> {
        let restore = rds::restore_from_snapshot(&cx.clients, region, snapshot, identifier, class, &cx.run_id, &cx.key);
        answer(restore.instrument(span(cx, "rds", "RestoreDBInstanceFromDBSnapshot", region, identifier)).await)
    }
    async fn delete_instance(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<()> {
        answer(rds::delete_instance(&cx.clients, region, identifier, &cx.run_id).instrument(span(cx, "rds", "DeleteDBInstance", region, identifier)).await)
    }
    async fn replica_lag(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<Option<LagReading>> {
        answer(cw::replica_lag(&cx.clients, region, identifier).instrument(span(cx, "cloudwatch", "GetMetricStatistics", region, identifier)).await)
    }
    async fn describe_cluster(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<DbCluster> {
        answer(aurora::describe_cluster(&cx.clients, region, identifier).instrument(span(cx, "rds", "DescribeDBClusters", region, identifier)).await)
    }
    async fn describe_global_cluster(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<GlobalCluster> {
        let describe = aurora::describe_global_cluster(&cx.clients, region, identifier);
        answer(describe.instrument(span(cx, "rds", "DescribeGlobalClusters", region, identifier)).await)
    }
    async fn failover_global_cluster(&self, cx: &CallCx, region: &str, identifier: &str, target: &str, mode: GlobalFailoverMode) -> Answer<GlobalCluster> {
        let failover = aurora::failover_global_cluster(&cx.clients, region, identifier, target, mode);
        answer(failover.instrument(span(cx, "rds", mode.operation(), region, identifier)).await.map(|(_, g)| g))
    }
    async fn wait_global_writer(&self, cx: &CallCx, region: &str, identifier: &str, target: &str, timeout_seconds: u32) -> Answer<GlobalCluster> {
        let waiter = aurora::wait_global_writer(&cx.clients, region, identifier, target, secs(timeout_seconds));
        wait(cx, waiter.instrument(span(cx, "rds", "DescribeGlobalClusters", region, identifier))).await
    }
    async fn detach_from_global_cluster(&self, cx: &CallCx, region: &str, identifier: &str, cluster_arn: &str, timeout_seconds: u32) -> Answer<bool> {
        let detach = aurora::detach_from_global_cluster(&cx.clients, region, identifier, cluster_arn, secs(timeout_seconds));
        wait(cx, detach.instrument(span(cx, "rds", "RemoveFromGlobalCluster", region, identifier))).await
    }
    async fn run_instances(&self, cx: &CallCx, region: &str) -> Answer<Vec<String>> {
        answer(rds::run_instances(&cx.clients, region, &cx.run_id).instrument(span(cx, "rds", "DescribeDBInstances", region, "")).await)
    }
}

#[async_trait]
impl Ec2Backend for AwsBackend {
    async fn describe_instance(&self, cx: &CallCx, region: &str, instance_id: &str) -> Answer<Instance> {
        answer(ec2::describe_instance(&cx.clients, region, instance_id).instrument(span(cx, "ec2", "DescribeInstances", region, instance_id)).await)
    }
    async fn snapshot_volume(&self, cx: &CallCx, region: &str, volume_id: &str, name: &str, lineage: Option<&str>) -> Answer<Snapshot> {
        let create = ec2::snapshot_volume(&cx.clients, region, volume_id, name, lineage, &cx.key);
        answer(create.instrument(span(cx, "ec2", "CreateSnapshot", region, name)).await)
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
        let copy = ec2::copy_snapshot(&cx.clients, source_region, snapshot_id, target_region, name, lineage, &cx.key);
        answer(copy.instrument(span(cx, "ec2", "CopySnapshot", target_region, name)).await)
    }
    async fn create_image(&self, cx: &CallCx, region: &str, instance_id: &str, name: &str, lineage: Option<&str>) -> Answer<Image> {
        let create = ec2::create_image(&cx.clients, region, instance_id, name, lineage, &cx.key);
        answer(create.instrument(span(cx, "ec2", "CreateImage", region, name)).await)
    }
    async fn copy_image(&self, cx: &CallCx, source_region: &str, image_id: &str, target_region: &str, name: &str, lineage: Option<&str>) -> Answer<Image> {
        let copy = ec2::copy_image(&cx.clients, source_region, image_id, target_region, name, lineage, &cx.key);
        answer(copy.instrument(span(cx, "ec2", "CopyImage", target_region, name)).await)
    }
    async fn wait_image_available(&self, cx: &CallCx, region: &str, image_id: &str, timeout_seconds: u32) -> Answer<Image> {
        wait(cx, ec2::wait_image_available(&cx.clients, region, image_id, secs(timeout_seconds))).await
    }
    async fn run_instance(&self, cx: &CallCx, region: &str, image_id: &str, instance_type: &str, name: &str) -> Answer<Instance> {
        let launch = ec2::run_instance(&cx.clients, region, image_id, instance_type, name, &cx.run_id, &cx.key);
        answer(launch.instrument(span(cx, "ec2", "RunInstances", region, name)).await)
    }
    async fn prune_images(&self, cx: &CallCx, region: &str, lineage: &str, keep: u32) -> Answer<Vec<String>> {
        answer(ec2::prune_images(&cx.clients, region, lineage, keep).instrument(span(cx, "ec2", "DeregisterImage", region, lineage)).await)
    }
    async fn latest_image(&self, cx: &CallCx, region: &str, lineage: &str) -> Answer<Option<Image>> {
        answer(ec2::latest_image(&cx.clients, region, lineage).instrument(span(cx, "ec2", "DescribeImages", region, lineage)).await)
    }
    async fn terminate_instance(&self, cx: &CallCx, region: &str, instance_id: &str) -> Answer<()> {
        let terminate = ec2::terminate_instance(&cx.clients, region, instance_id, &cx.run_id);
        answer(terminate.instrument(span(cx, "ec2", "TerminateInstances", region, instance_id)).await)
    }
    async fn tag(&self, cx: &CallCx, region: &str, id: &str, tags: &[(String, String)]) -> Answer<bool> {
        answer(ec2::tag(&cx.clients, region, id, tags).instrument(span(cx, "ec2", "CreateTags", region, id)).await)
    }
    async fn run_instances(&self, cx: &CallCx, region: &str) -> Answer<Vec<String>> {
        answer(ec2::run_instances(&cx.clients, region, &cx.run_id).instrument(span(cx, "ec2", "DescribeInstances", region, "")).await)
    }
}

/// A change batch of `changes` in zone `zone`, its turn held while it is
/// sent. A step's first attempt sends it without reading the records first
/// (a CNAME `UPSERT`ed, weights read a moment ago swapped as read): no
/// earlier attempt can have made it. A later one (after a crash or an
/// error) reads first, so that what an earlier attempt did is not changed
/// again.
async fn change_records(cx: &CallCx, zone: &str, changes: &[RecordChange], ttl: u32, timeout_seconds: u32) -> Answer<()> {
    let first = changes.first().map(RecordChange::name).unwrap_or_default();
    let timeout = secs(timeout_seconds);
    let change = async {
        if cx.attempt <= 1 {
            r53::change_records_unread(&cx.clients, zone, changes, ttl, timeout).await
        } else {
            r53::change_records(&cx.clients, zone, changes, ttl, timeout).await
        }
    };
    answer(lent(&cx.turn, change.instrument(span(cx, "route53", "ChangeResourceRecordSets", "global", first))).await.map(|_| ()))
}

#[async_trait]
impl Route53Backend for AwsBackend {
    async fn get_records(&self, cx: &CallCx, zone: &str, name: &str) -> Answer<Vec<RecordSet>> {
        answer(r53::get_records(&cx.clients, zone, name).instrument(span(cx, "route53", "ListResourceRecordSets", "global", name)).await)
    }
    async fn upsert_cname(&self, cx: &CallCx, zone: &str, name: &str, target: &str, ttl: u32, timeout_seconds: u32) -> Answer<()> {
        change_records(cx, zone, &[RecordChange::PointCname { name: name.to_string(), target: target.to_string() }], ttl, timeout_seconds).await
    }
    async fn get_records_of(&self, cx: &CallCx, zone: &str, names: &[String]) -> Answer<Vec<RecordSet>> {
        let first = names.first().map(String::as_str).unwrap_or_default();
        answer(r53::get_records_of(&cx.clients, zone, names).instrument(span(cx, "route53", "ListResourceRecordSets", "global", first)).await)
    }
    async fn change_records(&self, cx: &CallCx, zone: &str, changes: &[RecordChange], ttl: u32, timeout_seconds: u32) -> Answer<()> {
        change_records(cx, zone, changes, ttl, timeout_seconds).await
    }
    async fn set_weights(&self, cx: &CallCx, zone: &str, name: &str, targets: &[WeightedTarget], ttl: u32, timeout_seconds: u32) -> Answer<()> {
        change_records(cx, zone, &[RecordChange::SetWeights { name: name.to_string(), targets: targets.to_vec() }], ttl, timeout_seconds).await
    }
    async fn get_health_check(&self, cx: &CallCx, id: &str) -> Answer<HealthCheck> {
        answer(r53::get_health_check(&cx.clients, id).instrument(span(cx, "route53", "GetHealthCheck", "global", id)).await)
    }
    async fn update_health_check(&self, cx: &CallCx, id: &str, disabled: bool, inverted: bool) -> Answer<HealthCheck> {
        let update = r53::update_health_check(&cx.clients, id, disabled, inverted);
        answer(update.instrument(span(cx, "route53", "UpdateHealthCheck", "global", id)).await.map(|(_, now)| now))
    }
    async fn upsert_failover(&self, cx: &CallCx, zone: &str, name: &str, record: &FailoverRecord, timeout_seconds: u32) -> Answer<()> {
        let upsert = r53::upsert_failover(&cx.clients, zone, name, record, secs(timeout_seconds));
        answer(lent(&cx.turn, upsert.instrument(span(cx, "route53", "ChangeResourceRecordSets", "global", name))).await.map(|_| ()))
    }
    async fn delete_cname(&self, cx: &CallCx, zone: &str, name: &str, timeout_seconds: u32) -> Answer<()> {
        let delete = r53::delete_cname(&cx.clients, zone, name, secs(timeout_seconds));
        answer(lent(&cx.turn, delete.instrument(span(cx, "route53", "ChangeResourceRecordSets", "global", name))).await.map(|_| ()))
    }
}

#[async_trait]
impl CloudWatchBackend for AwsBackend {
    async fn describe_alarms(&self, cx: &CallCx, region: &str, names: &[String]) -> Answer<Vec<Alarm>> {
        answer(cw::describe_alarms(&cx.clients, region, names).instrument(span(cx, "cloudwatch", "DescribeAlarms", region, &names.join(","))).await)
    }
}

#[async_trait]
impl AutoscalingBackend for AwsBackend {
    async fn describe_group(&self, cx: &CallCx, region: &str, name: &str) -> Answer<ScalingGroup> {
        answer(asg::describe_group(&cx.clients, region, name).instrument(span(cx, "autoscaling", "DescribeAutoScalingGroups", region, name)).await)
    }
    async fn set_capacity(&self, cx: &CallCx, region: &str, name: &str, capacity: &Capacity) -> Answer<ScalingGroup> {
        answer(asg::set_capacity(&cx.clients, region, name, capacity).instrument(span(cx, "autoscaling", "UpdateAutoScalingGroup", region, name)).await)
    }
    async fn wait_in_service(&self, cx: &CallCx, region: &str, name: &str, timeout_seconds: u32) -> Answer<ScalingGroup> {
        wait(
            cx,
            asg::wait_in_service(&cx.clients, region, name, secs(timeout_seconds)).instrument(span(
                cx,
                "autoscaling",
                "DescribeAutoScalingGroups",
                region,
                name,
            )),
        )
        .await
    }
}

#[async_trait]
impl EcsBackend for AwsBackend {
    async fn describe_service(&self, cx: &CallCx, region: &str, cluster: &str, name: &str) -> Answer<EcsService> {
        let resource = EcsService::resource(cluster, name);
        answer(ecs::describe_service(&cx.clients, region, cluster, name).instrument(span(cx, "ecs", "DescribeServices", region, &resource)).await)
    }
    async fn set_desired_count(&self, cx: &CallCx, region: &str, cluster: &str, name: &str, desired: u32) -> Answer<EcsService> {
        let resource = EcsService::resource(cluster, name);
        answer(ecs::set_desired_count(&cx.clients, region, cluster, name, desired).instrument(span(cx, "ecs", "UpdateService", region, &resource)).await)
    }
    async fn wait_stable(&self, cx: &CallCx, region: &str, cluster: &str, name: &str, timeout_seconds: u32) -> Answer<EcsService> {
        let resource = EcsService::resource(cluster, name);
        wait(cx, ecs::wait_stable(&cx.clients, region, cluster, name, secs(timeout_seconds)).instrument(span(cx, "ecs", "DescribeServices", region, &resource)))
            .await
    }
}
