//! The host side of the AWS capability interfaces (`rds`, `ec2`, `route53`,
//! `cloudwatch`). Each call goes the same way:
//!
//! 1. the gate ([`HostState::capability`]): inside a step, declared and
//!    granted by the run's policy (the decision audited), the step's begin
//!    made durable and the lease checked before anything that changes the
//!    cloud;
//! 2. the run's backend (`backend/`: AWS, the plan of a dry run, or the
//!    simulated cloud, chosen once per run), which answers in the cloud
//!    model's types;
//! 3. the conversion to the contract's types, secrets masked in errors.

use std::sync::Arc;
use std::time::Duration;

use drover_aws::{Clients, ec2 as aws_ec2, rds as aws_rds};
use drover_cloud::CloudError;
use drover_cloud::ecs::EcsService;
use drover_cloud::route53::FailoverRecord;
use drover_replay::Violation;
use tokio::sync::OnceCell;

use crate::audit::{AuditLog, AuditRecord};
use crate::backend::CallCx;
use crate::bindings::{autoscaling, cloudwatch, ec2, ecs, rds, route53, types};
use crate::cancel::CancelSignal;
use crate::convert::{ToWit, failover_mode, failover_role, record_changes, weighted_targets};
use crate::durable::DurableError;
use crate::host::HostState;
use crate::host_calls::{HostCalls, LentTurn, Priority};
use crate::policy::{Access, Guard, Resource};

/// The AWS clients, created at the first capability call of the process.
pub type AwsCell = Arc<OnceCell<Arc<Clients>>>;

/// What a run's capability calls are checked against, and where the
/// decisions are written.
pub(crate) struct Gate {
    pub guard: Guard,
    pub audit: Arc<AuditLog>,
    pub run_id: String,
    pub runbook: String,
    pub digest: String,
    pub host_calls: Arc<HostCalls>,
    /// Whose calls are served first when the cap is reached.
    pub priority: Priority,
}

/// Passes a call through the gate, or returns the denial to the runbook.
macro_rules! allowed {
    ($self:ident, $access:expr) => {
        match $self.capability($access).await? {
            Ok(cx) => cx,
            Err(denied) => return Ok(Err(denied)),
        }
    };
}

/// A capability call: through the gate, to the run's backend for
/// `$service`, and its answer back in the contract's types.
macro_rules! call {
    ($self:ident, $access:expr, $service:ident . $op:ident ( $($arg:expr),* $(,)? )) => {{
        let cx = allowed!($self, $access);
        let answer = drover_aws::counted(cx.requests.clone(), $self.backends.$service.$op(&cx, $($arg),*)).await?;
        $self.after_call().await?;
        Ok($self.answer(answer))
    }};
}

pub(crate) fn access(service: &'static str, operation: &'static str, regions: &[&str], resources: Vec<Resource>, mutating: bool) -> Access {
    Access { service, operation, regions: regions.iter().map(|r| r.to_string()).collect(), resources, mutating }
}

/// The access of `rds.describe-instance` (also of the read of that name).
pub(crate) fn rds_describe_instance_access(region: &str, identifier: &str) -> Access {
    access("rds", "describe-instance", &[region], vec![Resource::new("db", identifier)], false)
}

/// The access of `rds.replica-lag`.
pub(crate) fn rds_replica_lag_access(region: &str, identifier: &str) -> Access {
    access("rds", "replica-lag", &[region], vec![Resource::new("db", identifier)], false)
}

/// The access of `rds.latest-snapshot`.
pub(crate) fn rds_latest_snapshot_access(region: &str, instance: &str) -> Access {
    access("rds", "latest-snapshot", &[region], vec![Resource::new("db", instance)], false)
}

/// The access of `route53.get-records-of`: the zone and every record read,
/// each declared and granted.
pub(crate) fn route53_get_records_of_access(zone: &str, names: &[String]) -> Access {
    let resources = std::iter::once(Resource::new("zone", zone)).chain(names.iter().map(|n| Resource::new("record", n))).collect();
    access("route53", "get-records-of", &[], resources, false)
}

