//! The host side of the AWS capability interfaces (`rds`, `ec2`, `route53`,
//! `cloudwatch`): checks
//! that the call happens inside a step, makes the step's begin durable before
//! the first call that changes anything, hands the step's idempotency key to
//! the capability, and turns its errors into WIT errors (masked). The AWS
//! calls themselves live in the `drover-aws` crate, one module per service.

use std::sync::Arc;
use std::time::Duration;

use drover_aws::{CapabilityError, Clients, aurora as aws_aurora, cloudwatch as aws_cw, ec2 as aws_ec2, rds as aws_rds, route53 as aws_r53};
use tokio::sync::OnceCell;
use tracing::Instrument;

use crate::audit::{AuditLog, AuditRecord};
use crate::bindings::{cloudwatch, ec2, rds, route53, types};
use crate::cancel::CancelSignal;
use crate::convert::ToWit;
use crate::durable::DurableError;
use crate::host::HostState;
use crate::host_calls::{HostCalls, LentTurn, Priority};
use crate::plan::{Plan, PlannedChange};
use crate::policy::{Access, Guard, Resource};
use drover_replay::Violation;

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

/// A call that passed the gate: the clients, the step's idempotency key, and
/// its turn among the agent's concurrent host calls (lent to the waiters in
/// it with [`lent`], which give it back while they sleep).
pub(crate) struct Call {
    pub c: Arc<Clients>,
    pub key: String,
    /// The run's id, which tags what the run creates (`drover:run`).
    pub run_id: String,
    _turn: Arc<LentTurn>,
}

/// Passes a call through the gate, or returns the denial to the runbook.
macro_rules! allowed {
    ($self:ident, $access:expr) => {
        match $self.capability($access).await? {
            Ok(call) => call,
            Err(denied) => return Ok(Err(denied)),
        }
    };
}

/// Under `drover test`: answers the call from the simulated cloud, after the
/// gate (policy, durability) and before anything could reach AWS.
macro_rules! simulated {
    ($self:ident, |$s:ident| $call:expr) => {
        if let Some(sim) = $self.sim.clone() {
            let answer = sim.call($self.sim_caller(), |$s| $call);
            return Ok(answer.map(ToWit::to_wit).map_err(|e| $self.mask(e.to_wit())));
        }
    };
}

fn access(service: &'static str, operation: &'static str, regions: &[&String], resources: Vec<Resource>, mutating: bool) -> Access {
    Access { service, operation, regions: regions.iter().map(|r| r.to_string()).collect(), resources, mutating }
}

impl HostState {
    /// Prepares a capability call: it must come from inside a step, pass the
    /// run's policy (declared and granted; the decision is audited), and, if it
    /// changes anything, the step's begin is made durable first.
    async fn capability(&mut self, a: Access) -> wasmtime::Result<Result<Call, types::Error>> {
        let what = a.name();
        let durable = self.durable.as_mut().ok_or_else(|| wasmtime::Error::new(crate::host::ImportInDescribe))?;
        let key = durable.current_attempt().map(|a| a.idempotency_key).ok_or_else(|| {
            wasmtime::Error::new(DurableError::from(Violation::BadRequest(format!(
                "{what} was called outside a step; wrap AWS calls in ctx.step so that their results are journaled and replayed"
            ))))
        })?;
        let step = durable.open_step().map(str::to_string);
        let dry_run = durable.plan().is_some();
        let gate =
            self.gate.clone().ok_or_else(|| wasmtime::Error::new(DurableError::from(Violation::BadRequest(format!("{what} was called outside a run")))))?;
        let decision = gate.guard.check(&a);
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
            gate.audit.append(&record).map_err(wasmtime::Error::new)?;
        }
        if let Err(denial) = decision {
            tracing::warn!(operation = %what, subject = %denial.subject, "capability call denied");
            return Ok(Err(types::Error {
                code: "permission-denied".into(),
                message: denial.to_string(),
                retryable: false,
                resource: Some(denial.subject.clone()),
            }));
        }
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
        let mut c = self.aws.get_or_init(|| async { Arc::new(Clients::load().await) }).await.clone();
        if a.mutating {
            // The last check, as close to the request as it gets: the waits
            // above (a commit, a turn among the agent's AWS calls) may have
            // outlasted the lease.
            durable.check_held().map_err(|e| refuse(DurableError::Journal(e)))?;
            // And on the wire: every attempt of the call's requests checks the
            // lease, and one in flight is dropped when it is lost.
            if let Some(guard) = durable.lease_guard() {
                c = Arc::new(c.fenced(Arc::new(guard.clone()), guard.ttl()));
            }
        }
        Ok(Ok(Call { c, key, run_id: gate.run_id.clone(), _turn: turn }))
    }

    /// The step (and attempt) making a call, for the simulated cloud's record.
    fn sim_caller(&self) -> Option<(String, u32)> {
        let d = self.durable.as_ref()?;
        let attempt = d.current_attempt()?.number;
        Some((d.open_step().unwrap_or("").to_string(), attempt))
    }

    /// A capability's error as the runbook gets it: secret values masked.
    fn mask(&self, e: types::Error) -> types::Error {
        let record = drover_journal::ErrorRecord { code: e.code, message: e.message, retryable: e.retryable, resource: e.resource };
        let record = match &self.durable {
            Some(d) => d.mask_error(record),
            None => record,
        };
        types::Error { code: record.code, message: record.message, retryable: record.retryable, resource: record.resource }
    }

    /// The span of the step making a capability call (its `aws` span's parent).
    fn step_span(&self) -> Option<tracing::Id> {
        self.durable.as_ref().and_then(|d| d.step_span())
    }

    /// The run's cancel signal, while a cancel can still stop it.
    fn cancel_watch(&self) -> Option<Arc<CancelSignal>> {
        self.durable.as_ref().and_then(|d| d.cancel_watch())
    }

    /// In a dry run: the plan and the step making the call.
    fn dry_run(&self) -> Option<(Plan, String)> {
        let d = self.durable.as_ref()?;
        Some((d.plan()?.clone(), d.open_step().unwrap_or_default().to_string()))
    }

    fn to_wit(&self, e: CapabilityError) -> types::Error {
        tracing::warn!(service = e.service, operation = e.operation, region = %e.region, resource = %e.resource, code = %e.code, request_id = ?e.request_id, "AWS call failed");
        self.mask(types::Error { code: e.code.clone(), message: e.to_string(), retryable: e.retryable, resource: Some(e.resource.clone()) })
    }
}

