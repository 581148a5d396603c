//! What a journaled call can fail with. Each of these traps the runbook.

use drover_journal::JournalError;
use drover_replay::Violation;

/// What went wrong in a journaled call. Each of these traps the runbook.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    /// A replay rule was broken (non-determinism, a duplicate or malformed
    /// key, a call where it is not allowed, an out-of-range request): the
    /// rules and their texts are `drover-replay`'s.
    #[error(transparent)]
    Rule(#[from] Violation),
    /// A step's output is not JSON or is too large.
    #[error("output of step '{key}' is rejected: {reason}")]
    BadOutput {
        /// The step.
        key: String,
        /// Why.
        reason: String,
    },
    /// A resource limit was exceeded.
    #[error(transparent)]
    Limit(#[from] crate::limits::LimitExceeded),
    /// An operator cancelled the run.
    #[error("cancelled by {by}: {reason}")]
    Cancelled {
        /// Who.
        by: String,
        /// Why.
        reason: String,
    },
    /// The agent is stopping: the run stops here, resumable.
    #[error("the agent is stopping; the run stops here and resumes where it stopped")]
    Suspended,
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A branch of a parallel section stopped without an outcome,
    /// resumable (a non-determinism in its replay, an unwritable audit log):
    /// the run stops with it.
    #[error("branch run '{run_id}' stopped: {message}")]
    BranchStopped {
        /// The branch's run.
        run_id: String,
        /// Why (`non-determinism`, `audit-log`).
        code: String,
        /// What the branch's driver said.
        message: String,
    },
    /// A parallel section could not drive its branches.
    #[error("a parallel section could not run: {0}")]
    Branch(String),
    /// Under a deterministic simulation: the agent crashes here (`point`).
    /// Nothing after it runs; the simulation resumes the run as a restarted
    /// agent would.
    #[error("simulated crash at {point}")]
    Crashed {
        /// The crash point, as `POINT:STEP`.
        point: String,
    },
}

impl DurableError {
    /// The error code recorded for a run this error ends.
    pub fn code(&self) -> &'static str {
        match self {
            DurableError::Rule(v) => v.code(),
            DurableError::Journal(_) => "journal",
            DurableError::Cancelled { .. } => "cancelled",
            DurableError::Suspended => "suspended",
            DurableError::Crashed { .. } => "crashed",
            DurableError::Limit(_) => "limit-exceeded",
            DurableError::BranchStopped { .. } => "branch-stopped",
            DurableError::Branch(_) => "branch",
            _ => "contract-violation",
        }
    }
}

/// A journaled call's result.
pub(crate) type Result<T, E = DurableError> = std::result::Result<T, E>;