/// The access of `autoscaling.describe-group`.
pub(crate) fn asg_describe_group_access(region: &str, name: &str) -> Access {
    access("autoscaling", "describe-group", &[region], vec![Resource::new("asg", name)], false)
}

/// The access of `ecs.describe-service`.
pub(crate) fn ecs_describe_service_access(region: &str, cluster: &str, name: &str) -> Access {
    access("ecs", "describe-service", &[region], vec![Resource::new("ecs-service", EcsService::resource(cluster, name))], false)
}

impl HostState {
    /// The crash point after a capability call took effect and before its
    /// answer reaches the runbook (`after-call`).
    pub(crate) async fn after_call(&mut self) -> wasmtime::Result<()> {
        match &mut self.durable {
            Some(d) => d.point(crate::failpoints::Failpoint::AfterCall, d.open_step().unwrap_or_default()).await.map_err(wasmtime::Error::new),
            None => Ok(()),
        }
    }

    /// Prepares a capability call: it must come from inside a step, pass the
    /// run's policy (declared and granted; the decision is audited), and, if it
    /// changes anything, the step's begin is made durable first.
    async fn capability(&mut self, a: Access) -> wasmtime::Result<Result<CallCx, types::Error>> {
        if let Err(denied) = self.admit(&a).await? {
            return Ok(Err(denied));
        }
        self.call_cx(&a).await.map(Ok)
    }

    /// The checks of a call before anything is sent: it comes from inside a
    /// step, and the run's policy grants it (a denial, and every decision on
    /// a call that changes something, is audited). A denial is the
    /// runbook's error; a call outside a step stops the run.
    pub(crate) async fn admit(&mut self, a: &Access) -> wasmtime::Result<Result<(), types::Error>> {
        let what = a.name();
        let durable = self.durable.as_mut().ok_or_else(|| wasmtime::Error::new(crate::host::ImportInDescribe))?;
        if durable.current_attempt().is_none() {
            return Err(wasmtime::Error::new(DurableError::from(Violation::BadRequest(format!(
                "{what} was called outside a step; wrap AWS calls in ctx.step so that their results are journaled and replayed"
            )))));
        }
        let step = durable.open_step().map(|s| durable.labelled(s));
        let dry_run = durable.plan().is_some();
        let gate =
            self.gate.clone().ok_or_else(|| wasmtime::Error::new(DurableError::from(Violation::BadRequest(format!("{what} was called outside a run")))))?;
        let decision = gate.guard.check(a);
        if !dry_run && (a.mutating || decision.is_err()) {
            let record = AuditRecord {
                at: chrono::Utc::now(),
                run_id: gate.run_id.clone(),
                runbook: gate.runbook.clone(),
                digest: gate.digest.clone(),
                step,
                operation: what.clone(),
                regions: a.regions.clone(),
                resources: a.resources.iter().map(ToString::to_string).collect(),
                mutating: a.mutating,
                decision: if decision.is_ok() { "allow" } else { "deny" }.into(),
                reason: decision.as_ref().err().map(ToString::to_string),
            };
            gate.audit.append(&record).await.map_err(wasmtime::Error::new)?;
        }
        Ok(decision.map_err(|denial| {
            tracing::warn!(operation = %what, subject = %denial.subject, "capability call denied");
            types::Error { code: "permission-denied".into(), message: denial.to_string(), retryable: false, resource: Some(denial.subject.clone()) }
        }))
    }

