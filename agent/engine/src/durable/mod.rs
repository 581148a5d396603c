//! Where a step gets journaled: the replay cursor of one run.
//!
//! A run's journal is a sequence of entries (steps, `now` values, random
//! values, sleeps). Every journaled call the runbook makes takes the next
//! position. If the journal already holds an entry there, the call is a
//! replay: it must be the same call (kind and step key), and it returns what
//! was recorded. Otherwise the call is live: it is recorded, then answered.
//!
//! Durability follows one rule: anything the runbook goes on from is durable
//! before the call returns: a step's outcome, a sleep's wake-up time. Writes
//! come in three tiers:
//! - **durable** (fsynced, shared by concurrent runs through group commit):
//!   step outcomes, retry state, sleep wake-up times, the run's end;
//! - **buffered** (in the store's write-ahead log before the call returns, so a
//!   killed process keeps them; a power cut may not): the begin of a step and
//!   each attempt, so that a re-run after a crash is counted and audited;
//! - **deferred** (held here, written with the next commit, in order):
//!   recorded `now`/random values and events. If a crash loses them, nothing
//!   observable depended on them yet: the calls are simply made again.
//!
//! Entries recorded inside a step's body belong to that step: a completed
//! step replays by jumping past them (`end_seq`), and a step re-run after a
//! crash or a failed attempt drops them (its body makes them again).
//!
//! The module is split by idea: this file is the replay core (steps,
//! recorded values, registrations, the end of a run); [`waits`] the durable
//! waits (sleeps, approval gates); [`control`] what stops a run from outside
//! (cancel, shutdown, the lease); [`clock`] the time a run keeps (the wall
//! clock or a simulation's); [`error`] what a journaled call can fail with.
//! The rules themselves (keys, idempotency keys, retries, limits) are
//! `drover-replay`'s.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use drover_journal::{AttemptRecord, Durability, Entry, EntryKind, EntryStatus, ErrorRecord, Event, Journal, Lease, Level, Op};
use serde_json::{Value, json};

use crate::cancel::CancelSignal;
use crate::events::{Observer, RunEvent};
use crate::failpoints::{self, Failpoint};
use crate::limits::StepClock;
use crate::secrets::Secrets;

use drover_replay::{ActionKind, Violation, check_key};
pub use drover_replay::{MAX_BACKOFF_MS, MAX_KEY_LEN, MAX_RANDOM_BYTES, MAX_WAIT, RetrySpec, idempotency_key};

mod clock;
mod control;
mod entropy;
mod error;
mod held;
mod sections;
mod waits;

use waits::wait_deadline;

pub use clock::{RunClock, WallClock};
pub use control::RunControl;
pub use entropy::{Entropy, OsEntropy, SeededEntropy};
pub use error::DurableError;
use error::Result;
pub use held::{Hold, held_of};
pub use sections::{BranchOutcome, BranchStatus, Listed, Section, SectionBranch, SectionStart, recorded_branches};

/// Permission to run a step body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptGrant {
    /// The step's idempotency key.
    pub idempotency_key: String,
    /// Attempt number, from 1.
    pub number: u32,
}

/// What `begin_step` decided.
#[derive(Debug, Clone, PartialEq)]
pub enum StepStart {
    /// Completed before: the journaled output (JSON text).
    Completed(String),
    /// Failed before: the journaled error.
    Failed(ErrorRecord),
    /// Run the body.
    Run(AttemptGrant),
}

/// What `fail_step` decided.
#[derive(Debug, Clone, PartialEq)]
pub enum AfterFailure {
    /// Run the body again (the backoff has been waited out).
    Retry(AttemptGrant),
    /// The step failed for good.
    GiveUp(ErrorRecord),
}

/// Which part of the run is executing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The runbook's `run`.
    Main,
    /// The registered undos and cleanups, after `run` ended.
    Finalize,
}

/// A registered cleanup or undo, as journaled.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// The journaled step key it runs under: `cleanup:KEY` or `undo:KEY`.
    pub step_key: String,
    /// The key the runbook gave.
    pub key: String,
    /// Undo (true) or cleanup.
    pub undo: bool,
    /// Its payload (JSON text).
    pub payload: String,
    /// Its retry policy.
    pub retry: RetrySpec,
}

