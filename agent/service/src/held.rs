//! An operator's decision on a step held after it failed for good (contract
//! 0.1.3 `steps.fail-with`): skip it, or retry it. Also a skip of a
//! runbook's approval gate (the run goes through, recorded as skipped).
//! Each is audited (`drover.skip`, `drover.retry`) before it is recorded as
//! the gate's decision in the run store (the first decision wins); the run's
//! driver carries it out and records it in the run's events, which reports
//! show under "Operator actions".

use chrono::Utc;
use drover_engine::audit::{AuditLog, AuditRecord};
use drover_engine::held::{Held, Skip, parse_failure_gate};
use drover_journal::{Approval, Decision, Entry, EntryKind, EntryStatus, Journal, JournalError, RunRecord, Verdict, rfc3339};

use crate::ServiceError;

/// What a skip or retry recorded.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The gate decided.
    pub gate: Approval,
    /// Whether the gate held a step that failed (else: a runbook's approval gate).
    pub failure_gate: bool,
    /// The run, as it was before the decision.
    pub run: RunRecord,
}

/// Skips step (or approval gate) `step` of run `run_id` on `by`'s word, for
/// `reason`. Refused, saying why and what to do, unless the step waits for
/// an operator and its runbook allows a skip, or the gate waits for a
/// decision.
pub async fn skip(journal: &dyn Journal, audit: &AuditLog, run_id: &str, step: &str, by: &str, reason: &str) -> Result<Decided, ServiceError> {
    let run = crate::unended_run(journal, run_id, "skip").await?;
    let pending = journal.approvals(Some(run_id), true).await?;
    let entries = journal.entries(run_id).await?;
    let refused = |why: String| ServiceError::Refused { run_id: run_id.into(), what: format!("skip step '{step}'"), why };
    let (gate, failure_gate) = match pending.iter().find(|g| parse_failure_gate(&g.gate).is_some_and(|(k, _)| k == step)) {
        Some(g) => {
            if held(&entries, step).is_some_and(|h| h.skip == Skip::Refused) {
                return Err(refused(format!(
                    "its runbook does not allow skipping it (it declared no skip outcome); fix the cause and `drover redrive {run_id}`, \
                     or let the failure stand (`drover approve {run_id} {} --reject`, or `drover cancel {run_id}`)",
                    g.gate
                )));
            }
            (g.gate.clone(), true)
        }
        None => match pending.iter().find(|g| g.gate == step) {
            Some(g) => (g.gate.clone(), false),
            None => return Err(refused(not_waiting(&entries, step, run_id))),
        },
    };
    let gate = decide(journal, audit, &run, &gate, Verdict::Skipped, "drover.skip", by, reason).await?;
    Ok(Decided { gate, failure_gate, run })
}

/// Retries the step run `run_id` holds after it failed for good, on `by`'s
/// word (the `drover redrive` of a run that has not ended). `Ok(None)` when
/// no step of the run waits for an operator.
pub async fn retry(journal: &dyn Journal, audit: &AuditLog, run_id: &str, by: &str, reason: &str) -> Result<Option<Decided>, ServiceError> {
    let run = journal.run(run_id).await?.ok_or_else(|| JournalError::UnknownRun(run_id.into()))?;
    if run.status.is_final() {
        return Ok(None);
    }
    let pending = journal.approvals(Some(run_id), true).await?;
    let Some(gate) = pending.iter().find(|g| parse_failure_gate(&g.gate).is_some()) else {
        return Ok(None);
    };
    let gate = decide(journal, audit, &run, &gate.gate.clone(), Verdict::Approved, "drover.retry", by, reason).await?;
    Ok(Some(Decided { gate, failure_gate: true, run }))
}

/// Audits, then records `verdict` on `gate`; refused if someone decided first.
#[allow(clippy::too_many_arguments)]
async fn decide(
    journal: &dyn Journal,
    audit: &AuditLog,
    run: &RunRecord,
    gate: &str,
    verdict: Verdict,
    operation: &str,
    by: &str,
    reason: &str,
) -> Result<Approval, ServiceError> {
    let step = parse_failure_gate(gate).map(|(k, _)| k.to_string());
    let record = AuditRecord::control(run, operation, step, format!("run/{}/gate/{gate}", run.run_id), "allow", format!("by {by}: {reason}"));
    audit.append(&record).await.map_err(drover_engine::EngineError::from)?;
    let ours = Decision { verdict, by: by.into(), comment: reason.into(), at: Utc::now() };
    let decided = journal.decide(&run.run_id, gate, &ours).await?;
    match &decided.decision {
        Some(d) if *d == ours => Ok(decided),
        Some(d) => Err(ServiceError::Refused {
            run_id: run.run_id.clone(),
            what: format!("decide gate {gate}"),
            why: format!("it was already decided: {} by {} at {}; your decision changes nothing", d.verdict.as_str(), d.by, rfc3339(&d.at)),
        }),
        None => Err(ServiceError::Refused {
            run_id: run.run_id.clone(),
            what: format!("decide gate {gate}"),
            why: "the store did not record the decision; try again".into(),
        }),
    }
}

/// The held record of step `key`, if it waits for an operator.
fn held(entries: &[Entry], key: &str) -> Option<Held> {
    drover_engine::durable::held_of(entries.iter().find(|e| e.kind == EntryKind::Step && e.key.as_deref() == Some(key))?)
}

/// Why step `key` cannot be skipped now, from its journal entry.
fn not_waiting(entries: &[Entry], key: &str, run_id: &str) -> String {
    let Some(e) = entries.iter().find(|e| e.kind == EntryKind::Step && e.key.as_deref() == Some(key)) else {
        return format!("the run has not reached a step or gate '{key}' waiting for a decision (`drover show {run_id}` lists its steps)");
    };
    match (e.status, e.next_attempt_at) {
        (EntryStatus::Running, Some(at)) => format!(
            "it is retrying (attempt {} failed; the next starts at {}): a step can be skipped once it has failed for good and waits for an operator",
            e.attempts,
            rfc3339(&at)
        ),
        (EntryStatus::Running, None) => {
            format!("it is running (attempt {}); a step can be skipped once it has failed for good and waits for an operator", e.attempts)
        }
        (EntryStatus::Succeeded, _) => "it has completed".into(),
        (EntryStatus::Failed, _) => format!(
            "it failed for good and its runbook did not make it wait for an operator (steps.fail-with); `drover redrive {run_id}` retries it once the run has ended"
        ),
    }
}
