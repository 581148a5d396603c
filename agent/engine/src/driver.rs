//! Driving a run: claim it, execute the runbook from the top (the journal
//! answers what already happened), record how its main part ended, run its
//! undos and cleanups, and record the final status.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use drover_journal::{
    Created, Durability, ErrorRecord, Event, Journal, JournalError, Lease, Level, NewRun, Op, RunRecord, RunStatus, RunbookRef, current_owner,
};
use serde_json::{Value, json};
use wasmtime::{Store, StoreLimitsBuilder, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use tracing::Instrument;

use crate::backend::Backends;
use crate::backend::aws::AwsBackend;
use crate::backend::plan::PlanBackend;
use crate::backend::sim::SimBackend;
use crate::bindings;
use crate::cancel::CancelSignal;
use crate::capabilities::Gate;
use crate::durable::{AfterFailure, Durable, DurableError, Listed, Registration, StepStart};
use crate::events::{Observer, RunEvent};
use crate::host::{HostState, from_wit};
use crate::limits::{LimitExceeded, StepClock};
use crate::plan::{Plan, PlannedChange};
use crate::policy::Guard;
use crate::sandbox::{stderr_tail, wasi_for_run};
use crate::secrets::{Secrets, guest_params};
use crate::sections::{BranchCall, SectionRequest};
use crate::{EPOCH_TICK, Engine, EngineError, LoadedRunbook};

/// How often a driver looks for a cancel request in the journal.
const CANCEL_POLL: Duration = Duration::from_millis(200);

/// What a dry run did and would do.
pub struct DryRun {
    /// The run as it ended (in the throwaway journal).
    pub run: RunRecord,
    /// Its journal entries.
    pub entries: Vec<drover_journal::Entry>,
    /// Its events.
    pub events: Vec<drover_journal::Event>,
    /// The changes it would make, in order.
    pub plan: Vec<PlannedChange>,
}

/// A new run to start.
pub struct RunRequest {
    /// Its id (validated).
    pub run_id: String,
    /// Validated parameters (see [`crate::RunbookInfo::validate_params`]).
    pub params: Value,
    /// Start even though the runbook declares capabilities the operator has
    /// not granted (the override is recorded with the run; the calls that
    /// need the missing grants are still refused).
    pub accept_missing_grants: bool,
    /// Why the run starts, when not by hand (see `RunRecord::origin`).
    pub origin: Option<Value>,
    /// The scope the run holds while it has not ended: a run asking for a
    /// scope held by another unfinished run does not start
    /// ([`EngineError::ScopeHeld`] names the holder).
    pub scope: Option<String>,
}

impl RunRequest {
    /// Run `run_id` with `params`, refusing to start with missing grants.
    pub fn new(run_id: impl Into<String>, params: Value) -> Self {
        RunRequest { run_id: run_id.into(), params, accept_missing_grants: false, origin: None, scope: None }
    }
}

/// What [`Engine::admit`] did with a run request.
#[derive(Debug)]
pub enum Admitted {
    /// The run was created (id given); nothing has run yet.
    New(String),
    /// A run with that id exists (same runbook and parameters): here it is.
    Existing(RunRecord),
    /// Another unfinished run holds the scope asked for; nothing was created.
    Joined(RunRecord),
}

/// What a run's capability calls reach.
#[derive(Clone)]
pub(crate) enum World {
    /// The engine's: AWS, or the simulation it was built with (`drover test`).
    Given,
    /// A dry run's plan, reading through to the engine's world.
    Plan(Plan),
    /// This simulation (the deterministic simulation gives each schedule its own).
    Simulated(Arc<crate::simulation::Simulation>),
}

/// How the runbook's main part (`run`) ended.
#[derive(Debug, Clone)]
enum Ending {
    Succeeded(Value),
    Failed(ErrorRecord),
    Cancelled(ErrorRecord),
}

impl Ending {
    fn to_json(&self) -> Value {
        match self {
            Ending::Succeeded(r) => json!({"status": "succeeded", "result": r}),
            Ending::Failed(e) => json!({"status": "failed", "error": e}),
            Ending::Cancelled(e) => json!({"status": "cancelled", "error": e}),
        }
    }

    fn from_json(v: &Value) -> Ending {
        let error =
            || serde_json::from_value(v["error"].clone()).unwrap_or_else(|_| ErrorRecord::terminal("unknown", "the journaled end of the run has no error"));
        match v["status"].as_str() {
            Some("succeeded") => Ending::Succeeded(v["result"].clone()),
            Some("cancelled") => Ending::Cancelled(error()),
            _ => Ending::Failed(error()),
        }
    }

    fn error(&self) -> Option<&ErrorRecord> {
        match self {
            Ending::Succeeded(_) => None,
            Ending::Failed(e) | Ending::Cancelled(e) => Some(e),
        }
    }

    fn wit(&self) -> bindings::Ending {
        match self {
            Ending::Succeeded(_) => bindings::Ending::Succeeded,
            Ending::Failed(_) => bindings::Ending::Failed,
            Ending::Cancelled(_) => bindings::Ending::Cancelled,
        }
    }

    fn final_status(self) -> Op {
        let now = Some(Utc::now());
        match self {
            Ending::Succeeded(r) => Op::SetStatus { status: RunStatus::Succeeded, finished_at: now, result: Some(r), error: None },
            Ending::Failed(e) => Op::SetStatus { status: RunStatus::Failed, finished_at: now, result: None, error: Some(e) },
            Ending::Cancelled(e) => Op::SetStatus { status: RunStatus::Cancelled, finished_at: now, result: None, error: Some(e) },
        }
    }
}

/// The record of a new run of `runbook` with `params`. Secrets must resolve
/// before anything is recorded, and no secret value may reach the journal,
/// even pasted into a plain parameter.
fn new_run(runbook: &LoadedRunbook, run_id: &str, params: &Value) -> Result<NewRun, EngineError> {
    Ok(NewRun {
        run_id: run_id.to_string(),
        runbook: RunbookRef { name: runbook.info.name.clone(), version: runbook.info.version.clone(), digest: runbook.info.digest.clone() },
        params: Secrets::resolve(params)?.mask_params(params),
        created_at: Utc::now(),
        policy_override: None,
        origin: None,
        scope: None,
    })
}

/// Checks a run id: 1 to 64 of `[A-Za-z0-9._-]`.
pub fn check_run_id(id: &str) -> Result<(), EngineError> {
    let ok = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) && !id.starts_with('.');
    if ok { Ok(()) } else { Err(EngineError::BadRunId(id.into())) }
}

