//! The behaviour every run store must have, written once and run against
//! each implementation (the embedded store's unit tests, and the DynamoDB
//! store's tests against an emulated DynamoDB). Each check uses run ids
//! starting with its `prefix`, so stores shared by other tests can run it.

use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::json;

use crate::{
    AttemptRecord, CancelRequest, Created, Decision, Durability, Entry, EntryKind, EntryStatus, Event, Journal, JournalError, Level, NewRun, Op, Owner,
    RunFilter, RunStatus, RunbookRef, Verdict, current_owner,
};

/// Runs every check against `j`.
pub async fn all(j: &Arc<dyn Journal>, prefix: &str) {
    runs_are_created_once_and_scopes_are_joined(j, prefix).await;
    a_stale_driver_is_fenced_out(j, prefix).await;
    entries_attempts_and_events_round_trip(j, prefix).await;
    large_outputs_round_trip(j, prefix).await;
    the_first_cancel_request_wins(j, prefix).await;
    the_first_decision_on_a_gate_wins(j, prefix).await;
    runs_are_listed_newest_first(j, prefix).await;
    a_run_is_repinned_and_stopped_without_an_outcome(j, prefix).await;
    claims_are_leases_and_an_operator_can_take_over(j, prefix).await;
    an_ended_run_is_reopened(j, prefix).await;
    a_pause_is_requested_and_withdrawn(j, prefix).await;
    a_send_is_applied_before_the_commit_after_it(j, prefix).await;
}

/// A commit sent without waiting ([`Journal::send`]) is applied before a
/// commit made after it, and answers with its own outcome; a stale driver's
/// send is refused like its commit.
pub async fn a_send_is_applied_before_the_commit_after_it(j: &Arc<dyn Journal>, prefix: &str) {
    let id = format!("{prefix}-send");
    j.create_run(&new_run(&id)).await.unwrap();
    let lease = j.claim(&id, &current_owner()).await.unwrap();
    let begin = j.send(&lease, vec![Op::PutEntry(step(0, "a", EntryStatus::Running))]).await.unwrap();
    j.commit(&lease, vec![Op::PutEntry(step(0, "a", EntryStatus::Succeeded)), Op::PutEntry(step(1, "b", EntryStatus::Running))], Durability::Durable)
        .await
        .unwrap();
    begin.await.unwrap();
    let entries = j.entries(&id).await.unwrap();
    let got: Vec<_> = entries.iter().map(|e| (e.key.clone().unwrap(), e.status)).collect();
    assert_eq!(got, [("a".to_string(), EntryStatus::Succeeded), ("b".to_string(), EntryStatus::Running)], "the send was applied after the commit");
    let newer = j.claim(&id, &current_owner()).await.unwrap();
    let stale = j.send(&lease, vec![Op::PutEntry(step(2, "stale", EntryStatus::Running))]).await.unwrap().await;
    assert!(matches!(stale, Err(JournalError::LeaseLost { .. })), "{stale:?}");
    assert_eq!(j.entries(&id).await.unwrap().len(), 2);
    j.release(&newer).await.unwrap();
}

/// A pause is requested and withdrawn without a claim (the latest request
/// stands); an ended run is not paused.
pub async fn a_pause_is_requested_and_withdrawn(j: &Arc<dyn Journal>, prefix: &str) {
    let id = format!("{prefix}-pause");
    j.create_run(&new_run(&id)).await.unwrap();
    let req = |by: &str| CancelRequest { by: by.into(), reason: "check the replica".into(), at: now() };
    assert_eq!(j.request_pause(&id, Some(&req("alice"))).await.unwrap().pause.unwrap().by, "alice");
    assert_eq!(j.request_pause(&id, Some(&req("bob"))).await.unwrap().pause.unwrap().by, "bob");
    assert_eq!(j.run(&id).await.unwrap().unwrap().pause.unwrap().by, "bob");
    assert!(j.request_pause(&id, None).await.unwrap().pause.is_none());
    assert!(j.run(&id).await.unwrap().unwrap().pause.is_none());
    let lease = j.claim(&id, &current_owner()).await.unwrap();
    j.commit(&lease, vec![ended(RunStatus::Succeeded)], Durability::Durable).await.unwrap();
    assert!(j.request_pause(&id, Some(&req("late"))).await.unwrap().pause.is_none());
    assert!(matches!(j.request_pause(&format!("{prefix}-nope"), None).await, Err(JournalError::UnknownRun(_))));
}

