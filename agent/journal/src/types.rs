//! The records the journal keeps: runs, journal entries, attempts and events.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// A driver is executing the run (or was, when it crashed: see [`RunRecord::owner`]).
    Running,
    /// The run is in a durable wait (sleep); its driver wakes it.
    Waiting,
    /// The runbook returned a result.
    Succeeded,
    /// The runbook returned an error, trapped, or diverged from its journal.
    Failed,
    /// An operator cancelled the run (`drover cancel`).
    Cancelled,
}

impl RunStatus {
    /// The status as stored and printed (`running`, `succeeded`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored status.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => RunStatus::Running,
            "waiting" => RunStatus::Waiting,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }

    /// Whether the run has ended and can never change again.
    pub fn is_final(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as journaled: the same shape as the WIT `error` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// Machine-readable code, e.g. `replica-not-found`, `trap`, `non-determinism`.
    pub code: String,
    /// What failed, on what, and what to do.
    pub message: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// The resource concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource: Option<String>,
}

impl ErrorRecord {
    /// A terminal (not retryable) error with `code` and `message`.
    pub fn terminal(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorRecord { code: code.into(), message: message.into(), retryable: false, resource: None }
    }
}

impl std::fmt::Display for ErrorRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(r) = &self.resource {
            write!(f, " (resource: {r})")?;
        }
        Ok(())
    }
}

/// The exact runbook a run is pinned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunbookRef {
    /// The name the runbook gives itself in `describe()`.
    pub name: String,
    /// The version the runbook gives itself in `describe()`.
    pub version: String,
    /// SHA-256 of the component's bytes, hex. Resume loads exactly these bytes.
    pub digest: String,
}

/// The process that drives a run. A run has at most one driver at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Host name of the driver.
    pub host: String,
    /// Process id of the driver on that host.
    pub pid: u32,
    /// Start time of that process (clock ticks since boot, from /proc), so a
    /// recycled pid is not mistaken for the driver.
    pub start_ticks: u64,
}

/// A run, as `drover show` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unique id.
    pub run_id: String,
    /// The runbook, pinned by digest.
    pub runbook: RunbookRef,
    /// Parameters after validation (defaults filled in).
    pub params: Value,
    /// Current status.
    pub status: RunStatus,
    /// When the run was created.
    pub created_at: DateTime<Utc>,
    /// When it ended, if it has.
    pub finished_at: Option<DateTime<Utc>>,
    /// The runbook's result, on success.
    pub result: Option<Value>,
    /// What ended the run, on failure; on a run that has not ended, why it
    /// stopped without an outcome (non-determinism, an unwritable audit log)
    /// and what to do: it stays resumable.
    pub error: Option<ErrorRecord>,
    /// The driver holding the run, if any.
    pub owner: Option<Owner>,
    /// Fencing token: incremented by every claim; writes carry it.
    pub fence: u64,
    /// When the driver's lease runs out unless renewed (every store's
    /// claims are leases; `None` with no owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The operator's request to cancel the run, once made.
    pub cancel: Option<CancelRequest>,
    /// The operator's request to pause the run, while it stands: the run
    /// stops at its next step boundary and waits (durably: a restarted
    /// driver waits too) until the request is withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<CancelRequest>,
    /// Set when the run was started with declared capabilities not granted
    /// (`drover run --accept-missing-grants`): who, when, what was missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_override: Option<Value>,
    /// Why the run was started, when not by hand: the drill schedule or the
    /// incident trigger (with the alerts that fired it), whether its approval
    /// gates are decided unattended, and the trace context it continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Value>,
    /// The scope the run holds (e.g. the application it fails over): while
    /// the run has not ended, no other run with the same scope starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl RunRecord {
    /// Whether nobody drives the run now: no owner, an owner whose lease ran
    /// out at `now` (whatever host it is on: a container re-created under a
    /// new host name, an agent that froze), or an owner on this host whose
    /// process has exited (taken over at once, without waiting for its
    /// lease). A claim without an expiry (none is written any more) lasts
    /// as long as its process.
    pub fn driver_gone(&self, now: DateTime<Utc>) -> bool {
        match (&self.owner, self.lease_expires_at) {
            (None, _) => true,
            (Some(owner), Some(expires)) => expires <= now || !crate::owner_is_alive(owner),
            (Some(owner), None) => !crate::owner_is_alive(owner),
        }
    }
}

/// Who asked to cancel (or pause) a run, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    /// Who: `user@host (pid N)` of the `drover cancel` process, or the API caller.
    pub by: String,
    /// Why, in the operator's words.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// What kind of journaled call an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A named step.
    Step,
    /// A `clock.now()` value.
    Now,
    /// A durable `clock.sleep()`.
    Sleep,
    /// A `random` value.
    Random,
    /// A registered cleanup or undo (key `cleanup:K` or `undo:K`).
    Register,
    /// An approval gate (key: the gate's name); its output is the decision.
    Approval,
    /// The end of the runbook's main part: the outcome the run will have
    /// once its undos and cleanups have run.
    End,
}

impl EntryKind {
    /// The kind as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Step => "step",
            EntryKind::Now => "now",
            EntryKind::Sleep => "sleep",
            EntryKind::Random => "random",
            EntryKind::Register => "register",
            EntryKind::Approval => "approval",
            EntryKind::End => "end",
        }
    }

    /// Parses a stored kind.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "step" => EntryKind::Step,
            "now" => EntryKind::Now,
            "sleep" => EntryKind::Sleep,
            "random" => EntryKind::Random,
            "register" => EntryKind::Register,
            "approval" => EntryKind::Approval,
            "end" => EntryKind::End,
            _ => return None,
        })
    }
}