/// Runs capability call `f` with its turn lent to the waiters in it: a
/// waiter holds a turn among the agent's AWS calls only while it polls.
fn lent<F: std::future::Future>(turn: &Arc<LentTurn>, f: F) -> impl std::future::Future<Output = F::Output> {
    drover_aws::turns::lend(turn.clone(), f)
}

/// Runs a long wait, unless the run is cancelled first (a cancel must not
/// sit out a 15-minute waiter).
async fn cancellable<T>(watch: Option<Arc<CancelSignal>>, wait: impl std::future::Future<Output = T>) -> wasmtime::Result<T> {
    let Some(signal) = watch else { return Ok(wait.await) };
    tokio::select! {
        r = wait => Ok(r),
        _ = signal.raised() => {
            let (by, reason) = signal.request().map(|r| (r.by, r.reason)).unwrap_or_default();
            Err(wasmtime::Error::new(DurableError::Cancelled { by, reason }))
        }
    }
}

fn planned_snapshot(region: &str, id: &str, inst: &str) -> rds::DbSnapshot {
    rds::DbSnapshot {
        identifier: id.into(),
        arn: format!("arn:aws:rds:{region}:planned:snapshot:{id}"),
        region: region.into(),
        status: "available".into(),
        instance: inst.into(),
    }
}

/// The instance a planned create or restore would make.
fn planned_instance(region: &str, identifier: &str, replica_source: Option<String>) -> aws_rds::DbInstance {
    aws_rds::DbInstance {
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

/// The record sets as planned changes left them, else as Route 53 has them.
async fn planned_or_real(plan: &Plan, c: &Clients, zone: &str, name: &str) -> Result<Vec<aws_r53::RecordSet>, CapabilityError> {
    match plan.records(zone, name) {
        Some(sets) => Ok(sets),
        None => aws_r53::get_records(c, zone, name).await,
    }
}

/// The global database as planned changes left it, else as RDS has it.
async fn planned_or_real_global(plan: &Plan, c: &Clients, region: &str, id: &str) -> Result<aws_aurora::GlobalCluster, CapabilityError> {
    match plan.planned_global(id) {
        Some(g) => Ok(g),
        None => aws_aurora::describe_global_cluster(c, region, id).await,
    }
}

/// Longest wait a capability call may ask for (`timeout-seconds`); a longer
/// one is cut to it (the step's wall-clock limit usually ends it sooner).
const MAX_CAPABILITY_WAIT_SECS: u32 = 24 * 3600;

/// A capability call's `timeout-seconds`: at least 1 s, at most a day.
fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s.clamp(1, MAX_CAPABILITY_WAIT_SECS)))
}

impl rds::Host for HostState {
    async fn describe_instance(&mut self, region: String, identifier: String) -> wasmtime::Result<Result<rds::DbInstance, types::Error>> {
        let Call { c, _turn, .. } = allowed!(self, access("rds", "describe-instance", &[&region], vec![Resource::new("db", &identifier)], false));
        simulated!(self, |s| s.rds_describe_instance(&region, &identifier));
        if let Some(i) = self.dry_run().and_then(|(plan, _)| plan.planned_instance(&region, &identifier)) {
            return Ok(Ok(i.to_wit()));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "rds", operation = "DescribeDBInstances", region = %region, resource = %identifier);
        Ok(aws_rds::describe_instance(&c, &region, &identifier).instrument(span).await.map(ToWit::to_wit).map_err(|e| self.to_wit(e)))
    }

    async fn create_snapshot(&mut self, region: String, inst: String, snap: String) -> wasmtime::Result<Result<rds::DbSnapshot, types::Error>> {
        let Call { c, key, _turn, .. } =
            allowed!(self, access("rds", "create-snapshot", &[&region], vec![Resource::new("db", &inst), Resource::new("snapshot", &snap)], true));
        simulated!(self, |s| s.rds_create_snapshot(&region, &inst, &snap, &key));
        if let Some((plan, step)) = self.dry_run() {
            plan.record(PlannedChange {
                step,
                service: "rds",
                operation: "CreateDBSnapshot",
                region: region.clone(),
                resource: snap.clone(),
                detail: format!("snapshot {inst} as {snap}"),
            });
            plan.plan_snapshot(&region, &snap);
            return Ok(Ok(planned_snapshot(&region, &snap, &inst)));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "rds", operation = "CreateDBSnapshot", region = %region, resource = %snap);
        Ok(aws_rds::create_snapshot(&c, &region, &inst, &snap, &key).instrument(span).await.map(ToWit::to_wit).map_err(|e| self.to_wit(e)))
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
        let Call { c, key, _turn, .. } = allowed!(self, access("rds", "copy-snapshot", &[&source_region, &target_region], resources, true));
        simulated!(self, |s| s.rds_copy_snapshot(&source_arn, &target_region, &target, &key));
        if let Some((plan, step)) = self.dry_run() {
            let detail =
                format!("copy {source_arn} into {target_region} as {target}{}", kms_key.as_deref().map(|k| format!(" (KMS key {k})")).unwrap_or_default());
            plan.record(PlannedChange { step, service: "rds", operation: "CopyDBSnapshot", region: target_region.clone(), resource: target.clone(), detail });
            plan.plan_snapshot(&target_region, &target);
            let source = aws_rds::arn_name(&source_arn).to_string();
            return Ok(Ok(planned_snapshot(&target_region, &target, &source)));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "rds", operation = "CopyDBSnapshot", region = %target_region, resource = %target);
        Ok(aws_rds::copy_snapshot(&c, &source_arn, &target_region, &target, kms_key.as_deref(), &key)
            .instrument(span)
            .await
            .map(ToWit::to_wit)
            .map_err(|e| self.to_wit(e)))
    }

