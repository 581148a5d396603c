//! Anti-flapping: an alert that fires, clears and fires again must not fail
//! an application over and back and over again. Per runbook and scope, a
//! trigger starts no run
//! - within `min_interval_seconds` of the start of the last automatic run
//!   (one a trigger started), and
//! - after an automatic run that failed (`hold_after_failure`, the
//!   default), until an operator clears the hold (`drover unblock RUN`, or
//!   `POST /v1/runs/{id}/unblock`), which is recorded with that run.
//!
//! Both are read from the run store, not kept in memory: they hold across
//! restarts of the agent and across the agents sharing a store. An
//! unfinished run holding the scope is joined as before (see `triggers`).
//! Manual runs are never held.

use chrono::{DateTime, Duration, Utc};
use drover_journal::{Event, Journal, JournalError, RunFilter, RunRecord, RunStatus};

/// How many of the newest runs are searched for the last automatic run of a
/// runbook in a scope.
const LOOKBACK: usize = 1000;

/// The field an event that lifts a hold carries (`control = unblock`).
pub const UNBLOCK: &str = "unblock";

/// Why a trigger starts no run now.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// The automatic run the hold comes from.
    pub run_id: String,
    /// When the hold ends by itself; `None` while an operator must clear it.
    pub until: Option<DateTime<Utc>>,
    /// What holds it and what to do, in words.
    pub reason: String,
}

/// The rules of one trigger.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Least time between the starts of two automatic runs.
    pub min_interval: Duration,
    /// Hold after a failed automatic run until an operator clears it.
    pub hold_after_failure: bool,
}

/// Whether `run` was started by a trigger.
fn automatic(run: &RunRecord) -> bool {
    run.origin.as_ref().is_some_and(|o| o["kind"] == "trigger")
}

/// Whether an operator lifted the hold of `run` (an `unblock` event).
pub fn unblocked(events: &[Event]) -> bool {
    events.iter().any(|e| e.fields.iter().any(|(k, v)| k == "control" && v == UNBLOCK))
}

/// The last automatic run of `runbook` in `scope`, newest first among the
/// store's newest runs.
pub async fn last_automatic(journal: &dyn Journal, runbook: &str, scope: &str) -> Result<Option<RunRecord>, JournalError> {
    let runs = journal.runs(&RunFilter { limit: Some(LOOKBACK), ..Default::default() }).await?;
    Ok(runs.into_iter().find(|r| automatic(r) && r.runbook.name == runbook && r.scope.as_deref() == Some(scope)))
}

/// The holds failed automatic runs of `runbook` put on their scopes now
/// (what a manual run tells its operator: it is not held by them).
pub async fn holds(journal: &dyn Journal, runbook: &str) -> Result<Vec<Held>, JournalError> {
    let runs = journal.runs(&RunFilter { limit: Some(LOOKBACK), ..Default::default() }).await?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for run in runs.iter().filter(|r| automatic(r) && r.runbook.name == runbook) {
        let Some(scope) = run.scope.as_deref() else { continue };
        if seen.insert(scope) && run.status == RunStatus::Failed && !unblocked(&journal.events(&run.run_id).await?) {
            out.push(failure_hold(runbook, scope, run));
        }
    }
    Ok(out)
}

/// The hold failed automatic run `last` puts on `scope`.
fn failure_hold(runbook: &str, scope: &str, last: &RunRecord) -> Held {
    let why = last.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default();
    Held {
        run_id: last.run_id.clone(),
        until: None,
        reason: format!(
            "automatic runs of {runbook} in scope '{scope}' are held: the last one, {}, failed{why}; nothing was started. \
             Look at it (`drover show {}`), then clear the hold with `drover unblock {} --reason TEXT` \
             (or POST /v1/runs/{}/unblock), or redrive it",
            last.run_id, last.run_id, last.run_id, last.run_id
        ),
    }
}

/// Whether a trigger may start `runbook` in `scope` at `now` under `rules`.
pub async fn check(journal: &dyn Journal, runbook: &str, scope: &str, rules: Rules, now: DateTime<Utc>) -> Result<Option<Held>, JournalError> {
    let Some(last) = last_automatic(journal, runbook, scope).await? else { return Ok(None) };
    if !last.status.is_final() {
        // Joined, as every request for a scope an unfinished run holds.
        return Ok(None);
    }
    if rules.hold_after_failure && last.status == RunStatus::Failed && !unblocked(&journal.events(&last.run_id).await?) {
        return Ok(Some(failure_hold(runbook, scope, &last)));
    }
    let until = last.created_at + rules.min_interval;
    if now < until {
        return Ok(Some(Held {
            run_id: last.run_id.clone(),
            until: Some(until),
            reason: format!(
                "automatic runs of {runbook} in scope '{scope}' are at least {} s apart: the last one, {}, started at {} ({}); \
                 nothing was started, and none will be before {}",
                rules.min_interval.num_seconds(),
                last.run_id,
                drover_journal::rfc3339(&last.created_at),
                last.status,
                drover_journal::rfc3339(&until)
            ),
        }));
    }
    Ok(None)
}