struct OpenStep {
    seq: usize,
    key: String,
    attempt: u32,
    idempotency_key: String,
    retry: RetrySpec,
    /// Whether this attempt's begin is known to be on disk.
    durable_begin: bool,
    /// The attempt's `step` span: the parent of its capability calls' spans;
    /// it ends when the attempt's outcome is recorded.
    span: tracing::Span,
    /// The AWS requests this attempt's capability calls sent so far.
    requests: Arc<AtomicU32>,
}

impl OpenStep {
    /// The requests of this attempt, added to its step's entry.
    fn count_into(&self, entry: &mut Entry) {
        entry.requests = entry.requests.saturating_add(self.requests.load(Ordering::Relaxed));
    }
}

/// The durable state of one run while a driver executes it.
pub struct Durable {
    journal: Arc<dyn Journal>,
    lease: Lease,
    entries: Vec<Entry>,
    cursor: usize,
    open: Option<OpenStep>,
    keys: HashSet<String>,
    registered: HashSet<String>,
    observer: Observer,
    max_output_bytes: usize,
    /// Writes that need no round trip of their own (recorded values, events):
    /// they go out with the next commit, in order.
    pending: Vec<Op>,
    /// A step's begin, sent to the store without waiting for its answer
    /// ([`Durable::send`]); the next commit (or [`Durable::settle`]) checks it.
    sent: std::sync::Mutex<Option<drover_journal::Sent>>,
    secrets: Arc<Secrets>,
    /// What stops the run from outside: cancel, shutdown, the lease.
    control: RunControl,
    phase: Phase,
    plan: Option<crate::plan::Plan>,
    clock: StepClock,
    /// Set when the run's approval gates are decided without a person (a
    /// drill configured unattended): who the decision is recorded as.
    unattended: Option<String>,
    /// The time the run keeps: the wall clock, or a simulation's.
    time: Arc<dyn RunClock>,
    /// The randomness it draws: the system's, or a simulation's seeded one.
    entropy: Arc<dyn Entropy>,
    /// Under a deterministic simulation: where it crashes the agent.
    sim: Option<Arc<crate::simulation::Simulation>>,
    /// `SECTION/BRANCH/` in a branch of a parallel section (empty in a run):
    /// how crash points and the simulation name its steps.
    label: String,
}

/// The registration journaled in entry `e`, if it is one.
fn registration_of(e: &Entry) -> Option<Registration> {
    if e.kind != EntryKind::Register {
        return None;
    }
    let step_key = e.key.clone()?;
    let (kind, key) = ActionKind::parse(&step_key)?;
    let out = e.output.as_ref()?;
    Some(Registration {
        key: key.to_string(),
        undo: kind == ActionKind::Undo,
        payload: out["payload"].to_string(),
        retry: serde_json::from_value(out["retry"].clone()).ok()?,
        step_key,
    })
}

/// Every registration journaled in `entries` (a run's, or a branch's), in
/// registration order.
pub fn registrations(entries: &[Entry]) -> Vec<Registration> {
    entries.iter().filter_map(registration_of).collect()
}

/// Most deferred writes held before they are flushed on their own.
const MAX_PENDING: usize = 256;

impl Durable {
    /// The durable state of a run whose journal holds `entries`, driven under `lease`.
    pub fn new(
        journal: Arc<dyn Journal>,
        lease: Lease,
        entries: Vec<Entry>,
        observer: Observer,
        max_output_bytes: usize,
        secrets: Arc<Secrets>,
        cancel: Arc<CancelSignal>,
    ) -> Self {
        Durable {
            journal,
            lease,
            entries,
            cursor: 0,
            open: None,
            keys: HashSet::new(),
            registered: HashSet::new(),
            observer,
            max_output_bytes,
            pending: Vec::new(),
            sent: std::sync::Mutex::new(None),
            secrets,
            control: RunControl::new(cancel),
            phase: Phase::Main,
            plan: None,
            clock: StepClock::default(),
            unattended: None,
            time: Arc::new(WallClock),
            entropy: Arc::new(OsEntropy),
            sim: None,
            label: String::new(),
        }
    }

    /// Names this run's steps `label` + key at crash points and in the
    /// simulation (a branch: `SECTION/BRANCH/`).
    pub fn with_label(mut self, label: String) -> Self {
        self.label = label;
        self
    }

    /// Runs on a simulation's time (`drover test`): waits move its clock
    /// instead of sleeping.
    pub fn with_simulation(mut self, sim: Option<Arc<crate::simulation::Simulation>>) -> Self {
        if let Some(sim) = sim {
            self.entropy = Arc::new(SeededEntropy::new(sim.seed()));
            self.time = sim.clone();
            self.sim = Some(sim);
        }
        self
    }