    async fn describe_snapshot(&mut self, region: String, identifier: String) -> wasmtime::Result<Result<rds::DbSnapshot, types::Error>> {
        let Call { c, _turn, .. } = allowed!(self, access("rds", "describe-snapshot", &[&region], vec![Resource::new("snapshot", &identifier)], false));
        simulated!(self, |s| s.rds_describe_snapshot(&region, &identifier));
        if self.dry_run().is_some_and(|(plan, _)| plan.is_planned_snapshot(&region, &identifier)) {
            return Ok(Ok(planned_snapshot(&region, &identifier, "")));
        }
        Ok(aws_rds::describe_snapshot(&c, &region, &identifier).await.map(ToWit::to_wit).map_err(|e| self.to_wit(e)))
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
        let Call { c, key, run_id, _turn } = allowed!(self, access("rds", "create-read-replica", &[&source_region, &region], resources, true));
        simulated!(self, |s| s.rds_create_read_replica(&source_arn, &region, &identifier, &key, &run_id));
        if let Some((plan, step)) = self.dry_run() {
            let detail = format!("create read replica {identifier} in {region} of {source_arn}");
            plan.record(PlannedChange {
                step,
                service: "rds",
                operation: "CreateDBInstanceReadReplica",
                region: region.clone(),
                resource: identifier.clone(),
                detail,
            });
            let planned = planned_instance(&region, &identifier, Some(source_arn.clone()));
            plan.plan_instance(&region, planned.clone());
            return Ok(Ok(planned.to_wit()));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "rds", operation = "CreateDBInstanceReadReplica", region = %region, resource = %identifier);
        Ok(aws_rds::create_read_replica(&c, &source_arn, &region, &identifier, instance_class.as_deref(), &key)
            .instrument(span)
            .await
            .map(ToWit::to_wit)
            .map_err(|e| self.to_wit(e)))
    }

    async fn promote_read_replica(&mut self, region: String, identifier: String) -> wasmtime::Result<Result<rds::DbInstance, types::Error>> {
        let Call { c, key, _turn, .. } = allowed!(self, access("rds", "promote-read-replica", &[&region], vec![Resource::new("db", &identifier)], true));
        simulated!(self, |s| s.rds_promote_read_replica(&region, &identifier, &key));
        if let Some((plan, step)) = self.dry_run() {
            let current = match plan.planned_instance(&region, &identifier) {
                Some(i) => i,
                None => match aws_rds::describe_instance(&c, &region, &identifier).await {
                    Ok(i) => i,
                    Err(e) => return Ok(Err(self.to_wit(e))),
                },
            };
            if current.replica_source.is_none() {
                return Ok(Ok(current.to_wit()));
            }
            let detail = format!("promote {identifier} (replica of {}) to a standalone instance", current.replica_source.as_deref().unwrap_or("?"));
            plan.record(PlannedChange { step, service: "rds", operation: "PromoteReadReplica", region: region.clone(), resource: identifier.clone(), detail });
            let promoted = aws_rds::DbInstance { replica_source: None, status: "available".into(), ..current };
            plan.plan_instance(&region, promoted.clone());
            return Ok(Ok(promoted.to_wit()));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "rds", operation = "PromoteReadReplica", region = %region, resource = %identifier);
        Ok(aws_rds::promote_read_replica(&c, &region, &identifier, &key).instrument(span).await.map(ToWit::to_wit).map_err(|e| self.to_wit(e)))
    }

    async fn wait_instance_available(
        &mut self,
        region: String,
        identifier: String,
        timeout_seconds: u32,
    ) -> wasmtime::Result<Result<rds::DbInstance, types::Error>> {
        let Call { c, _turn, .. } = allowed!(self, access("rds", "wait-instance-available", &[&region], vec![Resource::new("db", &identifier)], false));
        simulated!(self, |s| s.rds_wait_instance_available(&region, &identifier, timeout_seconds));
        if let Some(i) = self.dry_run().and_then(|(plan, _)| plan.planned_instance(&region, &identifier)) {
            return Ok(Ok(i.to_wit()));
        }
        let waited = cancellable(self.cancel_watch(), lent(&_turn, aws_rds::wait_instance_available(&c, &region, &identifier, secs(timeout_seconds)))).await?;
        Ok(waited.map(ToWit::to_wit).map_err(|e| self.to_wit(e)))
    }

    async fn wait_snapshot_available(
        &mut self,
        region: String,
        identifier: String,
        timeout_seconds: u32,
    ) -> wasmtime::Result<Result<rds::DbSnapshot, types::Error>> {
        let Call { c, _turn, .. } = allowed!(self, access("rds", "wait-snapshot-available", &[&region], vec![Resource::new("snapshot", &identifier)], false));
        simulated!(self, |s| s.rds_wait_snapshot_available(&region, &identifier, timeout_seconds));
        if self.dry_run().is_some_and(|(plan, _)| plan.is_planned_snapshot(&region, &identifier)) {
            return Ok(Ok(planned_snapshot(&region, &identifier, "")));
        }
        let waited = cancellable(self.cancel_watch(), lent(&_turn, aws_rds::wait_snapshot_available(&c, &region, &identifier, secs(timeout_seconds)))).await?;
        Ok(waited.map(ToWit::to_wit).map_err(|e| self.to_wit(e)))
    }

