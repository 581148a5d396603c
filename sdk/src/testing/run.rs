//! The test run: drives a [`Runbook`] natively against a simulated
//! [`Cloud`], with the agent's durable semantics (steps journaled, retried
//! with backoff, replayed after a crash; undos and cleanups run once at the
//! end) and with crashes and cancels injected where the test says.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, panic_any, resume_unwind};
use std::sync::Once;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::cloud::{Call, Cloud};
use super::scenario::{ApprovalSeed, Scenario};
use crate::bindings::drover::runbook::steps::{AfterFailure, Attempt, RetryPolicy, Started};
use crate::bindings::drover::runbook::types::Error as WitError;
use crate::{Ending, Error, Mode, Runbook};

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

#[derive(Debug, Clone)]
enum Event {
    Now(i64),
    Sleep(i64),
    Random(Vec<u8>),
    Approval(Result<(String, String), WitError>),
}

#[derive(Debug, Clone)]
struct Registration {
    undo: bool,
    key: String,
    payload: String,
    retry: RetryPolicy,
}

/// What survives a crash: the journal.
#[derive(Debug, Clone, Default)]
struct Journal {
    steps: Vec<StepRecord>,
    events: Vec<Event>,
    registrations: Vec<Registration>,
    ended: Option<(Ending, Result<String, WitError>)>,
    /// How many steps `run` journaled (the actions' steps come after).
    main_steps: usize,
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
    step_cursor: usize,
    event_cursor: usize,
    seen: BTreeSet<String>,
    open: Option<Open>,
    /// The action (cleanup or undo) being carried out: its attempt.
    action_attempt: Option<Attempt>,
    /// The retry policy each open step began with.
    retry: BTreeMap<String, RetryPolicy>,
    rng: u64,
}

thread_local! {
    static LIVE: RefCell<Option<Live>> = const { RefCell::new(None) };
}

/// Runs `f` on the test run of this thread. Panics (failing the test) when
/// the runbook's code calls the agent outside [`TestRun`].
pub(crate) fn with_live<T>(f: impl FnOnce(&mut Live) -> T) -> T {
    LIVE.with(|l| {
        let mut guard = l.borrow_mut();
        let live = guard.as_mut().expect(
            "a runbook called the agent outside a test run: natively, drive it with drover_sdk::testing::TestRun::run::<YourRunbook>()",
        );
        f(live)
    })
}