/// A new run named `id`.
pub fn new_run(id: &str) -> NewRun {
    NewRun {
        run_id: id.into(),
        runbook: RunbookRef { name: "conformance".into(), version: "1.0.0".into(), digest: "ab".repeat(32) },
        params: json!({"x": 1}),
        created_at: now(),
        policy_override: None,
        origin: Some(json!({"kind": "test"})),
        scope: None,
    }
}

/// Now, to the microsecond stores keep.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn step(seq: u64, key: &str, status: EntryStatus) -> Entry {
    let mut e = Entry::new(seq, EntryKind::Step, Some(key.into()), status, now());
    e.idempotency_key = Some(format!("k-{seq}"));
    // Kept by every store (read back equal wherever entries are compared).
    e.requests = seq as u32 + 3;
    e
}

fn ended(status: RunStatus) -> Op {
    Op::SetStatus { status, finished_at: Some(now()), result: Some(json!({"ok": true})), error: None }
}

/// Creation is idempotent by id; of two runs asking for one scope at the
/// same moment, one is created and the other joins it; an ended holder
/// frees the scope.
pub async fn runs_are_created_once_and_scopes_are_joined(j: &Arc<dyn Journal>, prefix: &str) {
    let id = format!("{prefix}-create");
    assert!(matches!(j.create_run(&new_run(&id)).await.unwrap(), Created::New));
    match j.create_run(&new_run(&id)).await.unwrap() {
        Created::Existing(r) => {
            assert_eq!((r.run_id.as_str(), r.status, r.fence), (id.as_str(), RunStatus::Running, 0));
            assert_eq!(r.origin, Some(json!({"kind": "test"})));
        }
        other => panic!("expected the existing run, got {other:?}"),
    }
    let scope = format!("app:{prefix}");
    let scoped = |id: String| NewRun { scope: Some(scope.clone()), ..new_run(&id) };
    let (a, b) = (format!("{prefix}-scope-a"), format!("{prefix}-scope-b"));
    let (na, nb) = (scoped(a.clone()), scoped(b.clone()));
    let (ra, rb) = tokio::join!(j.create_run(&na), j.create_run(&nb));
    let (created, joiner) = match (ra.unwrap(), rb.unwrap()) {
        (Created::New, Created::Joined(h)) => {
            assert_eq!(h.run_id, a);
            (a, b)
        }
        (Created::Joined(h), Created::New) => {
            assert_eq!(h.run_id, b);
            (b, a)
        }
        other => panic!("expected one new run and one joined, got {other:?}"),
    };
    assert!(j.run(&joiner).await.unwrap().is_none(), "the joiner created nothing");
    // The same id again is the existing run, not a join of itself.
    assert!(matches!(j.create_run(&scoped(created.clone())).await.unwrap(), Created::Existing(_)));
    let lease = j.claim(&created, &current_owner()).await.unwrap();
    j.commit(&lease, vec![ended(RunStatus::Failed)], Durability::Durable).await.unwrap();
    let next = format!("{prefix}-scope-c");
    assert!(matches!(j.create_run(&scoped(next.clone())).await.unwrap(), Created::New));
    assert_eq!(j.run(&next).await.unwrap().unwrap().scope.as_deref(), Some(scope.as_str()));
}

