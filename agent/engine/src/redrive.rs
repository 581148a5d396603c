//! Redrive: a failed or cancelled run goes on from the step it stopped at
//! (`drover redrive RUN [--from STEP]`), as AWS Step Functions' redrive and
//! Temporal's reset do, durably and audited.
//!
//! The run is reopened in one commit, under the driver's claim: its journal
//! is cut back to the step it goes on from, that step is left in flight with
//! a retry due now (so its next attempt has the same idempotency key and
//! the next attempt number), the end of the main part and every undo and
//! cleanup that ran after it are cut, the status is running again, and an
//! event records who redrove it, why, from where, and what the run ended
//! with. Then the run is driven as a resume is: the steps before the point
//! are replayed from the journal and never executed again.
//!
//! What cannot be redriven is refused before anything is written, with the
//! reason and what to do instead:
//! - a run that has not ended (resume it) or that succeeded (start a new run);
//! - a branch of a parallel section (redrive its run), or a point from which
//!   a parallel section would run again (its branches are runs of their own
//!   that have ended: not reopened yet);
//! - a run whose undos or cleanups already ran for a step the redrive would
//!   replay as done: what that step did is undone, and replaying it would go
//!   on from a state that is no longer there (`--from` that step does it
//!   again);
//! - a run with a gate rejected or timed out: the decision stands and
//!   would be replayed;
//! - a run that holds a scope another unfinished run holds now.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use drover_journal::{
    Approval, Durability, Entry, EntryKind, EntryStatus, ErrorRecord, Event, Journal, Lease, Level, Op, RunFilter, RunRecord, RunStatus, Verdict,
};

use crate::EngineError;

/// An operator's request to redrive a run.
#[derive(Debug, Clone)]
pub struct Redrive {
    /// Go on from this (completed or failed) step instead of the step the
    /// run stopped at: it and every step after it run again.
    pub from: Option<String>,
    /// Who asks: `user@host (pid N)`, or the API caller.
    pub by: String,
    /// Why, in the operator's words.
    pub reason: String,
}

/// Where a redrive takes a run up again, and what it cuts.
#[derive(Debug, Clone, PartialEq)]
pub struct Reopening {
    /// The journal position the run goes on from.
    pub seq: u64,
    /// The step run again from there; `None` when nothing is re-executed:
    /// the runbook is replayed to where it returned and goes on from there
    /// (with a fixed build, it may now decide otherwise).
    pub step: Option<String>,
    /// Steps that had completed after the point and run again (`--from`).
    pub rerun: Vec<String>,
    /// What the run ended with.
    pub ended_with: Option<ErrorRecord>,
    /// Undos and cleanups that ran after the run ended, each with its
    /// status; all of them registered by steps that run again.
    pub actions_ran: Vec<(String, EntryStatus)>,
}

/// Why a run cannot be redriven.
fn refused(run_id: &str, reason: String) -> EngineError {
    EngineError::RedriveRefused { run_id: run_id.to_string(), reason }
}

/// The positions of the run's main part, outside any step body, up to (not
/// including) its end, and the end's position.
fn top_level(entries: &[Entry]) -> (Vec<usize>, Option<usize>) {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(e) = entries.get(i) {
        if e.kind == EntryKind::End {
            return (out, Some(i));
        }
        out.push(i);
        i = match (e.kind, e.end_seq) {
            (EntryKind::Step, Some(end)) if end as usize >= i => end as usize + 1,
            _ => i + 1,
        };
    }
    (out, None)
}

/// The top-level step whose body holds position `seq`, or the last one
/// before it.
fn step_at_or_before<'a>(entries: &'a [Entry], tl: &[usize], seq: usize) -> Option<&'a str> {
    tl.iter().rfind(|&&i| i <= seq && entries[i].kind == EntryKind::Step).and_then(|&i| entries[i].key.as_deref())
}