fn idempotency_key(run_id: &str, key: &str) -> String {
    // FNV-1a, twice with different seeds: stable, 32 hex digits.
    let fnv = |seed: u64| {
        let mut h = seed;
        for b in run_id.bytes().chain([0]).chain(key.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        h
    };
    format!("{:016x}{:016x}", fnv(0xcbf2_9ce4_8422_2325), fnv(0x6c62_272e_07bb_0142))
}

fn backoff_ms(retry: &RetryPolicy, next: u32) -> i64 {
    let exp = next.saturating_sub(2).min(32);
    let base = retry.initial_backoff_ms.saturating_mul(1u64 << exp).min(retry.max_backoff_ms.max(retry.initial_backoff_ms));
    base.min(i64::MAX as u64) as i64
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

    pub(crate) fn begin(&mut self, key: &str, retry: RetryPolicy) -> Started {
        assert!(self.open.is_none(), "step '{key}' began inside step '{}': steps do not nest", self.open.as_ref().map(|o| o.key.as_str()).unwrap_or(""));
        assert!(self.seen.insert(key.to_string()), "step key '{key}' is used twice in one run; keys must be unique (use format!(\"copy-{{region}}\") in loops)");
        let index = self.step_cursor;
        self.step_cursor += 1;
        if let Some(rec) = self.journal.steps.get_mut(index) {
            assert_eq!(
                rec.key, key,
                "non-determinism: on replay the runbook asked for step '{key}' where the journal has step '{}' (position {index}); a run must reach its steps in the same order every time",
                rec.key
            );
            match rec.status.as_str() {
                "completed" => return Started::Completed(rec.output.clone().unwrap_or_default()),
                "failed" => return Started::Failed(rec.error_record.clone().expect("a failed step has its error")),
                _ => {
                    // In flight when the "agent" crashed: that attempt counts.
                    if let Some(e) = super::interrupted_step(key, rec.attempts, retry.max_attempts) {
                        rec.status = "failed".into();
                        rec.error = Some(format!("{}: {}", e.code, e.message));
                        rec.error_record = Some(e.clone());
                        return Started::Failed(e);
                    }
                    rec.attempts = rec.attempts.saturating_add(1);
                    self.open = Some(Open { index, key: key.to_string() });
                    self.retry.insert(key.to_string(), retry);
                    return Started::Run(Attempt { idempotency_key: rec.idempotency_key.clone(), number: rec.attempts });
                }
            }
        }
        if self.cancel_before.as_deref() == Some(key) {
            self.cancel_before = None;
            self.step_cursor -= 1;
            self.seen.remove(key);
            panic_any(Interrupt::Cancel);
        }
        let idem = idempotency_key(&self.run_id, key);
        self.journal.steps.push(StepRecord {
            key: key.into(),
            status: "in-flight".into(),
            output: None,
            error: None,
            attempts: 1,
            idempotency_key: idem.clone(),
            error_record: None,
        });
        self.open = Some(Open { index, key: key.to_string() });
        self.retry.insert(key.to_string(), retry);
        Started::Run(Attempt { idempotency_key: idem, number: 1 })
    }

    fn take_open(&mut self, key: &str) -> usize {
        match self.open.take() {
            Some(o) if o.key == key => o.index,
            other => panic!("step '{key}' completed or failed while {} was open", other.map(|o| format!("step '{}'", o.key)).unwrap_or_else(|| "no step".into())),
        }
    }

    pub(crate) fn complete(&mut self, key: &str, output: &str) {
        let index = self.take_open(key);
        self.interrupt_if(CrashPoint::BeforeComplete(key.to_string()));
        let rec = &mut self.journal.steps[index];
        rec.status = "completed".into();
        rec.output = Some(output.to_string());
        self.interrupt_if(CrashPoint::AfterComplete(key.to_string()));
    }

    pub(crate) fn fail(&mut self, key: &str, error: &WitError) -> AfterFailure {
        let index = self.take_open(key);
        let retry = self.retry.get(key).cloned().unwrap_or(RetryPolicy { max_attempts: 1, initial_backoff_ms: 0, max_backoff_ms: 0 });
        let rec = &mut self.journal.steps[index];
        rec.error = Some(format!("{}: {}", error.code, error.message));
        if error.retryable && rec.attempts < retry.max_attempts {
            rec.attempts += 1;
            let attempt = Attempt { idempotency_key: rec.idempotency_key.clone(), number: rec.attempts };
            let wait = backoff_ms(&retry, rec.attempts);
            self.cloud.advance_ms(wait);
            self.open = Some(Open { index, key: key.to_string() });
            return AfterFailure::Retry(attempt);
        }
        rec.status = "failed".into();
        rec.error_record = Some(error.clone());
        AfterFailure::GiveUp(error.clone())
    }

    /// The next journaled value, or a new one recorded now.
    fn event(&mut self, what: &str, fresh: impl FnOnce(&mut Live) -> Event, matches: impl Fn(&Event) -> bool) -> Event {
        let i = self.event_cursor;
        self.event_cursor += 1;
        if let Some(e) = self.journal.events.get(i) {
            assert!(matches(e), "non-determinism: on replay the runbook asked for {what} where the journal has {e:?}");
            return e.clone();
        }
        let e = fresh(self);
        self.journal.events.push(e.clone());
        e
    }

    pub(crate) fn now_ms(&mut self) -> i64 {
        if self.current().is_some() {
            // Inside a step the step's output is what gets journaled.
            return self.cloud.now_ms();
        }
        match self.event("the time", |l| Event::Now(l.cloud.now_ms()), |e| matches!(e, Event::Now(_))) {
            Event::Now(ms) => ms,
            _ => unreachable!(),
        }
    }

    pub(crate) fn sleep(&mut self, ms: u64) {
        let ms = ms.min(i64::MAX as u64) as i64;
        let until = match self.event("a sleep", |l| Event::Sleep(l.cloud.now_ms().saturating_add(ms)), |e| matches!(e, Event::Sleep(_))) {
            Event::Sleep(until) => until,
            _ => unreachable!(),
        };
        let now = self.cloud.now_ms();
        self.cloud.advance_ms(until - now);
    }

    pub(crate) fn random_bytes(&mut self, len: u32) -> Vec<u8> {
        let len = len.min(4096) as usize;
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
            Event::Random(out)
        };
        if self.current().is_some() {
            return match fresh(self) {
                Event::Random(b) => b,
                _ => unreachable!(),
            };
        }
        match self.event("random bytes", fresh, |e| matches!(e, Event::Random(_))) {
            Event::Random(b) => b,
            _ => unreachable!(),
        }
    }

    pub(crate) fn approval(&mut self, gate: &str, timeout_seconds: u64) -> Result<(String, String), WitError> {
        let decide = |l: &mut Live| {
            if l.mode == Mode::DryRun {
                return Event::Approval(Ok(("drover (dry run)".into(), String::new())));
            }
            let seed = l.approvals.iter().find(|a| a.gate == gate).cloned();
            let by = seed.as_ref().and_then(|s| s.by.clone()).unwrap_or_else(|| "test".into());
            let comment = seed.as_ref().and_then(|s| s.comment.clone()).unwrap_or_default();
            Event::Approval(match seed.as_ref().map(|s| s.decision.as_str()) {
                None | Some("approve") => Ok((by, comment)),
                Some("reject") => Err(WitError {
                    code: "rejected".into(),
                    message: format!("gate '{gate}' was rejected by {by}{}", if comment.is_empty() { String::new() } else { format!(": {comment}") }),
                    retryable: false,
                    resource: None,
                }),
                Some(_) => {
                    l.cloud.advance_ms((timeout_seconds.min(i64::MAX as u64 / 1000) * 1000) as i64);
                    Err(WitError {
                        code: "approval-timed-out".into(),
                        message: format!("nobody decided gate '{gate}' within {timeout_seconds} s"),
                        retryable: false,
                        resource: None,
                    })
                }
            })
        };
        match self.event("an approval", decide, |e| matches!(e, Event::Approval(_))) {
            Event::Approval(r) => r,
            _ => unreachable!(),
        }
    }

    pub(crate) fn register(&mut self, undo: bool, key: &str, payload: &str, retry: RetryPolicy) {
        if self.journal.registrations.iter().any(|r| r.key == key && r.undo == undo) {
            return; // replayed
        }
        self.journal.registrations.push(Registration { undo, key: key.into(), payload: payload.into(), retry });
    }

    pub(crate) fn log(&mut self, level: &str, message: &str, fields: &[(String, String)]) {
        let step = self.open.as_ref().map(|o| o.key.clone());
        self.logs.push(LogLine { level: level.into(), message: message.into(), fields: fields.to_vec(), step });
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
        let seed = idempotency_key(&run_id, "random").bytes().fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
        let live = Live {
            cloud,
            journal: Journal::default(),
            run_id,
            mode: self.mode,
            crashes: self.crashes,
            cancel_before: self.cancel_before,
            approvals: self.scenario.approvals.clone(),
            logs: Vec::new(),
            step_cursor: 0,
            event_cursor: 0,
            seen: BTreeSet::new(),
            open: None,
            action_attempt: None,
            retry: BTreeMap::new(),
            rng: seed,
        };
        LIVE.with(|l| *l.borrow_mut() = Some(live));
        let params = Value::Object(params).to_string();
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
                            l.open = None;
                            l.action_attempt = None;
                            l.step_cursor = 0;
                            l.event_cursor = 0;
                            l.seen.clear();
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
        let (ending, result) = live.journal.ended.clone().expect("the run ended");
        Report {
            ending,
            result: result.map_err(Error::from_wit),
            steps: live.journal.steps,
            cloud: live.cloud,
            logs: live.logs,
            executions,
            crashes,
        }
    }
}

