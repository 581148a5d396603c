//! The store against an emulated DynamoDB (moto's server, started by
//! `scripts/test`; `AWS_ENDPOINT_URL_DYNAMODB` points at it).

use std::sync::Arc;
use std::time::Duration;

use drover_journal::{Durability, EntryKind, EntryStatus, Journal, JournalError, Op, Owner, conformance, current_owner};

use super::*;
use crate::items::RunDoc;

/// A store on a table of its own, created for the test.
async fn store(lease: Duration) -> (Arc<DynamoJournal>, DynamoConfig) {
    let ep = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default();
    assert!(ep.starts_with("http://127.0.0.1"), "these tests need the emulated DynamoDB: run them through scripts/test (AWS_ENDPOINT_URL_DYNAMODB='{ep}')");
    let config = DynamoConfig { table: format!("drover-test-{:08x}", rand::random::<u32>()), region: "us-east-1".into(), lease };
    let j = DynamoJournal::open(config.clone()).await;
    assert!(j.init().await.unwrap(), "a new table is created");
    assert!(!j.init().await.unwrap(), "an existing table is left as it is");
    (Arc::new(j), config)
}

async fn drop_table(j: &DynamoJournal) {
    let _ = j.client.delete_table().table_name(j.table()).send().await;
}

fn agent_b() -> Owner {
    Owner { host: "agent-b.invalid".into(), pid: 2, start_ticks: 3 }
}

#[tokio::test]
async fn the_dynamodb_store_conforms() {
    let (j, _) = store(DynamoConfig::DEFAULT_LEASE).await;
    let dynj: Arc<dyn Journal> = j.clone();
    conformance::all(&dynj, "c").await;
    drop_table(&j).await;
}

#[tokio::test]
async fn a_lease_that_runs_out_is_taken_over_and_the_old_driver_is_fenced_out() {
    let (a, config) = store(Duration::from_secs(1)).await;
    // Agent B: another process with its own client, on the same table.
    let b = DynamoJournal::open(config).await;
    a.create_run(&conformance::new_run("r")).await.unwrap();
    let held = a.claim("r", &current_owner()).await.unwrap();
    let busy = b.claim("r", &agent_b()).await.unwrap_err();
    assert!(matches!(busy, JournalError::RunBusy { .. }), "{busy}");
    // Renewals keep it.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        a.renew(&held).await.unwrap();
    }
    assert!(matches!(b.claim("r", &agent_b()).await, Err(JournalError::RunBusy { .. })));
    // A stops renewing (paused, crashed): once the lease ran out, B takes it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(matches!(a.check_lease(&held).await, Err(JournalError::LeaseExpired { .. })), "an expired lease fails the fencing check");
    let taken = b.claim("r", &agent_b()).await.unwrap();
    assert_eq!(taken.fence, held.fence + 1);
    let run = b.run("r").await.unwrap().unwrap();
    assert_eq!(run.owner, Some(agent_b()));
    assert!(run.lease_expires_at.unwrap() > chrono::Utc::now());
    let step = |key: &str| Op::PutEntry(drover_journal::Entry::new(0, EntryKind::Step, Some(key.into()), EntryStatus::Succeeded, chrono::Utc::now()));
    // A wakes up: every write it tries is refused.
    assert!(matches!(a.commit(&held, vec![step("from-a")], Durability::Durable).await, Err(JournalError::LeaseLost { .. })));
    assert!(matches!(a.renew(&held).await, Err(JournalError::LeaseLost { .. })));
    b.commit(&taken, vec![step("from-b")], Durability::Durable).await.unwrap();
    assert_eq!(a.entries("r").await.unwrap()[0].key.as_deref(), Some("from-b"));
    drop_table(&a).await;
}