/// Every claim gets a higher fence; the older claim's commits, renewals and
/// fencing checks are refused, and its writes leave no trace.
pub async fn a_stale_driver_is_fenced_out(j: &Arc<dyn Journal>, prefix: &str) {
    let id = format!("{prefix}-fence");
    j.create_run(&new_run(&id)).await.unwrap();
    assert!(matches!(j.claim(&format!("{prefix}-nope"), &current_owner()).await, Err(JournalError::UnknownRun(_))));
    let old = j.claim(&id, &current_owner()).await.unwrap();
    j.commit(&old, vec![Op::PutEntry(step(0, "a", EntryStatus::Succeeded))], Durability::Durable).await.unwrap();
    j.check_lease(&old).await.unwrap();
    j.renew(&old).await.unwrap();
    let run = j.run(&id).await.unwrap().unwrap();
    assert_eq!((run.fence, run.owner.as_ref()), (old.fence, Some(&current_owner())));
    // The same process claims again (an agent restarted with the same
    // identity, or a takeover): the fence moves on.
    let new = j.claim(&id, &current_owner()).await.unwrap();
    assert!(new.fence > old.fence, "{new:?} after {old:?}");
    let stale = j.commit(&old, vec![Op::PutEntry(step(1, "stale", EntryStatus::Succeeded))], Durability::Durable).await;
    assert!(matches!(stale, Err(JournalError::LeaseLost { .. })), "{stale:?}");
    assert!(matches!(j.check_lease(&old).await, Err(JournalError::LeaseLost { .. })));
    assert!(matches!(j.renew(&old).await, Err(JournalError::LeaseLost { .. })));
    j.commit(&new, vec![Op::PutEntry(step(1, "b", EntryStatus::Succeeded))], Durability::Buffered).await.unwrap();
    let keys: Vec<_> = j.entries(&id).await.unwrap().into_iter().map(|e| e.key.unwrap()).collect();
    assert_eq!(keys, ["a", "b"]);
    // A release by the stale driver does not free the new one's claim.
    j.release(&old).await.unwrap();
    assert_eq!(j.run(&id).await.unwrap().unwrap().owner, Some(current_owner()));
    j.release(&new).await.unwrap();
    assert_eq!(j.run(&id).await.unwrap().unwrap().owner, None);
}

/// Entries are replaced by `seq` and truncated; attempts are replaced by
/// (seq, number); events keep their order; the status carries the result.
pub async fn entries_attempts_and_events_round_trip(j: &Arc<dyn Journal>, prefix: &str) {
    let id = format!("{prefix}-entries");
    j.create_run(&new_run(&id)).await.unwrap();
    let lease = j.claim(&id, &current_owner()).await.unwrap();
    let attempt = |seq, number| AttemptRecord { seq, key: format!("s{seq}"), number, idempotency_key: format!("k-{seq}-{number}"), started_at: now() };
    let event = |m: &str| Event { at: now(), level: Level::Info, step: Some("s1".into()), message: m.into(), fields: vec![("k".into(), "v".into())] };
    let mut done = step(1, "s1", EntryStatus::Succeeded);
    done.output = Some(json!({"db": "orders"}));
    done.end_seq = Some(2);
    let ops = vec![
        Op::PutEntry(step(0, "s0", EntryStatus::Succeeded)),
        Op::PutEntry(step(1, "s1", EntryStatus::Running)),
        Op::AddAttempt(attempt(1, 1)),
        Op::AddEvent(event("first")),
    ];
    j.commit(&lease, ops, Durability::Buffered).await.unwrap();
    let ops = vec![
        Op::PutEntry(step(2, "inner", EntryStatus::Running)),
        Op::PutEntry(step(3, "later", EntryStatus::Running)),
        Op::AddAttempt(attempt(1, 2)),
        Op::AddEvent(event("second")),
    ];
    j.commit(&lease, ops, Durability::Durable).await.unwrap();
    let ops = vec![Op::TruncateAfter(2), Op::PutEntry(done.clone()), Op::AddAttempt(attempt(1, 2)), ended(RunStatus::Succeeded)];
    j.commit(&lease, ops, Durability::Durable).await.unwrap();
    let entries = j.entries(&id).await.unwrap();
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(entries[1], done);
    let attempts = j.attempts(&id).await.unwrap();
    assert_eq!(attempts.iter().map(|a| (a.seq, a.number)).collect::<Vec<_>>(), [(1, 1), (1, 2)]);
    let events = j.events(&id).await.unwrap();
    assert_eq!(events.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["first", "second"]);
    assert_eq!(events[0].fields, vec![("k".to_string(), "v".to_string())]);
    let run = j.run(&id).await.unwrap().unwrap();
    assert_eq!((run.status, run.result), (RunStatus::Succeeded, Some(json!({"ok": true}))));
    assert!(run.finished_at.is_some());
}