    /// A crash point (see [`failpoints`]): armed by `DROVER_FAILPOINTS`, the
    /// process dies here; under a simulation whose schedule crashes here, the
    /// run stops at once with [`DurableError::Crashed`], and where it pauses
    /// the driver (another agent takes the run over meanwhile), it waits.
    pub async fn point(&self, point: Failpoint, step: &str) -> Result<()> {
        let labelled;
        let step = if self.label.is_empty() || step.is_empty() || step == "-" {
            step
        } else {
            labelled = format!("{}{step}", self.label);
            labelled.as_str()
        };
        if failpoints::is_armed(point, step) {
            // The point is where a crash finds what came before it written:
            // a begin sent without waiting is waited for.
            self.settle().await?;
        }
        failpoints::hit(point, step);
        let Some(sim) = &self.sim else { return Ok(()) };
        match sim.crash_point(point.name(), step) {
            crate::simulation::Passed::Go => Ok(()),
            crate::simulation::Passed::Crash(point) => Err(DurableError::Crashed { point }),
            crate::simulation::Passed::Pause => {
                sim.pause().await;
                Ok(())
            }
        }
    }

    /// The simulation the run is in, if any.
    pub fn simulation(&self) -> Option<&Arc<crate::simulation::Simulation>> {
        self.sim.as_ref()
    }

    /// Now, on the run's clock.
    fn time(&self) -> DateTime<Utc> {
        self.time.now()
    }

    /// Approval gates of this run are approved at once, recorded as `by`.
    pub fn with_unattended(mut self, by: Option<String>) -> Self {
        self.unattended = by;
        self
    }

    /// Makes this a dry run: mutating capability calls go into `plan`.
    pub fn with_plan(mut self, plan: Option<crate::plan::Plan>) -> Self {
        self.plan = plan;
        self
    }

    /// The clock of the step attempt in flight (for the step limits).
    pub fn step_clock(&self) -> StepClock {
        self.clock.clone()
    }

    /// The plan, in a dry run.
    pub fn plan(&self) -> Option<&crate::plan::Plan> {
        self.plan.as_ref()
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.lease.run_id
    }

    /// Whether the runbook is still replaying journaled calls.
    pub fn replaying(&self) -> bool {
        self.cursor < self.entries.len()
    }

    /// The span of the step attempt in flight (the parent of the spans of
    /// its capability calls).
    pub fn step_span(&self) -> Option<tracing::Id> {
        self.open.as_ref().and_then(|o| o.span.id())
    }

    /// Step `key` as named outside the run's journal: with its branch's
    /// `SECTION/BRANCH/` in a branch.
    pub fn labelled(&self, key: &str) -> String {
        format!("{}{key}", self.label)
    }

    /// The step whose body is running, if any.
    pub fn open_step(&self) -> Option<&str> {
        self.open.as_ref().map(|o| o.key.as_str())
    }

    /// Commits `ops`, after any deferred writes (and after the begin sent
    /// before it, whose answer it checks).
    async fn commit(&mut self, ops: Vec<Op>, durability: Durability) -> Result<()> {
        let mut all = std::mem::take(&mut self.pending);
        all.extend(ops);
        let done = self.journal.commit(&self.lease, all, durability).await;
        // The store applies its writes in order: the begin sent earlier has
        // its answer already.
        self.settle().await?;
        done.map_err(DurableError::from)?;
        let step = self.open.as_ref().map(|o| o.key.clone()).unwrap_or_default();
        self.point(Failpoint::AfterCommit, &step).await
    }

    /// Commits `ops` (after any deferred writes) buffered, without waiting
    /// for the store's answer: a step's begin. The step body starts while
    /// the store writes it; nothing is lost by not waiting, as nothing
    /// leaves the process before it is on disk: a call that changes the
    /// world first commits durably ([`Durable::before_side_effect`]), which
    /// the store applies after it, and every later commit checks its answer.
    /// An attempt whose begin a crash lost had sent nothing: running it
    /// again as the same attempt changes nothing in the world.
    async fn send(&mut self, ops: Vec<Op>) -> Result<()> {
        self.settle().await?;
        let mut all = std::mem::take(&mut self.pending);
        all.extend(ops);
        let sent = self.journal.send(&self.lease, all).await.map_err(DurableError::from)?;
        *self.sent.lock().unwrap_or_else(|p| p.into_inner()) = Some(sent);
        let step = self.open.as_ref().map(|o| o.key.clone()).unwrap_or_default();
        self.point(Failpoint::AfterCommit, &step).await
    }