/// Lifts the hold failed automatic run `run_id` puts on its scope: an
/// event recorded with the run (who, why), written under a claim of the
/// ended run. Refused for a run that holds nothing.
pub async fn unblock(journal: &dyn Journal, run_id: &str, by: &str, reason: &str) -> Result<RunRecord, crate::ServiceError> {
    let run = journal.run(run_id).await?.ok_or_else(|| JournalError::UnknownRun(run_id.into()))?;
    let not_held = |why: &str| Err(crate::ServiceError::NotHeld { run_id: run_id.into(), why: why.into() });
    if !automatic(&run) {
        return not_held("no trigger started it (manual runs and drills never hold a scope)");
    }
    if run.status != RunStatus::Failed {
        return not_held(&format!("it is {}, and only a failed run holds its scope", run.status));
    }
    if unblocked(&journal.events(run_id).await?) {
        return not_held("an operator cleared its hold already");
    }
    let lease = journal.claim(run_id, &drover_journal::current_owner()).await?;
    let event = Event {
        at: Utc::now(),
        level: drover_journal::Level::Warn,
        step: None,
        message: format!("hold on automatic runs in scope '{}' cleared by {by}: {reason}", run.scope.as_deref().unwrap_or("-")),
        fields: vec![("control".into(), UNBLOCK.into()), ("by".into(), by.into()), ("reason".into(), reason.into())],
    };
    let recorded = journal.commit(&lease, vec![drover_journal::Op::AddEvent(event)], drover_journal::Durability::Durable).await;
    let released = journal.release(&lease).await;
    recorded?;
    released?;
    Ok(run)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use drover_journal::{Durability, MemoryJournal, NewRun, Op, RunbookRef, current_owner};
    use serde_json::json;

    async fn ended(j: &MemoryJournal, id: &str, kind: &str, status: RunStatus, at: DateTime<Utc>) {
        let run = NewRun {
            run_id: id.into(),
            runbook: RunbookRef { name: "failover".into(), version: "1".into(), digest: "ab".into() },
            params: json!({}),
            created_at: at,
            policy_override: None,
            origin: Some(json!({"kind": kind})),
            scope: Some("orders".into()),
        };
        j.create_run(&run).await.unwrap();
        let lease = j.claim(id, &current_owner()).await.unwrap();
        let error = (status == RunStatus::Failed).then(|| drover_journal::ErrorRecord::terminal("verify-failed", "db not writable"));
        j.commit(&lease, vec![Op::SetStatus { status, finished_at: Some(at), result: None, error }], Durability::Durable).await.unwrap();
        j.release(&lease).await.unwrap();
    }

    fn rules(secs: i64) -> Rules {
        Rules { min_interval: Duration::seconds(secs), hold_after_failure: true }
    }

    #[tokio::test]
    async fn a_second_automatic_run_waits_out_the_interval() {
        let j = MemoryJournal::new(std::time::Duration::from_secs(30));
        let t0 = Utc::now();
        assert_eq!(check(&j, "failover", "orders", rules(600), t0).await.unwrap(), None);
        ended(&j, "a", "trigger", RunStatus::Succeeded, t0).await;
        let held = check(&j, "failover", "orders", rules(600), t0 + Duration::seconds(10)).await.unwrap().unwrap();
        assert_eq!((held.run_id.as_str(), held.until), ("a", Some(t0 + Duration::seconds(600))));
        assert!(held.reason.contains("at least 600 s apart") && held.reason.contains("none will be before"), "{}", held.reason);
        assert_eq!(check(&j, "failover", "orders", rules(600), t0 + Duration::seconds(601)).await.unwrap(), None);
        assert_eq!(check(&j, "failover", "payments", rules(600), t0 + Duration::seconds(10)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_failed_automatic_run_holds_until_an_operator_clears_it() {
        let j = MemoryJournal::new(std::time::Duration::from_secs(30));
        let t0 = Utc::now() - Duration::hours(2);
        ended(&j, "manual", "cli", RunStatus::Failed, t0).await;
        assert_eq!(check(&j, "failover", "orders", rules(0), Utc::now()).await.unwrap(), None, "manual runs never hold");
        ended(&j, "auto", "trigger", RunStatus::Failed, t0 + Duration::seconds(1)).await;
        let held = check(&j, "failover", "orders", rules(0), Utc::now()).await.unwrap().unwrap();
        assert_eq!((held.run_id.as_str(), held.until), ("auto", None));
        assert!(held.reason.contains("failed (verify-failed: db not writable)") && held.reason.contains("drover unblock auto"), "{}", held.reason);
        let off = Rules { hold_after_failure: false, ..rules(0) };
        assert_eq!(check(&j, "failover", "orders", off, Utc::now()).await.unwrap(), None);
        assert_eq!(holds(&j, "failover").await.unwrap().iter().map(|h| h.run_id.as_str()).collect::<Vec<_>>(), ["auto"]);
        let err = unblock(&j, "manual", "alice", "x").await.unwrap_err().to_string();
        assert!(err.contains("no trigger started it"), "{err}");
        unblock(&j, "auto", "alice", "replica fixed").await.unwrap();
        assert_eq!(check(&j, "failover", "orders", rules(0), Utc::now()).await.unwrap(), None);
        assert!(holds(&j, "failover").await.unwrap().is_empty());
        let err = unblock(&j, "auto", "alice", "again").await.unwrap_err().to_string();
        assert!(err.contains("cleared its hold already"), "{err}");
    }
}
