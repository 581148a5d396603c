//! drover's run journal.
//!
//! Every run, every journaled call a runbook makes (steps, `now`, random,
//! durable sleeps), every attempt of a step body and every event is recorded
//! here. The engine writes through the small [`Journal`] trait, so the
//! embedded store ([`SqliteJournal`], the default) and the shared store for
//! agents in several regions (`drover-journal-dynamodb`, on DynamoDB, with
//! leases that run out) both serve it, and so does [`MemoryJournal`] (for the
//! deterministic simulation and tests). The `conformance` module (feature
//! `conformance`) is the behaviour all of them are tested against.
//!
//! Two rules hold for every implementation:
//! - **One driver per run.** A driver [`claim`](Journal::claim)s a run and
//!   gets a [`Lease`] carrying a fencing token; every [`commit`](Journal::commit)
//!   carries the lease, and a commit from a driver that lost its claim is
//!   refused with [`JournalError::LeaseLost`]. Claims are leases: a driver
//!   [renews](Journal::renew) its claim, and one that stops (dead, frozen,
//!   its container re-created) loses the run once the lease has run out.
//! - **Durable means durable.** A commit with [`Durability::Durable`] returns
//!   only once the write is on disk (one fdatasync, shared by every commit
//!   that arrived meanwhile: group commit). [`Durability::Buffered`] commits
//!   are ordered with the durable ones and become durable with the next one.

#[cfg(any(test, feature = "conformance"))]
#[allow(clippy::panic, clippy::expect_used, clippy::unwrap_used, reason = "a test suite for stores: a failed check fails the store's test")]
pub mod conformance;
mod error;
pub mod group;
mod memory;
mod owner;
mod sqlite;
mod types;

pub use error::JournalError;
pub use memory::{Clock, MemoryJournal};
pub use owner::{HOST_NAME_ENV, current_owner, owner_is_alive};
pub use sqlite::SqliteJournal;
pub use types::*;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Result type of journal operations.
pub type Result<T, E = JournalError> = std::result::Result<T, E>;

/// A commit sent to the store ([`Journal::send`]): awaited, the store's answer.
pub type Sent = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>>;

/// How durable a commit must be before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On disk (fsynced) before the commit returns. Used for every outcome a
    /// runbook goes on from: a completed step, a recorded value, a wake-up time.
    Durable,
    /// Ordered, but may be lost in a power cut until the next durable commit.
    /// Used for events and for the begin of a step with no side effect yet.
    Buffered,
}

/// A new run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Unique id.
    pub run_id: String,
    /// The runbook it is pinned to.
    pub runbook: RunbookRef,
    /// Validated parameters.
    pub params: Value,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Set when the operator started the run although the runbook declares
    /// capabilities that are not granted: who, when, and what was missing.
    pub policy_override: Option<Value>,
    /// Why the run was started, when not by hand (see [`RunRecord::origin`]).
    pub origin: Option<Value>,
    /// The scope the run is to hold (see [`RunRecord::scope`]).
    pub scope: Option<String>,
}

/// What [`Journal::create_run`] found.
#[derive(Debug, Clone)]
pub enum Created {
    /// A new run was created.
    New,
    /// A run with that id existed already; here it is, untouched.
    Existing(RunRecord),
    /// Another run that has not ended holds the scope asked for; no run was
    /// created, and here is the one holding it.
    Joined(RunRecord),
}

/// A driver's claim on a run. Commits carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The run claimed.
    pub run_id: String,
    /// The fencing token the claim got.
    pub fence: u64,
}

/// One change inside a [`Journal::commit`]. All changes of one commit apply
/// together or not at all. Serializable, so a store may keep commits as a log.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Insert the entry at its `seq`, or replace the one there.
    PutEntry(Entry),
    /// Delete every entry after `seq` (an attempt that crashed left them).
    TruncateAfter(u64),
    /// Record that a step body started an attempt.
    AddAttempt(AttemptRecord),
    /// Store an event.
    AddEvent(Event),
    /// Open an approval gate (undecided); opening an open gate again keeps it.
    OpenApproval {
        /// The gate's name.
        gate: String,
        /// What the approver is asked.
        message: String,
        /// When the run reached the gate.
        requested_at: DateTime<Utc>,
        /// When it times out, if it does.
        deadline: Option<DateTime<Utc>>,
    },
    /// Pin the run to another build of its runbook (`drover resume RUN
    /// --runbook FIXED.wasm`): later resumes and takeovers run that one.
    SetRunbook(RunbookRef),
    /// Withdraw the run's cancel request: an operator redrives a cancelled
    /// run (`drover redrive`), asking it to go on after all.
    ClearCancel,
    /// Change the run's status; final statuses carry the result or error. An
    /// unfinished status with an error marks a run stopped without an
    /// outcome (resumable; the error says why and what to do).
    SetStatus {
        /// The new status.
        status: RunStatus,
        /// Set with a final status.
        finished_at: Option<DateTime<Utc>>,
        /// The result of a successful run.
        result: Option<Value>,
        /// The error of a failed run.
        error: Option<ErrorRecord>,
    },
}