    /// The context of an admitted call ([`Self::admit`]): if it changes
    /// anything, the step's begin made durable and the lease checked last;
    /// a turn among the agent's AWS calls; the clients (fenced for a change).
    pub(crate) async fn call_cx(&mut self, a: &Access) -> wasmtime::Result<CallCx> {
        let what = a.name();
        let durable = self.durable.as_mut().ok_or_else(|| wasmtime::Error::new(crate::host::ImportInDescribe))?;
        let (key, attempt) = durable.current_attempt().map(|a| (a.idempotency_key, a.number)).unwrap_or_default();
        let step = durable.open_step().map(|s| durable.labelled(s));
        let gate =
            self.gate.clone().ok_or_else(|| wasmtime::Error::new(DurableError::from(Violation::BadRequest(format!("{what} was called outside a run")))))?;
        // A side effect's refusal stops the run; a fenced driver says why.
        let refuse = |e: DurableError| {
            if matches!(&e, DurableError::Journal(j) if j.is_fenced()) {
                tracing::warn!(operation = %what, run_id = %gate.run_id, "fencing: refused {what}: this driver no longer holds the run");
            }
            wasmtime::Error::new(e)
        };
        if a.mutating {
            durable.before_side_effect().await.map_err(refuse)?;
        }
        let turn = LentTurn::new(gate.host_calls.clone(), gate.priority, gate.host_calls.turn(gate.priority).await);
        let mut clients = self.aws.get_or_init(|| async { Arc::new(Clients::load().await) }).await.clone();
        if a.mutating {
            // The last checks, as close to the request as they get: the waits
            // above (a commit, a turn among the agent's AWS calls) may have
            // outlasted the lease, or another agent may have taken the run
            // over meanwhile (the store's fence says so; found by the
            // simulation with two agents, when the fence was read before them).
            durable.check_fence().await.map_err(refuse)?;
            durable.check_held().map_err(|e| refuse(DurableError::Journal(e)))?;
            if let Some(sim) = durable.simulation() {
                sim.note_mutating_call();
            }
            // And on the wire: every attempt of the call's requests checks the
            // lease, and one in flight is dropped when it is lost.
            if let Some(guard) = durable.lease_guard() {
                clients = Arc::new(clients.fenced(Arc::new(guard.clone()), guard.ttl()));
            }
        }
        Ok(CallCx {
            clients,
            key,
            run_id: gate.run_id.clone(),
            step: step.unwrap_or_default(),
            attempt,
            turn,
            cancel: durable.cancel_watch(),
            span: durable.step_span(),
            requests: durable.request_counter(),
        })
    }

    /// A backend's answer as the runbook gets it: in the contract's types,
    /// secret values masked in an error.
    pub(crate) fn answer<T: ToWit>(&self, answer: Result<T, CloudError>) -> Result<T::Wit, types::Error> {
        unmasked(answer).map_err(|e| self.mask(e))
    }

    /// A capability's error as the runbook gets it: secret values masked.
    pub(crate) fn mask(&self, e: types::Error) -> types::Error {
        let record = drover_journal::ErrorRecord { code: e.code, message: e.message, retryable: e.retryable, resource: e.resource };
        let record = match &self.durable {
            Some(d) => d.mask_error(record),
            None => record,
        };
        types::Error { code: record.code, message: record.message, retryable: record.retryable, resource: record.resource }
    }
}

/// A backend's answer in the contract's types, its error not yet masked
/// ([`HostState::mask`]; a read sent with others is masked after the batch).
pub(crate) fn unmasked<T: ToWit>(answer: Result<T, CloudError>) -> Result<T::Wit, types::Error> {
    answer.map(ToWit::to_wit).map_err(|e| e.to_wit())
}

/// Runs capability call `f` with its turn lent to the waiters in it: a
/// waiter holds a turn among the agent's AWS calls only while it polls.
pub(crate) fn lent<F: std::future::Future>(turn: &Arc<LentTurn>, f: F) -> impl std::future::Future<Output = F::Output> {
    drover_aws::turns::lend(turn.clone(), f)
}

/// Runs a long wait, unless the run is cancelled first (a cancel must not
/// sit out a 15-minute waiter).
pub(crate) async fn cancellable<T>(watch: Option<Arc<CancelSignal>>, wait: impl std::future::Future<Output = T>) -> wasmtime::Result<T> {
    let Some(signal) = watch else { return Ok(wait.await) };
    tokio::select! {
        r = wait => Ok(r),
        _ = signal.raised() => {
            let (by, reason) = signal.request().map(|r| (r.by, r.reason)).unwrap_or_default();
            Err(wasmtime::Error::new(DurableError::Cancelled { by, reason }))
        }
    }
}

/// Longest wait a capability call may ask for (`timeout-seconds`); a longer
/// one is cut to it (the step's wall-clock limit usually ends it sooner).
const MAX_CAPABILITY_WAIT_SECS: u32 = 24 * 3600;

