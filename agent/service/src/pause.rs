//! Pause and unpause: an operator's request, recorded with the run (no
//! claim needed) and in the audit log (`drover.pause`, `drover.unpause`).
//! The run's driver stops at its next step boundary and waits, showing as
//! `waiting`, until the pause is withdrawn (see the engine's
//! `durable::control`); cleanups and undos are never paused.

use std::path::Path;

use chrono::Utc;
use drover_engine::audit::{AuditLog, AuditRecord};
use drover_journal::{CancelRequest, Journal, JournalError, RunRecord};

use crate::ServiceError;

/// Pauses (`pause = true`) or unpauses run `run_id` on `by`'s word, for
/// `reason`; audited in `audit` before the request is recorded. A run that
/// has ended is refused.
pub async fn set(journal: &dyn Journal, audit: &Path, run_id: &str, pause: bool, by: &str, reason: &str) -> Result<RunRecord, ServiceError> {
    let run = journal.run(run_id).await?.ok_or_else(|| JournalError::UnknownRun(run_id.into()))?;
    let what = if pause { "pause" } else { "unpause" };
    if run.status.is_final() {
        return Err(ServiceError::Ended { run_id: run_id.into(), status: run.status.to_string(), what: what.into() });
    }
    let record = AuditRecord {
        at: Utc::now(),
        run_id: run_id.to_string(),
        runbook: run.runbook.name.clone(),
        digest: run.runbook.digest.clone(),
        step: None,
        operation: format!("drover.{what}"),
        regions: Vec::new(),
        resources: vec![format!("run/{run_id}")],
        mutating: false,
        decision: "allow".into(),
        reason: Some(format!("by {by}: {reason}")),
    };
    AuditLog::new(audit).append(&record).map_err(drover_engine::EngineError::from)?;
    let request = CancelRequest { by: by.to_string(), reason: reason.to_string(), at: Utc::now() };
    Ok(journal.request_pause(run_id, pause.then_some(&request)).await?)
}