/// Who approves the gates of `run` when its origin says nobody is to be
/// asked (a drill configured `unattended`).
fn unattended_by(run: &RunRecord) -> Option<String> {
    let origin = run.origin.as_ref()?;
    if origin["unattended"].as_bool() != Some(true) {
        return None;
    }
    let what = match (origin["kind"].as_str(), origin["name"].as_str()) {
        (Some(kind), Some(name)) => format!("{kind} '{name}'"),
        _ => "run".to_string(),
    };
    Some(format!("drover (unattended {what})"))
}

/// A failure of the journal (or another infrastructure failure) while the
/// driver itself calls into `Durable`.
fn infra(e: DurableError) -> EngineError {
    infra_ref(&e)
}

fn infra_ref(e: &DurableError) -> EngineError {
    match e {
        DurableError::Journal(j) => EngineError::Journal(j.clone()),
        // `drive` fills in the run id.
        DurableError::Suspended => EngineError::Suspended { run_id: String::new() },
        DurableError::Crashed { point } => EngineError::Crashed { run_id: String::new(), point: point.clone() },
        other => EngineError::Internal(other.to_string()),
    }
}

/// Whether a trap stops the run resumable, with the stop recorded (the
/// journal works, so the run can say why): a replay that diverged from the
/// journal (non-determinism), or an audit log that cannot be written. No
/// outcome is recorded and no undo or cleanup runs.
fn stops_resumable(trap: &wasmtime::Error) -> Option<ErrorRecord> {
    if let Some(e @ DurableError::Rule(v)) = trap.downcast_ref::<DurableError>()
        && v.is_non_determinism()
        // The power test's switch: before the fix, a divergence failed the run and ran its undos.
        && !drover_replay::revert::reverted(drover_replay::revert::Fix::NonDeterminismStops)
    {
        return Some(ErrorRecord::terminal(e.code(), e.to_string()));
    }
    if let Some(DurableError::BranchStopped { code, message, .. }) = trap.downcast_ref::<DurableError>() {
        return Some(ErrorRecord::terminal(code.clone(), message.clone()));
    }
    trap.downcast_ref::<crate::audit::AuditError>().map(|e| ErrorRecord::terminal("audit-log", e.to_string()))
}

/// If a trap came from the journal failing (or the claim being lost), or
/// from the agent stopping, the driver must stop without recording an
/// outcome: the run stays resumable. (`drive` names the run in `Suspended`.)
fn stops_without_outcome(trap: &wasmtime::Error) -> Option<EngineError> {
    match trap.downcast_ref::<DurableError>() {
        Some(e @ (DurableError::Journal(_) | DurableError::Suspended | DurableError::Crashed { .. })) => Some(infra_ref(e)),
        _ => None,
    }
}