    async fn latest_snapshot(&mut self, region: String, inst: String) -> wasmtime::Result<Result<Option<rds::SnapshotInfo>, types::Error>> {
        let Call { c, _turn, .. } = allowed!(self, access("rds", "latest-snapshot", &[&region], vec![Resource::new("db", &inst)], false));
        simulated!(self, |s| s.rds_latest_snapshot(&region, &inst));
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "rds", operation = "DescribeDBSnapshots", region = %region, resource = %inst);
        Ok(aws_rds::latest_snapshot(&c, &region, &inst).instrument(span).await.map(|found| found.to_wit()).map_err(|e| self.to_wit(e)))
    }

    async fn restore_from_snapshot(
        &mut self,
        region: String,
        snap: String,
        identifier: String,
        instance_class: Option<String>,
    ) -> wasmtime::Result<Result<rds::DbInstance, types::Error>> {
        let resources = vec![Resource::new("snapshot", &snap), Resource::new("db", &identifier)];
        let Call { c, key, run_id, _turn } = allowed!(self, access("rds", "restore-from-snapshot", &[&region], resources, true));
        simulated!(self, |s| s.rds_restore_from_snapshot(&region, &snap, &identifier, &key, &run_id));
        if let Some((plan, step)) = self.dry_run() {
            let detail = format!("restore snapshot {snap} into a new instance {identifier}");
            plan.record(PlannedChange {
                step,
                service: "rds",
                operation: "RestoreDBInstanceFromDBSnapshot",
                region: region.clone(),
                resource: identifier.clone(),
                detail,
            });
            // What the restore would run: the snapshot's engine.
            let source = match aws_rds::describe_snapshot(&c, &region, &snap).await {
                Ok(s) => s,
                Err(e) => return Ok(Err(self.to_wit(e))),
            };
            let planned = aws_rds::DbInstance { engine: source.engine, engine_version: source.engine_version, ..planned_instance(&region, &identifier, None) };
            plan.plan_instance(&region, planned.clone());
            return Ok(Ok(planned.to_wit()));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "rds", operation = "RestoreDBInstanceFromDBSnapshot", region = %region, resource = %identifier);
        Ok(aws_rds::restore_from_snapshot(&c, &region, &snap, &identifier, instance_class.as_deref(), &run_id, &key)
            .instrument(span)
            .await
            .map(ToWit::to_wit)
            .map_err(|e| self.to_wit(e)))
    }

    async fn delete_instance(&mut self, region: String, identifier: String) -> wasmtime::Result<Result<(), types::Error>> {
        let Call { c, run_id, _turn, .. } = allowed!(self, access("rds", "delete-instance", &[&region], vec![Resource::new("db", &identifier)], true));
        simulated!(self, |s| s.rds_delete_instance(&region, &identifier, &run_id));
        if let Some((plan, step)) = self.dry_run() {
            if plan.plan_delete_instance(&region, &identifier) {
                let detail = format!("delete instance {identifier} (made by this run), no final snapshot");
                plan.record(PlannedChange { step, service: "rds", operation: "DeleteDBInstance", region, resource: identifier, detail });
            }
            return Ok(Ok(()));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "rds", operation = "DeleteDBInstance", region = %region, resource = %identifier);
        Ok(aws_rds::delete_instance(&c, &region, &identifier, &run_id).instrument(span).await.map_err(|e| self.to_wit(e)))
    }

    async fn replica_lag(&mut self, region: String, identifier: String) -> wasmtime::Result<Result<Option<rds::LagReading>, types::Error>> {
        let Call { c, _turn, .. } = allowed!(self, access("rds", "replica-lag", &[&region], vec![Resource::new("db", &identifier)], false));
        simulated!(self, |s| s.rds_replica_lag(&region, &identifier));
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "cloudwatch", operation = "GetMetricStatistics", region = %region, resource = %identifier);
        Ok(aws_cw::replica_lag(&c, &region, &identifier).instrument(span).await.map(ToWit::to_wit).map_err(|e| self.to_wit(e)))
    }

    async fn describe_cluster(&mut self, region: String, identifier: String) -> wasmtime::Result<Result<rds::DbCluster, types::Error>> {
        let Call { c, _turn, .. } = allowed!(self, access("rds", "describe-cluster", &[&region], vec![Resource::new("cluster", &identifier)], false));
        simulated!(self, |s| s.rds_describe_cluster(&region, &identifier));
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "rds", operation = "DescribeDBClusters", region = %region, resource = %identifier);
        let described = aws_aurora::describe_cluster(&c, &region, &identifier).instrument(span).await;
        Ok(described.map(ToWit::to_wit).map_err(|e| self.to_wit(e)))
    }

    async fn describe_global_cluster(&mut self, region: String, identifier: String) -> wasmtime::Result<Result<rds::GlobalCluster, types::Error>> {
        let Call { c, _turn, .. } = allowed!(self, access("rds", "describe-global-cluster", &[&region], vec![Resource::new("cluster", &identifier)], false));
        simulated!(self, |s| s.rds_describe_global_cluster(&region, &identifier));
        if let Some(g) = self.dry_run().and_then(|(plan, _)| plan.planned_global(&identifier)) {
            return Ok(Ok(g.to_wit()));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "rds", operation = "DescribeGlobalClusters", region = %region, resource = %identifier);
        Ok(aws_aurora::describe_global_cluster(&c, &region, &identifier).instrument(span).await.map(ToWit::to_wit).map_err(|e| self.to_wit(e)))
    }

    async fn failover_global_cluster(
        &mut self,
        region: String,
        identifier: String,
        target_cluster_arn: String,
        mode: rds::GlobalFailoverMode,
    ) -> wasmtime::Result<Result<rds::GlobalCluster, types::Error>> {
        let target = aws_rds::arn_name(&target_cluster_arn).to_string();
        let resources = vec![Resource::new("cluster", &identifier), Resource::new("cluster", &target)];
        let Call { c, _turn, .. } = allowed!(self, access("rds", "failover-global-cluster", &[&region], resources, true));
        let mode = crate::convert::failover_mode(mode);
        simulated!(self, |s| s.rds_failover_global_cluster(&region, &identifier, &target_cluster_arn, mode));
        if let Some((plan, step)) = self.dry_run() {
            let mut g = match planned_or_real_global(&plan, &c, &region, &identifier).await {
                Ok(g) => g,
                Err(e) => return Ok(Err(self.to_wit(e))),
            };
            if !g.members.iter().any(|m| m.cluster_arn == target_cluster_arn) {
                let e = CapabilityError::new(
                    "rds",
                    "FailoverGlobalCluster",
                    &region,
                    &target_cluster_arn,
                    "not-a-member",
                    format!("{target_cluster_arn} is not a cluster of global database {identifier}"),
                );
                return Ok(Err(self.to_wit(e)));
            }
            if g.writer().is_none_or(|w| w.cluster_arn != target_cluster_arn) {
                let how =
                    if mode == aws_aurora::GlobalFailoverMode::Switchover { "switch over (no data lost)" } else { "fail over (unreplicated writes lost)" };
                let detail = format!("{how} global database {identifier} to {target}");
                plan.record(PlannedChange { step, service: "rds", operation: mode.operation(), region: region.clone(), resource: identifier.clone(), detail });
                for m in &mut g.members {
                    m.writer = m.cluster_arn == target_cluster_arn;
                }
                g.status = "available".into();
                plan.plan_global(g.clone());
            }
            return Ok(Ok(g.to_wit()));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "rds", operation = mode.operation(), region = %region, resource = %identifier);
        let done = aws_aurora::failover_global_cluster(&c, &region, &identifier, &target_cluster_arn, mode).instrument(span).await;
        Ok(done.map(|(_, g)| g.to_wit()).map_err(|e| self.to_wit(e)))
    }

    async fn wait_global_writer(
        &mut self,
        region: String,
        identifier: String,
        target_cluster_arn: String,
        timeout_seconds: u32,
    ) -> wasmtime::Result<Result<rds::GlobalCluster, types::Error>> {
        let Call { c, _turn, .. } = allowed!(self, access("rds", "wait-global-writer", &[&region], vec![Resource::new("cluster", &identifier)], false));
        simulated!(self, |s| s.rds_wait_global_writer(&region, &identifier, &target_cluster_arn, timeout_seconds));
        if let Some(g) = self.dry_run().and_then(|(plan, _)| plan.planned_global(&identifier)) {
            return Ok(Ok(g.to_wit()));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "rds", operation = "DescribeGlobalClusters", region = %region, resource = %identifier);
        let wait = aws_aurora::wait_global_writer(&c, &region, &identifier, &target_cluster_arn, secs(timeout_seconds)).instrument(span);
        let waited = cancellable(self.cancel_watch(), lent(&_turn, wait)).await?;
        Ok(waited.map(ToWit::to_wit).map_err(|e| self.to_wit(e)))
    }

    async fn detach_from_global_cluster(
        &mut self,
        region: String,
        identifier: String,
        cluster_arn: String,
        timeout_seconds: u32,
    ) -> wasmtime::Result<Result<bool, types::Error>> {
        let cluster = aws_rds::arn_name(&cluster_arn).to_string();
        let resources = vec![Resource::new("cluster", &identifier), Resource::new("cluster", &cluster)];
        let Call { c, _turn, .. } = allowed!(self, access("rds", "detach-from-global-cluster", &[&region], resources, true));
        simulated!(self, |s| s.rds_detach_from_global_cluster(&region, &identifier, &cluster_arn));
        if let Some((plan, step)) = self.dry_run() {
            let mut g = match planned_or_real_global(&plan, &c, &region, &identifier).await {
                Ok(g) => g,
                Err(e) => return Ok(Err(self.to_wit(e))),
            };
            if !g.members.iter().any(|m| m.cluster_arn == cluster_arn) {
                return Ok(Ok(false));
            }
            let detail = format!("detach {cluster} from global database {identifier}: it becomes a standalone writable cluster");
            plan.record(PlannedChange {
                step,
                service: "rds",
                operation: "RemoveFromGlobalCluster",
                region: region.clone(),
                resource: identifier.clone(),
                detail,
            });
            g.members.retain(|m| m.cluster_arn != cluster_arn);
            plan.plan_global(g);
            return Ok(Ok(true));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "rds", operation = "RemoveFromGlobalCluster", region = %region, resource = %identifier);
        let detach = aws_aurora::detach_from_global_cluster(&c, &region, &identifier, &cluster_arn, secs(timeout_seconds)).instrument(span);
        let done = cancellable(self.cancel_watch(), lent(&_turn, detach)).await?;
        Ok(done.map_err(|e| self.to_wit(e)))
    }

    async fn run_instances(&mut self, region: String) -> wasmtime::Result<Result<Vec<String>, types::Error>> {
        let Call { c, run_id, _turn, .. } = allowed!(self, access("rds", "run-instances", &[&region], vec![], false));
        simulated!(self, |s| s.rds_run_instances(&region, &run_id));
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "rds", operation = "DescribeDBInstances", region = %region);
        Ok(aws_rds::run_instances(&c, &region, &run_id).instrument(span).await.map_err(|e| self.to_wit(e)))
    }
}

