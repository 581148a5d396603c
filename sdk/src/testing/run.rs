//! The test run: drives a [`Runbook`] natively against a simulated
//! [`Cloud`], with the agent's durable semantics (steps journaled, retried
//! with backoff, replayed after a crash; undos and cleanups run once at the
//! end) and with crashes and cancels injected where the test says.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, panic_any, resume_unwind};
use std::sync::Once;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use drover_replay::{ActionKind, RetrySpec, Violation};

use crate::bindings::drover::runbook::steps::{AfterFailure, Attempt, OnFailure, RetryPolicy, SkipOutcome, Started};
use crate::bindings::drover::runbook::types::Error as WitError;
use crate::{Ending, Error, Mode, Runbook};
use drover_sim::{ApprovalSeed, Call, Cloud, Scenario};

/// Where a test crashes the "agent": the process dies and everything not
/// journaled is lost; the cloud keeps what was done to it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CrashPoint {
    /// After the step's body ran (its side effects happened) but before its
    /// completion was journaled: the replay runs the body again.
    BeforeComplete(String),
    /// After the step's completion was journaled: the replay skips it.
    AfterComplete(String),
}

/// Unwinds out of the runbook when a crash or cancel is injected.
#[derive(Debug)]
enum Interrupt {
    Crash,
    Cancel,
}

/// One step as the journal holds it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepRecord {
    /// The step's key (`undo:KEY` and `cleanup:KEY` for actions).
    pub key: String,
    /// `completed`, `failed` or `in-flight`.
    pub status: String,
    /// The journaled output (JSON) of a completed step.
    pub output: Option<String>,
    /// The error of a failed step (or of the last failed attempt).
    pub error: Option<String>,
    /// Attempts in all, across retries and crashes.
    pub attempts: u32,
    /// The step's idempotency key.
    pub idempotency_key: String,
    #[serde(skip)]
    error_record: Option<WitError>,
}

/// A journaled call outside a step, in call order: one list, read on replay
/// by one cursor, as the agent's journal is. Calls made inside a step's body
/// are not journaled here: a completed step replays without running its
/// body, and a step run again (a retry, a crash) makes them afresh (the
/// agent journals them under the step and drops them likewise).
#[derive(Debug, Clone)]
enum Entry {
    /// A step (index into [`Journal::steps`]).
    Step(usize),
    Now(i64),
    /// A durable sleep, as its wake-up time.
    Sleep(i64),
    Random(Vec<u8>),
    Approval(String, Result<(String, String), WitError>),
    /// A cleanup or undo registration (index into [`Journal::registrations`]).
    Register(usize),
}

impl Entry {
    /// The journal's kind and key, as the agent names them.
    fn kind_key<'a>(&'a self, j: &'a Journal) -> (&'static str, Option<String>) {
        match self {
            Entry::Step(i) => ("step", Some(j.steps[*i].key.clone())),
            Entry::Now(_) => ("now", None),
            Entry::Sleep(_) => ("sleep", None),
            Entry::Random(_) => ("random", None),
            Entry::Approval(gate, _) => ("approval", Some(gate.clone())),
            Entry::Register(i) => ("register", Some(j.registrations[*i].step_key())),
        }
    }
}

#[derive(Debug, Clone)]
struct Registration {
    kind: ActionKind,
    key: String,
    payload: String,
    retry: RetrySpec,
    /// For an action a branch handed to the run: the step it runs under
    /// (`undo:SECTION/BRANCH/KEY`) and the branch (name, input).
    step_key: Option<String>,
    branch: Option<(String, String)>,
}

impl Registration {
    fn step_key(&self) -> String {
        self.step_key.clone().unwrap_or_else(|| self.kind.step_key(&self.key))
    }
}

/// What survives a crash: the journal.
#[derive(Debug, Clone, Default)]
struct Journal {
    steps: Vec<StepRecord>,
    entries: Vec<Entry>,
    registrations: Vec<Registration>,
    /// How `run` ended, and the journal position after its last entry (the
    /// actions' steps come after).
    ended: Option<(Ending, Result<String, WitError>, usize)>,
}

/// A log line the runbook wrote.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The message.
    pub message: String,
    /// Structured fields.
    pub fields: Vec<(String, String)>,
    /// The step it was written in.
    pub step: Option<String>,
}

struct Open {
    index: usize,
    key: String,
}

