//! The per-run store data and the host side of every `drover:runbook` import.
//! Each import is a thin translation onto [`Durable`], where journaling lives.

use drover_journal::{ErrorRecord, Level};
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{approval, branches, cleanup, clock, log, random, run_context, steps, types};
use crate::durable::{AfterFailure, BranchOutcome, BranchStatus, Durable, DurableError, Hold, RetrySpec, SectionStart, StepStart};
use drover_replay::held::Skip;

/// Most bytes of one log message kept; the rest is cut with a marker.
pub const MAX_LOG_MESSAGE: usize = 16 * 1024;

/// Everything a run's wasmtime `Store` holds.
pub struct HostState {
    /// The run's durable state; `None` while only `describe()` is called.
    pub durable: Option<Durable>,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: StoreLimits,
    /// Epoch ticks the guest has run for (its CPU time, in ticks).
    pub(crate) cpu_ticks: u64,
    /// The AWS clients, shared by every run of the engine.
    pub(crate) aws: crate::capabilities::AwsCell,
    /// Where the run's capability calls are answered: AWS, the plan of a
    /// dry run, or the simulated cloud (chosen once, when the store is made).
    pub(crate) backends: crate::backend::Backends,
    /// The run's capability policy and audit log; `None` outside a run.
    pub(crate) gate: Option<std::sync::Arc<crate::capabilities::Gate>>,
    /// Epoch ticks the guest has run for in the current step attempt, and
    /// the step clock's generation they count for.
    pub(crate) step_ticks: (u64, u64),
    /// Log bytes the run has written in this execution, and the limit.
    pub(crate) log_bytes: usize,
    pub(crate) max_log_bytes: usize,
    /// The branch this instance runs, if it runs one (`branches.current`).
    pub(crate) branch: Option<crate::sections::BranchCall>,
    /// Where `branches.run` sends a section for the driver to drive; `None`
    /// where no section may start (finalize).
    pub(crate) sections: Option<crate::sections::SectionSender>,
    /// Branches a run may start (`limits.max_branches`).
    pub(crate) max_branches: usize,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The error a runbook gets trapped with when it calls an import from
/// `describe()`.
#[derive(Debug, thiserror::Error)]
#[error("the runbook called the agent from describe(); describe() must only return the runbook's description")]
pub struct ImportInDescribe;

impl HostState {
    fn durable(&mut self) -> wasmtime::Result<&mut Durable> {
        self.durable.as_mut().ok_or_else(|| wasmtime::Error::new(ImportInDescribe))
    }
}

fn trap(e: DurableError) -> wasmtime::Error {
    wasmtime::Error::new(e)
}

impl types::Host for HostState {}

impl branches::Host for HostState {
    async fn run(&mut self, key: String, list: Vec<branches::Branch>, mode: branches::JoinMode) -> wasmtime::Result<Vec<branches::BranchOutcome>> {
        let fail_fast = matches!(mode, branches::JoinMode::FailFast);
        let in_branch = self.branch.as_ref().map(|b| b.name.clone());
        let max = self.max_branches;
        let requested = list.into_iter().map(|b| (b.name, b.input)).collect();
        let outcomes = match self.durable()?.begin_section(&key, requested, fail_fast, in_branch.as_deref(), max).await.map_err(trap)? {
            SectionStart::Ended(outcomes) => outcomes,
            SectionStart::Drive(section) => {
                let to_driver = self.sections.clone().ok_or_else(|| trap(drover_replay::sections::in_finalize(&key).into()))?;
                let (reply, answer) = tokio::sync::oneshot::channel();
                let gone = || trap(DurableError::Branch("the driver stopped while the section ran".into()));
                to_driver.send(crate::sections::SectionRequest { section: section.clone(), reply }).await.map_err(|_| gone())?;
                let outcomes = answer.await.map_err(|_| gone())?.map_err(trap)?;
                self.durable()?.end_section(&section, &outcomes).await.map_err(trap)?;
                outcomes
            }
        };
        Ok(outcomes.into_iter().map(outcome_to_wit).collect())
    }