    /// Waits for the store's answer to the commit sent last without waiting
    /// ([`Durable::send`]), if any: its error, if it failed.
    pub async fn settle(&self) -> Result<()> {
        let sent = self.sent.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(sent) = sent {
            sent.await.map_err(DurableError::from)?;
        }
        Ok(())
    }

    /// Queues a write for the next commit (flushing when many are queued).
    async fn defer(&mut self, op: Op) -> Result<()> {
        self.pending.push(op);
        if self.pending.len() >= MAX_PENDING {
            self.commit(vec![], Durability::Buffered).await?;
        }
        Ok(())
    }

    /// Deferred writes not yet committed; the driver adds them to its final commit.
    pub fn take_pending(&mut self) -> Vec<Op> {
        std::mem::take(&mut self.pending)
    }

    /// The recorded entry at the cursor, checked against what the runbook asks for.
    fn recorded(&self, kind: EntryKind, key: Option<&str>) -> Result<Option<Entry>> {
        let Some(e) = self.entries.get(self.cursor) else { return Ok(None) };
        drover_replay::cursor::check_replayed(e.seq, (e.kind.as_str(), e.key.as_deref()), (kind.as_str(), key))?;
        Ok(Some(e.clone()))
    }

    fn put(&mut self, entry: Entry) {
        let seq = entry.seq as usize;
        if seq < self.entries.len() {
            self.entries[seq] = entry;
        } else {
            self.entries.push(entry);
        }
    }

    /// `steps.begin`: replay a finished step, or grant an attempt.
    pub async fn begin_step(&mut self, key: &str, retry: RetrySpec) -> Result<StepStart> {
        check_key(key)?;
        retry.check(&format!("steps.begin '{key}'"))?;
        if self.phase == Phase::Finalize {
            return Err(Violation::StepInFinalize { key: key.into() }.into());
        }
        self.begin(key, retry).await
    }

    /// Begins the journaled step a cleanup or undo runs under (key
    /// `cleanup:KEY` / `undo:KEY`, which runbook keys cannot take).
    pub async fn begin_action(&mut self, step_key: &str, retry: RetrySpec) -> Result<StepStart> {
        self.begin(step_key, retry).await
    }

    async fn begin(&mut self, key: &str, retry: RetrySpec) -> Result<StepStart> {
        if let Some(open) = &self.open {
            return Err(Violation::NestedStep { outer: open.key.clone(), inner: key.into() }.into());
        }
        if !self.keys.insert(key.to_string()) {
            return Err(Violation::DuplicateKey { key: key.into() }.into());
        }
        if let Some(sim) = &self.sim {
            sim.note_step(&format!("{}{key}", self.label), retry.max_attempts);
        }
        self.point(Failpoint::BeforeStep, key).await?;
        let seq = self.cursor;
        let idem = idempotency_key(self.run_id(), key);
        let now = self.time();
        let (entry, number, ops) = match self.recorded(EntryKind::Step, Some(key))? {
            Some(e) if e.status != EntryStatus::Running => {
                self.cursor = e.end_seq.map(|s| s as usize + 1).unwrap_or(seq + 1);
                self.observer.send(RunEvent::StepReplayed { key: key.into(), status: e.status });
                return Ok(match e.status {
                    EntryStatus::Failed => {
                        StepStart::Failed(e.error.unwrap_or_else(|| ErrorRecord::terminal("unknown", "the journal recorded a failure without an error")))
                    }
                    _ => StepStart::Completed(e.output.map(|v| v.to_string()).unwrap_or_else(|| "null".into())),
                });
            }
            Some(e) if held::held_of(&e).is_some() => {
                // Held for an operator when the last driver stopped: wait again.
                self.check_cancel()?;
                self.show_waiting().await?;
                return self.await_held(seq, e, retry).await;
            }
            Some(mut e) => {
                // In flight when the last driver stopped: run it again, same key.
                self.check_cancel()?;
                self.check_suspend()?;
                self.hold_if_paused(key).await?;
                self.check_cancel()?;
                match e.next_attempt_at {
                    // A retry was due: its attempt was counted when it was granted.
                    Some(at) => self.wait_until(key, at).await?,
                    // The attempt in flight was interrupted: it counts.
                    None => {
                        if let Some(g) = drover_replay::interrupted(key, e.attempts, retry.max_attempts) {
                            let error = ErrorRecord::terminal(g.code, g.message);
                            return self.give_up_interrupted(seq, e, error).await;
                        }
                    }
                }
                e.attempts = e.attempts.saturating_add(1);
                e.next_attempt_at = None;
                let number = e.attempts;
                self.entries.truncate(seq + 1);
                let ops = vec![Op::TruncateAfter(seq as u64)];
                (e, number, ops)
            }
            None => {
                self.check_cancel()?;
                self.check_suspend()?;
                self.hold_if_paused(key).await?;
                self.check_cancel()?;
                let mut e = Entry::new(seq as u64, EntryKind::Step, Some(key.into()), EntryStatus::Running, now);
                e.attempts = 1;
                e.idempotency_key = Some(idem.clone());
                (e, 1, vec![])
            }
        };
        let mut ops = ops;
        ops.push(Op::PutEntry(entry.clone()));
        ops.push(Op::AddAttempt(AttemptRecord { seq: seq as u64, key: key.into(), number, idempotency_key: idem.clone(), started_at: now }));
        self.send(ops).await?;
        self.put(entry);
        self.cursor = seq + 1;
        self.open_attempt(seq, key, number, &idem, retry).await?;
        Ok(StepStart::Run(AttemptGrant { idempotency_key: idem, number }))
    }