impl HostState {
    /// In a dry run, records a planned EC2 change and returns true.
    fn plan_ec2(&self, operation: &'static str, region: &str, resource: &str, detail: String) -> bool {
        match self.dry_run() {
            Some((plan, step)) => {
                plan.record(PlannedChange { step, service: "ec2", operation, region: region.into(), resource: resource.into(), detail });
                true
            }
            None => false,
        }
    }
}

impl ec2::Host for HostState {
    async fn describe_instance(&mut self, region: String, instance_id: String) -> wasmtime::Result<Result<ec2::Instance, types::Error>> {
        let Call { c, _turn, .. } = allowed!(self, access("ec2", "describe-instance", &[&region], vec![Resource::new("instance", &instance_id)], false));
        simulated!(self, |s| s.ec2_describe_instance(&region, &instance_id));
        if self.dry_run().is_some() && instance_id.starts_with("i-planned-") {
            return Ok(Ok(ec2::Instance { id: instance_id, region, state: "running".into(), image_id: String::new(), volumes: vec![] }));
        }
        Ok(aws_ec2::describe_instance(&c, &region, &instance_id).await.map(ToWit::to_wit).map_err(|e| self.to_wit(e)))
    }

    async fn snapshot_volume(
        &mut self,
        region: String,
        volume_id: String,
        name: String,
        lineage: Option<String>,
    ) -> wasmtime::Result<Result<ec2::Snapshot, types::Error>> {
        let Call { c, key, _turn, .. } =
            allowed!(self, access("ec2", "snapshot-volume", &[&region], vec![Resource::new("volume", &volume_id), Resource::new("snapshot", &name)], true));
        simulated!(self, |s| s.ec2_snapshot_volume(&region, &volume_id, &name, lineage.as_deref()));
        if self.plan_ec2("CreateSnapshot", &region, &name, format!("snapshot volume {volume_id} as {name}")) {
            return Ok(Ok(ec2::Snapshot { id: format!("snap-planned-{name}"), region, state: "completed".into(), volume_id }));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "ec2", operation = "CreateSnapshot", region = %region, resource = %name);
        Ok(aws_ec2::snapshot_volume(&c, &region, &volume_id, &name, lineage.as_deref(), &key)
            .instrument(span)
            .await
            .map(ToWit::to_wit)
            .map_err(|e| self.to_wit(e)))
    }

    async fn copy_snapshot(
        &mut self,
        source_region: String,
        snapshot_id: String,
        target_region: String,
        name: String,
        lineage: Option<String>,
    ) -> wasmtime::Result<Result<ec2::Snapshot, types::Error>> {
        let Call { c, key, _turn, .. } = allowed!(
            self,
            access(
                "ec2",
                "copy-snapshot",
                &[&source_region, &target_region],
                vec![Resource::new("snapshot", &snapshot_id), Resource::new("snapshot", &name)],
                true
            )
        );
        simulated!(self, |s| s.ec2_copy_snapshot(&source_region, &snapshot_id, &target_region, &name, lineage.as_deref()));
        if self.plan_ec2("CopySnapshot", &target_region, &name, format!("copy snapshot {snapshot_id} from {source_region} as {name}")) {
            return Ok(Ok(ec2::Snapshot { id: format!("snap-planned-{name}"), region: target_region, state: "completed".into(), volume_id: String::new() }));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "ec2", operation = "CopySnapshot", region = %target_region, resource = %name);
        Ok(aws_ec2::copy_snapshot(&c, &source_region, &snapshot_id, &target_region, &name, lineage.as_deref(), &key)
            .instrument(span)
            .await
            .map(ToWit::to_wit)
            .map_err(|e| self.to_wit(e)))
    }