/// Decides where a redrive of `run` (with `entries` and its gates
/// `approvals`) takes it up, or why it cannot.
pub fn plan(run: &RunRecord, entries: &[Entry], approvals: &[Approval], from: Option<&str>) -> Result<Reopening, EngineError> {
    let id = run.run_id.as_str();
    match run.status {
        RunStatus::Failed | RunStatus::Cancelled => {}
        RunStatus::Succeeded => return Err(refused(id, "it succeeded: there is nothing to redrive; start a new run to do it again".into())),
        RunStatus::Running | RunStatus::Waiting => {
            return Err(refused(id, format!("it has not ended (it is {}): `drover resume {id}` drives it on, `drover cancel {id}` stops it", run.status)));
        }
    }
    if run.origin.as_ref().is_some_and(|o| o["kind"] == "branch") {
        let parent = run.origin.as_ref().and_then(|o| o["parent"].as_str()).unwrap_or("its run");
        return Err(refused(id, format!("it is a branch of a parallel section; redrive the run it belongs to ({parent})")));
    }
    let (tl, end) = top_level(entries);
    let Some(end) = end else {
        return Err(refused(id, "its journal records no end of its main part, so where it stopped is unknown; start a new run".into()));
    };
    let steps = || tl.iter().filter(|&&i| entries[i].kind == EntryKind::Step);
    let start = match from {
        Some(key) => match steps().find(|&&i| entries[i].key.as_deref() == Some(key)) {
            Some(&i) => i,
            None => {
                let inside = entries[..end].iter().any(|e| e.kind == EntryKind::Step && e.key.as_deref() == Some(key));
                let names: Vec<&str> = steps().filter_map(|&i| entries[i].key.as_deref()).collect();
                let why = if inside { format!("step '{key}' ran inside another step's body") } else { format!("it has no step '{key}'") };
                return Err(refused(id, format!("{why}; redrive --from one of its steps: {}", names.join(", "))));
            }
        },
        // The step the run stopped at: its last step, when that one failed.
        None => match steps().next_back() {
            Some(&i) if entries[i].status != EntryStatus::Succeeded => i,
            _ => end,
        },
    };
    if start == 0 && end == 0 {
        return Err(refused(id, "nothing was journaled before it ended; start a new run".into()));
    }
    for &i in tl.iter().filter(|&&i| i >= start) {
        if let Some(section) = entries[i].key.as_deref().and_then(drover_replay::sections::parse_step_key) {
            return Err(refused(
                id,
                format!(
                    "parallel section '{section}' would run again, and its branches are runs of their own that have ended \
                     (redrive does not reopen branches yet); start a new run, or redrive --from a step after the section"
                ),
            ));
        }
    }
    // A failure gate's decision is not replayed (the held step's outcome is
    // in its entry, reopened like any failed step's); a skipped gate lets
    // the run through, as an approval does.
    for gate in approvals.iter().filter(|g| drover_replay::held::parse_failure_gate(&g.gate).is_none()) {
        if let Some(d) = gate.decision.as_ref().filter(|d| !matches!(d.verdict, Verdict::Approved | Verdict::Skipped)) {
            return Err(refused(
                id,
                format!(
                    "its gate '{}' was {} by {} at {}, and a redrive would replay that decision; start a new run to ask again",
                    gate.gate,
                    d.verdict.as_str(),
                    d.by,
                    drover_journal::rfc3339(&d.at)
                ),
            ));
        }
    }
    let mut actions_ran = Vec::new();
    for e in &entries[end + 1..] {
        let Some(key) = e.key.as_deref().filter(|_| e.kind == EntryKind::Step) else { continue };
        let registered = entries[..end].iter().find(|r| r.kind == EntryKind::Register && r.key.as_deref() == Some(key)).map(|r| r.seq as usize);
        match registered {
            Some(r) if r < start => {
                let what = if e.status == EntryStatus::Running { "started (and may have acted)" } else { e.status.as_str() };
                return Err(refused(
                    id,
                    match step_at_or_before(entries, &tl, r) {
                        Some(step) => format!(
                            "{key} ran after it ended ({what}): what step '{step}' did is undone or cleaned up, and a redrive would \
                             replay '{step}' as done; redrive --from {step} to do it again, or start a new run"
                        ),
                        None => format!(
                            "{key} (registered before the first step) ran after it ended ({what}): what it undoes or cleans up is \
                             gone, and a redrive would replay every step before the one it stopped at as done; start a new run"
                        ),
                    },
                ));
            }
            Some(_) => actions_ran.push((key.to_string(), e.status)),
            // Not registered by the run's own main part: a branch of a
            // parallel section handed it over, and that section is replayed.
            None => {
                return Err(refused(
                    id,
                    format!(
                        "{key}, handed over by a branch of a parallel section, ran after it ended ({}): what that branch did \
                         is undone or cleaned up, and a redrive would replay the section as done; start a new run",
                        e.status.as_str()
                    ),
                ));
            }
        }
    }
    let step = (start < end).then(|| entries[start].key.clone()).flatten();
    let rerun = steps().filter(|&&i| i > start).filter(|&&i| entries[i].status == EntryStatus::Succeeded).filter_map(|&i| entries[i].key.clone()).collect();
    Ok(Reopening { seq: start as u64, step, rerun, ended_with: run.error.clone(), actions_ran })
}