    /// Fails step entry `e` at `seq` for good: its interrupted attempt used
    /// up its retry policy (see [`drover_replay::interrupted`]).
    /// The run's events say so; the body is not run again.
    async fn give_up_interrupted(&mut self, seq: usize, mut e: Entry, error: ErrorRecord) -> Result<StepStart> {
        let now = self.time();
        e.fail(error.clone(), now);
        e.end_seq = Some(seq as u64);
        let key = e.key.clone().unwrap_or_default();
        let event = Event {
            at: now,
            level: Level::Error,
            step: Some(key.clone()),
            message: error.message.clone(),
            fields: vec![("code".into(), error.code.clone()), ("attempts".into(), e.attempts.to_string())],
        };
        self.entries.truncate(seq + 1);
        self.commit(vec![Op::TruncateAfter(seq as u64), Op::PutEntry(e.clone()), Op::AddEvent(event)], Durability::Durable).await?;
        let requests = e.requests;
        self.put(e);
        self.cursor = seq + 1;
        tracing::warn!(step = %key, "step interrupted with its attempts used up; not run again");
        self.observer.send(RunEvent::StepFinished { key, status: EntryStatus::Failed, error: Some(error.clone()), requests });
        Ok(StepStart::Failed(error))
    }

    fn take_open(&mut self, key: &str) -> Result<OpenStep> {
        match self.open.take() {
            Some(o) if o.key == key => Ok(o),
            other => {
                self.open = other;
                Err(Violation::NotBegun { key: key.into() }.into())
            }
        }
    }

    /// `steps.complete`: journal the output durably.
    pub async fn complete_step(&mut self, key: &str, output: &str) -> Result<()> {
        let open = self.take_open(key)?;
        let value = match self.checked_output(key, output, "") {
            Ok((_, v)) => v,
            Err(e) => {
                self.open = Some(open);
                return Err(e);
            }
        };
        self.clock.stop();
        self.point(Failpoint::BeforeComplete, key).await?;
        let mut entry = self.entries[open.seq].clone();
        open.count_into(&mut entry);
        entry.status = EntryStatus::Succeeded;
        entry.finished_at = Some(self.time());
        entry.output = Some(value);
        entry.error = None;
        entry.end_seq = Some(self.cursor as u64 - 1);
        self.commit(vec![Op::PutEntry(entry.clone())], Durability::Durable).await?;
        let requests = entry.requests;
        self.put(entry);
        self.observer.send(RunEvent::StepFinished { key: key.into(), status: EntryStatus::Succeeded, error: None, requests });
        self.point(Failpoint::AfterStep, key).await?;
        Ok(())
    }

    /// Step `key`'s output (`what`: which, in an error), its secrets masked,
    /// within the output limit and JSON: the masked text and its value.
    fn checked_output(&self, key: &str, output: &str, what: &str) -> Result<(String, Value)> {
        let masked = self.secrets.mask_json(output);
        if masked.len() > self.max_output_bytes {
            return Err(crate::limits::LimitExceeded::output(key, masked.len(), self.max_output_bytes).into());
        }
        match serde_json::from_str::<Value>(&masked) {
            Ok(value) => Ok((masked, value)),
            Err(e) => Err(DurableError::BadOutput { key: key.into(), reason: format!("{what}not JSON: {e}") }),
        }
    }