/// The state of a test run while the runbook executes; the imports reach it
/// through a thread-local.
pub(crate) struct Live {
    pub(crate) cloud: Cloud,
    journal: Journal,
    run_id: String,
    mode: Mode,
    crashes: Vec<CrashPoint>,
    cancel_before: Option<String>,
    approvals: Vec<ApprovalSeed>,
    logs: Vec<LogLine>,
    /// The journal position of the next call (one cursor, as in the agent).
    cursor: usize,
    /// Step keys and `approval:GATE` used in this execution.
    keys: BTreeSet<String>,
    /// `undo:KEY` / `cleanup:KEY` registered in this execution.
    registered: BTreeSet<String>,
    /// Whether cleanups and undos run (the main part has ended).
    finalizing: bool,
    open: Option<Open>,
    /// The action (cleanup or undo) being carried out: its attempt.
    action_attempt: Option<Attempt>,
    /// The retry policy each open step began with.
    retry: BTreeMap<String, RetrySpec>,
    rng: u64,
    /// The branch this execution runs (name, input JSON), if it runs one.
    branch: Option<(String, String)>,
    /// `SECTION/BRANCH/` in a branch (its steps' names in the test), else empty.
    prefix: String,
    /// Why this branch stops at its next step boundary (fail-fast).
    stop: Option<String>,
    /// Set once the test cancelled the run (every branch stops too).
    cancelled: bool,
    /// Why the run or branch being cancelled is.
    cancel_reason: Option<String>,
    /// Branches a run may start (the agent's default `max_branches`).
    max_branches: usize,
    /// The branches' own runs, kept between executions, by run id.
    branch_runs: BTreeMap<String, sections::RunState>,
    /// Runs one execution of a branch (`execute::<R>`).
    branch_exec: Option<fn(&str)>,
    /// The run's parameters (JSON), which every branch gets too.
    params: String,
    /// Each ended section's branches' steps (named `SECTION/BRANCH/KEY`).
    branch_steps: BTreeMap<String, Vec<StepRecord>>,
}

mod sections;
pub(crate) use sections::run as run_section;

/// A broken rule that fails the run as a `contract-violation`, as the agent
/// does (the agent traps the runbook with the same text).
#[derive(Debug)]
struct ContractViolation(Violation);

/// Refuses a call: a non-determinism or a duplicate step key fails the test
/// itself (the runbook cannot work in the agent), any other broken rule
/// fails the run as the agent would.
fn refuse(v: Violation) -> ! {
    match v {
        Violation::NonDeterminism { .. } | Violation::UnreplayedEntries { .. } | Violation::DuplicateKey { .. } => panic!("{v}"),
        other => panic_any(ContractViolation(other)),
    }
}

thread_local! {
    static LIVE: RefCell<Option<Live>> = const { RefCell::new(None) };
}

/// Runs `f` on the test run of this thread. Panics (failing the test) when
/// the runbook's code calls the agent outside [`TestRun`].
pub(crate) fn with_live<T>(f: impl FnOnce(&mut Live) -> T) -> T {
    LIVE.with(|l| {
        let mut guard = l.borrow_mut();
        let live =
            guard.as_mut().expect("a runbook called the agent outside a test run: natively, drive it with drover_sdk::testing::TestRun::run::<YourRunbook>()");
        f(live)
    })
}

fn spec(retry: RetryPolicy) -> RetrySpec {
    RetrySpec { max_attempts: retry.max_attempts, initial_backoff_ms: retry.initial_backoff_ms, max_backoff_ms: retry.max_backoff_ms }.normalized()
}

/// A wait of `ms` as the agent bounds it, or the refusal.
fn checked_wait(ms: u64, call: &str) -> i64 {
    let wait = Duration::from_millis(ms);
    if let Err(v) = drover_replay::check_wait(wait, drover_replay::MAX_WAIT, call) {
        refuse(v)
    }
    ms.min(i64::MAX as u64) as i64
}

impl Live {
    fn interrupt_if(&mut self, point: CrashPoint) {
        if let Some(i) = self.crashes.iter().position(|c| *c == point) {
            self.crashes.remove(i);
            panic_any(Interrupt::Crash);
        }
    }

    /// The step (or action) whose body runs now: (idempotency key, attempt, step key).
    pub(crate) fn current(&self) -> Option<(String, u32, String)> {
        if let Some(o) = &self.open {
            let s = &self.journal.steps[o.index];
            return Some((s.idempotency_key.clone(), s.attempts, s.key.clone()));
        }
        let a = self.action_attempt.as_ref()?;
        Some((a.idempotency_key.clone(), a.number, String::new()))
    }

    pub(crate) fn run_id(&self) -> String {
        self.run_id.clone()
    }

    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    pub(crate) fn current_attempt(&self) -> Option<Attempt> {
        self.current().map(|(idempotency_key, number, _)| Attempt { idempotency_key, number })
    }

    /// The recorded entry at the cursor, checked against the call the
    /// runbook makes now (`kind`, `key`): `None` past the journal's end.
    fn recorded(&self, kind: &'static str, key: Option<&str>) -> Option<Entry> {
        let e = self.journal.entries.get(self.cursor)?;
        let (rkind, rkey) = e.kind_key(&self.journal);
        if let Err(v) = drover_replay::cursor::check_replayed(self.cursor as u64, (rkind, rkey.as_deref()), (kind, key)) {
            refuse(v)
        }
        Some(e.clone())
    }

    /// Appends `entry` at the cursor and moves past it.
    fn record(&mut self, entry: Entry) {
        self.journal.entries.push(entry);
        self.cursor += 1;
    }

    /// `steps.begin` of the runbook: the agent's checks, then [`Live::begin`].
    pub(crate) fn begin_step(&mut self, key: &str, retry: RetryPolicy) -> Started {
        let retry_spec = spec(retry);
        if let Err(v) = drover_replay::check_key(key).and_then(|()| retry_spec.check(&format!("steps.begin '{key}'"))) {
            refuse(v)
        }
        if self.finalizing {
            refuse(Violation::StepInFinalize { key: key.into() })
        }
        self.begin(key, retry_spec)
    }