/// A step output of nearly a megabyte (the engine's default limit) is kept whole.
pub async fn large_outputs_round_trip(j: &Arc<dyn Journal>, prefix: &str) {
    let id = format!("{prefix}-large");
    j.create_run(&new_run(&id)).await.unwrap();
    let lease = j.claim(&id, &current_owner()).await.unwrap();
    let mut big = step(0, "big", EntryStatus::Succeeded);
    big.output = Some(json!("x".repeat(1000 * 1000)));
    j.commit(&lease, vec![Op::PutEntry(big.clone()), Op::PutEntry(step(1, "after", EntryStatus::Running))], Durability::Durable).await.unwrap();
    let entries = j.entries(&id).await.unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0], big);
}

/// A cancel request needs no claim; the first one is kept; an ended run
/// records none.
pub async fn the_first_cancel_request_wins(j: &Arc<dyn Journal>, prefix: &str) {
    let id = format!("{prefix}-cancel");
    j.create_run(&new_run(&id)).await.unwrap();
    let req = |by: &str| CancelRequest { by: by.into(), reason: "drill over".into(), at: now() };
    let first = j.request_cancel(&id, &req("alice")).await.unwrap();
    let second = j.request_cancel(&id, &req("bob")).await.unwrap();
    assert_eq!(first.cancel.as_ref().unwrap().by, "alice");
    assert_eq!(second.cancel.unwrap().by, "alice");
    assert!(matches!(j.request_cancel(&format!("{prefix}-none"), &req("x")).await, Err(JournalError::UnknownRun(_))));
    let done = format!("{prefix}-cancel-done");
    j.create_run(&new_run(&done)).await.unwrap();
    let lease = j.claim(&done, &current_owner()).await.unwrap();
    j.commit(&lease, vec![ended(RunStatus::Succeeded)], Durability::Durable).await.unwrap();
    assert!(j.request_cancel(&done, &req("late")).await.unwrap().cancel.is_none());
}

/// A gate is opened by a commit and decided without a claim; the first
/// decision wins; opening it again keeps the decision.
pub async fn the_first_decision_on_a_gate_wins(j: &Arc<dyn Journal>, prefix: &str) {
    let id = format!("{prefix}-gate");
    j.create_run(&new_run(&id)).await.unwrap();
    let decision = |verdict, by: &str| Decision { verdict, by: by.into(), comment: String::new(), at: now() };
    let err = j.decide(&id, "promote", &decision(Verdict::Approved, "me")).await.unwrap_err();
    assert!(matches!(err, JournalError::UnknownGate { .. }), "{err}");
    let lease = j.claim(&id, &current_owner()).await.unwrap();
    let open = Op::OpenApproval { gate: "promote".into(), message: "go?".into(), requested_at: now(), deadline: Some(now() + Duration::minutes(30)) };
    j.commit(&lease, vec![open.clone()], Durability::Durable).await.unwrap();
    let mine = |all: Vec<crate::Approval>| all.into_iter().filter(|a| a.run_id == id).collect::<Vec<_>>();
    assert_eq!(mine(j.approvals(None, true).await.unwrap()).len(), 1);
    assert_eq!(j.approvals(Some(&id), true).await.unwrap()[0].message, "go?");
    let first = j.decide(&id, "promote", &decision(Verdict::Rejected, "alice")).await.unwrap();
    let second = j.decide(&id, "promote", &decision(Verdict::Approved, "bob")).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(second.decision.unwrap().by, "alice");
    j.commit(&lease, vec![open], Durability::Durable).await.unwrap();
    let all = j.approvals(Some(&id), false).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].decision.as_ref().unwrap().verdict, Verdict::Rejected);
    assert!(mine(j.approvals(None, true).await.unwrap()).is_empty());
    assert_eq!(mine(j.approvals(None, false).await.unwrap()).len(), 1);
    // A held step's gate (`failed:KEY:N`) takes a skip like any decision.
    let held = Op::OpenApproval { gate: "failed:point-db-record:1".into(), message: "retry?".into(), requested_at: now(), deadline: None };
    j.commit(&lease, vec![held], Durability::Durable).await.unwrap();
    let skipped = j.decide(&id, "failed:point-db-record:1", &decision(Verdict::Skipped, "carol")).await.unwrap();
    assert_eq!(skipped.decision.unwrap().verdict, Verdict::Skipped);
    let all = j.approvals(Some(&id), false).await.unwrap();
    assert_eq!(all.iter().find(|a| a.gate == "failed:point-db-record:1").and_then(|a| a.decision.as_ref()).map(|d| d.verdict), Some(Verdict::Skipped));
}