    async fn create_image(
        &mut self,
        region: String,
        instance_id: String,
        name: String,
        lineage: Option<String>,
    ) -> wasmtime::Result<Result<ec2::Image, types::Error>> {
        let Call { c, key, _turn, .. } =
            allowed!(self, access("ec2", "create-image", &[&region], vec![Resource::new("instance", &instance_id), Resource::new("image", &name)], true));
        simulated!(self, |s| s.ec2_create_image(&region, &instance_id, &name, lineage.as_deref()));
        if self.plan_ec2("CreateImage", &region, &name, format!("create AMI {name} from instance {instance_id}")) {
            return Ok(Ok(ec2::Image { id: format!("ami-planned-{name}"), region, name, state: "available".into(), created: String::new() }));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "ec2", operation = "CreateImage", region = %region, resource = %name);
        Ok(aws_ec2::create_image(&c, &region, &instance_id, &name, lineage.as_deref(), &key)
            .instrument(span)
            .await
            .map(ToWit::to_wit)
            .map_err(|e| self.to_wit(e)))
    }

    async fn copy_image(
        &mut self,
        source_region: String,
        image_id: String,
        target_region: String,
        name: String,
        lineage: Option<String>,
    ) -> wasmtime::Result<Result<ec2::Image, types::Error>> {
        let Call { c, key, _turn, .. } = allowed!(
            self,
            access("ec2", "copy-image", &[&source_region, &target_region], vec![Resource::new("image", &image_id), Resource::new("image", &name)], true)
        );
        simulated!(self, |s| s.ec2_copy_image(&source_region, &image_id, &target_region, &name, lineage.as_deref()));
        if self.plan_ec2("CopyImage", &target_region, &name, format!("copy AMI {image_id} from {source_region} as {name}")) {
            return Ok(Ok(ec2::Image { id: format!("ami-planned-{name}"), region: target_region, name, state: "available".into(), created: String::new() }));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "ec2", operation = "CopyImage", region = %target_region, resource = %name);
        Ok(aws_ec2::copy_image(&c, &source_region, &image_id, &target_region, &name, lineage.as_deref(), &key)
            .instrument(span)
            .await
            .map(ToWit::to_wit)
            .map_err(|e| self.to_wit(e)))
    }

    async fn wait_image_available(&mut self, region: String, image_id: String, timeout_seconds: u32) -> wasmtime::Result<Result<ec2::Image, types::Error>> {
        let Call { c, _turn, .. } = allowed!(self, access("ec2", "wait-image-available", &[&region], vec![Resource::new("image", &image_id)], false));
        simulated!(self, |s| s.ec2_wait_image_available(&region, &image_id, timeout_seconds));
        if self.dry_run().is_some() && image_id.starts_with("ami-planned-") {
            let name = image_id.trim_start_matches("ami-planned-").to_string();
            return Ok(Ok(ec2::Image { id: image_id, region, name, state: "available".into(), created: String::new() }));
        }
        let waited = cancellable(self.cancel_watch(), lent(&_turn, aws_ec2::wait_image_available(&c, &region, &image_id, secs(timeout_seconds)))).await?;
        Ok(waited.map(ToWit::to_wit).map_err(|e| self.to_wit(e)))
    }

    async fn run_instance(
        &mut self,
        region: String,
        image_id: String,
        instance_type: String,
        name: String,
    ) -> wasmtime::Result<Result<ec2::Instance, types::Error>> {
        let Call { c, key, run_id, _turn } =
            allowed!(self, access("ec2", "run-instance", &[&region], vec![Resource::new("image", &image_id), Resource::new("instance", &name)], true));
        simulated!(self, |s| s.ec2_run_instance(&region, &image_id, &name, &run_id));
        if self.plan_ec2("RunInstances", &region, &name, format!("launch {instance_type} {name} from {image_id}")) {
            let id = format!("i-planned-{name}");
            if let Some((plan, _)) = self.dry_run() {
                plan.plan_launch(&region, &id);
            }
            return Ok(Ok(ec2::Instance { id, region, state: "running".into(), image_id, volumes: vec![] }));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "ec2", operation = "RunInstances", region = %region, resource = %name);
        Ok(aws_ec2::run_instance(&c, &region, &image_id, &instance_type, &name, &run_id, &key)
            .instrument(span)
            .await
            .map(ToWit::to_wit)
            .map_err(|e| self.to_wit(e)))
    }

    async fn prune_images(&mut self, region: String, lineage: String, keep: u32) -> wasmtime::Result<Result<Vec<String>, types::Error>> {
        let Call { c, _turn, .. } = allowed!(self, access("ec2", "prune-images", &[&region], vec![Resource::new("lineage", &lineage)], true));
        simulated!(self, |s| s.ec2_prune_images(&region, &lineage, keep));
        if self.plan_ec2("DeregisterImage", &region, &lineage, format!("keep the newest {keep} AMIs of lineage {lineage}, deregister the rest")) {
            return Ok(Ok(vec![]));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "ec2", operation = "DeregisterImage", region = %region, resource = %lineage);
        Ok(aws_ec2::prune_images(&c, &region, &lineage, keep).instrument(span).await.map_err(|e| self.to_wit(e)))
    }