/// A capability call's `timeout-seconds`: at least 1 s, at most a day.
pub(crate) fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s.clamp(1, MAX_CAPABILITY_WAIT_SECS)))
}

impl rds::Host for HostState {
    async fn describe_instance(&mut self, region: String, identifier: String) -> wasmtime::Result<Result<rds::DbInstance, types::Error>> {
        call!(self, rds_describe_instance_access(&region, &identifier), rds.describe_instance(&region, &identifier))
    }

    async fn create_snapshot(&mut self, region: String, inst: String, snap: String) -> wasmtime::Result<Result<rds::DbSnapshot, types::Error>> {
        call!(
            self,
            access("rds", "create-snapshot", &[&region], vec![Resource::new("db", &inst), Resource::new("snapshot", &snap)], true),
            rds.create_snapshot(&region, &inst, &snap)
        )
    }

    async fn copy_snapshot(
        &mut self,
        source_arn: String,
        target_region: String,
        target: String,
        kms_key: Option<String>,
    ) -> wasmtime::Result<Result<rds::DbSnapshot, types::Error>> {
        let source_region = aws_rds::arn_region(&source_arn).unwrap_or_default().to_string();
        let resources = vec![Resource::new("snapshot", aws_rds::arn_name(&source_arn)), Resource::new("snapshot", &target)];
        call!(
            self,
            access("rds", "copy-snapshot", &[&source_region, &target_region], resources, true),
            rds.copy_snapshot(&source_arn, &target_region, &target, kms_key.as_deref())
        )
    }

    async fn describe_snapshot(&mut self, region: String, identifier: String) -> wasmtime::Result<Result<rds::DbSnapshot, types::Error>> {
        call!(
            self,
            access("rds", "describe-snapshot", &[&region], vec![Resource::new("snapshot", &identifier)], false),
            rds.describe_snapshot(&region, &identifier)
        )
    }

    async fn create_read_replica(
        &mut self,
        source_arn: String,
        region: String,
        identifier: String,
        instance_class: Option<String>,
    ) -> wasmtime::Result<Result<rds::DbInstance, types::Error>> {
        let source_region = aws_rds::arn_region(&source_arn).unwrap_or_default().to_string();
        let resources = vec![Resource::new("db", aws_rds::arn_name(&source_arn)), Resource::new("db", &identifier)];
        call!(
            self,
            access("rds", "create-read-replica", &[&source_region, &region], resources, true),
            rds.create_read_replica(&source_arn, &region, &identifier, instance_class.as_deref())
        )
    }

    async fn promote_read_replica(&mut self, region: String, identifier: String) -> wasmtime::Result<Result<rds::DbInstance, types::Error>> {
        call!(
            self,
            access("rds", "promote-read-replica", &[&region], vec![Resource::new("db", &identifier)], true),
            rds.promote_read_replica(&region, &identifier)
        )
    }

    async fn wait_instance_available(
        &mut self,
        region: String,
        identifier: String,
        timeout_seconds: u32,
    ) -> wasmtime::Result<Result<rds::DbInstance, types::Error>> {
        call!(
            self,
            access("rds", "wait-instance-available", &[&region], vec![Resource::new("db", &identifier)], false),
            rds.wait_instance_available(&region, &identifier, timeout_seconds)
        )
    }

    async fn wait_snapshot_available(
        &mut self,
        region: String,
        identifier: String,
        timeout_seconds: u32,
    ) -> wasmtime::Result<Result<rds::DbSnapshot, types::Error>> {
        call!(
            self,
            access("rds", "wait-snapshot-available", &[&region], vec![Resource::new("snapshot", &identifier)], false),
            rds.wait_snapshot_available(&region, &identifier, timeout_seconds)
        )
    }

    async fn latest_snapshot(&mut self, region: String, inst: String) -> wasmtime::Result<Result<Option<rds::SnapshotInfo>, types::Error>> {
        call!(self, rds_latest_snapshot_access(&region, &inst), rds.latest_snapshot(&region, &inst))
    }