/// Runs are listed newest first, filtered by status and runbook, and limited.
pub async fn runs_are_listed_newest_first(j: &Arc<dyn Journal>, prefix: &str) {
    let t0 = now();
    let ids: Vec<String> = (0..3).map(|i| format!("{prefix}-list-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let mut run = NewRun { created_at: t0 + Duration::milliseconds(i as i64), ..new_run(id) };
        if i == 1 {
            run.runbook.name = "other-runbook".into();
        }
        j.create_run(&run).await.unwrap();
    }
    let lease = j.claim(&ids[1], &current_owner()).await.unwrap();
    j.commit(&lease, vec![ended(RunStatus::Succeeded)], Durability::Durable).await.unwrap();
    let mine = |runs: Vec<crate::RunRecord>| runs.into_iter().map(|r| r.run_id).filter(|r| ids.contains(r)).collect::<Vec<_>>();
    assert_eq!(mine(j.runs(&RunFilter::default()).await.unwrap()), [ids[2].clone(), ids[1].clone(), ids[0].clone()]);
    let succeeded = j.runs(&RunFilter { status: Some(RunStatus::Succeeded), ..Default::default() }).await.unwrap();
    assert!(succeeded.iter().all(|r| r.status == RunStatus::Succeeded));
    assert_eq!(mine(succeeded), [ids[1].clone()]);
    let running = j.runs(&RunFilter { status: Some(RunStatus::Running), ..Default::default() }).await.unwrap();
    assert_eq!(mine(running), [ids[2].clone(), ids[0].clone()]);
    let unfinished = j.runs(&RunFilter { unfinished: true, ..Default::default() }).await.unwrap();
    assert!(unfinished.iter().all(|r| !r.status.is_final()));
    assert_eq!(mine(unfinished), [ids[2].clone(), ids[0].clone()]);
    let of = |name: &str| RunFilter { runbook: Some(name.into()), ..Default::default() };
    assert_eq!(mine(j.runs(&of("conformance")).await.unwrap()), [ids[2].clone(), ids[0].clone()]);
    assert_eq!(mine(j.runs(&of("other-runbook")).await.unwrap()), [ids[1].clone()]);
    let other_succeeded = RunFilter { status: Some(RunStatus::Succeeded), ..of("other-runbook") };
    assert_eq!(mine(j.runs(&other_succeeded).await.unwrap()), [ids[1].clone()]);
    assert!(mine(j.runs(&RunFilter { status: Some(RunStatus::Running), ..of("other-runbook") }).await.unwrap()).is_empty());
    let newest = j.runs(&RunFilter { limit: Some(1), ..Default::default() }).await.unwrap();
    assert_eq!(newest.len(), 1);
    assert!(newest[0].created_at >= t0 + Duration::milliseconds(2));
}

/// `SetRunbook` pins the run to another build, kept across reads and later
/// commits (until pinned again); an unfinished status with an error (a run
/// stopped without an outcome) keeps the run unfinished and is cleared by
/// the next status.
pub async fn a_run_is_repinned_and_stopped_without_an_outcome(j: &Arc<dyn Journal>, prefix: &str) {
    let id = format!("{prefix}-repin");
    j.create_run(&new_run(&id)).await.unwrap();
    let lease = j.claim(&id, &current_owner()).await.unwrap();
    let fixed = RunbookRef { name: "conformance".into(), version: "1.0.1".into(), digest: "cd".repeat(32) };
    j.commit(&lease, vec![Op::SetRunbook(fixed.clone())], Durability::Durable).await.unwrap();
    j.commit(&lease, vec![Op::PutEntry(step(0, "a", EntryStatus::Succeeded))], Durability::Durable).await.unwrap();
    assert_eq!(j.run(&id).await.unwrap().unwrap().runbook, fixed);
    let why = crate::ErrorRecord::terminal("non-determinism", "stopped: resume with the build it started with");
    let stopped = Op::SetStatus { status: RunStatus::Running, finished_at: None, result: None, error: Some(why.clone()) };
    j.commit(&lease, vec![stopped], Durability::Durable).await.unwrap();
    let run = j.run(&id).await.unwrap().unwrap();
    assert_eq!((run.status, run.error.as_ref(), run.finished_at), (RunStatus::Running, Some(&why), None));
    assert!(j.runs(&RunFilter { unfinished: true, ..Default::default() }).await.unwrap().iter().any(|r| r.run_id == id));
    let back = RunbookRef { name: "conformance".into(), version: "1.0.0".into(), digest: "ab".repeat(32) };
    let resumed = Op::SetStatus { status: RunStatus::Running, finished_at: None, result: None, error: None };
    j.commit(&lease, vec![Op::SetRunbook(back.clone()), resumed], Durability::Durable).await.unwrap();
    let run = j.run(&id).await.unwrap().unwrap();
    assert_eq!((run.runbook, run.error), (back, None));
}

/// A redrive reopens a cancelled run: claimed after it ended, its journal
/// cut back, its cancel request withdrawn and its status running again in
/// one commit; it is listed as unfinished and can be cancelled again.
pub async fn an_ended_run_is_reopened(j: &Arc<dyn Journal>, prefix: &str) {
    let id = format!("{prefix}-reopen");
    j.create_run(&new_run(&id)).await.unwrap();
    let lease = j.claim(&id, &current_owner()).await.unwrap();
    let ops = vec![Op::PutEntry(step(0, "a", EntryStatus::Succeeded)), Op::PutEntry(step(1, "b", EntryStatus::Succeeded))];
    j.commit(&lease, ops, Durability::Durable).await.unwrap();
    j.request_cancel(&id, &CancelRequest { by: "alice".into(), reason: "wrong region".into(), at: now() }).await.unwrap();
    let failed = Op::SetStatus {
        status: RunStatus::Cancelled,
        finished_at: Some(now()),
        result: None,
        error: Some(crate::ErrorRecord::terminal("cancelled", "by alice")),
    };
    j.commit(&lease, vec![failed], Durability::Durable).await.unwrap();
    j.release(&lease).await.unwrap();

    let lease = j.claim(&id, &current_owner()).await.unwrap();
    let reopen = vec![Op::TruncateAfter(0), Op::ClearCancel, Op::SetStatus { status: RunStatus::Running, finished_at: None, result: None, error: None }];
    j.commit(&lease, reopen, Durability::Durable).await.unwrap();
    let run = j.run(&id).await.unwrap().unwrap();
    assert_eq!((run.status, run.finished_at, run.error, run.cancel), (RunStatus::Running, None, None, None));
    assert_eq!(j.entries(&id).await.unwrap().len(), 1);
    assert!(j.runs(&RunFilter { unfinished: true, ..Default::default() }).await.unwrap().iter().any(|r| r.run_id == id));
    let again = j.request_cancel(&id, &CancelRequest { by: "bob".into(), reason: "again".into(), at: now() }).await.unwrap();
    assert_eq!(again.cancel.unwrap().by, "bob");
}

/// A driver on a host that is gone for good (a container re-created under
/// a new host name, with the same volume) as the store records it: its
/// process cannot be looked up from here.
fn gone_host() -> Owner {
    Owner { host: "old-host.invalid".into(), pid: 1, start_ticks: 1 }
}

/// Claims are leases: a claim records when it runs out and a renewal moves
/// that on; another host's live lease refuses a claim, naming the holder;
/// the operator's takeover takes the run anyway and fences the holder out;
/// a release ends the lease.
pub async fn claims_are_leases_and_an_operator_can_take_over(j: &Arc<dyn Journal>, prefix: &str) {
    let ttl = j.lease_ttl().expect("every store's claims are leases");
    let ttl = Duration::from_std(ttl).unwrap();
    let id = format!("{prefix}-lease");
    j.create_run(&new_run(&id)).await.unwrap();
    let held = j.claim(&id, &gone_host()).await.unwrap();
    let run = j.run(&id).await.unwrap().unwrap();
    let expires = run.lease_expires_at.expect("a claim records when it runs out");
    assert!(expires > Utc::now() && expires <= Utc::now() + ttl, "{expires} within {ttl} from now");
    assert!(!run.driver_gone(Utc::now()), "another host's live lease holds the run");
    match j.claim(&id, &current_owner()).await {
        Err(JournalError::RunBusy { host, .. }) => assert_eq!(host, gone_host().host),
        other => panic!("a claim of a run under another host's live lease must be refused, got {other:?}"),
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    j.renew(&held).await.unwrap();
    j.check_lease(&held).await.unwrap();
    assert!(j.run(&id).await.unwrap().unwrap().lease_expires_at.unwrap() >= expires, "a renewal moves the expiry on");
    // The operator knows that host is gone: the takeover does not wait.
    let taken = j.take_over(&id, &current_owner()).await.unwrap();
    assert!(taken.fence > held.fence, "{taken:?} after {held:?}");
    assert_eq!(j.run(&id).await.unwrap().unwrap().owner, Some(current_owner()));
    assert!(matches!(j.check_lease(&held).await, Err(JournalError::LeaseLost { .. })));
    assert!(matches!(j.renew(&held).await, Err(JournalError::LeaseLost { .. })));
    let stale = j.commit(&held, vec![Op::PutEntry(step(0, "stale", EntryStatus::Succeeded))], Durability::Durable).await;
    assert!(matches!(stale, Err(JournalError::LeaseLost { .. })), "{stale:?}");
    j.commit(&taken, vec![Op::PutEntry(step(0, "mine", EntryStatus::Succeeded))], Durability::Durable).await.unwrap();
    j.release(&taken).await.unwrap();
    let run = j.run(&id).await.unwrap().unwrap();
    assert_eq!((run.owner, run.lease_expires_at), (None, None));
    assert!(matches!(j.check_lease(&taken).await, Err(JournalError::LeaseExpired { .. })), "a released claim may not act");
    assert!(matches!(j.take_over(&format!("{prefix}-nope"), &current_owner()).await, Err(JournalError::UnknownRun(_))));
}

/// For a store whose lease is at most 2 s: a claim of a driver on another
/// host that stopped renewing (its container was re-created under a new
/// host name, or it froze) is taken over once its lease ran out; the old
/// claim's fencing check fails from then on.
pub async fn an_expired_lease_is_taken_over(j: &Arc<dyn Journal>, prefix: &str) {
    let ttl = j.lease_ttl().expect("every store's claims are leases");
    assert!(ttl <= std::time::Duration::from_secs(2), "open the store with a short lease for this check, not {ttl:?}");
    let id = format!("{prefix}-expired");
    j.create_run(&NewRun { scope: Some(format!("app:{prefix}-expired")), ..new_run(&id) }).await.unwrap();
    let old = j.claim(&id, &gone_host()).await.unwrap();
    tokio::time::sleep(ttl + std::time::Duration::from_millis(200)).await;
    assert!(matches!(j.check_lease(&old).await, Err(JournalError::LeaseExpired { .. })), "an expired lease fails the fencing check");
    let run = j.run(&id).await.unwrap().unwrap();
    assert!(run.driver_gone(Utc::now()), "{run:?}");
    // A new alert for its scope joins it (it has not ended); whoever drives it now may.
    let joiner = NewRun { scope: run.scope.clone(), ..new_run(&format!("{prefix}-expired-joiner")) };
    assert!(matches!(j.create_run(&joiner).await.unwrap(), Created::Joined(h) if h.run_id == id));
    let new = j.claim(&id, &current_owner()).await.unwrap();
    assert!(new.fence > old.fence);
    j.check_lease(&new).await.unwrap();
    assert!(matches!(j.commit(&old, vec![ended(RunStatus::Succeeded)], Durability::Durable).await, Err(JournalError::LeaseLost { .. })));
    j.commit(&new, vec![ended(RunStatus::Cancelled)], Durability::Durable).await.unwrap();
    assert_eq!(j.run(&id).await.unwrap().unwrap().status, RunStatus::Cancelled);
}