    /// Begins step `key` (a runbook's, or the one a cleanup or undo runs
    /// under): replays a finished step, or grants an attempt.
    fn begin(&mut self, key: &str, retry: RetrySpec) -> Started {
        if let Some(open) = &self.open {
            refuse(Violation::NestedStep { outer: open.key.clone(), inner: key.into() })
        }
        if !self.keys.insert(key.to_string()) {
            refuse(Violation::DuplicateKey { key: key.into() })
        }
        if let Some(Entry::Step(index)) = self.recorded("step", Some(key)) {
            self.cursor += 1;
            let rec = &mut self.journal.steps[index];
            match rec.status.as_str() {
                "completed" => return Started::Completed(rec.output.clone().unwrap_or_default()),
                "failed" => {
                    let e = rec.error_record.clone().unwrap_or_else(|| WitError {
                        code: "unknown".into(),
                        message: "the journal recorded a failure without an error".into(),
                        retryable: false,
                        resource: None,
                    });
                    return Started::Failed(e);
                }
                _ => {
                    // In flight when the "agent" crashed: that attempt counts.
                    if let Some(g) = drover_replay::interrupted(key, rec.attempts, retry.max_attempts) {
                        let e = WitError { code: g.code.into(), message: g.message, retryable: false, resource: None };
                        rec.status = "failed".into();
                        rec.error = Some(format!("{}: {}", e.code, e.message));
                        rec.error_record = Some(e.clone());
                        return Started::Failed(e);
                    }
                    rec.attempts = rec.attempts.saturating_add(1);
                    let attempt = Attempt { idempotency_key: rec.idempotency_key.clone(), number: rec.attempts };
                    self.open = Some(Open { index, key: key.to_string() });
                    self.retry.insert(key.to_string(), retry);
                    return Started::Run(attempt);
                }
            }
        }
        if self.cancel_before.as_deref() == Some(self.full_key(key).as_str()) {
            self.cancel_before = None;
            self.cancelled = true;
        }
        self.stop_before(key);
        let idem = drover_replay::idempotency_key(&self.run_id, key);
        let index = self.journal.steps.len();
        self.journal.steps.push(StepRecord {
            key: key.into(),
            status: "in-flight".into(),
            output: None,
            error: None,
            attempts: 1,
            idempotency_key: idem.clone(),
            error_record: None,
        });
        self.record(Entry::Step(index));
        self.open = Some(Open { index, key: key.to_string() });
        self.retry.insert(key.to_string(), retry);
        Started::Run(Attempt { idempotency_key: idem, number: 1 })
    }

    fn take_open(&mut self, key: &str) -> usize {
        match self.open.take() {
            Some(o) if o.key == key => o.index,
            other => {
                self.open = other;
                refuse(Violation::NotBegun { key: key.into() })
            }
        }
    }

    pub(crate) fn complete(&mut self, key: &str, output: &str) {
        let index = self.take_open(key);
        self.interrupt_if(CrashPoint::BeforeComplete(self.full_key(key)));
        let rec = &mut self.journal.steps[index];
        rec.status = "completed".into();
        rec.output = Some(output.to_string());
        self.interrupt_if(CrashPoint::AfterComplete(self.full_key(key)));
    }

    pub(crate) fn fail(&mut self, key: &str, error: &WitError) -> AfterFailure {
        let index = self.take_open(key);
        let retry = self.retry.get(key).copied().unwrap_or(RetrySpec { max_attempts: 1, initial_backoff_ms: 0, max_backoff_ms: 0 });
        let rec = &mut self.journal.steps[index];
        rec.error = Some(format!("{}: {}", error.code, error.message));
        if retry.retries(rec.attempts, error.retryable) {
            rec.attempts = rec.attempts.saturating_add(1);
            let attempt = Attempt { idempotency_key: rec.idempotency_key.clone(), number: rec.attempts };
            // No jitter: deterministic, and the longest wait the agent may take.
            let wait = retry.backoff(rec.attempts, 0.0).as_millis().min(i64::MAX as u128) as i64;
            self.cloud.advance_ms(wait);
            self.open = Some(Open { index, key: key.to_string() });
            return AfterFailure::Retry(attempt);
        }
        rec.status = "failed".into();
        rec.error_record = Some(error.clone());
        AfterFailure::GiveUp(error.clone())
    }