impl Reopening {
    /// The commit that reopens the run (see the module's documentation).
    pub fn ops(&self, run: &RunRecord, entries: &[Entry], redrive: &Redrive, now: DateTime<Utc>) -> Vec<Op> {
        let mut ops = Vec::new();
        match entries.get(self.seq as usize).filter(|_| self.step.is_some()) {
            Some(e) => {
                let mut e = e.clone();
                e.status = EntryStatus::Running;
                e.finished_at = None;
                e.output = None;
                e.end_seq = None;
                // A retry due now: the next attempt is counted and keeps the key.
                e.next_attempt_at = Some(now);
                ops.push(Op::TruncateAfter(self.seq));
                ops.push(Op::PutEntry(e));
            }
            None => ops.push(Op::TruncateAfter(self.seq.saturating_sub(1))),
        }
        if run.cancel.is_some() {
            ops.push(Op::ClearCancel);
        }
        ops.push(Op::SetStatus { status: RunStatus::Running, finished_at: None, result: None, error: None });
        ops.push(Op::AddEvent(self.event(redrive, now)));
        ops
    }

    /// The event that records the redrive.
    pub fn event(&self, redrive: &Redrive, now: DateTime<Utc>) -> Event {
        let from = match &self.step {
            Some(step) => format!("from step '{step}'"),
            None => "from where its runbook returned (every step replayed)".to_string(),
        };
        let mut message = format!("redriven {from} by {}: {}", redrive.by, redrive.reason);
        if let Some(e) = &self.ended_with {
            message.push_str(&format!("; it had ended with {e}"));
        }
        if !self.rerun.is_empty() {
            message.push_str(&format!("; completed steps that run again: {}", self.rerun.join(", ")));
        }
        if !self.actions_ran.is_empty() {
            let ran: Vec<String> = self.actions_ran.iter().map(|(k, s)| format!("{k} ({})", s.as_str())).collect();
            message.push_str(&format!("; undos and cleanups that had run (their steps run again): {}", ran.join(", ")));
        }
        let mut fields =
            vec![("control".to_string(), "redrive".to_string()), ("by".to_string(), redrive.by.clone()), ("reason".to_string(), redrive.reason.clone())];
        if let Some(step) = &self.step {
            fields.push(("from_step".into(), step.clone()));
        }
        if let Some(e) = &self.ended_with {
            fields.push(("ended_with".into(), e.code.clone()));
        }
        Event { at: now, level: Level::Warn, step: self.step.clone(), message, fields }
    }
}