    /// `steps.fail`: retry per policy (waiting out the backoff), or give up.
    pub async fn fail_step(&mut self, key: &str, error: ErrorRecord) -> Result<AfterFailure> {
        Ok(match self.failed(key, error, None).await? {
            StepStart::Run(grant) => AfterFailure::Retry(grant),
            StepStart::Failed(e) => AfterFailure::GiveUp(e),
            // Only a held step can be skipped, and this one is not held.
            StepStart::Completed(_) => return Err(Violation::BadRequest(format!("step '{key}' was skipped without being held")).into()),
        })
    }

    /// The open attempt of step `key` failed with `error`: retry per policy
    /// (waiting out the backoff); once it has failed for good, hold it for
    /// an operator when `hold` says so (see [`held`]), or give up.
    async fn failed(&mut self, key: &str, error: ErrorRecord, hold: Option<Hold>) -> Result<StepStart> {
        let open = self.take_open(key)?;
        self.clock.stop();
        let error = self.mask_error(error);
        let mut entry = self.entries[open.seq].clone();
        open.count_into(&mut entry);
        let now = self.time();
        if open.retry.retries(open.attempt, error.retryable) {
            let backoff = open.retry.backoff(open.attempt + 1, self.entropy.unit());
            let at = wait_deadline(now, backoff, Duration::from_millis(MAX_BACKOFF_MS), &format!("the retry backoff of step '{key}'"))?;
            entry.error = Some(error.clone());
            entry.next_attempt_at = Some(at);
            // The failed attempt's own entries go; the retry state is durable.
            self.entries.truncate(open.seq + 1);
            self.commit(vec![Op::TruncateAfter(open.seq as u64), Op::PutEntry(entry.clone())], Durability::Durable).await?;
            self.put(entry.clone());
            self.observer.send(RunEvent::StepRetrying { key: key.into(), attempt: open.attempt, backoff, error: error.clone() });
            if let Err(e) = self.wait_until(key, at).await {
                self.open = Some(open);
                return Err(e);
            }
            entry.attempts = entry.attempts.saturating_add(1);
            entry.next_attempt_at = None;
            let number = entry.attempts;
            self.commit(
                vec![
                    Op::PutEntry(entry.clone()),
                    Op::AddAttempt(AttemptRecord {
                        seq: open.seq as u64,
                        key: key.into(),
                        number,
                        idempotency_key: open.idempotency_key.clone(),
                        started_at: self.time(),
                    }),
                ],
                Durability::Buffered,
            )
            .await?;
            self.put(entry);
            self.cursor = open.seq + 1;
            let grant = AttemptGrant { idempotency_key: open.idempotency_key.clone(), number };
            self.open = Some(OpenStep { attempt: number, durable_begin: false, requests: Arc::default(), ..open });
            self.observer.send(RunEvent::StepStarted { key: key.into(), attempt: number });
            self.clock.start(key);
            return Ok(StepStart::Run(grant));
        }
        if let Some(hold) = hold.filter(|h| !h.wait.is_zero()) {
            return self.hold(open, entry, error, hold).await;
        }
        entry.fail(error.clone(), now);
        entry.end_seq = Some(self.cursor as u64 - 1);
        self.commit(vec![Op::PutEntry(entry.clone())], Durability::Durable).await?;
        let requests = entry.requests;
        self.put(entry);
        self.observer.send(RunEvent::StepFinished { key: key.into(), status: EntryStatus::Failed, error: Some(error.clone()), requests });
        self.point(Failpoint::AfterStep, key).await?;
        Ok(StepStart::Failed(error))
    }

    /// Records a value (`now`, random) or replays the recorded one.
    async fn value(&mut self, kind: EntryKind, make: impl FnOnce() -> Value) -> Result<Value> {
        if let Some(e) = self.recorded(kind, None)? {
            self.cursor += 1;
            return Ok(e.output.unwrap_or(Value::Null));
        }
        let value = make();
        let mut entry = Entry::new(self.cursor as u64, kind, None, EntryStatus::Succeeded, self.time());
        entry.output = Some(value.clone());
        self.defer(Op::PutEntry(entry.clone())).await?;
        self.put(entry);
        self.cursor += 1;
        Ok(value)
    }