/// Which runs [`Journal::runs`] lists.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// At most this many, newest first.
    pub limit: Option<usize>,
    /// Only runs that have not ended (running or waiting).
    pub unfinished: bool,
    /// Only runs of the runbook of this name.
    pub runbook: Option<String>,
}

/// The store behind the engine. Small on purpose: a shared store for agents
/// in several regions implements the same calls with conditional writes.
#[async_trait]
pub trait Journal: Send + Sync + 'static {
    /// Creates a run, or returns the existing run with the same id, or (when
    /// the new run asks for a scope another unfinished run holds) that run.
    /// The check and the creation are one atomic step: of two requests for the
    /// same scope at the same moment, one creates and the other joins.
    async fn create_run(&self, run: &NewRun) -> Result<Created>;

    /// Claims a run for `owner`. Fails with [`JournalError::RunBusy`] while
    /// another live driver holds it; a dead driver's claim is taken over.
    async fn claim(&self, run_id: &str, owner: &Owner) -> Result<Lease>;

    /// Claims a run for `owner` whoever holds it now, live lease or not:
    /// the operator's explicit takeover (`drover takeover --force`), for a
    /// driver known to be gone before its lease has run out. The fence moves
    /// on, so every later write or fencing check of the previous driver is
    /// refused.
    async fn take_over(&self, run_id: &str, owner: &Owner) -> Result<Lease>;

    /// Gives up a claim (the run stays as it is).
    async fn release(&self, lease: &Lease) -> Result<()>;

    /// How long a claim lasts unless [renewed](Journal::renew) (both stores
    /// have leases; `None` would mean a claim lasts as long as the driver's
    /// process). A driver that stops renewing (crashed, paused, cut off, its
    /// container re-created under another host name) loses the run to any
    /// agent that [claims](Journal::claim) it after the lease ran out; a
    /// driver on the same host whose process exited loses it at once.
    fn lease_ttl(&self) -> Option<std::time::Duration> {
        None
    }

    /// Extends the claim by [`lease_ttl`](Journal::lease_ttl) from now.
    /// Fails with [`JournalError::LeaseLost`] when another driver took it.
    async fn renew(&self, lease: &Lease) -> Result<()>;

    /// The fencing check before a side effect outside the store (a mutating
    /// AWS call): a strongly consistent read that `lease` still holds the
    /// run and has not run out. Fails with [`JournalError::LeaseLost`].
    async fn check_lease(&self, lease: &Lease) -> Result<()>;

    /// Applies `ops` atomically, if `lease` still holds the run.
    async fn commit(&self, lease: &Lease, ops: Vec<Op>, durability: Durability) -> Result<()>;

    /// Sends a [`Durability::Buffered`] commit of `ops` and returns without
    /// waiting for the store's answer, which the returned [`Sent`] gives
    /// when awaited. A caller's sends and commits reach the store in the
    /// order it made them: a commit made after a send returns only once the
    /// send was applied (or refused). A step's begin goes this way: the
    /// runbook's step body starts while the store writes it. The default
    /// commits before it returns (for a store without one ordered queue of
    /// writes).
    async fn send(&self, lease: &Lease, ops: Vec<Op>) -> Result<Sent> {
        let done = self.commit(lease, ops, Durability::Buffered).await;
        Ok(Box::pin(std::future::ready(done)))
    }

    /// Records a request to cancel a run that has not ended (the first
    /// request wins; later ones change nothing). Needs no claim: the run's
    /// driver sees the request and stops the run. Returns the run.
    async fn request_cancel(&self, run_id: &str, request: &CancelRequest) -> Result<RunRecord>;

    /// Records a request to pause a run that has not ended (`Some`; a later
    /// request replaces an earlier one), or withdraws it (`None`). Needs no
    /// claim: the run's driver sees it at its next step boundary. Returns
    /// the run.
    async fn request_pause(&self, run_id: &str, request: Option<&CancelRequest>) -> Result<RunRecord>;

    /// Records `decision` on gate `gate` of run `run_id`, unless a decision
    /// is already recorded (the first one wins). Needs no claim: the run's
    /// driver sees the decision. Returns the gate as it stands.
    async fn decide(&self, run_id: &str, gate: &str, decision: &Decision) -> Result<Approval>;

    /// Approval gates: of one run, or of every run; only undecided ones when
    /// `pending_only`. Oldest first.
    async fn approvals(&self, run_id: Option<&str>, pending_only: bool) -> Result<Vec<Approval>>;

    /// The run with this id, if any.
    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>>;

    /// Runs, newest first.
    async fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>>;

    /// The run's journal entries in `seq` order.
    async fn entries(&self, run_id: &str) -> Result<Vec<Entry>>;

    /// Every attempt of every step body of the run, in order.
    async fn attempts(&self, run_id: &str) -> Result<Vec<AttemptRecord>>;

    /// The run's events, in order.
    async fn events(&self, run_id: &str) -> Result<Vec<Event>>;
}