/// Reopens `run` under `lease` (the caller's claim): plans the redrive on
/// the journal as it is now, checks that no other unfinished run took the
/// run's scope meanwhile, and commits the reopening durably.
/// Returns the reopening and when it was recorded.
pub(crate) async fn reopen(journal: &Arc<dyn Journal>, lease: &Lease, run: &RunRecord, redrive: &Redrive) -> Result<(Reopening, DateTime<Utc>), EngineError> {
    let entries = journal.entries(&run.run_id).await?;
    let approvals = journal.approvals(Some(&run.run_id), false).await?;
    let reopening = plan(run, &entries, &approvals, redrive.from.as_deref())?;
    if let Some(scope) = &run.scope {
        let unfinished = journal.runs(&RunFilter { unfinished: true, ..Default::default() }).await?;
        if let Some(other) = unfinished.iter().find(|r| r.scope.as_deref() == Some(scope) && r.run_id != run.run_id) {
            return Err(refused(
                &run.run_id,
                format!("run {} holds its scope '{scope}' now (it is {}); let it end or cancel it first", other.run_id, other.status),
            ));
        }
    }
    let now = Utc::now();
    journal.commit(lease, reopening.ops(run, &entries, redrive, now), Durability::Durable).await?;
    Ok((reopening, now))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]
mod tests {
    use super::*;
    use drover_journal::{Decision, RunbookRef};
    use serde_json::json;

    fn run(status: RunStatus) -> RunRecord {
        RunRecord {
            run_id: "r1".into(),
            runbook: RunbookRef { name: "rb".into(), version: "1".into(), digest: "ab".into() },
            params: json!({}),
            status,
            created_at: Utc::now(),
            finished_at: Some(Utc::now()),
            result: None,
            error: Some(ErrorRecord::terminal("permission-denied", "not granted")),
            owner: None,
            fence: 1,
            lease_expires_at: None,
            cancel: None,
            pause: None,
            policy_override: None,
            origin: None,
            scope: None,
        }
    }

    fn entry(seq: u64, kind: EntryKind, key: Option<&str>, status: EntryStatus) -> Entry {
        let mut e = Entry::new(seq, kind, key.map(str::to_string), status, Utc::now());
        if kind == EntryKind::Step {
            e.end_seq = Some(seq);
            e.attempts = 1;
            e.idempotency_key = Some(format!("r1/{}", key.unwrap_or_default()));
        }
        e
    }

    fn step(seq: u64, key: &str, status: EntryStatus) -> Entry {
        entry(seq, EntryKind::Step, Some(key), status)
    }

    /// preflight, promote (body with a `now`), register undo:weights, point (failed), end.
    fn failed_at_point() -> Vec<Entry> {
        let mut promote = step(1, "promote", EntryStatus::Succeeded);
        promote.end_seq = Some(2);
        vec![
            step(0, "preflight", EntryStatus::Succeeded),
            promote,
            entry(2, EntryKind::Now, None, EntryStatus::Succeeded),
            entry(3, EntryKind::Register, Some("undo:weights"), EntryStatus::Succeeded),
            step(4, "point", EntryStatus::Failed),
            entry(5, EntryKind::End, None, EntryStatus::Succeeded),
        ]
    }

    fn redrive() -> Redrive {
        Redrive { from: None, by: "alice@host".into(), reason: "grant added".into() }
    }

    #[test]
    fn a_failed_run_goes_on_from_its_failed_step_with_the_same_key() {
        let entries = failed_at_point();
        let p = plan(&run(RunStatus::Failed), &entries, &[], None).unwrap();
        assert_eq!((p.seq, p.step.as_deref(), p.rerun.len()), (4, Some("point"), 0));
        let ops = p.ops(&run(RunStatus::Failed), &entries, &redrive(), Utc::now());
        assert!(matches!(ops[0], Op::TruncateAfter(4)));
        let Op::PutEntry(e) = &ops[1] else { panic!("{ops:?}") };
        assert_eq!((e.status, e.attempts, e.idempotency_key.as_deref(), e.end_seq), (EntryStatus::Running, 1, Some("r1/point"), None));
        assert!(e.next_attempt_at.is_some());
        assert!(matches!(ops[2], Op::SetStatus { status: RunStatus::Running, error: None, .. }));
        let Op::AddEvent(ev) = &ops[3] else { panic!("{ops:?}") };
        assert!(ev.message.contains("redriven from step 'point' by alice@host: grant added; it had ended with permission-denied"), "{}", ev.message);
    }