    /// `clock.now`: (seconds, nanoseconds) since the Unix epoch.
    pub async fn now(&mut self) -> Result<(i64, u32)> {
        let t = self.time();
        let v = self.value(EntryKind::Now, || json!({"seconds": t.timestamp(), "nanoseconds": t.timestamp_subsec_nanos()})).await?;
        let seconds = v["seconds"].as_i64().unwrap_or(0);
        let nanos = v["nanoseconds"].as_u64().unwrap_or(0).min(999_999_999) as u32;
        Ok((seconds, nanos))
    }

    /// `random.random-u64`.
    pub async fn random_u64(&mut self) -> Result<u64> {
        let entropy = self.entropy.clone();
        let v = self.value(EntryKind::Random, || json!({"u64": entropy.next_u64().to_string()})).await?;
        Ok(v["u64"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0))
    }

    /// `random.random-bytes`.
    pub async fn random_bytes(&mut self, len: u32) -> Result<Vec<u8>> {
        drover_replay::check_random_len(len)?;
        let entropy = self.entropy.clone();
        let v = self
            .value(EntryKind::Random, || {
                let bytes = entropy.bytes(len as usize);
                json!({"hex": hex::encode(bytes)})
            })
            .await?;
        Ok(v["hex"].as_str().and_then(|s| hex::decode(s).ok()).unwrap_or_default())
    }

    /// `error` with every secret value masked.
    pub fn mask_error(&self, mut error: ErrorRecord) -> ErrorRecord {
        if !self.secrets.is_empty() {
            error.code = self.secrets.mask(&error.code);
            error.message = self.secrets.mask(&error.message);
            error.resource = error.resource.map(|r| self.secrets.mask(&r));
        }
        error
    }

    /// `text` with every secret value masked.
    pub fn mask(&self, text: &str) -> String {
        self.secrets.mask(text)
    }

    /// JSON text (a run's result) with every secret value masked in its strings.
    pub fn mask_json(&self, text: &str) -> String {
        self.secrets.mask_json(text)
    }

    /// `cleanup.defer` / `cleanup.compensate`: journal a registration.
    pub async fn register(&mut self, undo: bool, key: &str, payload: &str, retry: RetrySpec) -> Result<()> {
        check_key(key)?;
        let action = if undo { ActionKind::Undo } else { ActionKind::Cleanup };
        let (kind, step_key) = (action.as_str(), action.step_key(key));
        if self.phase == Phase::Finalize {
            return Err(Violation::register_in_finalize(kind, key).into());
        }
        if !self.registered.insert(step_key.clone()) {
            return Err(Violation::DuplicateAction { kind, key: key.into() }.into());
        }
        retry.check(&format!("{} '{key}'", action.wit_call()))?;
        if payload.len() > self.max_output_bytes {
            return Err(Violation::BadRequest(format!(
                "payload of {kind} '{key}' is {} bytes, more than the step output limit of {} bytes (output_kib); \
                 register a small payload (identifiers), not the data itself",
                payload.len(),
                self.max_output_bytes
            ))
            .into());
        }
        let payload = self.secrets.mask_json(payload);
        let payload: Value = serde_json::from_str(&payload).map_err(|e| Violation::BadRequest(format!("payload of {kind} '{key}' is not JSON: {e}")))?;
        if self.recorded(EntryKind::Register, Some(&step_key))?.is_some() {
            self.cursor += 1;
            return Ok(());
        }
        let mut entry = Entry::new(self.cursor as u64, EntryKind::Register, Some(step_key), EntryStatus::Succeeded, self.time());
        entry.output = Some(json!({"payload": payload, "retry": retry}));
        // Durable: the action must survive any crash that follows.
        self.commit(vec![Op::PutEntry(entry.clone())], Durability::Durable).await?;
        self.put(entry);
        self.cursor += 1;
        Ok(())
    }

    /// The outcome recorded when the main part ended, if it has.
    pub fn recorded_end(&self) -> Option<Entry> {
        self.entries.iter().find(|e| e.kind == EntryKind::End).cloned()
    }