/// One execution of the runbook, from the top (a resumed run replays).
fn execute<R: Runbook>(params: &str) {
    let ended = with_live(|l| {
        l.step_cursor = if l.journal.ended.is_some() { l.journal.main_steps } else { 0 };
        l.event_cursor = 0;
        l.seen.clear();
        l.journal.ended.clone()
    });
    if ended.is_none() {
        // What the component's `run` export does, natively.
        let outcome = catch_unwind(AssertUnwindSafe(|| crate::__private::run::<R>(params)));
        let (ending, result) = match outcome {
            Ok(r) => (if r.is_ok() { Ending::Succeeded } else { Ending::Failed }, r),
            Err(payload) => match payload.downcast_ref::<Interrupt>() {
                Some(Interrupt::Cancel) => {
                    (Ending::Cancelled, Err(WitError { code: "cancelled".into(), message: "the test cancelled the run".into(), retryable: false, resource: None }))
                }
                Some(Interrupt::Crash) => resume_unwind(payload),
                None => {
                    let why = payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "a panic".into());
                    if why.starts_with("non-determinism") || why.contains("used twice") || why.contains("outside a step") {
                        // A broken rule of replay is the test's failure, not the run's.
                        resume_unwind(payload);
                    }
                    (Ending::Failed, Err(WitError { code: "trap".into(), message: format!("the runbook panicked: {why}"), retryable: false, resource: None }))
                }
            },
        };
        with_live(|l| {
            l.open = None;
            l.journal.ended = Some((ending, result));
            l.journal.main_steps = l.journal.steps.len();
        });
    }
    finalize::<R>();
}