    /// `steps.fail-with`: as [`Live::fail`]; a step that failed for good and
    /// may wait for an operator takes the decision seeded for its gate
    /// `failed:KEY:N` (`approve` retries it, `skip` skips it, anything else
    /// or none lets the failure stand once the wait is over).
    pub(crate) fn fail_with(&mut self, key: &str, error: &WitError, on_failure: &OnFailure) -> Started {
        let call = format!("the operator wait of step '{key}'");
        let wait_ms = checked_wait(on_failure.wait_seconds.saturating_mul(1000), &call);
        if let SkipOutcome::Output(json) = &on_failure.skip
            && let Err(e) = serde_json::from_str::<serde_json::Value>(json)
        {
            refuse(Violation::BadRequest(format!("the skip output of step '{key}' is not JSON: {e}")))
        }
        let index = match &self.open {
            Some(o) if o.key == key => o.index,
            _ => refuse(Violation::NotBegun { key: key.into() }),
        };
        match self.fail(key, error) {
            AfterFailure::Retry(a) => return Started::Run(a),
            AfterFailure::GiveUp(e) if wait_ms == 0 => return Started::Failed(e),
            AfterFailure::GiveUp(_) => {}
        }
        let rec = &mut self.journal.steps[index];
        let gate = drover_replay::held::failure_gate(key, rec.attempts);
        let seed = self.approvals.iter().find(|a| a.gate == gate).cloned();
        let by = seed.as_ref().and_then(|s| s.by.clone()).unwrap_or_else(|| "test".into());
        let reason = seed.as_ref().and_then(|s| s.comment.clone()).unwrap_or_default();
        let verdict = match seed.as_ref().map(|s| s.decision.as_str()) {
            // A dry run has no operator: the failure stands, as in the agent.
            _ if self.mode == Mode::DryRun => "rejected",
            Some("approve") => "approved",
            Some("skip") => "skipped",
            Some("reject") => "rejected",
            _ => "timed-out",
        };
        let skip = match &on_failure.skip {
            SkipOutcome::Refused => drover_replay::held::Skip::Refused,
            SkipOutcome::Output(json) => drover_replay::held::Skip::Output(json.clone()),
            SkipOutcome::Error => drover_replay::held::Skip::Error,
        };
        match drover_replay::held::resolve(verdict, &skip) {
            drover_replay::held::Resolution::Retry => {
                rec.status = "in-flight".into();
                rec.error_record = None;
                rec.attempts = rec.attempts.saturating_add(1);
                let attempt = Attempt { idempotency_key: rec.idempotency_key.clone(), number: rec.attempts };
                self.open = Some(Open { index, key: key.to_string() });
                Started::Run(attempt)
            }
            drover_replay::held::Resolution::Skip => match skip {
                drover_replay::held::Skip::Output(json) => {
                    rec.status = "completed".into();
                    rec.error = None;
                    rec.output = Some(json.clone());
                    Started::Completed(json)
                }
                _ => {
                    let e = WitError {
                        code: drover_replay::held::SKIPPED.into(),
                        message: drover_replay::held::skipped_message(key, &by, &reason),
                        retryable: false,
                        resource: Some(key.into()),
                    };
                    rec.error = Some(format!("{}: {}", e.code, e.message));
                    rec.error_record = Some(e.clone());
                    Started::Failed(e)
                }
            },
            drover_replay::held::Resolution::Fail => {
                if verdict == "timed-out" {
                    self.cloud.advance_ms(wait_ms);
                }
                Started::Failed(error.clone())
            }
        }
    }

    /// The journaled value of a call outside a step at the cursor, or a new
    /// one recorded now.
    fn value(&mut self, kind: &'static str, key: Option<&str>, fresh: impl FnOnce(&mut Live) -> Entry) -> Entry {
        if let Some(e) = self.recorded(kind, key) {
            self.cursor += 1;
            return e;
        }
        let e = fresh(self);
        self.record(e.clone());
        e
    }

    pub(crate) fn now_ms(&mut self) -> i64 {
        if self.current().is_some() {
            // Inside a step the step's output is what gets journaled.
            return self.cloud.now_ms();
        }
        match self.value("now", None, |l| Entry::Now(l.cloud.now_ms())) {
            Entry::Now(ms) => ms,
            _ => unreachable!("checked by recorded()"),
        }
    }

    pub(crate) fn sleep(&mut self, ms: u64) {
        let ms = checked_wait(ms, "clock.sleep");
        let until = if self.current().is_some() {
            // Inside a step: made again whenever the body runs again.
            self.cloud.now_ms().saturating_add(ms)
        } else {
            match self.value("sleep", None, |l| Entry::Sleep(l.cloud.now_ms().saturating_add(ms))) {
                Entry::Sleep(until) => until,
                _ => unreachable!("checked by recorded()"),
            }
        };
        let now = self.cloud.now_ms();
        self.cloud.advance_ms(until.saturating_sub(now).max(0));
    }

    pub(crate) fn random_bytes(&mut self, len: u32) -> Vec<u8> {
        if let Err(v) = drover_replay::check_random_len(len) {
            refuse(v)
        }
        let len = len as usize;
        let fresh = |l: &mut Live| {
            let mut out = Vec::with_capacity(len);
            while out.len() < len {
                // splitmix64
                l.rng = l.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = l.rng;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
            }
            out.truncate(len);
            Entry::Random(out)
        };
        let e = if self.current().is_some() { fresh(self) } else { self.value("random", None, fresh) };
        match e {
            Entry::Random(b) => b,
            _ => unreachable!("checked by recorded()"),
        }
    }