    /// Records the end of the main part (durably, with `ops`) and switches
    /// to the finalize phase, positioned after the end.
    pub async fn end_main(&mut self, ending: Value, error: Option<&ErrorRecord>, mut ops: Vec<Op>) -> Result<()> {
        if self.recorded_end().is_none() {
            // Steps left in flight (a crash, then a cancel before they re-ran)
            // did not finish: say so rather than leave them running forever.
            let now = self.time();
            for e in self.entries.iter_mut().filter(|e| e.kind == EntryKind::Step && e.status == EntryStatus::Running) {
                let why = error.cloned().unwrap_or_else(|| ErrorRecord::terminal("not-finished", "the run ended before this step finished"));
                e.fail(why, now);
                ops.push(Op::PutEntry(e.clone()));
            }
            let mut entry = Entry::new(self.entries.len() as u64, EntryKind::End, None, EntryStatus::Succeeded, now);
            entry.output = Some(ending);
            ops.push(Op::PutEntry(entry.clone()));
            self.commit(ops, Durability::Durable).await?;
            self.put(entry);
        } else if !ops.is_empty() {
            self.commit(ops, Durability::Durable).await?;
        }
        self.enter_finalize();
        Ok(())
    }

    /// Switches to the finalize phase, positioned after the recorded end.
    pub fn enter_finalize(&mut self) {
        self.open = None;
        self.phase = Phase::Finalize;
        if let Some(end) = self.recorded_end() {
            self.cursor = end.seq as usize + 1;
        }
    }

    /// Opens attempt `number` of step `key` (at `seq`), its begin
    /// journaled: its span, its request count, its clock, the `in-step`
    /// crash point.
    async fn open_attempt(&mut self, seq: usize, key: &str, number: u32, idem: &str, retry: RetrySpec) -> Result<()> {
        let span = tracing::info_span!("step", step = key, attempt = number, idempotency_key = %idem);
        self.open =
            Some(OpenStep { seq, key: key.into(), attempt: number, idempotency_key: idem.into(), retry, durable_begin: false, span, requests: Arc::default() });
        self.observer.send(RunEvent::StepStarted { key: key.into(), attempt: number });
        self.clock.start(key);
        self.point(Failpoint::InStep, key).await
    }

    /// Where the AWS requests of the attempt running now are counted.
    pub fn request_counter(&self) -> Option<Arc<AtomicU32>> {
        self.open.as_ref().map(|o| o.requests.clone())
    }

    /// The attempt running now (a step body, or a cleanup or undo).
    pub fn current_attempt(&self) -> Option<AttemptGrant> {
        self.open.as_ref().map(|o| AttemptGrant { idempotency_key: o.idempotency_key.clone(), number: o.attempt })
    }

    /// Journals the final status (with any deferred writes), durably.
    pub async fn finish(&mut self, ops: Vec<Op>) -> Result<()> {
        self.commit(ops, Durability::Durable).await
    }

    /// `log.event`: stored with the run unless it repeats a replayed part.
    /// Returns the bytes recorded (0 when a replay skips the event).
    pub async fn event(&mut self, level: Level, message: String, fields: Vec<(String, String)>) -> Result<usize> {
        // Outside a step body, a replay re-emits what the first execution stored.
        if self.open.is_none() && self.replaying() {
            return Ok(0);
        }
        let bytes = message.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        let message = self.secrets.mask(&message);
        let fields = fields.into_iter().map(|(k, v)| (self.secrets.mask(&k), self.secrets.mask(&v))).collect();
        tracing::event!(target: "drover::runbook", tracing::Level::INFO, run_id = self.run_id(), level = level.as_str(), "{message}");
        let ev = Event { at: self.time(), level, step: self.open.as_ref().map(|o| o.key.clone()), message, fields };
        self.observer.send(RunEvent::Log(ev.clone()));
        self.defer(Op::AddEvent(ev)).await?;
        Ok(bytes)
    }

    /// Checks, when the runbook has returned, that it replayed the whole journal.
    pub fn check_fully_replayed(&self) -> Result<()> {
        let next = self.entries.get(self.cursor).map(|e| (e.kind.as_str(), e.key.as_deref()));
        Ok(drover_replay::cursor::check_finished(self.cursor as u64, self.entries.len() as u64, next)?)
    }

    /// Ops that close the step left open by a trap, with `error`.
    pub fn close_open_step(&mut self, error: &ErrorRecord) -> Vec<Op> {
        self.clock.stop();
        let Some(open) = self.open.take() else { return vec![] };
        let mut entry = self.entries[open.seq].clone();
        open.count_into(&mut entry);
        entry.fail(error.clone(), self.time());
        entry.end_seq = Some(self.cursor.saturating_sub(1) as u64);
        self.put(entry.clone());
        vec![Op::PutEntry(entry)]
    }
}