    async fn latest_image(&mut self, region: String, lineage: String) -> wasmtime::Result<Result<Option<ec2::Image>, types::Error>> {
        let Call { c, _turn, .. } = allowed!(self, access("ec2", "latest-image", &[&region], vec![Resource::new("lineage", &lineage)], false));
        simulated!(self, |s| s.ec2_latest_image(&region, &lineage));
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "ec2", operation = "DescribeImages", region = %region, resource = %lineage);
        Ok(aws_ec2::latest_image(&c, &region, &lineage).instrument(span).await.map(|i| i.map(ToWit::to_wit)).map_err(|e| self.to_wit(e)))
    }

    async fn terminate_instance(&mut self, region: String, instance_id: String) -> wasmtime::Result<Result<(), types::Error>> {
        let Call { c, run_id, _turn, .. } =
            allowed!(self, access("ec2", "terminate-instance", &[&region], vec![Resource::new("instance", &instance_id)], true));
        simulated!(self, |s| s.ec2_terminate_instance(&region, &instance_id, &run_id));
        if self.plan_ec2("TerminateInstances", &region, &instance_id, format!("terminate {instance_id} (launched by this run)")) {
            if let Some((plan, _)) = self.dry_run() {
                plan.plan_terminate(&region, &instance_id);
            }
            return Ok(Ok(()));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "ec2", operation = "TerminateInstances", region = %region, resource = %instance_id);
        Ok(aws_ec2::terminate_instance(&c, &region, &instance_id, &run_id).instrument(span).await.map_err(|e| self.to_wit(e)))
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
        let Call { c, _turn, .. } = allowed!(self, access("ec2", "tag", &[&region], vec![Resource::new(kind, &id)], true));
        simulated!(self, |s| s.ec2_tag(&region, &id, &tags));
        if let Some((plan, step)) = self.dry_run() {
            let detail = format!("tag {id}: {}", tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "));
            plan.record(PlannedChange { step, service: "ec2", operation: "CreateTags", region: region.clone(), resource: id.clone(), detail });
            return Ok(Ok(true));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "ec2", operation = "CreateTags", region = %region, resource = %id);
        Ok(aws_ec2::tag(&c, &region, &id, &tags).instrument(span).await.map_err(|e| self.to_wit(e)))
    }

    async fn run_instances(&mut self, region: String) -> wasmtime::Result<Result<Vec<String>, types::Error>> {
        let Call { c, run_id, _turn, .. } = allowed!(self, access("ec2", "run-instances", &[&region], vec![], false));
        simulated!(self, |s| s.ec2_run_instances(&region, &run_id));
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "ec2", operation = "DescribeInstances", region = %region);
        let planned = self.dry_run().map(|(plan, _)| plan.launched_in(&region)).unwrap_or_default();
        Ok(aws_ec2::run_instances(&c, &region, &run_id).instrument(span).await.map(|real| [real, planned].concat()).map_err(|e| self.to_wit(e)))
    }
}

impl route53::Host for HostState {
    async fn get_records(&mut self, zone: String, name: String) -> wasmtime::Result<Result<Vec<route53::RecordSet>, types::Error>> {
        let Call { c, _turn, .. } =
            allowed!(self, access("route53", "get-records", &[], vec![Resource::new("zone", &zone), Resource::new("record", &name)], false));
        simulated!(self, |s| s.route53_get_records(&zone, &name));
        let sets = match self.dry_run().and_then(|(plan, _)| plan.records(&zone, &name)) {
            Some(planned) => Ok(planned),
            None => aws_r53::get_records(&c, &zone, &name).await,
        };
        Ok(sets.map(ToWit::to_wit).map_err(|e| self.to_wit(e)))
    }

    async fn upsert_cname(&mut self, zone: String, name: String, target: String, ttl: u32, timeout_seconds: u32) -> wasmtime::Result<Result<(), types::Error>> {
        let Call { c, _turn, .. } =
            allowed!(self, access("route53", "upsert-cname", &[], vec![Resource::new("zone", &zone), Resource::new("record", &name)], true));
        simulated!(self, |s| s.route53_upsert_cname(&zone, &name, &target, ttl, timeout_seconds));
        if let Some((plan, step)) = self.dry_run() {
            let current = match planned_or_real(&plan, &c, &zone, &name).await {
                Ok(sets) => sets,
                Err(e) => return Ok(Err(self.to_wit(e))),
            };
            if current.iter().any(|r| r.is_cname_to(&target)) {
                return Ok(Ok(()));
            }
            let old = current.iter().find(|r| r.record_type == "CNAME" && r.set_identifier.is_none()).and_then(|r| r.values.first().cloned());
            let detail = format!("point {name} at {target} (now {})", old.as_deref().unwrap_or("absent"));
            plan.record(PlannedChange {
                step,
                service: "route53",
                operation: "ChangeResourceRecordSets",
                region: "global".into(),
                resource: name.clone(),
                detail,
            });
            let mut next: Vec<aws_r53::RecordSet> = current.into_iter().filter(|r| !(r.record_type == "CNAME" && r.set_identifier.is_none())).collect();
            next.push(aws_r53::RecordSet {
                name: aws_r53::fqdn(&name),
                record_type: "CNAME".into(),
                ttl: Some(ttl),
                set_identifier: None,
                weight: None,
                values: vec![target.clone()],
                failover: None,
                health_check: None,
            });
            plan.plan_records(&zone, &name, next);
            return Ok(Ok(()));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "route53", operation = "ChangeResourceRecordSets", resource = %name);
        Ok(lent(&_turn, aws_r53::upsert_cname(&c, &zone, &name, &target, ttl, secs(timeout_seconds)).instrument(span))
            .await
            .map(|_| ())
            .map_err(|e| self.to_wit(e)))
    }