    async fn restore_from_snapshot(
        &mut self,
        region: String,
        snap: String,
        identifier: String,
        instance_class: Option<String>,
    ) -> wasmtime::Result<Result<rds::DbInstance, types::Error>> {
        let resources = vec![Resource::new("snapshot", &snap), Resource::new("db", &identifier)];
        call!(
            self,
            access("rds", "restore-from-snapshot", &[&region], resources, true),
            rds.restore_from_snapshot(&region, &snap, &identifier, instance_class.as_deref())
        )
    }

    async fn delete_instance(&mut self, region: String, identifier: String) -> wasmtime::Result<Result<(), types::Error>> {
        call!(self, access("rds", "delete-instance", &[&region], vec![Resource::new("db", &identifier)], true), rds.delete_instance(&region, &identifier))
    }

    async fn replica_lag(&mut self, region: String, identifier: String) -> wasmtime::Result<Result<Option<rds::LagReading>, types::Error>> {
        call!(self, rds_replica_lag_access(&region, &identifier), rds.replica_lag(&region, &identifier))
    }

    async fn describe_cluster(&mut self, region: String, identifier: String) -> wasmtime::Result<Result<rds::DbCluster, types::Error>> {
        call!(
            self,
            access("rds", "describe-cluster", &[&region], vec![Resource::new("cluster", &identifier)], false),
            rds.describe_cluster(&region, &identifier)
        )
    }

    async fn describe_global_cluster(&mut self, region: String, identifier: String) -> wasmtime::Result<Result<rds::GlobalCluster, types::Error>> {
        call!(
            self,
            access("rds", "describe-global-cluster", &[&region], vec![Resource::new("cluster", &identifier)], false),
            rds.describe_global_cluster(&region, &identifier)
        )
    }

    async fn failover_global_cluster(
        &mut self,
        region: String,
        identifier: String,
        target_cluster_arn: String,
        mode: rds::GlobalFailoverMode,
    ) -> wasmtime::Result<Result<rds::GlobalCluster, types::Error>> {
        let resources = vec![Resource::new("cluster", &identifier), Resource::new("cluster", aws_rds::arn_name(&target_cluster_arn))];
        call!(
            self,
            access("rds", "failover-global-cluster", &[&region], resources, true),
            rds.failover_global_cluster(&region, &identifier, &target_cluster_arn, failover_mode(mode))
        )
    }

    async fn wait_global_writer(
        &mut self,
        region: String,
        identifier: String,
        target_cluster_arn: String,
        timeout_seconds: u32,
    ) -> wasmtime::Result<Result<rds::GlobalCluster, types::Error>> {
        call!(
            self,
            access("rds", "wait-global-writer", &[&region], vec![Resource::new("cluster", &identifier)], false),
            rds.wait_global_writer(&region, &identifier, &target_cluster_arn, timeout_seconds)
        )
    }

    async fn detach_from_global_cluster(
        &mut self,
        region: String,
        identifier: String,
        cluster_arn: String,
        timeout_seconds: u32,
    ) -> wasmtime::Result<Result<bool, types::Error>> {
        let resources = vec![Resource::new("cluster", &identifier), Resource::new("cluster", aws_rds::arn_name(&cluster_arn))];
        call!(
            self,
            access("rds", "detach-from-global-cluster", &[&region], resources, true),
            rds.detach_from_global_cluster(&region, &identifier, &cluster_arn, timeout_seconds)
        )
    }

    async fn run_instances(&mut self, region: String) -> wasmtime::Result<Result<Vec<String>, types::Error>> {
        call!(self, access("rds", "run-instances", &[&region], vec![], false), rds.run_instances(&region))
    }
}

impl ec2::Host for HostState {
    async fn describe_instance(&mut self, region: String, instance_id: String) -> wasmtime::Result<Result<ec2::Instance, types::Error>> {
        call!(
            self,
            access("ec2", "describe-instance", &[&region], vec![Resource::new("instance", &instance_id)], false),
            ec2.describe_instance(&region, &instance_id)
        )
    }

    async fn snapshot_volume(
        &mut self,
        region: String,
        volume_id: String,
        name: String,
        lineage: Option<String>,
    ) -> wasmtime::Result<Result<ec2::Snapshot, types::Error>> {
        let resources = vec![Resource::new("volume", &volume_id), Resource::new("snapshot", &name)];
        call!(self, access("ec2", "snapshot-volume", &[&region], resources, true), ec2.snapshot_volume(&region, &volume_id, &name, lineage.as_deref()))
    }