    pub(crate) fn approval(&mut self, gate: &str, message: &str, timeout_seconds: u64) -> Result<(String, String), WitError> {
        if let Err(v) = drover_replay::check_key(gate) {
            refuse(v)
        }
        if let Some(o) = &self.open {
            refuse(Violation::approval_in_step(gate, &o.key))
        }
        if self.finalizing {
            refuse(Violation::approval_in_finalize(gate))
        }
        if !self.keys.insert(format!("approval:{gate}")) {
            refuse(Violation::duplicate_gate(gate))
        }
        let call = format!("approval gate '{gate}'");
        let timeout_ms = checked_wait(timeout_seconds.saturating_mul(1000), &call);
        if let Err(v) = drover_replay::check_approval_message(&call, message.len()) {
            refuse(v)
        }
        let decide = |l: &mut Live| {
            if l.mode == Mode::DryRun {
                return Entry::Approval(gate.into(), Ok(("drover (dry run)".into(), String::new())));
            }
            let seed = l.approvals.iter().find(|a| a.gate == gate).cloned();
            let by = seed.as_ref().and_then(|s| s.by.clone()).unwrap_or_else(|| "test".into());
            let comment = seed.as_ref().and_then(|s| s.comment.clone()).unwrap_or_default();
            Entry::Approval(
                gate.into(),
                match seed.as_ref().map(|s| s.decision.as_str()) {
                    None | Some("approve") => Ok((by, comment)),
                    Some("reject") => Err(WitError {
                        code: "rejected".into(),
                        message: format!("gate '{gate}' was rejected by {by}{}", if comment.is_empty() { String::new() } else { format!(": {comment}") }),
                        retryable: false,
                        resource: None,
                    }),
                    Some(_) => {
                        l.cloud.advance_ms(timeout_ms);
                        Err(WitError {
                            code: "approval-timed-out".into(),
                            message: format!("nobody decided gate '{gate}' within {timeout_seconds} s"),
                            retryable: false,
                            resource: None,
                        })
                    }
                },
            )
        };
        match self.value("approval", Some(gate), decide) {
            Entry::Approval(_, r) => r,
            _ => unreachable!("checked by recorded()"),
        }
    }

    pub(crate) fn register(&mut self, kind: ActionKind, key: &str, payload: &str, retry: RetryPolicy) {
        let retry = spec(retry);
        if let Err(v) = drover_replay::check_key(key) {
            refuse(v)
        }
        if self.finalizing {
            refuse(Violation::register_in_finalize(kind.as_str(), key))
        }
        let step_key = kind.step_key(key);
        if !self.registered.insert(step_key.clone()) {
            refuse(Violation::DuplicateAction { kind: kind.as_str(), key: key.into() })
        }
        if let Err(v) = retry.check(&format!("{} '{key}'", kind.wit_call())) {
            refuse(v)
        }
        if let Err(e) = serde_json::from_str::<Value>(payload) {
            refuse(Violation::BadRequest(format!("payload of {} '{key}' is not JSON: {e}", kind.as_str())))
        }
        if self.recorded("register", Some(&step_key)).is_some() {
            self.cursor += 1; // replayed
            return;
        }
        let index = self.journal.registrations.len();
        self.journal.registrations.push(Registration { kind, key: key.into(), payload: payload.into(), retry, step_key: None, branch: None });
        self.record(Entry::Register(index));
    }

    pub(crate) fn log(&mut self, level: &str, message: &str, fields: &[(String, String)]) {
        let step = self.open.as_ref().map(|o| o.key.clone());
        // Outside a step a replay does not write the line again (the agent
        // keeps the first one); inside a step the body runs again and logs.
        if step.is_none() && self.cursor < self.journal.entries.len() {
            return;
        }
        self.logs.push(LogLine { level: level.into(), message: message.into(), fields: fields.to_vec(), step });
    }

    /// Resets what one execution tracks, positioned at `cursor`.
    fn start_execution(&mut self, cursor: usize) {
        self.cursor = cursor;
        self.keys.clear();
        self.registered.clear();
        self.open = None;
        self.action_attempt = None;
    }

    /// The rule the agent checks when the runbook has returned: it replayed
    /// the whole journal of its main part.
    fn check_fully_replayed(&self) {
        let next = self.journal.entries.get(self.cursor).map(|e| e.kind_key(&self.journal));
        let next = next.as_ref().map(|(kind, key)| (*kind, key.as_deref()));
        if let Err(v) = drover_replay::cursor::check_finished(self.cursor as u64, self.journal.entries.len() as u64, next) {
            refuse(v)
        }
    }
}

/// A runbook's run against a simulated cloud, configured and then
/// [`run`](TestRun::run).
///
/// ```no_run
/// # use drover_sdk::testing::{Scenario, TestRun};
/// # struct MyRunbook;
/// # impl drover_sdk::Runbook for MyRunbook {
/// #     type Params = serde_json::Value; type Output = ();
/// #     fn describe() -> drover_sdk::Describe { drover_sdk::Describe::new("x", "0.1.0") }
/// #     fn run(_: &drover_sdk::Ctx, _: serde_json::Value) -> Result<(), drover_sdk::Error> { Ok(()) }
/// # }
/// let scenario = Scenario::from_toml(r#"
///     [[rds.instance]]
///     region = "us-east-1"
///     identifier = "orders-db"
/// "#).unwrap();
/// let report = TestRun::new(&scenario)
///     .param("db_instance", "orders-db")
///     .crash_before_complete("promote")   // the body ran; its completion was lost
///     .run::<MyRunbook>();
/// assert!(report.succeeded(), "{report}");
/// assert_eq!(report.cloud.changes("rds.promote-read-replica"), 1);
/// ```
pub struct TestRun {
    scenario: Scenario,
    params: BTreeMap<String, Value>,
    mode: Mode,
    crashes: Vec<CrashPoint>,
    cancel_before: Option<String>,
}

