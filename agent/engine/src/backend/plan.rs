//! The planning backend of a dry run (and of a readiness check): what a
//! call would change is recorded in the run's [`Plan`], never made; reads
//! see the plan's changes first, then AWS (a dry run reads the real cloud).

use async_trait::async_trait;
use drover_aws::{CapabilityError, rds as aws_rds, route53 as aws_r53};
use drover_cloud::autoscaling::{Capacity, ScalingGroup, capacity_change};
use drover_cloud::cloudwatch::Alarm;
use drover_cloud::ec2::{Image, Instance, Snapshot};
use drover_cloud::ecs::EcsService;
use drover_cloud::rds::{DbCluster, DbInstance, DbSnapshot, GlobalCluster, GlobalFailoverMode, LagReading, SnapshotInfo};
use drover_cloud::route53::{FailoverRecord, HealthCheck, RecordChange, RecordSet, WeightedTarget, fqdn};

use super::aws::{AwsBackend, cloud_error};
use super::{Answer, AutoscalingBackend, CallCx, CloudWatchBackend, Ec2Backend, EcsBackend, RdsBackend, Route53Backend};
use crate::plan::{Plan, PlannedChange};

/// Records changes in `plan`; reads through to AWS.
pub(crate) struct PlanBackend {
    pub plan: Plan,
}

/// Returns the error of a read the plan needed.
macro_rules! read {
    ($answer:expr) => {
        match $answer? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        }
    };
}

impl PlanBackend {
    /// Records a planned change made by the calling step.
    fn record(&self, cx: &CallCx, service: &'static str, operation: &'static str, region: &str, resource: &str, detail: String) {
        self.plan.record(PlannedChange { step: cx.step.clone(), service, operation, region: region.into(), resource: resource.into(), detail });
    }

    /// The record sets of `name` as planned changes left them, else as Route 53 has them.
    async fn records(&self, cx: &CallCx, zone: &str, name: &str) -> Answer<Vec<RecordSet>> {
        match self.plan.records(zone, name) {
            Some(sets) => Ok(Ok(sets)),
            None => AwsBackend.get_records(cx, zone, name).await,
        }
    }

    /// The global database as planned changes left it, else as RDS has it.
    async fn global(&self, cx: &CallCx, region: &str, id: &str) -> Answer<GlobalCluster> {
        match self.plan.planned_global(id) {
            Some(g) => Ok(Ok(g)),
            None => AwsBackend.describe_global_cluster(cx, region, id).await,
        }
    }
}

/// The snapshot a planned creation or copy would make.
fn planned_snapshot(region: &str, id: &str, instance: &str) -> DbSnapshot {
    DbSnapshot {
        identifier: id.into(),
        arn: format!("arn:aws:rds:{region}:planned:snapshot:{id}"),
        region: region.into(),
        status: "available".into(),
        instance: instance.into(),
        engine: String::new(),
        engine_version: String::new(),
    }
}

/// The instance a planned create or restore would make.
fn planned_instance(region: &str, identifier: &str, replica_source: Option<String>) -> DbInstance {
    DbInstance {
        identifier: identifier.into(),
        arn: format!("arn:aws:rds:{region}:planned:db:{identifier}"),
        region: region.into(),
        status: "available".into(),
        engine: String::new(),
        engine_version: String::new(),
        endpoint: Some(format!("{identifier}.planned.{region}.rds.amazonaws.com")),
        port: None,
        replica_source,
        replicas: vec![],
    }
}

/// The simple CNAME `name` at `target`, as a planned change leaves it.
fn cname(name: &str, target: &str, ttl: u32) -> RecordSet {
    RecordSet {
        name: fqdn(name),
        record_type: "CNAME".into(),
        ttl: Some(ttl),
        set_identifier: None,
        weight: None,
        values: vec![target.into()],
        failover: None,
        health_check: None,
    }
}