    async fn copy_snapshot(
        &mut self,
        source_region: String,
        snapshot_id: String,
        target_region: String,
        name: String,
        lineage: Option<String>,
    ) -> wasmtime::Result<Result<ec2::Snapshot, types::Error>> {
        let resources = vec![Resource::new("snapshot", &snapshot_id), Resource::new("snapshot", &name)];
        call!(
            self,
            access("ec2", "copy-snapshot", &[&source_region, &target_region], resources, true),
            ec2.copy_snapshot(&source_region, &snapshot_id, &target_region, &name, lineage.as_deref())
        )
    }

    async fn create_image(
        &mut self,
        region: String,
        instance_id: String,
        name: String,
        lineage: Option<String>,
    ) -> wasmtime::Result<Result<ec2::Image, types::Error>> {
        let resources = vec![Resource::new("instance", &instance_id), Resource::new("image", &name)];
        call!(self, access("ec2", "create-image", &[&region], resources, true), ec2.create_image(&region, &instance_id, &name, lineage.as_deref()))
    }

    async fn copy_image(
        &mut self,
        source_region: String,
        image_id: String,
        target_region: String,
        name: String,
        lineage: Option<String>,
    ) -> wasmtime::Result<Result<ec2::Image, types::Error>> {
        let resources = vec![Resource::new("image", &image_id), Resource::new("image", &name)];
        call!(
            self,
            access("ec2", "copy-image", &[&source_region, &target_region], resources, true),
            ec2.copy_image(&source_region, &image_id, &target_region, &name, lineage.as_deref())
        )
    }

    async fn wait_image_available(&mut self, region: String, image_id: String, timeout_seconds: u32) -> wasmtime::Result<Result<ec2::Image, types::Error>> {
        call!(
            self,
            access("ec2", "wait-image-available", &[&region], vec![Resource::new("image", &image_id)], false),
            ec2.wait_image_available(&region, &image_id, timeout_seconds)
        )
    }

    async fn run_instance(
        &mut self,
        region: String,
        image_id: String,
        instance_type: String,
        name: String,
    ) -> wasmtime::Result<Result<ec2::Instance, types::Error>> {
        let resources = vec![Resource::new("image", &image_id), Resource::new("instance", &name)];
        call!(self, access("ec2", "run-instance", &[&region], resources, true), ec2.run_instance(&region, &image_id, &instance_type, &name))
    }

    async fn prune_images(&mut self, region: String, lineage: String, keep: u32) -> wasmtime::Result<Result<Vec<String>, types::Error>> {
        call!(self, access("ec2", "prune-images", &[&region], vec![Resource::new("lineage", &lineage)], true), ec2.prune_images(&region, &lineage, keep))
    }

    async fn latest_image(&mut self, region: String, lineage: String) -> wasmtime::Result<Result<Option<ec2::Image>, types::Error>> {
        call!(self, access("ec2", "latest-image", &[&region], vec![Resource::new("lineage", &lineage)], false), ec2.latest_image(&region, &lineage))
    }

    async fn terminate_instance(&mut self, region: String, instance_id: String) -> wasmtime::Result<Result<(), types::Error>> {
        call!(
            self,
            access("ec2", "terminate-instance", &[&region], vec![Resource::new("instance", &instance_id)], true),
            ec2.terminate_instance(&region, &instance_id)
        )
    }

    async fn tag(&mut self, region: String, id: String, tags: Vec<(String, String)>) -> wasmtime::Result<Result<bool, types::Error>> {
        let Some(kind) = aws_ec2::resource_kind(&id) else {
            return Ok(Err(types::Error {
                code: "bad-resource".into(),
                message: format!("'{id}' is not an EC2 instance, image, volume or snapshot id (i-, ami-, vol-, snap-)"),
                retryable: false,
                resource: Some(id),
            }));
        };
        call!(self, access("ec2", "tag", &[&region], vec![Resource::new(kind, &id)], true), ec2.tag(&region, &id, &tags))
    }