    #[test]
    fn from_an_earlier_step_runs_the_completed_ones_after_it_again() {
        let p = plan(&run(RunStatus::Failed), &failed_at_point(), &[], Some("promote")).unwrap();
        assert_eq!((p.seq, p.step.as_deref(), p.rerun.as_slice()), (1, Some("promote"), &[][..]));
        let p = plan(&run(RunStatus::Failed), &failed_at_point(), &[], Some("preflight")).unwrap();
        assert_eq!(p.rerun, ["promote"]);
        let err = plan(&run(RunStatus::Failed), &failed_at_point(), &[], Some("nope")).unwrap_err().to_string();
        assert!(err.contains("it has no step 'nope'; redrive --from one of its steps: preflight, promote, point"), "{err}");
    }

    #[test]
    fn an_undo_that_ran_for_a_replayed_step_refuses_unless_from_before_it() {
        let mut entries = failed_at_point();
        entries.push(step(6, "undo:weights", EntryStatus::Succeeded));
        let err = plan(&run(RunStatus::Failed), &entries, &[], None).unwrap_err().to_string();
        assert!(err.contains("undo:weights ran after it ended (succeeded): what step 'promote' did is undone"), "{err}");
        assert!(err.contains("redrive --from promote"), "{err}");
        let p = plan(&run(RunStatus::Failed), &entries, &[], Some("promote")).unwrap();
        assert_eq!(p.actions_ran, [("undo:weights".to_string(), EntryStatus::Succeeded)]);
    }

    #[test]
    fn a_run_cancelled_between_steps_goes_on_from_its_end() {
        let mut entries = failed_at_point();
        entries[4].status = EntryStatus::Succeeded;
        let mut r = run(RunStatus::Cancelled);
        r.cancel = Some(drover_journal::CancelRequest { by: "bob".into(), reason: "wait".into(), at: Utc::now() });
        let p = plan(&r, &entries, &[], None).unwrap();
        assert_eq!((p.seq, p.step.as_deref()), (5, None));
        let ops = p.ops(&r, &entries, &redrive(), Utc::now());
        assert!(matches!(ops[0], Op::TruncateAfter(4)) && matches!(ops[1], Op::ClearCancel), "{ops:?}");
    }

    #[test]
    fn what_cannot_be_redriven_is_refused_with_what_to_do() {
        let entries = failed_at_point();
        let err = plan(&run(RunStatus::Succeeded), &entries, &[], None).unwrap_err().to_string();
        assert!(err.contains("it succeeded"), "{err}");
        let err = plan(&run(RunStatus::Running), &entries, &[], None).unwrap_err().to_string();
        assert!(err.contains("drover resume r1"), "{err}");
        let mut branch = run(RunStatus::Failed);
        branch.origin = Some(json!({"kind": "branch", "parent": "p1"}));
        assert!(plan(&branch, &entries, &[], None).unwrap_err().to_string().contains("redrive the run it belongs to (p1)"));
        let mut sectioned = entries.clone();
        sectioned[4].key = Some("section:failover".into());
        let err = plan(&run(RunStatus::Failed), &sectioned, &[], None).unwrap_err().to_string();
        assert!(err.contains("parallel section 'failover' would run again"), "{err}");
        let mut handed = entries.clone();
        handed.push(step(6, "undo:branch-weights", EntryStatus::Succeeded));
        let err = plan(&run(RunStatus::Failed), &handed, &[], None).unwrap_err().to_string();
        assert!(err.contains("handed over by a branch of a parallel section"), "{err}");
        let gate = Approval {
            run_id: "r1".into(),
            gate: "promote".into(),
            message: "go?".into(),
            requested_at: Utc::now(),
            deadline: None,
            decision: Some(Decision { verdict: Verdict::Rejected, by: "carol".into(), comment: String::new(), at: Utc::now() }),
        };
        let err = plan(&run(RunStatus::Failed), &entries, &[gate], None).unwrap_err().to_string();
        assert!(err.contains("its gate 'promote' was rejected by carol"), "{err}");
    }
}