    async fn current(&mut self) -> wasmtime::Result<Option<branches::Branch>> {
        Ok(self.branch.as_ref().map(|b| branches::Branch { name: b.name.clone(), input: b.input.clone() }))
    }
}

fn outcome_to_wit(o: BranchOutcome) -> branches::BranchOutcome {
    let error = || to_wit(o.error.clone().unwrap_or_else(|| ErrorRecord::terminal("branch-failed", format!("branch '{}' did not succeed", o.name))));
    let outcome = match o.status {
        BranchStatus::Succeeded => branches::Outcome::Succeeded(o.output.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "null".into())),
        BranchStatus::Failed => branches::Outcome::Failed(error()),
        BranchStatus::Stopped => branches::Outcome::Stopped(error()),
    };
    branches::BranchOutcome { name: o.name, outcome }
}

impl steps::Host for HostState {
    async fn begin(&mut self, key: String, retry: steps::RetryPolicy) -> wasmtime::Result<steps::Started> {
        Ok(started(self.durable()?.begin_step(&key, retry_spec(retry)).await.map_err(trap)?))
    }

    async fn complete(&mut self, key: String, output: String) -> wasmtime::Result<()> {
        self.durable()?.complete_step(&key, &output).await.map_err(trap)
    }

    async fn fail(&mut self, key: String, error: types::Error) -> wasmtime::Result<steps::AfterFailure> {
        Ok(match self.durable()?.fail_step(&key, from_wit(error)).await.map_err(trap)? {
            AfterFailure::Retry(a) => steps::AfterFailure::Retry(steps::Attempt { idempotency_key: a.idempotency_key, number: a.number }),
            AfterFailure::GiveUp(e) => steps::AfterFailure::GiveUp(to_wit(e)),
        })
    }

    async fn fail_with(&mut self, key: String, error: types::Error, on_failure: steps::OnFailure) -> wasmtime::Result<steps::Started> {
        let skip = match on_failure.skip {
            steps::SkipOutcome::Refused => Skip::Refused,
            steps::SkipOutcome::Output(json) => Skip::Output(json),
            steps::SkipOutcome::Error => Skip::Error,
        };
        let hold = Hold { wait: std::time::Duration::from_secs(on_failure.wait_seconds), skip };
        Ok(started(self.durable()?.fail_step_with(&key, from_wit(error), hold).await.map_err(trap)?))
    }
}

/// A step's start (or restart) as the runbook sees it.
fn started(start: StepStart) -> steps::Started {
    match start {
        StepStart::Completed(json) => steps::Started::Completed(json),
        StepStart::Failed(e) => steps::Started::Failed(to_wit(e)),
        StepStart::Run(a) => steps::Started::Run(steps::Attempt { idempotency_key: a.idempotency_key, number: a.number }),
    }
}

impl clock::Host for HostState {
    async fn now(&mut self) -> wasmtime::Result<types::Timestamp> {
        let (seconds, nanoseconds) = self.durable()?.now().await.map_err(trap)?;
        Ok(types::Timestamp { seconds, nanoseconds })
    }

    async fn sleep(&mut self, milliseconds: u64) -> wasmtime::Result<()> {
        self.durable()?.sleep(milliseconds).await.map_err(trap)
    }
}

impl approval::Host for HostState {
    async fn request(&mut self, gate: String, message: String, timeout_seconds: u64) -> wasmtime::Result<Result<approval::Approved, types::Error>> {
        let timeout = (timeout_seconds > 0).then(|| std::time::Duration::from_secs(timeout_seconds));
        let d = self.durable()?.approval(&gate, &message, timeout).await.map_err(trap)?;
        let said = if d.comment.is_empty() { String::new() } else { format!(": {}", d.comment) };
        Ok(match d.verdict {
            drover_journal::Verdict::Approved => Ok(approval::Approved { by: d.by, comment: d.comment }),
            // An operator skipped the gate: the run goes through, and says so.
            drover_journal::Verdict::Skipped => Ok(approval::Approved { by: d.by, comment: format!("skipped{said}") }),
            drover_journal::Verdict::Rejected => Err(types::Error {
                code: "rejected".into(),
                message: format!("approval gate '{gate}' was rejected by {}{said}", d.by),
                retryable: false,
                resource: Some(gate),
            }),
            drover_journal::Verdict::TimedOut => Err(types::Error {
                code: "approval-timed-out".into(),
                message: format!(
                    "approval gate '{gate}' timed out after {timeout_seconds} s with no decision; \
                     start a new run when someone can approve it"
                ),
                retryable: false,
                resource: Some(gate),
            }),
        })
    }
}

