//! The runbook's handle on the agent: durable steps, time, randomness, logs.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::host::{approval, cleanup, clock, log, random, run_context, steps};
use crate::{Error, Retry};

/// Severity of a log event.
pub use crate::bindings::drover::runbook::log::Level;
/// Why a runbook runs (see [`Ctx::mode`]).
pub use crate::bindings::drover::runbook::run_context::RunMode as Mode;

/// The attempt of a step body that is running now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The step's key.
    pub step: String,
    /// The step's idempotency key: the same for every attempt of this step in
    /// this run, across crashes. Pass it to anything that creates a resource.
    pub idempotency_key: String,
    /// 1 for the first attempt.
    pub number: u32,
}

/// Who let a run through an approval gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    /// Who approved (`user@host`, an API caller, or `drover (unattended ...)`).
    pub by: String,
    /// Their comment (may be empty).
    pub comment: String,
}

/// The context a runbook runs in. Every way a runbook touches the world goes
/// through it, and every call is journaled so that a resumed run repeats the
/// same decisions without repeating the same side effects.
pub struct Ctx {
    current: RefCell<Option<Attempt>>,
}

impl Ctx {
    pub(crate) fn new() -> Self {
        Ctx { current: RefCell::new(None) }
    }

    /// Runs `body` as the durable step `key`, with the default retry policy
    /// ([`Retry::default`]: retryable errors get three attempts).
    ///
    /// The first time the run reaches this step, `body` runs and its output is
    /// journaled durably before `step` returns. When the run is resumed after a
    /// crash, a completed step returns its journaled output without running
    /// `body`; a step that was in flight runs `body` again with the same
    /// [`Attempt::idempotency_key`].
    ///
    /// `key` must be unique within the run (use `format!("copy-{region}")` in
    /// loops) and the run must reach its steps in the same order on every
    /// execution: the agent stops a run that does not (non-determinism).
    pub fn step<T, F>(&self, key: &str, body: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut() -> Result<T, Error>,
    {
        self.step_with(key, Retry::default(), body)
    }

    /// [`Ctx::step`] with an explicit retry policy.
    pub fn step_with<T, F>(&self, key: &str, retry: Retry, body: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut() -> Result<T, Error>,
    {
        self.run_step(key, retry, None, body)
    }

    /// [`Ctx::step_with`], for a step an operator takes over once it has
    /// failed for good (its retries used up, or a terminal error): instead
    /// of failing the run (and running its undos), the run waits for
    /// `on_failure`'s time, durably, at the gate `failed:KEY:N`. The
    /// operator fixes the cause and retries the step (`drover redrive RUN`,
    /// or approves the gate), skips it (`drover skip RUN KEY --reason`, if
    /// `on_failure` allows: this returns the output it declared, or the
    /// error `step-skipped`), or lets the failure stand (a rejection, the
    /// deadline, a cancel): this returns the step's error. An unattended run
    /// (a scheduled drill) has no operator: its failures stand at once.
    ///
    /// ```no_run
    /// # use drover_sdk::{Ctx, Error, OnFailure, Retry};
    /// # use std::time::Duration;
    /// # fn point(ctx: &Ctx) -> Result<bool, Error> {
    /// // Wait up to an hour for someone to fix the grant, or skip: `false`.
    /// let hold = OnFailure::wait(Duration::from_secs(3600)).or_skip_with(false);
    /// ctx.step_with_operator("point-db-record", Retry::attempts(3), &hold, || Ok(true))
    /// # }
    /// ```
    pub fn step_with_operator<T, F>(&self, key: &str, retry: Retry, on_failure: &OnFailure<T>, body: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut() -> Result<T, Error>,
    {
        let skip = match &on_failure.skip {
            SkipAs::Refused => steps::SkipOutcome::Refused,
            SkipAs::Error => steps::SkipOutcome::Error,
            SkipAs::Output(v) => steps::SkipOutcome::Output(
                serde_json::to_string(v).map_err(|e| Error::new("output-not-serializable", format!("skip output of step '{key}': {e}")))?,
            ),
        };
        let wait_seconds = on_failure.wait.as_secs().saturating_add(u64::from(on_failure.wait.subsec_nanos() > 0));
        self.run_step(key, retry, Some(steps::OnFailure { wait_seconds, skip }), body)
    }

    fn run_step<T, F>(&self, key: &str, retry: Retry, on_failure: Option<steps::OnFailure>, mut body: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut() -> Result<T, Error>,
    {
        let mut attempt = match steps::begin(key, retry.to_wit()) {
            steps::Started::Completed(json) => return decode_output(key, &json),
            steps::Started::Failed(e) => return Err(Error::from_wit(e)),
            steps::Started::Run(a) => a,
        };
        loop {
            *self.current.borrow_mut() = Some(Attempt { step: key.to_string(), idempotency_key: attempt.idempotency_key.clone(), number: attempt.number });
            let outcome =
                body().and_then(|v| serde_json::to_string(&v).map_err(|e| Error::new("output-not-serializable", format!("output of step '{key}': {e}"))));
            *self.current.borrow_mut() = None;
            match outcome {
                Ok(json) => {
                    steps::complete(key, &json);
                    // Hand back what a replay would hand back: the journaled JSON, decoded.
                    return decode_output(key, &json);
                }
                Err(e) => match &on_failure {
                    None => match steps::fail(key, &e.to_wit()) {
                        steps::AfterFailure::Retry(next) => attempt = next,
                        steps::AfterFailure::GiveUp(e) => return Err(Error::from_wit(e)),
                    },
                    Some(of) => match steps::fail_with(key, &e.to_wit(), of) {
                        steps::Started::Run(next) => attempt = next,
                        steps::Started::Completed(json) => return decode_output(key, &json),
                        steps::Started::Failed(e) => return Err(Error::from_wit(e)),
                    },
                },
            }
        }
    }

    /// The attempt of the step body (or cleanup, or undo) running now, or
    /// `None` outside one.
    pub fn attempt(&self) -> Option<Attempt> {
        self.current.borrow().clone()
    }

    pub(crate) fn set_attempt(&self, attempt: Option<Attempt>) {
        *self.current.borrow_mut() = attempt;
    }

    pub(crate) fn current_attempt_from_host(&self, step: &str) {
        let a = run_context::current_attempt().map(|a| Attempt { step: step.to_string(), idempotency_key: a.idempotency_key, number: a.number });
        self.set_attempt(a);
    }

    /// Registers a cleanup named `key` that the agent runs when the run ends,
    /// however it ends, by calling [`crate::Runbook::finalize`] with `payload`.
    /// Register it the moment the thing to clean up is requested (before the
    /// step that creates it), so that no crash can leave it behind.
    /// Cleanups run newest first, each once, with the default retry policy.
    pub fn defer<P: Serialize>(&self, key: &str, payload: &P) -> Result<(), Error> {
        self.defer_with(key, payload, Retry::default())
    }

    /// [`Ctx::defer`] with an explicit retry policy.
    pub fn defer_with<P: Serialize>(&self, key: &str, payload: &P, retry: Retry) -> Result<(), Error> {
        let json = encode_payload(key, payload)?;
        cleanup::defer(key, &json, retry.to_wit());
        Ok(())
    }

    /// Registers an undo named `key` for work just done: if the run later
    /// fails or is cancelled, the agent calls [`crate::Runbook::finalize`]
    /// with `payload` (undos run newest first, before the cleanups). If the
    /// run succeeds, undos do not run.
    pub fn compensate<P: Serialize>(&self, key: &str, payload: &P) -> Result<(), Error> {
        self.compensate_with(key, payload, Retry::default())
    }

    /// [`Ctx::compensate`] with an explicit retry policy.
    pub fn compensate_with<P: Serialize>(&self, key: &str, payload: &P, retry: Retry) -> Result<(), Error> {
        let json = encode_payload(key, payload)?;
        cleanup::compensate(key, &json, retry.to_wit());
        Ok(())
    }

    /// The current UTC time, journaled: a replay sees the same instant.
    pub fn now(&self) -> SystemTime {
        let t = clock::now();
        if t.seconds >= 0 {
            UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanoseconds)
        } else {
            UNIX_EPOCH - Duration::new(t.seconds.unsigned_abs(), 0) + Duration::from_nanos(t.nanoseconds.into())
        }
    }

    /// The current time as whole seconds since the Unix epoch, journaled.
    pub fn unix_seconds(&self) -> i64 {
        clock::now().seconds
    }

    /// The current time as milliseconds since the Unix epoch, journaled
    /// (an RTO measured between two of them survives a crash in between).
    pub fn unix_ms(&self) -> u128 {
        self.now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
    }

    /// Waits durably: the wake-up time is journaled, so a run resumed after a
    /// crash waits only for what is left. The run shows as `waiting`.
    pub fn sleep(&self, duration: Duration) {
        clock::sleep(duration.as_millis().min(u64::MAX as u128) as u64)
    }

    /// Waits durably at approval gate `gate` until a person approves or
    /// rejects it (`drover approve RUN_ID GATE [--reject]` or the agent's
    /// HTTP API); `message` is what they are asked. Returns who approved. A
    /// rejection is an [`Error`] with code `rejected`: returned with `?`, it
    /// fails the run and its undos run. A run started unattended (a scheduled
    /// drill so configured) and a dry run are approved at once, and the
    /// journal says by whom. Call it between steps. There is no timeout:
    /// see [`Ctx::approval_within`].
    pub fn approval(&self, gate: &str, message: &str) -> Result<Approved, Error> {
        self.approval_within(gate, message, Duration::ZERO)
    }

    /// Like [`Ctx::approval`], but a gate nobody decides within `timeout`
    /// fails with code `approval-timed-out` (a zero `timeout` waits forever).
    pub fn approval_within(&self, gate: &str, message: &str, timeout: Duration) -> Result<Approved, Error> {
        let secs = if timeout.is_zero() { 0 } else { timeout.as_secs().max(1) };
        approval::request(gate, message, secs).map(|a| Approved { by: a.by, comment: a.comment }).map_err(Error::from_wit)
    }

    /// A random 64-bit integer, journaled.
    pub fn random_u64(&self) -> u64 {
        random::random_u64()
    }

    /// `len` random bytes (at most 4096), journaled.
    pub fn random_bytes(&self, len: u32) -> Vec<u8> {
        random::random_bytes(len)
    }

    /// Why the runbook runs: for real, as a dry run, or for readiness.
    pub fn mode(&self) -> Mode {
        run_context::mode()
    }

    /// The run's id.
    pub fn run_id(&self) -> String {
        run_context::run_id()
    }

    /// Records a structured event with the run (and the current step).
    pub fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        log::event(level, message, &fields)
    }

    /// Records an informational event.
    pub fn info(&self, message: &str) {
        self.log(Level::Info, message, &[])
    }

    /// Records a warning.
    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message, &[])
    }
}

