//! Progress of a run as it happens, for live displays (the CLI's progress
//! line, later the service's streams). The journal is the record; these are
//! notifications and may be dropped when nobody listens.

use std::time::Duration;

use chrono::{DateTime, Utc};
use drover_journal::{EntryStatus, ErrorRecord, Event};
use tokio::sync::mpsc::UnboundedSender;

/// Something that happened in a run.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// The driver claimed the run and is (re)executing it.
    Started {
        /// The run.
        run_id: String,
        /// Steps already journaled (a resume replays them).
        journaled_entries: usize,
    },
    /// A step came back from the journal without running.
    StepReplayed {
        /// Step key.
        key: String,
        /// Its journaled status.
        status: EntryStatus,
    },
    /// A step body started an attempt.
    StepStarted {
        /// Step key.
        key: String,
        /// Attempt number.
        attempt: u32,
    },
    /// An attempt failed and will be retried after `backoff`.
    StepRetrying {
        /// Step key.
        key: String,
        /// The attempt that failed.
        attempt: u32,
        /// Wait before the next attempt.
        backoff: Duration,
        /// Why it failed.
        error: ErrorRecord,
    },
    /// A step finished.
    StepFinished {
        /// Step key.
        key: String,
        /// Succeeded or failed.
        status: EntryStatus,
        /// The error, if it failed.
        error: Option<ErrorRecord>,
        /// AWS requests its attempts sent.
        requests: u32,
    },
    /// The run waits durably until `until`.
    Sleeping {
        /// The step waiting (a retry backoff), or none for a plain sleep.
        step: Option<String>,
        /// Wake-up time.
        until: DateTime<Utc>,
    },
    /// A wait ended.
    Woke,
    /// The run waits at an approval gate.
    AwaitingApproval {
        /// The gate.
        gate: String,
        /// What the approver is asked.
        message: String,
        /// When the gate times out, if it does.
        deadline: Option<DateTime<Utc>>,
    },
    /// An approval gate was decided.
    Decided {
        /// The gate.
        gate: String,
        /// The decision.
        decision: drover_journal::Decision,
    },
    /// The runbook logged an event.
    Log(Event),
}

/// Where a run's events go: nowhere, or a channel.
#[derive(Clone, Default)]
pub struct Observer(Option<UnboundedSender<RunEvent>>);

impl Observer {
    /// Events are dropped.
    pub fn none() -> Self {
        Observer(None)
    }

    /// Events go to `tx`.
    pub fn channel(tx: UnboundedSender<RunEvent>) -> Self {
        Observer(Some(tx))
    }

    /// Sends `ev` if anyone listens.
    pub(crate) fn sender(&self) -> Option<UnboundedSender<RunEvent>> {
        self.0.clone()
    }

    pub fn send(&self, ev: RunEvent) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(ev);
        }
    }
}