    async fn run_instances(&mut self, region: String) -> wasmtime::Result<Result<Vec<String>, types::Error>> {
        call!(self, access("ec2", "run-instances", &[&region], vec![], false), ec2.run_instances(&region))
    }
}

impl route53::Host for HostState {
    async fn get_records(&mut self, zone: String, name: String) -> wasmtime::Result<Result<Vec<route53::RecordSet>, types::Error>> {
        call!(
            self,
            access("route53", "get-records", &[], vec![Resource::new("zone", &zone), Resource::new("record", &name)], false),
            route53.get_records(&zone, &name)
        )
    }

    async fn upsert_cname(&mut self, zone: String, name: String, target: String, ttl: u32, timeout_seconds: u32) -> wasmtime::Result<Result<(), types::Error>> {
        call!(
            self,
            access("route53", "upsert-cname", &[], vec![Resource::new("zone", &zone), Resource::new("record", &name)], true),
            route53.upsert_cname(&zone, &name, &target, ttl, timeout_seconds)
        )
    }

    async fn get_records_of(&mut self, zone: String, names: Vec<String>) -> wasmtime::Result<Result<Vec<route53::RecordSet>, types::Error>> {
        call!(self, route53_get_records_of_access(&zone, &names), route53.get_records_of(&zone, &names))
    }

    async fn change_records(
        &mut self,
        zone: String,
        changes: Vec<route53::RecordChange>,
        ttl: u32,
        timeout_seconds: u32,
    ) -> wasmtime::Result<Result<(), types::Error>> {
        let changes = record_changes(changes);
        // The zone and every record changed: each must be declared and granted.
        let resources = std::iter::once(Resource::new("zone", &zone)).chain(changes.iter().map(|c| Resource::new("record", c.name()))).collect();
        call!(self, access("route53", "change-records", &[], resources, true), route53.change_records(&zone, &changes, ttl, timeout_seconds))
    }

    async fn set_weights(
        &mut self,
        zone: String,
        name: String,
        targets: Vec<route53::WeightedTarget>,
        ttl: u32,
        timeout_seconds: u32,
    ) -> wasmtime::Result<Result<(), types::Error>> {
        let targets = weighted_targets(targets);
        let access = access("route53", "set-weights", &[], vec![Resource::new("zone", &zone), Resource::new("record", &name)], true);
        call!(self, access, route53.set_weights(&zone, &name, &targets, ttl, timeout_seconds))
    }

    async fn get_health_check(&mut self, id: String) -> wasmtime::Result<Result<route53::HealthCheck, types::Error>> {
        call!(self, access("route53", "get-health-check", &[], vec![Resource::new("healthcheck", &id)], false), route53.get_health_check(&id))
    }

    async fn update_health_check(&mut self, id: String, disabled: bool, inverted: bool) -> wasmtime::Result<Result<route53::HealthCheck, types::Error>> {
        call!(
            self,
            access("route53", "update-health-check", &[], vec![Resource::new("healthcheck", &id)], true),
            route53.update_health_check(&id, disabled, inverted)
        )
    }

    async fn upsert_failover(
        &mut self,
        zone: String,
        name: String,
        role: route53::FailoverRole,
        set_identifier: String,
        target: String,
        health_check: Option<String>,
        ttl: u32,
        timeout_seconds: u32,
    ) -> wasmtime::Result<Result<(), types::Error>> {
        let mut resources = vec![Resource::new("zone", &zone), Resource::new("record", &name)];
        resources.extend(health_check.iter().map(|h| Resource::new("healthcheck", h)));
        let record = FailoverRecord { role: failover_role(role), set_identifier, target, health_check, ttl };
        call!(self, access("route53", "upsert-failover", &[], resources, true), route53.upsert_failover(&zone, &name, &record, timeout_seconds))
    }

    async fn delete_cname(&mut self, zone: String, name: String, timeout_seconds: u32) -> wasmtime::Result<Result<(), types::Error>> {
        call!(
            self,
            access("route53", "delete-cname", &[], vec![Resource::new("zone", &zone), Resource::new("record", &name)], true),
            route53.delete_cname(&zone, &name, timeout_seconds)
        )
    }
}