/// Where a journaled call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryStatus {
    /// Begun, outcome not yet known (a step in flight, a sleep not yet over).
    Running,
    /// Completed; the output is journaled.
    Succeeded,
    /// Failed for good; the error is journaled.
    Failed,
}

impl EntryStatus {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Running => "running",
            EntryStatus::Succeeded => "succeeded",
            EntryStatus::Failed => "failed",
        }
    }

    /// Parses a stored status.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => EntryStatus::Running,
            "succeeded" => EntryStatus::Succeeded,
            "failed" => EntryStatus::Failed,
            _ => return None,
        })
    }
}

/// One journaled call of a run, at position `seq`. Replay walks entries in
/// `seq` order and checks each call the runbook makes against them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the run's journal, from 0.
    pub seq: u64,
    /// What was called.
    pub kind: EntryKind,
    /// The step key (steps only).
    pub key: Option<String>,
    /// Where the call stands.
    pub status: EntryStatus,
    /// Attempts of the step body started so far (steps only).
    pub attempts: u32,
    /// When the call was first made.
    pub started_at: DateTime<Utc>,
    /// When its outcome was recorded.
    pub finished_at: Option<DateTime<Utc>>,
    /// The outcome: a step's output, the `now` value, the random value, or a
    /// sleep's wake-up time.
    pub output: Option<Value>,
    /// A failed step's error.
    pub error: Option<ErrorRecord>,
    /// The step's idempotency key.
    pub idempotency_key: Option<String>,
    /// For a step waiting out a retry backoff: when the next attempt may start.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// For a finished step: the last `seq` recorded inside its body, so a
    /// replay can skip the body's own entries.
    pub end_seq: Option<u64>,
    /// AWS requests the step's attempts put on the wire (each attempt of a
    /// request, the SDK's retries and a waiter's polls included), as the
    /// agent counted them; an attempt cut off by a crash is not counted.
    #[serde(default)]
    pub requests: u32,
}

impl Entry {
    /// A new entry at `seq` holding nothing but what the caller sets next;
    /// a final `status` is finished at `at`.
    pub fn new(seq: u64, kind: EntryKind, key: Option<String>, status: EntryStatus, at: DateTime<Utc>) -> Self {
        Entry {
            seq,
            kind,
            key,
            status,
            attempts: 0,
            started_at: at,
            finished_at: (status != EntryStatus::Running).then_some(at),
            output: None,
            error: None,
            idempotency_key: None,
            next_attempt_at: None,
            end_seq: None,
            requests: 0,
        }
    }

    /// Marks the entry failed for good with `error` at `at` (no retry pending).
    pub fn fail(&mut self, error: ErrorRecord, at: DateTime<Utc>) {
        self.status = EntryStatus::Failed;
        self.finished_at = Some(at);
        self.error = Some(error);
        self.next_attempt_at = None;
    }
}

/// One started execution of a step body: the audit trail that shows a side
/// effect was attempted, and how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The step's journal position.
    pub seq: u64,
    /// The step key.
    pub key: String,
    /// Attempt number, from 1.
    pub number: u32,
    /// The idempotency key handed to the body.
    pub idempotency_key: String,
    /// When the attempt started.
    pub started_at: DateTime<Utc>,
}

/// Severity of a stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Very detailed.
    Trace,
    /// Detail for debugging.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that did not stop the run.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    /// The level as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    /// Parses a stored level.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" => Level::Warn,
            "error" => Level::Error,
            _ => return None,
        })
    }
}

/// A structured event emitted by a runbook or by the agent about a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it was emitted.
    pub at: DateTime<Utc>,
    /// Severity.
    pub level: Level,
    /// The step running at the time, if any.
    pub step: Option<String>,
    /// The message.
    pub message: String,
    /// Key/value fields.
    pub fields: Vec<(String, String)>,
}

/// Formats a time as stored and printed: RFC 3339, UTC, microseconds.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// How an approval gate was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Go on.
    Approved,
    /// Do not go on: the run fails at the gate (and its undos run).
    Rejected,
    /// Nobody decided before the gate's deadline: treated as a rejection.
    TimedOut,
    /// An operator skipped it (`drover skip`): a step held after failing
    /// for good hands the runbook its declared skip outcome; a runbook's
    /// approval gate lets the run through, recorded as skipped.
    Skipped,
}

impl Verdict {
    /// The verdict as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approved => "approved",
            Verdict::Rejected => "rejected",
            Verdict::TimedOut => "timed-out",
            Verdict::Skipped => "skipped",
        }
    }
}

/// A decision on an approval gate: the first one recorded wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Approved, rejected, timed out or skipped.
    pub verdict: Verdict,
    /// Who decided: `user@host` of `drover approve`, the API caller, or the
    /// agent itself (a deadline, an unattended drill).
    pub by: String,
    /// Why, in the decider's words.
    pub comment: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// An approval gate a run opened, and its decision once made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The run waiting at the gate.
    pub run_id: String,
    /// The gate's name, unique within the run.
    pub gate: String,
    /// What the approver is asked, in the runbook's words.
    pub message: String,
    /// When the run reached the gate.
    pub requested_at: DateTime<Utc>,
    /// When the gate times out, if it does.
    pub deadline: Option<DateTime<Utc>>,
    /// The decision, once made.
    pub decision: Option<Decision>,
}