#[tokio::test]
async fn two_agents_asking_for_one_scope_start_one_run() {
    let (a, config) = store(DynamoConfig::DEFAULT_LEASE).await;
    let b = DynamoJournal::open(config).await;
    for round in 0..5 {
        let scoped = |id: String| NewRun { scope: Some(format!("app:orders-{round}")), ..conformance::new_run(&id) };
        let (ra, rb) = (scoped(format!("a{round}")), scoped(format!("b{round}")));
        let (x, y) = tokio::join!(a.create_run(&ra), b.create_run(&rb));
        let new = [&x, &y].iter().filter(|c| matches!(c, Ok(Created::New))).count();
        let joined = [&x, &y].iter().filter(|c| matches!(c, Ok(Created::Joined(_)))).count();
        assert_eq!((new, joined), (1, 1), "round {round}: {x:?} {y:?}");
    }
    drop_table(&a).await;
}

#[tokio::test]
async fn a_missing_table_is_named_with_what_to_do() {
    let ep = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default();
    assert!(ep.starts_with("http://127.0.0.1"), "run through scripts/test");
    let j = DynamoJournal::open(DynamoConfig { table: "drover-no-such-table".into(), region: "us-east-1".into(), lease: Duration::from_secs(5) }).await;
    let err = j.run("x").await.unwrap_err().to_string();
    assert!(err.contains("drover-no-such-table") && err.contains("drover store init"), "{err}");
}

#[tokio::test]
async fn a_scope_lock_whose_creator_stalled_names_the_run_that_runs() {
    let (j, config) = store(DynamoConfig::DEFAULT_LEASE).await;
    let other = DynamoJournal::open(config).await;
    // X took the lock and stalled before putting its run item.
    let x = NewRun { scope: Some("app:stalled".into()), ..conformance::new_run("x") };
    let doc = RunDoc {
        run_id: x.run_id.clone(),
        runbook: x.runbook.clone(),
        params: x.params.clone(),
        created_at: x.created_at,
        policy_override: None,
        origin: x.origin.clone(),
        scope: x.scope.clone(),
    };
    assert!(j.take_scope("app:stalled", &doc, "creation-x", None).await.unwrap());
    // Y, on another agent, finds X's run missing: it creates it from the lock and joins it.
    let y = NewRun { scope: Some("app:stalled".into()), ..conformance::new_run("y") };
    match other.create_run(&y).await.unwrap() {
        Created::Joined(holder) => assert_eq!(holder.run_id, "x"),
        c => panic!("expected to join x, got {c:?}"),
    }
    assert!(other.run("y").await.unwrap().is_none());
    // X wakes up and puts its run item: it is the one already there, made for it.
    assert!(j.put_run(&doc, "creation-x").await.unwrap(), "x's creation counts as x's");
    assert!(!j.put_run(&doc, "someone-else").await.unwrap());
    drop_table(&j).await;
}

#[tokio::test]
async fn an_expired_lease_of_another_host_is_taken_over() {
    let (j, _) = store(Duration::from_secs(1)).await;
    let dynj: Arc<dyn Journal> = j.clone();
    conformance::an_expired_lease_is_taken_over(&dynj, "x").await;
    drop_table(&j).await;
}