fn encode_payload<P: Serialize>(key: &str, payload: &P) -> Result<String, Error> {
    serde_json::to_string(payload).map_err(|e| Error::new("payload-not-serializable", format!("payload of action '{key}': {e}")))
}

fn decode_output<T: DeserializeOwned>(key: &str, json: &str) -> Result<T, Error> {
    serde_json::from_str(json)
        .map_err(|e| Error::new("output-type-changed", format!("the journaled output of step '{key}' does not decode as this runbook's type: {e}")))
}

/// What an operator may do with a step that has failed for good
/// ([`Ctx::step_with_operator`]): how long the run waits for them, and
/// whether they may skip the step and what it then returns.
#[derive(Debug, Clone, PartialEq)]
pub struct OnFailure<T> {
    wait: Duration,
    skip: SkipAs<T>,
}

#[derive(Debug, Clone, PartialEq)]
enum SkipAs<T> {
    Refused,
    Output(T),
    Error,
}

impl<T> OnFailure<T> {
    /// Wait up to `wait` (at most 366 days; rounded up to whole seconds)
    /// for an operator, who may retry the step or let the failure stand.
    pub fn wait(wait: Duration) -> Self {
        OnFailure { wait, skip: SkipAs::Refused }
    }

    /// The operator may also skip the step: it then returns `output` (which
    /// is journaled as the step's output).
    pub fn or_skip_with(mut self, output: T) -> Self {
        self.skip = SkipAs::Output(output);
        self
    }

    /// The operator may also skip the step: it then returns the error
    /// `step-skipped`, for the runbook to handle.
    pub fn or_skip_as_error(mut self) -> Self {
        self.skip = SkipAs::Error;
        self
    }
}