impl Engine {
    pub(crate) fn new_store(&self, durable: Option<Durable>, run_id: &str, created_unix: i64, gate: Option<Arc<Gate>>) -> (Store<HostState>, MemoryOutputPipe) {
        let (wasi, stderr) = wasi_for_run(run_id, created_unix);
        let limits = StoreLimitsBuilder::new().memory_size(self.limits.memory_bytes).instances(32).tables(64).memories(16).trap_on_grow_failure(true).build();
        let clock = durable.as_ref().map(Durable::step_clock);
        let sim = durable.as_ref().and_then(Durable::simulation).or(self.sim.as_ref());
        let backends = match (sim, durable.as_ref().and_then(Durable::plan)) {
            (Some(sim), _) => Backends::of(SimBackend(sim.clone())),
            (None, Some(plan)) => Backends::of(PlanBackend { plan: plan.clone() }),
            (None, None) => Backends::of(AwsBackend),
        };
        let state = HostState {
            durable,
            wasi,
            table: Default::default(),
            limits,
            cpu_ticks: 0,
            aws: self.aws.clone(),
            backends,
            gate,
            step_ticks: (0, 0),
            log_bytes: 0,
            max_log_bytes: self.limits.max_log_bytes,
            branch: None,
            sections: None,
            max_branches: self.limits.max_branches,
        };
        let mut store = Store::new(&self.wasm, state);
        store.limiter(|s| &mut s.limits);
        let ticks = |d: Duration| (d.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        let (run_budget, step_budget) = (self.limits.cpu_time, self.limits.step_cpu_time);
        let (run_ticks, step_ticks) = (ticks(run_budget), ticks(step_budget));
        store.epoch_deadline_callback(move |mut ctx| {
            let s = ctx.data_mut();
            s.cpu_ticks += 1;
            if s.cpu_ticks > run_ticks {
                return Err(wasmtime::Error::new(LimitExceeded::cpu_run(run_budget)));
            }
            if let Some(clock) = &clock {
                let (step, generation) = clock.current();
                if s.step_ticks.1 != generation {
                    s.step_ticks = (0, generation);
                }
                if let Some((key, _)) = step {
                    s.step_ticks.0 += 1;
                    if s.step_ticks.0 > step_ticks {
                        return Err(wasmtime::Error::new(LimitExceeded::cpu_step(step_budget, Some(&key))));
                    }
                }
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store.set_epoch_deadline(1);
        (store, stderr)
    }

    /// The policy gate of a run of `runbook` with `params`.
    fn gate(&self, runbook: &LoadedRunbook, run_id: &str, params: &Value, origin: Option<&Value>) -> Result<Arc<Gate>, EngineError> {
        let guard =
            Guard::new(&runbook.info, params, &self.policy).map_err(|detail| EngineError::BadDescription { name: runbook.info.name.clone(), detail })?;
        Ok(Arc::new(Gate {
            guard,
            audit: self.audit.clone(),
            run_id: run_id.into(),
            runbook: runbook.info.name.clone(),
            digest: runbook.info.digest.clone(),
            host_calls: self.host_calls.clone(),
            priority: crate::host_calls::Priority::of_origin(origin),
        }))
    }

    /// What `runbook` run with `params` declares that the operator has not
    /// granted (empty when everything is granted).
    pub fn missing_grants(&self, runbook: &LoadedRunbook, params: &Value) -> Vec<String> {
        crate::policy::missing_for(&runbook.info, params, &self.policy)
    }

    /// Starts run `req` of `runbook`, or, if a run with that id exists,
    /// continues it (same runbook and parameters required) or reports it as it
    /// ended. Returns the run as it stands when the driver stops.
    pub async fn start(&self, journal: Arc<dyn Journal>, runbook: &LoadedRunbook, req: RunRequest, observer: Observer) -> Result<RunRecord, EngineError> {
        match self.admit(&journal, runbook, req).await? {
            Admitted::New(run_id) => self.drive(journal, runbook, &run_id, observer, World::Given).await,
            Admitted::Existing(run) if run.status.is_final() => Ok(run),
            Admitted::Existing(run) => self.drive(journal, runbook, &run.run_id, observer, World::Given).await,
            Admitted::Joined(holder) => Err(EngineError::ScopeHeld { scope: holder.scope.clone().unwrap_or_default(), run_id: holder.run_id }),
        }
    }

    /// Records run `req` of `runbook` without driving it (see
    /// [`Engine::start`], which also drives it; [`Engine::continue_run`]
    /// drives an admitted run). Checks the id, the secrets and the grants
    /// first; a run with the same id must have the same runbook and
    /// parameters; a scope held by another unfinished run is joined.
    pub async fn admit(&self, journal: &Arc<dyn Journal>, runbook: &LoadedRunbook, req: RunRequest) -> Result<Admitted, EngineError> {
        check_run_id(&req.run_id)?;
        let mut new = new_run(runbook, &req.run_id, &req.params)?;
        let missing = self.missing_grants(runbook, &req.params);
        if !missing.is_empty() {
            if !req.accept_missing_grants {
                return Err(EngineError::NotGranted { runbook: runbook.info.name.clone(), missing });
            }
            tracing::warn!(runbook = %runbook.info.name, missing = ?missing, "starting with capabilities not granted (operator override)");
            let me = current_owner();
            let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
            new.policy_override = Some(json!({
                "accepted_missing_grants": missing,
                "by": format!("{user}@{} (pid {})", me.host, me.pid),
                "at": Utc::now(),
            }));
        }
        new.origin = req.origin;
        new.scope = req.scope;
        match journal.create_run(&new).await? {
            Created::New => Ok(Admitted::New(new.run_id)),
            Created::Joined(holder) => Ok(Admitted::Joined(holder)),
            Created::Existing(run) => {
                if run.runbook.digest != new.runbook.digest {
                    return Err(EngineError::RunIdConflict {
                        run_id: run.run_id,
                        what: format!("another runbook ({} {}, sha256 {})", run.runbook.name, run.runbook.version, run.runbook.digest),
                    });
                }
                if run.params != new.params {
                    return Err(EngineError::RunIdConflict { run_id: run.run_id, what: format!("other parameters ({})", run.params) });
                }
                Ok(Admitted::Existing(run))
            }
        }
    }

    /// Drives admitted run `run_id` with `runbook` (the one it was admitted
    /// with) until it ends or the engine shuts down.
    pub async fn continue_run(&self, journal: Arc<dyn Journal>, runbook: &LoadedRunbook, run_id: &str, observer: Observer) -> Result<RunRecord, EngineError> {
        self.drive(journal, runbook, run_id, observer, World::Given).await
    }

    /// Resumes run `run_id` with the runbook it is pinned to, or with
    /// `replacement` (a fixed build, pinned to the run before anything runs:
    /// later resumes and takeovers run it). Its replay is checked against
    /// the journal: a divergence stops the run before anything executes
    /// ([`EngineError::Stopped`]: no outcome, no undo, resumable) and the pin
    /// goes back to the build before it.
    pub async fn resume(
        &self,
        journal: Arc<dyn Journal>,
        run_id: &str,
        replacement: Option<&LoadedRunbook>,
        observer: Observer,
    ) -> Result<RunRecord, EngineError> {
        let run = journal.run(run_id).await?.ok_or_else(|| JournalError::UnknownRun(run_id.into()))?;
        if run.status.is_final() {
            return Ok(run);
        }
        match replacement {
            Some(rb) => self.drive(journal, rb, run_id, observer, World::Given).await,
            None => {
                let rb = self.load_pinned(&run.runbook.digest).await?;
                self.drive(journal, &rb, run_id, observer, World::Given).await
            }
        }
    }

    /// A dry run of `runbook` with `params`: it runs for real against a
    /// throwaway journal (the agent's store is not touched), reads are real,
    /// and every mutating capability call is planned instead of made.
    pub async fn dry_run(&self, runbook: &LoadedRunbook, params: Value, observer: Observer) -> Result<DryRun, EngineError> {
        self.plan_run(runbook, params, observer, Plan::default()).await
    }

    /// Would a run of `runbook` with `params` succeed right now? A dry run in
    /// which the runbook is told (`run-context.mode`) to check the
    /// conditions it depends on and report them as findings in its result.
    pub async fn readiness(&self, runbook: &LoadedRunbook, params: Value, observer: Observer) -> Result<DryRun, EngineError> {
        self.plan_run(runbook, params, observer, Plan::for_readiness()).await
    }

    async fn plan_run(&self, runbook: &LoadedRunbook, params: Value, observer: Observer, plan: Plan) -> Result<DryRun, EngineError> {
        let dir = std::env::temp_dir().join(format!("drover-dry-run-{}-{:08x}", std::process::id(), rand::random::<u32>()));
        let result = async {
            let journal: Arc<dyn Journal> = Arc::new(drover_journal::SqliteJournal::open(dir.join("dry-run.db"))?);
            let run_id = format!("dry-run-{:08x}", rand::random::<u32>());
            journal.create_run(&new_run(runbook, &run_id, &params)?).await?;
            let run = self.drive(journal.clone(), runbook, &run_id, observer, World::Plan(plan.clone())).await?;
            Ok(DryRun {
                entries: crate::sections::entries_with_branches(journal.as_ref(), &run_id).await?,
                events: journal.events(&run_id).await?,
                run,
                plan: plan.changes(),
            })
        }
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    pub(crate) async fn drive(
        &self,
        journal: Arc<dyn Journal>,
        runbook: &LoadedRunbook,
        run_id: &str,
        observer: Observer,
        world: World,
    ) -> Result<RunRecord, EngineError> {
        self.drive_linked(journal, runbook, run_id, observer, world, vec![], None).await
    }

    /// Redrives failed or cancelled run `run_id` (see [`crate::redrive`]):
    /// refused, with the reason, before anything is written when it cannot
    /// be; otherwise reopened under this driver's claim and driven on with
    /// the runbook it is pinned to, or with `replacement` (pinned to the run
    /// as a resume pins it).
    pub async fn redrive(
        &self,
        journal: Arc<dyn Journal>,
        run_id: &str,
        redrive: &crate::redrive::Redrive,
        replacement: Option<&LoadedRunbook>,
        observer: Observer,
    ) -> Result<RunRecord, EngineError> {
        let run = journal.run(run_id).await?.ok_or_else(|| JournalError::UnknownRun(run_id.into()))?;
        // Checked here first so a refusal loads nothing; checked again under the claim.
        let entries = journal.entries(run_id).await?;
        let approvals = journal.approvals(Some(run_id), false).await?;
        let audit = |decision: &str, why: String| {
            crate::audit::AuditRecord::control(&run, "drover.redrive", redrive.from.clone(), format!("run/{run_id}"), decision, why)
        };
        if let Err(e) = crate::redrive::plan(&run, &entries, &approvals, redrive.from.as_deref()) {
            self.audit.append(&audit("deny", format!("by {}: {}; refused: {e}", redrive.by, redrive.reason))).await?;
            return Err(e);
        }
        // Recorded (and on disk) before the run is reopened, like every audited action.
        self.audit.append(&audit("allow", format!("by {}: {}", redrive.by, redrive.reason))).await?;
        let pinned;
        let runbook = match replacement {
            Some(rb) => rb,
            None => {
                pinned = self.load_pinned(&run.runbook.digest).await?;
                &pinned
            }
        };
        self.drive_linked(journal, runbook, run_id, observer, World::Given, vec![], Some(redrive)).await
    }

    /// [`Engine::drive`], with signals that stop the run as a cancel does
    /// (`links`: a branch stops with its run, and with its siblings under
    /// fail-fast), reopening the run first under the claim when `redrive`
    /// asks for it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn drive_linked(
        &self,
        journal: Arc<dyn Journal>,
        runbook: &LoadedRunbook,
        run_id: &str,
        observer: Observer,
        world: World,
        links: Vec<Arc<CancelSignal>>,
        redrive: Option<&crate::redrive::Redrive>,
    ) -> Result<RunRecord, EngineError> {
        let (plan, sim) = match world {
            World::Given => (None, self.sim.clone()),
            World::Plan(plan) => (Some(plan), self.sim.clone()),
            World::Simulated(sim) => (None, Some(sim)),
        };
        let run = journal.run(run_id).await?.ok_or_else(|| JournalError::UnknownRun(run_id.into()))?;
        let secrets = Arc::new(Secrets::resolve(&run.params)?);
        let claimed_at = crate::lease::now();
        let lease = journal.claim(run_id, &current_owner()).await?;
        let keeper = crate::lease::LeaseKeeper::start(journal.clone(), lease.clone(), claimed_at);
        // What the run is now that it is ours (another driver may have ended
        // it between the read above and the claim).
        let mut run = journal.run(run_id).await?.ok_or_else(|| JournalError::UnknownRun(run_id.into()))?;
        if let Some(redrive) = redrive {
            match crate::redrive::reopen(&journal, &lease, &run, redrive).await {
                Ok((reopening, at)) => observer.send(RunEvent::Log(reopening.event(redrive, at))),
                Err(e) => {
                    drop(keeper);
                    let _ = journal.release(&lease).await;
                    return Err(e);
                }
            }
            run = journal.run(run_id).await?.ok_or_else(|| JournalError::UnknownRun(run_id.into()))?;
        }
        if run.status.is_final() {
            drop(keeper);
            let _ = journal.release(&lease).await;
            return Ok(run);
        }
        let cancel = Arc::new(CancelSignal::default());
        let pause = Arc::new(crate::cancel::PauseSignal::default());
        pause.set(run.pause.clone());
        let watcher = tokio::spawn(watch_for_cancel(journal.clone(), run_id.to_string(), cancel.clone(), pause.clone()));
        let linked: Vec<_> = links
            .into_iter()
            .map(|link| {
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    link.raised().await;
                    if let Some(req) = link.request() {
                        cancel.raise(req);
                    }
                })
            })
            .collect();
        let span = tracing::info_span!(
            "run",
            run_id,
            runbook = %runbook.info.name,
            version = %runbook.info.version,
            dry_run = plan.is_some(),
            origin = run.origin.as_ref().and_then(|o| o["kind"].as_str()).unwrap_or("cli"),
        );
        if let Some(hook) = &self.span_hook {
            hook(&span, &run);
        }
        let result =
            self.execute(journal.clone(), runbook, run, lease.clone(), keeper.guard(), secrets, (cancel, pause), observer, plan, sim).instrument(span).await;
        watcher.abort();
        linked.iter().for_each(|l| l.abort());
        drop(keeper);
        // Giving up the claim is a courtesy: a dead driver's claim is taken over anyway.
        let _ = journal.release(&lease).await;
        result.map_err(|e| match e {
            EngineError::Suspended { .. } => EngineError::Suspended { run_id: run_id.to_string() },
            EngineError::Crashed { point, .. } => EngineError::Crashed { run_id: run_id.to_string(), point },
            other => other,
        })?;
        journal.run(run_id).await?.ok_or_else(|| EngineError::Journal(JournalError::UnknownRun(run_id.into())))
    }

    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        journal: Arc<dyn Journal>,
        runbook: &LoadedRunbook,
        run: RunRecord,
        lease: Lease,
        guard: crate::lease::LeaseGuard,
        secrets: Arc<Secrets>,
        (cancel, pause): (Arc<CancelSignal>, Arc<crate::cancel::PauseSignal>),
        observer: Observer,
        plan: Option<Plan>,
        sim: Option<Arc<crate::simulation::Simulation>>,
    ) -> Result<(), EngineError> {
        let run_id = run.run_id.as_str();
        let entries = journal.entries(run_id).await?;
        observer.send(RunEvent::Started { run_id: run_id.into(), journaled_entries: entries.len() });
        let mut resumed = Vec::new();
        if run.runbook.digest != runbook.info.digest && plan.is_none() {
            // Persisted before anything runs: a later resume, or another
            // agent taking the run over, runs this build (its bytes are kept
            // by digest, as `load` keeps every component).
            tracing::warn!(from = %run.runbook.digest, to = %runbook.info.digest, "resuming with a replacement runbook");
            let me = current_owner();
            let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
            resumed.push(replacement_event(
                format!(
                    "resumed with a replacement runbook: {} {} (sha256 {}) in place of {} {} (sha256 {}), by {user}@{} (pid {}); \
                     the run is pinned to it from now on",
                    runbook.info.name, runbook.info.version, runbook.info.digest, run.runbook.name, run.runbook.version, run.runbook.digest, me.host, me.pid
                ),
                &run.runbook,
                &runbook_ref(runbook),
            ));
            resumed.push(Op::SetRunbook(runbook_ref(runbook)));
        }
        if run.error.is_some() {
            // It stopped without an outcome (see `stops_resumable`) and goes on now.
            resumed.push(Op::SetStatus { status: RunStatus::Running, finished_at: None, result: None, error: None });
        }
        if !resumed.is_empty() {
            journal.commit(&lease, resumed, Durability::Durable).await?;
        }
        if let Some(req) = run.cancel.clone() {
            cancel.raise(req);
        }
        let gate = self.gate(runbook, run_id, &run.params, run.origin.as_ref())?;
        let mut durable = Durable::new(journal.clone(), lease.clone(), entries, observer.clone(), self.limits.max_output_bytes, secrets, cancel.clone())
            .with_plan(plan)
            .with_unattended(unattended_by(&run))
            .with_shutdown(self.shutdown.clone())
            .with_pause(pause)
            .with_simulation(sim)
            .with_lease_guard(guard)
            .with_label(crate::sections::label_of(&run));

        let ending = match durable.recorded_end() {
            // The main part ended before a crash: go straight to the actions.
            Some(end) => {
                durable.enter_finalize();
                Ending::from_json(end.output.as_ref().unwrap_or(&Value::Null))
            }
            None => {
                if run.status == RunStatus::Waiting {
                    let ops = vec![Op::SetStatus { status: RunStatus::Running, finished_at: None, result: None, error: None }];
                    journal.commit(&lease, ops, Durability::Buffered).await?;
                }
                let parent = crate::sections::Parent { journal: &journal, runbook, run: &run, world: world_of(&durable), cancel: &cancel, observer: &observer };
                let (ending, d) = self.run_main(runbook, &run, durable, gate.clone(), &parent).await?;
                durable = d;
                ending
            }
        };

        // A branch that succeeded hands its undos and cleanups to its run.
        let hands_over = BranchCall::of_run(&run).is_some() && matches!(ending, Ending::Succeeded(_));
        let mut durable = if hands_over { durable } else { self.finalize(runbook, &run, &ending, durable, gate, &journal).await? };
        let mut ops = durable.take_pending();
        ops.push(ending.final_status());
        durable.finish(ops).await.map_err(infra)?;
        Ok(())
    }

    /// Runs the runbook's `run` and records how it ended (the `End` entry).
    async fn run_main(
        &self,
        runbook: &LoadedRunbook,
        run: &RunRecord,
        durable: Durable,
        gate: Arc<Gate>,
        parent: &crate::sections::Parent<'_>,
    ) -> Result<(Ending, Durable), EngineError> {
        let clock = durable.step_clock();
        let (mut store, stderr) = self.new_store(Some(durable), &run.run_id, run.created_at.timestamp(), Some(gate));
        let (sections, mut requests) = tokio::sync::mpsc::channel::<SectionRequest>(1);
        store.data_mut().branch = BranchCall::of_run(run);
        store.data_mut().sections = Some(sections);
        let params = guest_params(&run.params).to_string();
        let left = (run.created_at + self.limits.run_timeout - Utc::now()).to_std().unwrap_or_default();
        let run_deadline = tokio::time::Instant::now() + left;
        let call = async {
            let instance = runbook.pre.instantiate_async(&mut store).await?;
            instance.call_run(&mut store, &params).await
        };
        // The runbook's parallel sections are driven here, beside its call:
        // its `branches.run` waits for the answer.
        let serve = async {
            while let Some(req) = requests.recv().await {
                let outcomes = self.run_section(parent, &req.section).await;
                let _ = req.reply.send(outcomes);
            }
            std::future::pending().await
        };
        let call = async {
            tokio::select! {
                r = call => r,
                never = serve => never,
            }
        };
        let outcome = self.within_deadlines(call, &clock, Some(run_deadline)).await;
        let mut durable = store.into_data().durable.ok_or_else(no_durable_state)?;
        let mut ops = durable.take_pending();
        let ending = match outcome {
            Ok(Ok(result)) => match durable.check_fully_replayed() {
                Ok(()) => {
                    let result = durable.mask_json(&result);
                    Ending::Succeeded(serde_json::from_str::<Value>(&result).unwrap_or(Value::String(result)))
                }
                Err(e) => match durable.cancel_request() {
                    // A cancel of a run that cannot replay ends it all the same.
                    Some(r) => Ending::Cancelled(ErrorRecord::terminal("cancelled", durable.mask(&format!("cancelled by {}: {}", r.by, r.reason)))),
                    None => return Err(stop(&mut durable, run, runbook, ops, ErrorRecord::terminal(e.code(), e.to_string())).await?),
                },
            },
            Ok(Err(e)) => match durable.cancel_request() {
                // Cancelled while a parallel section ran: the runbook saw its
                // branches stopped and gave up; the run was cancelled.
                Some(r) => {
                    let e = from_wit(e);
                    Ending::Cancelled(ErrorRecord::terminal(
                        "cancelled",
                        durable.mask(&format!("cancelled by {}: {}; the runbook then ended with: {}: {}", r.by, r.reason, e.code, e.message)),
                    ))
                }
                _ => Ending::Failed(durable.mask_error(from_wit(e))),
            },
            Err(trap) => {
                if let Some(e) = stops_without_outcome(&trap) {
                    tracing::warn!(error = %e, "run stopped without an outcome; left resumable");
                    return Err(e);
                }
                let cancelled = |durable: &Durable, by: &str, reason: &str| {
                    Ending::Cancelled(ErrorRecord::terminal("cancelled", durable.mask(&format!("cancelled by {by}: {reason}"))))
                };
                if let Some(why) = stops_resumable(&trap) {
                    match durable.cancel_request() {
                        // A cancel of a run that cannot replay ends it all the same.
                        Some(r) if why.code == "non-determinism" => cancelled(&durable, &r.by, &r.reason),
                        _ => return Err(stop(&mut durable, run, runbook, ops, why).await?),
                    }
                } else {
                    match trap.downcast_ref::<DurableError>() {
                        Some(DurableError::Cancelled { by, reason }) => cancelled(&durable, by, reason),
                        _ => Ending::Failed(durable.mask_error(trap_record(&trap, &stderr, |t| durable.mask(t)))),
                    }
                }
            }
        };
        if let Some(error) = ending.error() {
            ops.extend(durable.close_open_step(error));
            tracing::info!(code = %error.code, message = %error.message, "run did not succeed");
        }
        durable.end_main(ending.to_json(), ending.error(), ops).await.map_err(infra)?;
        Ok((ending, durable))
    }

    /// Runs the registered undos (newest first, only if the run did not
    /// succeed), then the cleanups (newest first, always), each once, as a
    /// journaled step in a fresh instance. A failing action is retried per its
    /// policy and then recorded; the others still run.
    async fn finalize(
        &self,
        runbook: &LoadedRunbook,
        run: &RunRecord,
        ending: &Ending,
        mut durable: Durable,
        gate: Arc<Gate>,
        journal: &Arc<dyn Journal>,
    ) -> Result<Durable, EngineError> {
        let (run_id, created) = (run.run_id.as_str(), run.created_at.timestamp());
        let registrations = self.actions(&durable, run, journal).await?;
        let undos = registrations.iter().filter(|(r, _)| r.undo && !matches!(ending, Ending::Succeeded(_))).rev();
        let cleanups = registrations.iter().filter(|(r, _)| !r.undo).rev();
        for (reg, branch) in undos.chain(cleanups) {
            match durable.begin_action(&reg.step_key, reg.retry).await.map_err(infra)? {
                StepStart::Completed(_) | StepStart::Failed(_) => continue,
                StepStart::Run(_) => {}
            }
            loop {
                let action = bindings::Action {
                    kind: if reg.undo { bindings::ActionKind::Undo } else { bindings::ActionKind::Cleanup },
                    key: reg.key.clone(),
                    payload: reg.payload.clone(),
                    ending: ending.wit(),
                };
                let clock = durable.step_clock();
                clock.start(&reg.step_key);
                let (mut store, stderr) = self.new_store(Some(durable), run_id, created, Some(gate.clone()));
                store.data_mut().branch = branch.clone();
                let call = async {
                    let instance = runbook.pre.instantiate_async(&mut store).await?;
                    instance.call_finalize(&mut store, &action).await
                };
                // Undos and cleanups run even after the run's own time is up.
                let res = self.within_deadlines(call, &clock, None).await;
                clock.stop();
                durable = store.into_data().durable.ok_or_else(no_durable_state)?;
                let outcome = match res {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(durable.mask_error(from_wit(e))),
                    Err(trap) => {
                        if let Some(e) = stops_without_outcome(&trap) {
                            return Err(e);
                        }
                        if let Some(why) = stops_resumable(&trap) {
                            return Err(stop(&mut durable, run, runbook, vec![], why).await?);
                        }
                        Err(durable.mask_error(trap_record(&trap, &stderr, |t| durable.mask(t))))
                    }
                };
                match outcome {
                    Ok(()) => {
                        durable.complete_step(&reg.step_key, "null").await.map_err(infra)?;
                        break;
                    }
                    Err(e) => match durable.fail_step(&reg.step_key, e).await.map_err(infra)? {
                        AfterFailure::Retry(_) => continue,
                        AfterFailure::GiveUp(e) => {
                            tracing::warn!(action = %reg.step_key, error = %e, "cleanup or undo failed");
                            break;
                        }
                    },
                }
            }
        }
        Ok(durable)
    }
}

impl Engine {
    /// The run's registered actions in registration order, each with the
    /// branch it came from: its own, and, in a section's place, those the
    /// section's succeeded branches handed over (a branch's own step key
    /// `undo:KEY` runs in the run's journal as `undo:SECTION/BRANCH/KEY`).
    async fn actions(&self, durable: &Durable, run: &RunRecord, journal: &Arc<dyn Journal>) -> Result<Vec<(Registration, Option<BranchCall>)>, EngineError> {
        let mut out = Vec::new();
        for item in durable.actions_in_order() {
            match item {
                Listed::Own(reg) => out.push((reg, BranchCall::of_run(run))),
                Listed::Section { key, branches } => {
                    for b in branches {
                        let Some(branch_run) = journal.run(&b.run_id).await? else { continue };
                        if branch_run.status != RunStatus::Succeeded {
                            continue;
                        }
                        let call = BranchCall::of_run(&branch_run);
                        for mut reg in crate::durable::registrations(&journal.entries(&b.run_id).await?) {
                            let kind = if reg.undo { drover_replay::ActionKind::Undo } else { drover_replay::ActionKind::Cleanup };
                            reg.step_key = kind.step_key(&format!("{key}/{}/{}", b.name, reg.key));
                            out.push((reg, call.clone()));
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The world a run's branches run in: the run's own.
fn world_of(durable: &Durable) -> World {
    match (durable.plan(), durable.simulation()) {
        (Some(plan), _) => World::Plan(plan.clone()),
        (None, Some(sim)) => World::Simulated(sim.clone()),
        (None, None) => World::Given,
    }
}

/// The run's pin on `runbook`.
fn runbook_ref(runbook: &LoadedRunbook) -> RunbookRef {
    RunbookRef { name: runbook.info.name.clone(), version: runbook.info.version.clone(), digest: runbook.info.digest.clone() }
}

/// The event recording a change of the runbook a run is pinned to.
fn replacement_event(message: String, from: &RunbookRef, to: &RunbookRef) -> Op {
    Op::AddEvent(Event {
        at: Utc::now(),
        level: Level::Warn,
        step: None,
        message,
        fields: vec![("from_sha256".into(), from.digest.clone()), ("to_sha256".into(), to.digest.clone())],
    })
}

/// Stops `run` without an outcome, resumable, for `why` (see
/// [`stops_resumable`]): nothing is recorded as how it ended and no undo or
/// cleanup runs; the stop is recorded (an event, and `why` as the run's
/// error while it stays unfinished) so that `drover show` says why and what
/// to do. A replacement build that diverged gives the pin back to the
/// build the run had before it. Returns the error the driver reports, or
/// the journal's if the stop could not be recorded.
async fn stop(durable: &mut Durable, run: &RunRecord, runbook: &LoadedRunbook, mut ops: Vec<Op>, why: ErrorRecord) -> Result<EngineError, EngineError> {
    let run_id = run.run_id.as_str();
    let todo = if why.code == "non-determinism" {
        format!(
            "Nothing further ran and no undo or cleanup ran; the run is stopped, resumable. Resume it with the build it \
             started with (`drover resume {run_id}`), or with a fixed build whose replay matches \
             (`drover resume {run_id} --runbook FIXED.wasm`), or cancel it (`drover cancel {run_id}`: its undos and cleanups then run)"
        )
    } else {
        format!("The run is stopped without an outcome, resumable: once fixed, `drover resume {run_id}` continues it")
    };
    let mut why = durable.mask_error(why);
    why.message = format!("{} {todo}", why.message.trim_end_matches('.').to_string() + ".");
    let replaced = why.code == "non-determinism" && run.runbook.digest != runbook.info.digest;
    if replaced {
        ops.push(replacement_event(
            format!(
                "the replacement runbook (sha256 {}) does not replay this run's journal; the run stays pinned to sha256 {}",
                runbook.info.digest, run.runbook.digest
            ),
            &runbook_ref(runbook),
            &run.runbook,
        ));
        ops.push(Op::SetRunbook(run.runbook.clone()));
    }
    ops.push(Op::AddEvent(Event {
        at: Utc::now(),
        level: Level::Error,
        step: durable.open_step().map(str::to_string),
        message: why.message.clone(),
        fields: vec![("code".into(), why.code.clone())],
    }));
    ops.push(Op::SetStatus { status: RunStatus::Running, finished_at: None, result: None, error: Some(why.clone()) });
    let mut all = durable.take_pending();
    all.extend(ops);
    durable.finish(all).await.map_err(infra)?;
    tracing::warn!(code = %why.code, "run stopped without an outcome; left resumable");
    Ok(EngineError::Stopped { run_id: run_id.to_string(), code: why.code, message: why.message })
}

impl Engine {
    /// Runs the runbook's `call` until it returns or a wall-clock limit (of
    /// the step in flight, or of the run) is reached, which stops it.
    async fn within_deadlines<T>(
        &self,
        call: impl std::future::Future<Output = wasmtime::Result<T>>,
        clock: &StepClock,
        run_deadline: Option<tokio::time::Instant>,
    ) -> wasmtime::Result<T> {
        tokio::select! {
            r = call => r,
            exceeded = self.deadlines(clock, run_deadline) => Err(wasmtime::Error::new(exceeded)),
        }
    }

    /// Resolves when the step attempt in flight (per `clock`) or the run
    /// (at `run_deadline`) has used up its wall-clock time.
    async fn deadlines(&self, clock: &StepClock, run_deadline: Option<tokio::time::Instant>) -> LimitExceeded {
        // A safety net only: a start or stop of a step wakes the loop at once.
        const CHECK: Duration = Duration::from_secs(5);
        loop {
            let changed = clock.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = tokio::time::Instant::now();
            if run_deadline.is_some_and(|d| now >= d) {
                return LimitExceeded::run_timeout(self.limits.run_timeout);
            }
            let (step, _) = clock.current();
            let step_deadline = step.as_ref().map(|(_, started)| tokio::time::Instant::from_std(*started) + self.limits.step_timeout);
            if let (Some((key, _)), Some(d)) = (&step, step_deadline)
                && now >= d
            {
                return LimitExceeded::step_timeout(self.limits.step_timeout, key);
            }
            let next = [run_deadline, step_deadline, Some(now + CHECK)].into_iter().flatten().min().unwrap_or(now + CHECK);
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = changed => {}
            }
        }
    }
}

/// Watches the journal for a cancel request for `run_id` and raises `signal`.
async fn watch_for_cancel(journal: Arc<dyn Journal>, run_id: String, signal: Arc<CancelSignal>, pause: Arc<crate::cancel::PauseSignal>) {
    loop {
        tokio::time::sleep(CANCEL_POLL).await;
        if let Ok(Some(run)) = journal.run(&run_id).await {
            pause.set(run.pause);
            if let Some(req) = run.cancel {
                signal.raise(req);
                return;
            }
        }
    }
}

/// The journaled error for a runbook that trapped.
/// The runbook's stderr is masked (`mask`) before it is cut into lines: a
/// secret with a newline in it must still be recognised whole.
fn trap_record(trap: &wasmtime::Error, stderr: &MemoryOutputPipe, mask: impl Fn(&str) -> String) -> ErrorRecord {
    let tail = mask(&stderr_tail(stderr, 2048));
    if let Some(d) = trap.downcast_ref::<DurableError>() {
        return ErrorRecord::terminal(d.code(), d.to_string());
    }
    if let Some(l) = trap.downcast_ref::<LimitExceeded>() {
        return ErrorRecord::terminal("limit-exceeded", l.to_string());
    }
    if trap.downcast_ref::<Trap>() == Some(&Trap::StackOverflow) {
        return ErrorRecord::terminal(
            "limit-exceeded",
            "the runbook overflowed its WebAssembly stack (limit stack_kib); it was stopped. Look for unbounded recursion, or raise stack_kib under [limits] in the agent's configuration".to_string(),
        );
    }
    let root = format!("{trap:#}");
    if root.contains("forcing trap when growing memory") || root.contains("memory size") {
        return ErrorRecord::terminal(
            "limit-exceeded",
            "the runbook tried to grow its memory past the limit (limit memory_mib); it was stopped. Fix the runbook, or raise memory_mib under [limits] in the agent's configuration".to_string(),
        );
    }
    // A Python runbook (componentize-py) prints the exception's traceback,
    // then panics: the traceback is what says what went wrong.
    if let Some(at) = tail.find("Traceback (most recent call last):") {
        let traceback: Vec<&str> = tail[at..].lines().take_while(|l| !l.contains("panicked at")).collect();
        return ErrorRecord::terminal("panic", format!("the runbook raised an uncaught exception: {}", traceback.join("\n").trim()));
    }
    if tail.contains("panicked at") {
        let panic: Vec<&str> = tail.lines().skip_while(|l| !l.contains("panicked at")).take(4).collect();
        return ErrorRecord::terminal("panic", format!("the runbook panicked: {}", panic.join(" ").trim()));
    }
    let what = match trap.downcast_ref::<Trap>() {
        // Rust and C keep their own stack in linear memory, below its start:
        // running off it is the usual cause.
        Some(t @ Trap::MemoryOutOfBounds) => format!("{t} (in a Rust or C runbook most often an overflow of its own stack: look for unbounded recursion)"),
        Some(t) => t.to_string(),
        None => root.lines().next().unwrap_or("unknown trap").to_string(),
    };
    let mut message = format!("the runbook trapped: {what}");
    if !tail.is_empty() {
        message.push_str(&format!("; its stderr: {tail}"));
    }
    ErrorRecord::terminal("trap", message)
}

/// A run's store came back without the durable state it was built with.
fn no_durable_state() -> EngineError {
    EngineError::Internal("the runbook's store lost the run's durable state".into())
}