/// DynamoDB holds 400 KB an item: a megabyte of result, error, gate
/// question, decision comment or cancel reason must not make a run
/// impossible to end; the stored value says it was cut and how long it was.
#[tokio::test]
async fn a_run_with_a_megabyte_result_error_or_gate_message_ends() {
    use drover_journal::{CancelRequest, Decision, ErrorRecord, RunStatus, Verdict};
    let (j, _) = store(DynamoConfig::DEFAULT_LEASE).await;
    let big = "x".repeat(1 << 20);
    let end = |status, result, error| Op::SetStatus { status, finished_at: Some(chrono::Utc::now()), result, error };

    j.create_run(&conformance::new_run("big-result")).await.unwrap();
    let lease = j.claim("big-result", &current_owner()).await.unwrap();
    j.commit(&lease, vec![end(RunStatus::Succeeded, Some(serde_json::json!({"report": big})), None)], Durability::Durable).await.unwrap();
    let run = j.run("big-result").await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    let kept = &run.result.unwrap()["truncated_by_run_store"];
    assert!(kept["original_bytes"].as_u64().unwrap() > 1 << 20, "{kept}");
    assert!(kept["json_prefix"].as_str().unwrap().starts_with("{\"report\":\"xxx"), "{kept}");

    j.create_run(&conformance::new_run("big-error")).await.unwrap();
    let lease = j.claim("big-error", &current_owner()).await.unwrap();
    j.commit(&lease, vec![end(RunStatus::Failed, None, Some(ErrorRecord::terminal("step-failed", big.clone())))], Durability::Durable).await.unwrap();
    let error = j.run("big-error").await.unwrap().unwrap().error.unwrap();
    assert_eq!(error.code, "step-failed");
    assert!(error.message.len() <= items::FIELD_BYTES + 200, "{}", error.message.len());
    assert!(error.message.ends_with(&format!("[truncated by the run store: {} bytes in all, the first {} kept]", big.len(), items::FIELD_BYTES)));

    j.create_run(&conformance::new_run("big-gate")).await.unwrap();
    let lease = j.claim("big-gate", &current_owner()).await.unwrap();
    let open = Op::OpenApproval { gate: "promote".into(), message: big.clone(), requested_at: chrono::Utc::now(), deadline: None };
    j.commit(&lease, vec![open], Durability::Durable).await.unwrap();
    let gate = &j.approvals(Some("big-gate"), true).await.unwrap()[0];
    assert!(gate.message.starts_with("xxx") && gate.message.contains("truncated by the run store"), "{}", gate.message.len());
    let decision = Decision { verdict: Verdict::Approved, by: "alice".into(), comment: big.clone(), at: chrono::Utc::now() };
    let decided = j.decide("big-gate", "promote", &decision).await.unwrap().decision.unwrap();
    assert_eq!((decided.verdict, decided.by.as_str()), (Verdict::Approved, "alice"));
    assert!(decided.comment.contains("truncated by the run store"));
    let cancel = CancelRequest { by: "bob".into(), reason: big.clone(), at: chrono::Utc::now() };
    assert!(j.request_cancel("big-gate", &cancel).await.unwrap().cancel.unwrap().reason.contains("truncated by the run store"));
    j.commit(&lease, vec![end(RunStatus::Cancelled, None, None)], Durability::Durable).await.unwrap();
    assert_eq!(j.run("big-gate").await.unwrap().unwrap().status, RunStatus::Cancelled);
    drop_table(&j).await;
}

/// One item that cannot be decoded (written by hand, by a newer agent, or
/// damaged) must not hide every other run from the takeover scan and the
/// listings: it is skipped, with a warning naming it.
#[tokio::test]
async fn a_corrupt_item_does_not_stop_the_takeover_scan() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (j, _) = store(DynamoConfig::DEFAULT_LEASE).await;
    j.create_run(&conformance::new_run("good")).await.unwrap();
    let bad = |pk: &str, sk: &str, g1pk: &str| {
        let mut item = crate::items::Item::new();
        item.insert("pk".into(), AttributeValue::S(pk.into()));
        item.insert("sk".into(), AttributeValue::S(sk.into()));
        item.insert("g1pk".into(), AttributeValue::S(g1pk.into()));
        item.insert("g1sk".into(), AttributeValue::S("2026-01-01T00:00:00Z#bad".into()));
        item.insert("run_doc".into(), AttributeValue::S("{not json".into()));
        item.insert("gate_doc".into(), AttributeValue::S("{not json".into()));
        item
    };
    for item in [bad("run#bad", "run", RUNS_ACTIVE), bad("run#bad", "gate#g", GATES_PENDING)] {
        j.client.put_item().table_name(j.table()).set_item(Some(item)).send().await.unwrap();
    }
    let ids = |runs: Vec<drover_journal::RunRecord>| runs.into_iter().map(|r| r.run_id).collect::<Vec<_>>();
    assert_eq!(ids(j.runs(&RunFilter { unfinished: true, ..Default::default() }).await.unwrap()), ["good"]);
    assert_eq!(ids(j.runs(&RunFilter::default()).await.unwrap()), ["good"]);
    assert!(j.approvals(None, true).await.unwrap().is_empty());
    // Read by id, the damaged run says what is wrong with it.
    assert!(matches!(j.run("bad").await, Err(JournalError::Malformed(_))));
    drop_table(&j).await;
}