impl random::Host for HostState {
    async fn random_u64(&mut self) -> wasmtime::Result<u64> {
        self.durable()?.random_u64().await.map_err(trap)
    }

    async fn random_bytes(&mut self, len: u32) -> wasmtime::Result<Vec<u8>> {
        self.durable()?.random_bytes(len).await.map_err(trap)
    }
}

impl log::Host for HostState {
    async fn event(&mut self, level: log::Level, mut message: String, fields: Vec<(String, String)>) -> wasmtime::Result<()> {
        truncate_marked(&mut message, MAX_LOG_MESSAGE);
        let level = match level {
            log::Level::Trace => Level::Trace,
            log::Level::Debug => Level::Debug,
            log::Level::Info => Level::Info,
            log::Level::Warn => Level::Warn,
            log::Level::Error => Level::Error,
        };
        let written = self.durable()?.event(level, message, fields).await.map_err(trap)?;
        self.log_bytes += written;
        if self.log_bytes > self.max_log_bytes {
            return Err(wasmtime::Error::new(crate::limits::LimitExceeded::log_bytes(self.max_log_bytes)));
        }
        Ok(())
    }
}

impl run_context::Host for HostState {
    async fn run_id(&mut self) -> wasmtime::Result<String> {
        Ok(self.durable()?.run_id().to_string())
    }

    async fn current_attempt(&mut self) -> wasmtime::Result<Option<steps::Attempt>> {
        Ok(self.durable()?.current_attempt().map(|a| steps::Attempt { idempotency_key: a.idempotency_key, number: a.number }))
    }

    async fn mode(&mut self) -> wasmtime::Result<run_context::RunMode> {
        Ok(match self.durable()?.plan() {
            None => run_context::RunMode::Run,
            Some(p) if p.is_readiness() => run_context::RunMode::Readiness,
            Some(_) => run_context::RunMode::DryRun,
        })
    }
}

fn retry_spec(retry: steps::RetryPolicy) -> RetrySpec {
    RetrySpec { max_attempts: retry.max_attempts, initial_backoff_ms: retry.initial_backoff_ms, max_backoff_ms: retry.max_backoff_ms }.normalized()
}

impl cleanup::Host for HostState {
    async fn defer(&mut self, key: String, payload: String, retry: steps::RetryPolicy) -> wasmtime::Result<()> {
        self.durable()?.register(false, &key, &payload, retry_spec(retry)).await.map_err(trap)
    }

    async fn compensate(&mut self, key: String, payload: String, retry: steps::RetryPolicy) -> wasmtime::Result<()> {
        self.durable()?.register(true, &key, &payload, retry_spec(retry)).await.map_err(trap)
    }
}

/// Cuts `text` to at most `max` bytes (on a character boundary), marking the cut.
pub(crate) fn truncate_marked(text: &mut String, max: usize) {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" [truncated]");
    }
}

/// A WIT error as journaled: its text cut to sizes a journal and a
/// terminal can hold (a runbook's error is a message, not a payload).
pub fn from_wit(e: types::Error) -> ErrorRecord {
    let (mut code, mut message, mut resource) = (e.code, e.message, e.resource);
    truncate_marked(&mut code, crate::durable::MAX_KEY_LEN);
    truncate_marked(&mut message, MAX_LOG_MESSAGE);
    if let Some(r) = resource.as_mut() {
        truncate_marked(r, crate::durable::MAX_KEY_LEN * 8);
    }
    ErrorRecord { code, message, retryable: e.retryable, resource }
}

fn to_wit(e: ErrorRecord) -> types::Error {
    types::Error { code: e.code, message: e.message, retryable: e.retryable, resource: e.resource }
}
