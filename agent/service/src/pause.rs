//! Pause and unpause: an operator's request, recorded with the run (no
//! claim needed) and in the audit log (`drover.pause`, `drover.unpause`).
//! The run's driver stops at its next step boundary and waits, showing as
//! `waiting`, until the pause is withdrawn (see the engine's
//! `durable::control`); cleanups and undos are never paused.

use chrono::Utc;
use drover_engine::audit::{AuditLog, AuditRecord};
use drover_journal::{CancelRequest, Journal, RunRecord};

use crate::ServiceError;

/// Pauses (`pause = true`) or unpauses run `run_id` on `by`'s word, for
/// `reason`; audited in `audit` before the request is recorded. A run that
/// has ended is refused.
pub async fn set(journal: &dyn Journal, audit: &AuditLog, run_id: &str, pause: bool, by: &str, reason: &str) -> Result<RunRecord, ServiceError> {
    let what = if pause { "pause" } else { "unpause" };
    let run = crate::unended_run(journal, run_id, what).await?;
    let record = AuditRecord::control(&run, &format!("drover.{what}"), None, format!("run/{run_id}"), "allow", format!("by {by}: {reason}"));
    audit.append(&record).await.map_err(drover_engine::EngineError::from)?;
    let request = CancelRequest { by: by.to_string(), reason: reason.to_string(), at: Utc::now() };
    Ok(journal.request_pause(run_id, pause.then_some(&request)).await?)
}