#[async_trait]
impl RdsBackend for PlanBackend {
    async fn describe_instance(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<DbInstance> {
        match self.plan.planned_instance(region, identifier) {
            Some(i) => Ok(Ok(i)),
            None => RdsBackend::describe_instance(&AwsBackend, cx, region, identifier).await,
        }
    }
    async fn create_snapshot(&self, cx: &CallCx, region: &str, instance: &str, snapshot: &str) -> Answer<DbSnapshot> {
        self.record(cx, "rds", "CreateDBSnapshot", region, snapshot, format!("snapshot {instance} as {snapshot}"));
        self.plan.plan_snapshot(region, snapshot);
        Ok(Ok(planned_snapshot(region, snapshot, instance)))
    }
    async fn copy_snapshot(&self, cx: &CallCx, source_arn: &str, target_region: &str, target: &str, kms_key: Option<&str>) -> Answer<DbSnapshot> {
        let kms = kms_key.map(|k| format!(" (KMS key {k})")).unwrap_or_default();
        self.record(cx, "rds", "CopyDBSnapshot", target_region, target, format!("copy {source_arn} into {target_region} as {target}{kms}"));
        self.plan.plan_snapshot(target_region, target);
        Ok(Ok(planned_snapshot(target_region, target, aws_rds::arn_name(source_arn))))
    }
    async fn describe_snapshot(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<DbSnapshot> {
        if self.plan.is_planned_snapshot(region, identifier) {
            return Ok(Ok(planned_snapshot(region, identifier, "")));
        }
        AwsBackend.describe_snapshot(cx, region, identifier).await
    }
    async fn create_read_replica(&self, cx: &CallCx, source_arn: &str, region: &str, identifier: &str, _class: Option<&str>) -> Answer<DbInstance> {
        let detail = format!("create read replica {identifier} in {region} of {source_arn}");
        self.record(cx, "rds", "CreateDBInstanceReadReplica", region, identifier, detail);
        let planned = planned_instance(region, identifier, Some(source_arn.into()));
        self.plan.plan_instance(region, planned.clone());
        Ok(Ok(planned))
    }
    async fn promote_read_replica(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<DbInstance> {
        let current = read!(RdsBackend::describe_instance(self, cx, region, identifier).await);
        let Some(source) = current.replica_source.clone() else { return Ok(Ok(current)) };
        self.record(cx, "rds", "PromoteReadReplica", region, identifier, format!("promote {identifier} (replica of {source}) to a standalone instance"));
        let promoted = DbInstance { replica_source: None, status: "available".into(), ..current };
        self.plan.plan_instance(region, promoted.clone());
        Ok(Ok(promoted))
    }
    async fn wait_instance_available(&self, cx: &CallCx, region: &str, identifier: &str, timeout_seconds: u32) -> Answer<DbInstance> {
        match self.plan.planned_instance(region, identifier) {
            Some(i) => Ok(Ok(i)),
            None => AwsBackend.wait_instance_available(cx, region, identifier, timeout_seconds).await,
        }
    }
    async fn wait_snapshot_available(&self, cx: &CallCx, region: &str, identifier: &str, timeout_seconds: u32) -> Answer<DbSnapshot> {
        if self.plan.is_planned_snapshot(region, identifier) {
            return Ok(Ok(planned_snapshot(region, identifier, "")));
        }
        AwsBackend.wait_snapshot_available(cx, region, identifier, timeout_seconds).await
    }
    async fn latest_snapshot(&self, cx: &CallCx, region: &str, instance: &str) -> Answer<Option<SnapshotInfo>> {
        AwsBackend.latest_snapshot(cx, region, instance).await
    }
    async fn restore_from_snapshot(&self, cx: &CallCx, region: &str, snapshot: &str, identifier: &str, _class: Option<&str>) -> Answer<DbInstance> {
        let detail = format!("restore snapshot {snapshot} into a new instance {identifier}");
        self.record(cx, "rds", "RestoreDBInstanceFromDBSnapshot", region, identifier, detail);
        // What the restore would run: the snapshot's engine.
        let source = read!(AwsBackend.describe_snapshot(cx, region, snapshot).await);
        let planned = DbInstance { engine: source.engine, engine_version: source.engine_version, ..planned_instance(region, identifier, None) };
        self.plan.plan_instance(region, planned.clone());
        Ok(Ok(planned))
    }
    async fn delete_instance(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<()> {
        if self.plan.plan_delete_instance(region, identifier) {
            self.record(cx, "rds", "DeleteDBInstance", region, identifier, format!("delete instance {identifier} (made by this run), no final snapshot"));
        }
        Ok(Ok(()))
    }
    async fn replica_lag(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<Option<LagReading>> {
        AwsBackend.replica_lag(cx, region, identifier).await
    }
    async fn describe_cluster(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<DbCluster> {
        AwsBackend.describe_cluster(cx, region, identifier).await
    }
    async fn describe_global_cluster(&self, cx: &CallCx, region: &str, identifier: &str) -> Answer<GlobalCluster> {
        self.global(cx, region, identifier).await
    }
    async fn failover_global_cluster(&self, cx: &CallCx, region: &str, identifier: &str, target: &str, mode: GlobalFailoverMode) -> Answer<GlobalCluster> {
        let mut g = read!(self.global(cx, region, identifier).await);
        if !g.members.iter().any(|m| m.cluster_arn == target) {
            let message = format!("{target} is not a cluster of global database {identifier}");
            return Ok(Err(cloud_error(CapabilityError::new("rds", mode.operation(), region, target, "not-a-member", message))));
        }
        if g.writer().is_none_or(|w| w.cluster_arn != target) {
            let how = if mode == GlobalFailoverMode::Switchover { "switch over (no data lost)" } else { "fail over (unreplicated writes lost)" };
            let detail = format!("{how} global database {identifier} to {}", aws_rds::arn_name(target));
            self.record(cx, "rds", mode.operation(), region, identifier, detail);
            for m in &mut g.members {
                m.writer = m.cluster_arn == target;
            }
            g.status = "available".into();
            self.plan.plan_global(g.clone());
        }
        Ok(Ok(g))
    }
    async fn wait_global_writer(&self, cx: &CallCx, region: &str, identifier: &str, target: &str, timeout_seconds: u32) -> Answer<GlobalCluster> {
        match self.plan.planned_global(identifier) {
            Some(g) => Ok(Ok(g)),
            None => AwsBackend.wait_global_writer(cx, region, identifier, target, timeout_seconds).await,
        }
    }
    async fn detach_from_global_cluster(&self, cx: &CallCx, region: &str, identifier: &str, cluster_arn: &str, _timeout_seconds: u32) -> Answer<bool> {
        let mut g = read!(self.global(cx, region, identifier).await);
        if !g.members.iter().any(|m| m.cluster_arn == cluster_arn) {
            return Ok(Ok(false));
        }
        let cluster = aws_rds::arn_name(cluster_arn);
        let detail = format!("detach {cluster} from global database {identifier}: it becomes a standalone writable cluster");
        self.record(cx, "rds", "RemoveFromGlobalCluster", region, identifier, detail);
        g.members.retain(|m| m.cluster_arn != cluster_arn);
        self.plan.plan_global(g);
        Ok(Ok(true))
    }
    async fn run_instances(&self, cx: &CallCx, region: &str) -> Answer<Vec<String>> {
        RdsBackend::run_instances(&AwsBackend, cx, region).await
    }
}

#[async_trait]
impl Ec2Backend for PlanBackend {
    async fn describe_instance(&self, cx: &CallCx, region: &str, instance_id: &str) -> Answer<Instance> {
        if instance_id.starts_with("i-planned-") {
            return Ok(Ok(Instance { id: instance_id.into(), region: region.into(), state: "running".into(), image_id: String::new(), volumes: vec![] }));
        }
        Ec2Backend::describe_instance(&AwsBackend, cx, region, instance_id).await
    }
    async fn snapshot_volume(&self, cx: &CallCx, region: &str, volume_id: &str, name: &str, _lineage: Option<&str>) -> Answer<Snapshot> {
        self.record(cx, "ec2", "CreateSnapshot", region, name, format!("snapshot volume {volume_id} as {name}"));
        Ok(Ok(Snapshot { id: format!("snap-planned-{name}"), region: region.into(), state: "completed".into(), volume_id: volume_id.into() }))
    }
    async fn copy_snapshot(
        &self,
        cx: &CallCx,
        source_region: &str,
        snapshot_id: &str,
        target_region: &str,
        name: &str,
        _lineage: Option<&str>,
    ) -> Answer<Snapshot> {
        self.record(cx, "ec2", "CopySnapshot", target_region, name, format!("copy snapshot {snapshot_id} from {source_region} as {name}"));
        Ok(Ok(Snapshot { id: format!("snap-planned-{name}"), region: target_region.into(), state: "completed".into(), volume_id: String::new() }))
    }
    async fn create_image(&self, cx: &CallCx, region: &str, instance_id: &str, name: &str, _lineage: Option<&str>) -> Answer<Image> {
        self.record(cx, "ec2", "CreateImage", region, name, format!("create AMI {name} from instance {instance_id}"));
        Ok(Ok(Image { id: format!("ami-planned-{name}"), region: region.into(), name: name.into(), state: "available".into(), created: String::new() }))
    }
    async fn copy_image(&self, cx: &CallCx, source_region: &str, image_id: &str, target_region: &str, name: &str, _lineage: Option<&str>) -> Answer<Image> {
        self.record(cx, "ec2", "CopyImage", target_region, name, format!("copy AMI {image_id} from {source_region} as {name}"));
        Ok(Ok(Image { id: format!("ami-planned-{name}"), region: target_region.into(), name: name.into(), state: "available".into(), created: String::new() }))
    }
    async fn wait_image_available(&self, cx: &CallCx, region: &str, image_id: &str, timeout_seconds: u32) -> Answer<Image> {
        if let Some(name) = image_id.strip_prefix("ami-planned-") {
            return Ok(Ok(Image { id: image_id.into(), region: region.into(), name: name.into(), state: "available".into(), created: String::new() }));
        }
        AwsBackend.wait_image_available(cx, region, image_id, timeout_seconds).await
    }
    async fn run_instance(&self, cx: &CallCx, region: &str, image_id: &str, instance_type: &str, name: &str) -> Answer<Instance> {
        self.record(cx, "ec2", "RunInstances", region, name, format!("launch {instance_type} {name} from {image_id}"));
        let id = format!("i-planned-{name}");
        self.plan.plan_launch(region, &id);
        Ok(Ok(Instance { id, region: region.into(), state: "running".into(), image_id: image_id.into(), volumes: vec![] }))
    }
    async fn prune_images(&self, cx: &CallCx, region: &str, lineage: &str, keep: u32) -> Answer<Vec<String>> {
        self.record(cx, "ec2", "DeregisterImage", region, lineage, format!("keep the newest {keep} AMIs of lineage {lineage}, deregister the rest"));
        Ok(Ok(vec![]))
    }
    async fn latest_image(&self, cx: &CallCx, region: &str, lineage: &str) -> Answer<Option<Image>> {
        AwsBackend.latest_image(cx, region, lineage).await
    }
    async fn terminate_instance(&self, cx: &CallCx, region: &str, instance_id: &str) -> Answer<()> {
        self.record(cx, "ec2", "TerminateInstances", region, instance_id, format!("terminate {instance_id} (launched by this run)"));
        self.plan.plan_terminate(region, instance_id);
        Ok(Ok(()))
    }
    async fn tag(&self, cx: &CallCx, region: &str, id: &str, tags: &[(String, String)]) -> Answer<bool> {
        let detail = format!("tag {id}: {}", tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "));
        self.record(cx, "ec2", "CreateTags", region, id, detail);
        Ok(Ok(true))
    }
    async fn run_instances(&self, cx: &CallCx, region: &str) -> Answer<Vec<String>> {
        let real = read!(Ec2Backend::run_instances(&AwsBackend, cx, region).await);
        Ok(Ok([real, self.plan.launched_in(region)].concat()))
    }
}

#[async_trait]
impl Route53Backend for PlanBackend {
    async fn get_records(&self, cx: &CallCx, zone: &str, name: &str) -> Answer<Vec<RecordSet>> {
        self.records(cx, zone, name).await
    }
    async fn upsert_cname(&self, cx: &CallCx, zone: &str, name: &str, target: &str, ttl: u32, _timeout_seconds: u32) -> Answer<()> {
        let current = read!(self.records(cx, zone, name).await);
        if current.iter().any(|r| r.is_cname_to(target)) {
            return Ok(Ok(()));
        }
        let old = current.iter().find(|r| r.record_type == "CNAME" && r.set_identifier.is_none()).and_then(|r| r.values.first().cloned());
        let detail = format!("point {name} at {target} (now {})", old.as_deref().unwrap_or("absent"));
        self.record(cx, "route53", "ChangeResourceRecordSets", "global", name, detail);
        let mut next: Vec<RecordSet> = current.into_iter().filter(|r| !(r.record_type == "CNAME" && r.set_identifier.is_none())).collect();
        next.push(cname(name, target, ttl));
        self.plan.plan_records(zone, name, next);
        Ok(Ok(()))
    }
    async fn get_records_of(&self, cx: &CallCx, zone: &str, names: &[String]) -> Answer<Vec<RecordSet>> {
        // Names a planned change touched, as planned; the others read together.
        let wants = drover_cloud::route53::distinct_names(names);
        let planned: Vec<Option<Vec<RecordSet>>> = wants.iter().map(|w| self.plan.records(zone, w)).collect();
        let unplanned: Vec<String> = wants.iter().zip(&planned).filter(|(_, p)| p.is_none()).map(|(w, _)| w.clone()).collect();
        let read = if unplanned.is_empty() { Vec::new() } else { read!(AwsBackend.get_records_of(cx, zone, &unplanned).await) };
        let mut out = Vec::new();
        for (want, planned) in wants.iter().zip(planned) {
            match planned {
                Some(sets) => out.extend(sets),
                None => out.extend(read.iter().filter(|r| r.name == *want).cloned()),
            }
        }
        Ok(Ok(out))
    }
    async fn change_records(&self, cx: &CallCx, zone: &str, changes: &[RecordChange], ttl: u32, timeout_seconds: u32) -> Answer<()> {
        if let Some(why) = drover_cloud::route53::batch_problem(changes) {
            let first = changes.first().map(RecordChange::name).unwrap_or_default();
            return Ok(Err(cloud_error(CapabilityError::new("route53", "ChangeResourceRecordSets", "global", first, "bad-request", why))));
        }
        // Planned as one change per name that changes (Route 53 makes them
        // in one batch).
        for change in changes {
            match change {
                RecordChange::PointCname { name, target } => read!(self.upsert_cname(cx, zone, name, target, ttl, timeout_seconds).await),
                RecordChange::SetWeights { name, targets } => read!(self.set_weights(cx, zone, name, targets, ttl, timeout_seconds).await),
            }
        }
        Ok(Ok(()))
    }
    async fn set_weights(&self, cx: &CallCx, zone: &str, name: &str, targets: &[WeightedTarget], ttl: u32, _timeout_seconds: u32) -> Answer<()> {
        let mut current = read!(self.records(cx, zone, name).await);
        let planned = match aws_r53::weight_changes(name, &current, targets) {
            Ok(w) => w,
            Err(e) => return Ok(Err(cloud_error(e))),
        };
        let mut changed = Vec::new();
        for w in &planned {
            if w.create {
                changed.push(format!("{} new at {}", w.set_identifier, w.weight));
                current.push(RecordSet {
                    set_identifier: Some(w.set_identifier.clone()),
                    weight: Some(w.weight),
                    values: w.value.iter().cloned().collect(),
                    ..cname(name, "", ttl)
                });
            } else if let Some(r) =
                current.iter_mut().find(|r| r.set_identifier.as_deref() == Some(w.set_identifier.as_str()) && r.record_type == w.record_type)
            {
                let kind = if r.record_type == "CNAME" { String::new() } else { format!(" ({})", r.record_type) };
                changed.push(format!("{} {} -> {}{kind}", w.set_identifier, r.weight.map(|w| w.to_string()).unwrap_or_default(), w.weight));
                r.weight = Some(w.weight);
                if let Some(v) = &w.value {
                    r.values = vec![v.clone()];
                }
            }
        }
        if !changed.is_empty() {
            self.record(cx, "route53", "ChangeResourceRecordSets", "global", name, format!("weights of {name}: {}", changed.join(", ")));
            self.plan.plan_records(zone, name, current);
        }
        Ok(Ok(()))
    }
    async fn get_health_check(&self, cx: &CallCx, id: &str) -> Answer<HealthCheck> {
        AwsBackend.get_health_check(cx, id).await
    }
    async fn update_health_check(&self, cx: &CallCx, id: &str, disabled: bool, inverted: bool) -> Answer<HealthCheck> {
        let now = read!(AwsBackend.get_health_check(cx, id).await);
        if now.disabled != disabled || now.inverted != inverted {
            let detail = format!("health check {id}: disabled {} -> {disabled}, inverted {} -> {inverted}", now.disabled, now.inverted);
            self.record(cx, "route53", "UpdateHealthCheck", "global", id, detail);
        }
        Ok(Ok(HealthCheck { disabled, inverted, ..now }))
    }
    async fn upsert_failover(&self, cx: &CallCx, zone: &str, name: &str, record: &FailoverRecord, _timeout_seconds: u32) -> Answer<()> {
        let mut current = read!(self.records(cx, zone, name).await);
        if current.iter().any(|r| r.is_failover(record)) {
            return Ok(Ok(()));
        }
        let detail = format!("{} failover record {name} ({}) at {}", record.role.as_str(), record.set_identifier, record.target);
        self.record(cx, "route53", "ChangeResourceRecordSets", "global", name, detail);
        current.retain(|r| r.set_identifier.as_deref() != Some(record.set_identifier.as_str()));
        current.push(record.record_set(name));
        self.plan.plan_records(zone, name, current);
        Ok(Ok(()))
    }
    async fn delete_cname(&self, cx: &CallCx, zone: &str, name: &str, _timeout_seconds: u32) -> Answer<()> {
        let current = read!(self.records(cx, zone, name).await);
        if current.iter().any(|r| r.record_type == "CNAME" && r.set_identifier.is_none()) {
            self.record(cx, "route53", "ChangeResourceRecordSets", "global", name, format!("delete the CNAME {name}"));
            let rest = current.into_iter().filter(|r| !(r.record_type == "CNAME" && r.set_identifier.is_none())).collect();
            self.plan.plan_records(zone, name, rest);
        }
        Ok(Ok(()))
    }
}

#[async_trait]
impl CloudWatchBackend for PlanBackend {
    async fn describe_alarms(&self, cx: &CallCx, region: &str, names: &[String]) -> Answer<Vec<Alarm>> {
        AwsBackend.describe_alarms(cx, region, names).await
    }
}

#[async_trait]
impl AutoscalingBackend for PlanBackend {
    async fn describe_group(&self, cx: &CallCx, region: &str, name: &str) -> Answer<ScalingGroup> {
        match self.plan.planned_group(region, name) {
            Some(g) => Ok(Ok(g)),
            None => AwsBackend.describe_group(cx, region, name).await,
        }
    }
    async fn set_capacity(&self, cx: &CallCx, region: &str, name: &str, capacity: &Capacity) -> Answer<ScalingGroup> {
        let current = read!(AutoscalingBackend::describe_group(self, cx, region, name).await);
        let ((min, max, desired), changed) = match capacity_change(&current, capacity) {
            Ok(c) => c,
            Err(why) => return Ok(Err(cloud_error(CapabilityError::new("autoscaling", "UpdateAutoScalingGroup", region, name, "invalid-capacity", why)))),
        };
        if !changed {
            return Ok(Ok(current));
        }
        let detail = format!(
            "capacity of group {name}: min {} -> {min}, max {} -> {max}, desired {} -> {desired}",
            current.min_size, current.max_size, current.desired_capacity
        );
        self.record(cx, "autoscaling", "UpdateAutoScalingGroup", region, name, detail);
        let planned = ScalingGroup { min_size: min, max_size: max, desired_capacity: desired, ..current };
        self.plan.plan_group(planned.clone());
        Ok(Ok(planned))
    }
    async fn wait_in_service(&self, cx: &CallCx, region: &str, name: &str, timeout_seconds: u32) -> Answer<ScalingGroup> {
        // A planned capacity change is taken as done (a dry run waits for nothing it only planned).
        match self.plan.planned_group(region, name) {
            Some(g) => Ok(Ok(g)),
            None => AwsBackend.wait_in_service(cx, region, name, timeout_seconds).await,
        }
    }
}

#[async_trait]
impl EcsBackend for PlanBackend {
    async fn describe_service(&self, cx: &CallCx, region: &str, cluster: &str, name: &str) -> Answer<EcsService> {
        match self.plan.planned_service(region, cluster, name) {
            Some(s) => Ok(Ok(s)),
            None => AwsBackend.describe_service(cx, region, cluster, name).await,
        }
    }
    async fn set_desired_count(&self, cx: &CallCx, region: &str, cluster: &str, name: &str, desired: u32) -> Answer<EcsService> {
        let current = read!(EcsBackend::describe_service(self, cx, region, cluster, name).await);
        if current.desired_count == desired {
            return Ok(Ok(current));
        }
        let resource = EcsService::resource(cluster, name);
        self.record(cx, "ecs", "UpdateService", region, &resource, format!("desired count of service {resource}: {} -> {desired}", current.desired_count));
        let planned = EcsService { desired_count: desired, ..current };
        self.plan.plan_service(planned.clone());
        Ok(Ok(planned))
    }
    async fn wait_stable(&self, cx: &CallCx, region: &str, cluster: &str, name: &str, timeout_seconds: u32) -> Answer<EcsService> {
        match self.plan.planned_service(region, cluster, name) {
            Some(s) => Ok(Ok(s)),
            None => AwsBackend.wait_stable(cx, region, cluster, name, timeout_seconds).await,
        }
    }
}