impl TestRun {
    /// A run against the cloud `scenario` describes, with its parameters.
    pub fn new(scenario: &Scenario) -> TestRun {
        TestRun { scenario: scenario.clone(), params: scenario.params.clone(), mode: Mode::Run, crashes: Vec::new(), cancel_before: None }
    }

    /// Sets parameter `name` (over the scenario's and the defaults).
    pub fn param(mut self, name: &str, value: impl Serialize) -> TestRun {
        self.params.insert(name.into(), serde_json::to_value(value).unwrap_or(Value::Null));
        self
    }

    /// Runs for readiness ([`Runbook::readiness`]) instead.
    pub fn readiness(mut self) -> TestRun {
        self.mode = Mode::Readiness;
        self
    }

    /// Crashes the agent after step `key`'s body ran and before its
    /// completion is journaled: the side effects happened, the journal does
    /// not know. The run is then resumed from the journal.
    pub fn crash_before_complete(mut self, key: &str) -> TestRun {
        self.crashes.push(CrashPoint::BeforeComplete(key.into()));
        self
    }

    /// Crashes the agent right after step `key`'s completion is journaled,
    /// then resumes the run.
    pub fn crash_after_complete(mut self, key: &str) -> TestRun {
        self.crashes.push(CrashPoint::AfterComplete(key.into()));
        self
    }

    /// Cancels the run when it reaches step `key` (which does not run): its
    /// undos and cleanups run and it ends `cancelled`.
    pub fn cancel_before(mut self, key: &str) -> TestRun {
        self.cancel_before = Some(key.into());
        self
    }

    /// Runs the runbook to its end, through the crashes asked for, and
    /// reports. A panic in the runbook fails the run (as a trap does in the
    /// agent); a broken rule of replay (non-determinism) fails the test.
    pub fn run<R: Runbook>(self) -> Report {
        quiet_interrupts();
        let info = R::describe().into_wit();
        let mut params = serde_json::Map::new();
        let mut missing = Vec::new();
        for p in &info.params {
            if let Some(v) = self.params.get(&p.name) {
                params.insert(p.name.clone(), v.clone());
            } else if p.secret {
                params.insert(p.name.clone(), serde_json::json!({ "$secret": p.name }));
            } else if let Some(d) = &p.default {
                params.insert(p.name.clone(), serde_json::from_str(d).unwrap_or(Value::Null));
            } else {
                missing.push(p.name.clone());
            }
        }
        let unknown: Vec<&String> = self.params.keys().filter(|k| !info.params.iter().any(|p| &p.name == *k)).collect();
        assert!(missing.is_empty(), "runbook {} needs parameters {missing:?}: give them with TestRun::param or in the scenario's [params]", info.name);
        assert!(unknown.is_empty(), "runbook {} has no parameters {unknown:?}", info.name);
        let cloud = Cloud::new(&self.scenario).unwrap_or_else(|e| panic!("{e}"));
        let run_id = self.scenario.settings.run_id.clone();
        let seed = drover_replay::idempotency_key(&run_id, "random").bytes().fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
        let live = Live {
            cloud,
            journal: Journal::default(),
            run_id,
            mode: self.mode,
            crashes: self.crashes,
            cancel_before: self.cancel_before,
            approvals: self.scenario.approvals.clone(),
            logs: Vec::new(),
            cursor: 0,
            keys: BTreeSet::new(),
            registered: BTreeSet::new(),
            finalizing: false,
            open: None,
            action_attempt: None,
            retry: BTreeMap::new(),
            rng: seed,
            branch: None,
            prefix: String::new(),
            stop: None,
            cancelled: false,
            cancel_reason: None,
            max_branches: drover_replay::sections::DEFAULT_MAX_BRANCHES,
            branch_runs: BTreeMap::new(),
            branch_exec: Some(execute::<R>),
            params: String::new(),
            branch_steps: BTreeMap::new(),
        };
        let params = Value::Object(params).to_string();
        let live = Live { params: params.clone(), ..live };
        LIVE.with(|l| *l.borrow_mut() = Some(live));
        let mut executions = 0;
        let mut crashes = 0;
        loop {
            executions += 1;
            match catch_unwind(AssertUnwindSafe(|| execute::<R>(&params))) {
                Ok(()) => break,
                Err(payload) => match payload.downcast_ref::<Interrupt>() {
                    Some(Interrupt::Crash) => {
                        crashes += 1;
                        // What was not journaled is lost; the cloud keeps its state.
                        with_live(|l| {
                            l.start_execution(0);
                            for s in &mut l.journal.steps {
                                if s.status == "in-flight" {
                                    s.error = Some("the agent crashed during this attempt".into());
                                }
                            }
                        });
                    }
                    _ => {
                        LIVE.with(|l| *l.borrow_mut() = None);
                        resume_unwind(payload)
                    }
                },
            }
        }
        let live = LIVE.with(|l| l.borrow_mut().take()).expect("the test run is still there");
        let (ending, result, _) = live.journal.ended.clone().expect("the run ended");
        // Each section's branches' steps follow the section's own.
        let mut steps = Vec::new();
        for s in live.journal.steps {
            let branches = live.branch_steps.get(&s.key).cloned().unwrap_or_default();
            steps.push(s);
            steps.extend(branches);
        }
        Report { ending, result: result.map_err(Error::from_wit), steps, cloud: live.cloud, logs: live.logs, executions, crashes }
    }
}