    async fn set_weights(
        &mut self,
        zone: String,
        name: String,
        targets: Vec<route53::WeightedTarget>,
        ttl: u32,
        timeout_seconds: u32,
    ) -> wasmtime::Result<Result<(), types::Error>> {
        let Call { c, _turn, .. } =
            allowed!(self, access("route53", "set-weights", &[], vec![Resource::new("zone", &zone), Resource::new("record", &name)], true));
        let targets = crate::convert::weighted_targets(targets);
        simulated!(self, |s| s.route53_set_weights(&zone, &name, &targets, ttl));
        if let Some((plan, step)) = self.dry_run() {
            let mut current = match planned_or_real(&plan, &c, &zone, &name).await {
                Ok(sets) => sets,
                Err(e) => return Ok(Err(self.to_wit(e))),
            };
            let planned = match aws_r53::weight_changes(&name, &current, &targets) {
                Ok(w) => w,
                Err(e) => return Ok(Err(self.to_wit(e))),
            };
            let mut changed = Vec::new();
            for w in &planned {
                if w.create {
                    changed.push(format!("{} new at {}", w.set_identifier, w.weight));
                    current.push(aws_r53::RecordSet {
                        name: aws_r53::fqdn(&name),
                        record_type: "CNAME".into(),
                        ttl: Some(ttl),
                        set_identifier: Some(w.set_identifier.clone()),
                        weight: Some(w.weight),
                        values: w.value.iter().cloned().collect(),
                        failover: None,
                        health_check: None,
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
                let detail = format!("weights of {name}: {}", changed.join(", "));
                plan.record(PlannedChange {
                    step,
                    service: "route53",
                    operation: "ChangeResourceRecordSets",
                    region: "global".into(),
                    resource: name.clone(),
                    detail,
                });
                plan.plan_records(&zone, &name, current);
            }
            return Ok(Ok(()));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "route53", operation = "ChangeResourceRecordSets", resource = %name);
        Ok(lent(&_turn, aws_r53::set_weights(&c, &zone, &name, &targets, ttl, secs(timeout_seconds)).instrument(span))
            .await
            .map(|_| ())
            .map_err(|e| self.to_wit(e)))
    }

    async fn get_health_check(&mut self, id: String) -> wasmtime::Result<Result<route53::HealthCheck, types::Error>> {
        let Call { c, _turn, .. } = allowed!(self, access("route53", "get-health-check", &[], vec![Resource::new("healthcheck", &id)], false));
        simulated!(self, |s| s.route53_get_health_check(&id));
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "route53", operation = "GetHealthCheck", resource = %id);
        Ok(aws_r53::get_health_check(&c, &id).instrument(span).await.map(ToWit::to_wit).map_err(|e| self.to_wit(e)))
    }

    async fn update_health_check(&mut self, id: String, disabled: bool, inverted: bool) -> wasmtime::Result<Result<route53::HealthCheck, types::Error>> {
        let Call { c, _turn, .. } = allowed!(self, access("route53", "update-health-check", &[], vec![Resource::new("healthcheck", &id)], true));
        simulated!(self, |s| s.route53_update_health_check(&id, disabled, inverted));
        if let Some((plan, step)) = self.dry_run() {
            let now = match aws_r53::get_health_check(&c, &id).await {
                Ok(h) => h,
                Err(e) => return Ok(Err(self.to_wit(e))),
            };
            if now.disabled != disabled || now.inverted != inverted {
                let detail = format!("health check {id}: disabled {} -> {disabled}, inverted {} -> {inverted}", now.disabled, now.inverted);
                plan.record(PlannedChange { step, service: "route53", operation: "UpdateHealthCheck", region: "global".into(), resource: id.clone(), detail });
            }
            return Ok(Ok((aws_r53::HealthCheck { disabled, inverted, ..now }).to_wit()));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "route53", operation = "UpdateHealthCheck", resource = %id);
        let updated = aws_r53::update_health_check(&c, &id, disabled, inverted).instrument(span).await;
        Ok(updated.map(|(_, now)| now.to_wit()).map_err(|e| self.to_wit(e)))
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
        let Call { c, _turn, .. } = allowed!(self, access("route53", "upsert-failover", &[], resources, true));
        let role = crate::convert::failover_role(role);
        simulated!(self, |s| s.route53_upsert_failover(&zone, &name, role, &set_identifier, &target, health_check.as_deref(), ttl));
        if let Some((plan, step)) = self.dry_run() {
            let mut current = match planned_or_real(&plan, &c, &zone, &name).await {
                Ok(sets) => sets,
                Err(e) => return Ok(Err(self.to_wit(e))),
            };
            if !current.iter().any(|r| r.is_failover(role, &set_identifier, &target, health_check.as_deref())) {
                let detail = format!("{} failover record {name} ({set_identifier}) at {target}", role.as_str());
                plan.record(PlannedChange {
                    step,
                    service: "route53",
                    operation: "ChangeResourceRecordSets",
                    region: "global".into(),
                    resource: name.clone(),
                    detail,
                });
                current.retain(|r| r.set_identifier.as_deref() != Some(set_identifier.as_str()));
                current.push(aws_r53::RecordSet {
                    name: aws_r53::fqdn(&name),
                    record_type: "CNAME".into(),
                    ttl: Some(ttl),
                    set_identifier: Some(set_identifier.clone()),
                    weight: None,
                    values: vec![target.clone()],
                    failover: Some(role.as_str().into()),
                    health_check: health_check.clone(),
                });
                plan.plan_records(&zone, &name, current);
            }
            return Ok(Ok(()));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "route53", operation = "ChangeResourceRecordSets", resource = %name);
        let upsert =
            aws_r53::upsert_failover(&c, &zone, &name, role, &set_identifier, &target, health_check.as_deref(), ttl, secs(timeout_seconds)).instrument(span);
        Ok(lent(&_turn, upsert).await.map(|_| ()).map_err(|e| self.to_wit(e)))
    }

    async fn delete_cname(&mut self, zone: String, name: String, timeout_seconds: u32) -> wasmtime::Result<Result<(), types::Error>> {
        let Call { c, _turn, .. } =
            allowed!(self, access("route53", "delete-cname", &[], vec![Resource::new("zone", &zone), Resource::new("record", &name)], true));
        simulated!(self, |s| s.route53_delete_cname(&zone, &name));
        if let Some((plan, step)) = self.dry_run() {
            let current = match planned_or_real(&plan, &c, &zone, &name).await {
                Ok(sets) => sets,
                Err(e) => return Ok(Err(self.to_wit(e))),
            };
            if current.iter().any(|r| r.record_type == "CNAME" && r.set_identifier.is_none()) {
                let detail = format!("delete the CNAME {name}");
                plan.record(PlannedChange {
                    step,
                    service: "route53",
                    operation: "ChangeResourceRecordSets",
                    region: "global".into(),
                    resource: name.clone(),
                    detail,
                });
                let rest = current.into_iter().filter(|r| !(r.record_type == "CNAME" && r.set_identifier.is_none())).collect();
                plan.plan_records(&zone, &name, rest);
            }
            return Ok(Ok(()));
        }
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "route53", operation = "ChangeResourceRecordSets", resource = %name);
        Ok(lent(&_turn, aws_r53::delete_cname(&c, &zone, &name, secs(timeout_seconds)).instrument(span)).await.map(|_| ()).map_err(|e| self.to_wit(e)))
    }
}

impl cloudwatch::Host for HostState {
    async fn describe_alarms(&mut self, region: String, names: Vec<String>) -> wasmtime::Result<Result<Vec<cloudwatch::Alarm>, types::Error>> {
        let resources = names.iter().map(|n| Resource::new("alarm", n)).collect();
        let Call { c, _turn, .. } = allowed!(self, access("cloudwatch", "describe-alarms", &[&region], resources, false));
        simulated!(self, |s| s.cloudwatch_describe_alarms(&region, &names));
        let span = tracing::info_span!(parent: self.step_span(), "aws", request_id = tracing::field::Empty, service = "cloudwatch", operation = "DescribeAlarms", region = %region, resource = %names.join(","));
        Ok(aws_cw::describe_alarms(&c, &region, &names).instrument(span).await.map(ToWit::to_wit).map_err(|e| self.to_wit(e)))
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