/// Undos (newest first, only when the run did not succeed), then cleanups
/// (newest first): each a journaled step `undo:KEY` / `cleanup:KEY`, run
/// once, retried as registered.
fn finalize<R: Runbook>() {
    let (ending, registrations) = with_live(|l| (l.journal.ended.as_ref().map(|e| e.0).expect("ended"), l.journal.registrations.clone()));
    let undos = registrations.iter().filter(|r| r.undo && ending != Ending::Succeeded).rev();
    let cleanups = registrations.iter().filter(|r| !r.undo).rev();
    for r in undos.chain(cleanups) {
        let key = format!("{}:{}", if r.undo { "undo" } else { "cleanup" }, r.key);
        let started = with_live(|l| l.begin(&key, r.retry));
        let mut attempt = match started {
            Started::Completed(_) | Started::Failed(_) => continue,
            Started::Run(a) => a,
        };
        loop {
            with_live(|l| {
                l.open = None; // the action's calls are made as the action, not as a step
                l.action_attempt = Some(attempt.clone());
            });
            let action = crate::bindings::Action {
                kind: if r.undo { crate::bindings::ActionKind::Undo } else { crate::bindings::ActionKind::Cleanup },
                key: r.key.clone(),
                payload: r.payload.clone(),
                ending: match ending {
                    Ending::Succeeded => crate::bindings::Ending::Succeeded,
                    Ending::Failed => crate::bindings::Ending::Failed,
                    Ending::Cancelled => crate::bindings::Ending::Cancelled,
                },
            };
            // What the component's `finalize` export does, natively.
            let result = catch_unwind(AssertUnwindSafe(|| crate::__private::finalize::<R>(action)));
            let result = match result {
                Ok(r) => r,
                Err(payload) if payload.downcast_ref::<Interrupt>().is_some() => resume_unwind(payload),
                Err(_) => Err(WitError { code: "trap".into(), message: format!("the runbook panicked in finalize({})", r.key), retryable: false, resource: None }),
            };
            // The action's step is open again to take its outcome.
            with_live(|l| {
                l.action_attempt = None;
                l.open = Some(Open { index: l.step_cursor - 1, key: key.clone() });
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
            writeln!(f, "  {:<36} {:<10} {:<32} {}{}", c.call, c.region, c.resource, c.outcome(), c.step.as_deref().map(|s| format!("  [{s} #{}]", c.attempt)).unwrap_or_default())?;
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