/// One execution of the runbook, from the top (a resumed run replays).
fn execute<R: Runbook>(params: &str) {
    let ended = with_live(|l| {
        let end = l.journal.ended.as_ref().map(|e| e.2);
        l.finalizing = end.is_some();
        l.start_execution(end.unwrap_or(0));
        end
    });
    if ended.is_none() {
        // What the component's `run` export does, natively.
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let r = crate::__private::run::<R>(params);
            with_live(|l| l.check_fully_replayed());
            r
        }));
        let failed = |code: &str, message: String| (Ending::Failed, Err(WitError { code: code.into(), message, retryable: false, resource: None }));
        let (ending, result) = match outcome {
            // A cancel the runbook saw only through its branches' outcomes
            // still ends the run cancelled, as in the agent.
            Ok(Err(e)) if with_live(|l| l.cancelled) => (
                Ending::Cancelled,
                Err(WitError { message: format!("the test cancelled the run; the runbook then ended with: {}", e.message), code: "cancelled".into(), ..e }),
            ),
            Ok(r) => (if r.is_ok() { Ending::Succeeded } else { Ending::Failed }, r),
            Err(payload) => match (payload.downcast_ref::<Interrupt>(), payload.downcast_ref::<ContractViolation>()) {
                (Some(Interrupt::Cancel), _) => (
                    Ending::Cancelled,
                    Err(WitError {
                        code: "cancelled".into(),
                        message: with_live(|l| l.cancel_reason.clone()).unwrap_or_else(|| "the test cancelled the run".into()),
                        retryable: false,
                        resource: None,
                    }),
                ),
                (Some(Interrupt::Crash), _) => resume_unwind(payload),
                (None, Some(ContractViolation(v))) => failed(v.code(), v.to_string()),
                (None, None) => {
                    let why = payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "a panic".into());
                    if why.starts_with("non-determinism") || why.contains("used twice") || why.contains("outside a step") {
                        // A broken rule of replay is the test's failure, not the run's.
                        resume_unwind(payload);
                    }
                    failed("trap", format!("the runbook panicked: {why}"))
                }
            },
        };
        with_live(|l| {
            l.open = None;
            l.journal.ended = Some((ending, result, l.cursor));
            l.finalizing = true;
        });
    }
    // A branch that succeeded hands its undos and cleanups to the run.
    let handed_over = with_live(|l| l.branch.is_some() && l.journal.ended.as_ref().is_some_and(|e| e.0 == Ending::Succeeded));
    if handed_over {
        return;
    }
    finalize::<R>();
}

/// Undos (newest first, only when the run did not succeed), then cleanups
/// (newest first): each a journaled step `undo:KEY` / `cleanup:KEY`, run
/// once, retried as registered.
fn finalize<R: Runbook>() {
    let (ending, registrations) = with_live(|l| (l.journal.ended.as_ref().map(|e| e.0).expect("ended"), l.journal.registrations.clone()));
    let undos = registrations.iter().filter(|r| r.kind == ActionKind::Undo && ending != Ending::Succeeded).rev();
    let cleanups = registrations.iter().filter(|r| r.kind == ActionKind::Cleanup).rev();
    for r in undos.chain(cleanups) {
        let key = r.step_key();
        let started = with_live(|l| l.begin(&key, r.retry));
        let mut attempt = match started {
            Started::Completed(_) | Started::Failed(_) => continue,
            Started::Run(a) => a,
        };
        loop {
            let index = with_live(|l| {
                let index = l.open.take().map(|o| o.index); // the action's calls are made as the action, not as a step
                l.action_attempt = Some(attempt.clone());
                index
            });
            let action = crate::bindings::Action {
                kind: match r.kind {
                    ActionKind::Undo => crate::bindings::ActionKind::Undo,
                    ActionKind::Cleanup => crate::bindings::ActionKind::Cleanup,
                },
                key: r.key.clone(),
                payload: r.payload.clone(),
                ending: match ending {
                    Ending::Succeeded => crate::bindings::Ending::Succeeded,
                    Ending::Failed => crate::bindings::Ending::Failed,
                    Ending::Cancelled => crate::bindings::Ending::Cancelled,
                },
            };
            // What the component's `finalize` export does, natively (in the
            // branch that registered it, for an action a branch handed over).
            let own = with_live(|l| {
                let theirs = r.branch.clone().or_else(|| l.branch.clone());
                std::mem::replace(&mut l.branch, theirs)
            });
            let result = catch_unwind(AssertUnwindSafe(|| crate::__private::finalize::<R>(action)));
            with_live(|l| l.branch = own);
            let result = match result {
                Ok(r) => r,
                Err(payload) if payload.downcast_ref::<Interrupt>().is_some() => resume_unwind(payload),
                Err(payload) => {
                    let message = match payload.downcast_ref::<ContractViolation>() {
                        Some(ContractViolation(v)) => v.to_string(),
                        None => format!("the runbook panicked in finalize({})", r.key),
                    };
                    Err(WitError { code: "trap".into(), message, retryable: false, resource: None })
                }
            };
            // The action's step is open again to take its outcome.
            with_live(|l| {
                l.action_attempt = None;
                l.open = index.map(|index| Open { index, key: key.clone() });
            });
            match result {
                Ok(()) => {
                    with_live(|l| l.complete(&key, "null"));
                    break;
                }
                Err(e) => match with_live(|l| l.fail(&key, &e)) {
                    AfterFailure::Retry(next) => attempt = next,
                    AfterFailure::GiveUp(_) => break,
                },
            }
        }
        with_live(|l| l.open = None);
    }
}