impl cloudwatch::Host for HostState {
    async fn describe_alarms(&mut self, region: String, names: Vec<String>) -> wasmtime::Result<Result<Vec<cloudwatch::Alarm>, types::Error>> {
        let resources = names.iter().map(|n| Resource::new("alarm", n)).collect();
        call!(self, access("cloudwatch", "describe-alarms", &[&region], resources, false), cloudwatch.describe_alarms(&region, &names))
    }
}
impl autoscaling::Host for HostState {
    async fn describe_group(&mut self, region: String, name: String) -> wasmtime::Result<Result<autoscaling::ScalingGroup, types::Error>> {
        call!(self, asg_describe_group_access(&region, &name), autoscaling.describe_group(&region, &name))
    }

    async fn set_capacity(
        &mut self,
        region: String,
        name: String,
        capacity: autoscaling::Capacity,
    ) -> wasmtime::Result<Result<autoscaling::ScalingGroup, types::Error>> {
        let capacity = crate::convert::capacity(capacity);
        call!(
            self,
            access("autoscaling", "set-capacity", &[&region], vec![Resource::new("asg", &name)], true),
            autoscaling.set_capacity(&region, &name, &capacity)
        )
    }

    async fn wait_in_service(
        &mut self,
        region: String,
        name: String,
        timeout_seconds: u32,
    ) -> wasmtime::Result<Result<autoscaling::ScalingGroup, types::Error>> {
        call!(
            self,
            access("autoscaling", "wait-in-service", &[&region], vec![Resource::new("asg", &name)], false),
            autoscaling.wait_in_service(&region, &name, timeout_seconds)
        )
    }
}

impl ecs::Host for HostState {
    async fn describe_service(&mut self, region: String, cluster: String, name: String) -> wasmtime::Result<Result<ecs::EcsService, types::Error>> {
        call!(self, ecs_describe_service_access(&region, &cluster, &name), ecs.describe_service(&region, &cluster, &name))
    }

    async fn set_desired_count(
        &mut self,
        region: String,
        cluster: String,
        name: String,
        desired: u32,
    ) -> wasmtime::Result<Result<ecs::EcsService, types::Error>> {
        let resource = Resource::new("ecs-service", EcsService::resource(&cluster, &name));
        call!(self, access("ecs", "set-desired-count", &[&region], vec![resource], true), ecs.set_desired_count(&region, &cluster, &name, desired))
    }

    async fn wait_stable(
        &mut self,
        region: String,
        cluster: String,
        name: String,
        timeout_seconds: u32,
    ) -> wasmtime::Result<Result<ecs::EcsService, types::Error>> {
        let resource = Resource::new("ecs-service", EcsService::resource(&cluster, &name));
        call!(self, access("ecs", "wait-stable", &[&region], vec![resource], false), ecs.wait_stable(&region, &cluster, &name, timeout_seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cancel_ends_a_wait_that_would_never_end() {
        let signal = Arc::new(CancelSignal::default());
        let raise = {
            let signal = signal.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                signal.raise(drover_journal::CancelRequest { by: "sre".into(), reason: "stop".into(), at: chrono::Utc::now() });
            }
        };
        let (waited, ()) = tokio::join!(cancellable(Some(signal), std::future::pending::<()>()), raise);
        let err = waited.unwrap_err();
        let cancelled = err.downcast_ref::<DurableError>().unwrap();
        assert_eq!(cancelled.to_string(), "cancelled by sre: stop");
        // Without a watch (the finalize phase), the wait runs to its end.
        assert_eq!(cancellable(None, async { 7 }).await.unwrap(), 7);
    }

    #[test]
    fn capability_timeouts_are_bounded() {
        assert_eq!(secs(0), Duration::from_secs(1));
        assert_eq!(secs(30), Duration::from_secs(30));
        assert_eq!(secs(u32::MAX), Duration::from_secs(u64::from(MAX_CAPABILITY_WAIT_SECS)));
        // What a waiter does with it must not overflow.
        assert!(std::time::Instant::now().checked_add(secs(u32::MAX)).is_some());
        assert!(chrono::Duration::from_std(secs(u32::MAX)).is_ok());
    }
}
