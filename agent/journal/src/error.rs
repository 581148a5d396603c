//! Errors of the journal, each naming the store or run at fault and what to do.

use std::path::PathBuf;

/// What went wrong in the journal.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// The store file is not a drover store or is damaged.
    #[error(
        "the run store at {path} is corrupt or not a drover store ({detail}); \
         move it aside (other runs in it may be recoverable with `sqlite3 .recover`) \
         or point --home at another directory"
    )]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },

    /// Another process holds the store's write lock for too long.
    #[error(
        "the run store at {path} is locked by another process (waited {waited_ms} ms); \
         retry when it finishes, or check for a stuck drover process"
    )]
    Locked {
        /// The store file.
        path: PathBuf,
        /// How long we waited.
        waited_ms: u64,
    },

    /// The store was written by a newer drover.
    #[error(
        "the run store at {path} has schema version {found}, newer than this drover \
         understands ({supported}); upgrade drover"
    )]
    SchemaTooNew {
        /// The store file.
        path: PathBuf,
        /// Version in the file.
        found: i64,
        /// Newest version this build reads.
        supported: i64,
    },

    /// No run with that id.
    #[error("no run with id '{0}' in this store; `drover runs` lists the runs")]
    UnknownRun(String),

    /// Another live driver holds the run.
    #[error(
        "run '{run_id}' is being driven by process {pid} on {host}; \
         wait for it to finish or stop that process first (if that host is gone for good, its lease runs out \
         by itself, or `drover takeover {run_id} --reason TEXT --force` takes the run over now)"
    )]
    RunBusy {
        /// The run.
        run_id: String,
        /// The driver's host.
        host: String,
        /// The driver's pid.
        pid: u32,
    },

    /// The driver lost its claim: another driver took the run over.
    #[error(
        "lost the claim on run '{run_id}' (fence {fence} is stale): another driver took it over; \
         this driver stops without writing"
    )]
    LeaseLost {
        /// The run.
        run_id: String,
        /// The stale fencing token.
        fence: u64,
    },

    /// The driver's lease ran out before it could be renewed (the store was
    /// unreachable, or this process was paused): it may no longer act.
    #[error(
        "the lease on run '{run_id}' (fence {fence}) ran out before it was renewed: the run store was unreachable \
         or this process was paused; this driver stops without acting, and the run resumes from its journal \
         (another agent, or this one, takes it up)"
    )]
    LeaseExpired {
        /// The run.
        run_id: String,
        /// The fencing token of the expired lease.
        fence: u64,
    },

    /// The run has no approval gate of that name.
    #[error("run '{run_id}' has no approval gate '{gate}'; `drover approvals` lists the gates waiting for a decision")]
    UnknownGate {
        /// The run.
        run_id: String,
        /// The gate asked for.
        gate: String,
    },

    /// A record in the store could not be decoded.
    #[error("run store record is malformed: {0}")]
    Malformed(String),

    /// The store cannot be reached or written (disk full, read-only, I/O error).
    #[error("run store at {path}: {detail}")]
    Io {
        /// The store file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },

    /// The shared store cannot be reached, or refused a request.
    #[error("run store {store}: {detail}")]
    Unavailable {
        /// The store (`dynamodb table T in REGION`).
        store: String,
        /// What failed, and what to do.
        detail: String,
    },

    /// The store's writer thread is gone (the agent is shutting down).
    #[error("the run store is closed")]
    Closed,
}

impl JournalError {
    /// Whether this driver no longer holds the run (lost or expired lease):
    /// it must stop without acting.
    pub fn is_fenced(&self) -> bool {
        matches!(self, JournalError::LeaseLost { .. } | JournalError::LeaseExpired { .. })
    }
}