/// Injected crashes and cancels unwind through the runbook; they are not
/// errors to print.
fn quiet_interrupts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<Interrupt>().is_none() {
                previous(info)
            }
        }));
    });
}

/// What a test run did: how it ended, its journal, the calls it made and the
/// cloud it left.
pub struct Report {
    /// How `run` ended.
    pub ending: Ending,
    /// The run's result (its output as JSON) or its error.
    pub result: Result<String, Error>,
    /// The journal's steps, in order (actions last).
    pub steps: Vec<StepRecord>,
    /// The simulated cloud as the run left it (with every call made).
    pub cloud: Cloud,
    /// What the runbook logged.
    pub logs: Vec<LogLine>,
    /// How many times the runbook was executed (1 + one per crash).
    pub executions: u32,
    /// How many injected crashes happened.
    pub crashes: u32,
}

impl Report {
    /// Whether the run succeeded.
    pub fn succeeded(&self) -> bool {
        self.ending == Ending::Succeeded && self.result.is_ok()
    }

    /// The run's output, decoded.
    pub fn output<T: DeserializeOwned>(&self) -> T {
        let json = self.result.as_ref().unwrap_or_else(|e| panic!("the run failed: {e}\n{self}"));
        serde_json::from_str(json).unwrap_or_else(|e| panic!("the run's output does not decode: {e}: {json}"))
    }

    /// The run's error (panics if it succeeded).
    pub fn error(&self) -> &Error {
        match &self.result {
            Err(e) => e,
            Ok(out) => panic!("the run succeeded with {out}\n{self}"),
        }
    }

    /// The journaled step `key` (panics if the run never reached it).
    pub fn step(&self, key: &str) -> &StepRecord {
        self.steps.iter().find(|s| s.key == key).unwrap_or_else(|| panic!("the run has no step '{key}'\n{self}"))
    }

    /// Whether the run reached step `key`.
    pub fn has_step(&self, key: &str) -> bool {
        self.steps.iter().any(|s| s.key == key)
    }

    /// Every call made to the cloud.
    pub fn calls(&self) -> &[Call] {
        self.cloud.calls()
    }

    /// The journal in brief: each step's key, outcome, attempts and
    /// idempotency key, as the agent's `drover test --json` reports them.
    pub fn journal_summary(&self) -> Vec<drover_replay::StepSummary> {
        self.steps
            .iter()
            .map(|s| drover_replay::StepSummary {
                key: s.key.clone(),
                outcome: drover_replay::summary::outcome(&s.status).into(),
                attempts: s.attempts,
                idempotency_key: s.idempotency_key.clone(),
            })
            .collect()
    }

    /// Checks that this run journaled what `expected` (the JSON of a list of
    /// [`drover_replay::StepSummary`], e.g. a parity file) says, and fails
    /// the test with both when it did not. The agent's `drover test` is
    /// checked against the same file, so a runbook passing both is tested
    /// against the agent's rules, not a copy of them.
    pub fn assert_journal(&self, expected: &str) {
        let want: Vec<drover_replay::StepSummary> =
            serde_json::from_str(expected).unwrap_or_else(|e| panic!("the expected journal is not a list of step summaries: {e}"));
        let got = self.journal_summary();
        if got != want {
            let got = serde_json::to_string_pretty(&got).unwrap_or_default();
            panic!("the harness journaled\n{got}\nwhere the expected journal (and the agent) has\n{expected}\n{self}");
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ending = match self.ending {
            Ending::Succeeded => "succeeded",
            Ending::Failed => "failed",
            Ending::Cancelled => "cancelled",
        };
        writeln!(f, "run {ending} after {} execution(s), {} crash(es)", self.executions, self.crashes)?;
        match &self.result {
            Ok(out) => writeln!(f, "  output: {out}")?,
            Err(e) => writeln!(f, "  error: {e}")?,
        }
        writeln!(f, "steps:")?;
        for s in &self.steps {
            writeln!(f, "  {:<28} {:<10} attempts {}{}", s.key, s.status, s.attempts, s.error.as_deref().map(|e| format!("  ({e})")).unwrap_or_default())?;
        }
        writeln!(f, "calls:")?;
        for c in self.cloud.calls() {
            writeln!(
                f,
                "  {:<36} {:<10} {:<32} {}{}",
                c.call,
                c.region,
                c.resource,
                c.outcome(),
                c.step.as_deref().map(|s| format!("  [{s} #{}]", c.attempt)).unwrap_or_default()
            )?;
        }
        if !self.logs.is_empty() {
            writeln!(f, "log:")?;
            for l in &self.logs {
                writeln!(f, "  {:<5} {}", l.level, l.message)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
