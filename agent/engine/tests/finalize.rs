//! Cleanups, undos and cancel, against the real engine and journal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a test fails by panicking")]

mod common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use drover_engine::{Observer, RunRequest};
use drover_journal::{CancelRequest, EntryKind, EntryStatus, RunStatus};
use drover_test_artifacts as artifacts;

/// The cleanup and undo steps of a run, in the order they ran, with status and attempts.
async fn actions(f: &Fixture, id: &str) -> Vec<(String, EntryStatus, u32)> {
    f.journal
        .entries(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::Step)
        .filter_map(|e| {
            let k = e.key.clone()?;
            (k.starts_with("cleanup:") || k.starts_with("undo:")).then_some((k, e.status, e.attempts))
        })
        .collect()
}

fn keys(actions: &[(String, EntryStatus, u32)]) -> Vec<&str> {
    actions.iter().map(|(k, _, _)| k.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_at_each_step_in_turn_runs_undos_then_cleanups_once_in_reverse() {
    let f = fixture();
    let rb = load(&f, artifacts::JANITOR).await;

    // Success: every cleanup, newest first; no undo.
    let run = start(&f, &rb, "ok", &[]).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let a = actions(&f, "ok").await;
    assert_eq!(keys(&a), ["cleanup:c3", "cleanup:c2", "cleanup:c1"]);
    assert!(a.iter().all(|(_, s, n)| *s == EntryStatus::Succeeded && *n == 1));

    for k in 1..=3u32 {
        let id = format!("fail-at-{k}");
        let run = start(&f, &rb, &id, &[("fail_at", &k.to_string())]).await;
        assert_eq!(run.status, RunStatus::Failed, "{id}");
        assert_eq!(run.error.as_ref().unwrap().code, "janitor-failure");
        let a = actions(&f, &id).await;
        // Undos only for the steps that succeeded, newest first; then every
        // registered cleanup (cK was registered before sK failed), newest first.
        let mut expected: Vec<String> = (1..k).rev().map(|n| format!("undo:u{n}")).collect();
        expected.extend((1..=k).rev().map(|n| format!("cleanup:c{n}")));
        assert_eq!(keys(&a), expected.iter().map(String::as_str).collect::<Vec<_>>(), "{id}");
        assert!(a.iter().all(|(_, s, n)| *s == EntryStatus::Succeeded && *n == 1), "{id}: {a:?}");
        for (key, _, _) in &a {
            assert_eq!(attempts_of(&f, &id, key).await, 1, "{id}: {key}");
        }
    }

    // A panic ends the run just the same: the actions still run.
    let run = start(&f, &rb, "panic-at-2", &[("panic_at", "2")]).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.unwrap().code, "panic");
    assert_eq!(keys(&actions(&f, "panic-at-2").await), ["undo:u1", "cleanup:c2", "cleanup:c1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn cleanups_are_retried_and_a_broken_one_is_reported_not_swallowed() {
    let f = fixture();
    let rb = load(&f, artifacts::JANITOR).await;
    let run = start(&f, &rb, "flaky", &[("steps", "2"), ("cleanup_flakes", "2")]).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let a = actions(&f, "flaky").await;
    assert_eq!(a, [("cleanup:c2".into(), EntryStatus::Succeeded, 3), ("cleanup:c1".into(), EntryStatus::Succeeded, 3)]);

    // The run succeeded; one cleanup failed; the others still ran.
    let run = start(&f, &rb, "broken", &[("broken_cleanup", "2")]).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let a = actions(&f, "broken").await;
    assert_eq!(keys(&a), ["cleanup:c3", "cleanup:c2", "cleanup:c1"]);
    assert_eq!(a[1].1, EntryStatus::Failed);
    assert_eq!((a[0].1, a[2].1), (EntryStatus::Succeeded, EntryStatus::Succeeded));
    let entries = f.journal.entries("broken").await.unwrap();
    let c2 = entries.iter().find(|e| e.kind == EntryKind::Step && e.key.as_deref() == Some("cleanup:c2")).unwrap();
    assert_eq!(c2.error.as_ref().unwrap().code, "cleanup-broken");
    assert_eq!(c2.error.as_ref().unwrap().resource.as_deref(), Some("janitor/2"));
}

async fn cancel(f: &Fixture, id: &str, reason: &str) {
    let req = CancelRequest { by: "sre@test".into(), reason: reason.into(), at: Utc::now() };
    f.journal.request_cancel(id, &req).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_interrupts_a_durable_sleep_and_runs_undos_and_cleanups() {
    let f = fixture();
    let rb = load(&f, artifacts::JANITOR).await;
    let p = rb.info.validate_params(&params(&[("sleep_after", "2"), ("sleep_ms", "60000")])).unwrap();
    let drive = f.engine.start(f.journal.clone(), &rb, RunRequest::new("cx-sleep", p), Observer::none());
    let journal = f.journal.clone();
    let canceller = async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if journal.run("cx-sleep").await.unwrap().is_some_and(|r| r.status == RunStatus::Waiting) {
                break;
            }
        }
        cancel(&f, "cx-sleep", "drill window closed").await;
    };
    let (run, ()) = tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(drive, canceller) }).await.expect("cancel must interrupt a 60 s sleep");
    let run = run.unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    let err = run.error.unwrap();
    assert_eq!(err.code, "cancelled");
    assert!(err.message.contains("sre@test") && err.message.contains("drill window closed"), "{}", err.message);
    assert_eq!(run.cancel.unwrap().reason, "drill window closed");
    assert_eq!(keys(&actions(&f, "cx-sleep").await), ["undo:u2", "undo:u1", "cleanup:c2", "cleanup:c1"]);
    assert_eq!(attempts_of(&f, "cx-sleep", "s3").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_during_a_step_lets_it_finish_and_stops_at_the_next_boundary() {
    let f = fixture();
    let rb = load(&f, artifacts::JANITOR).await;
    let p = rb.info.validate_params(&params(&[("spin_at", "2"), ("spin_iterations", "3000000000")])).unwrap();
    let drive = f.engine.start(f.journal.clone(), &rb, RunRequest::new("cx-step", p), Observer::none());
    let journal = f.journal.clone();
    let canceller = async {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let entries = journal.entries("cx-step").await.unwrap();
            if entries.iter().any(|e| e.key.as_deref() == Some("s2") && e.status == EntryStatus::Running) {
                break;
            }
        }
        cancel(&f, "cx-step", "wrong region").await;
    };
    let (run, ()) = tokio::join!(drive, canceller);
    let run = run.unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    let entries = f.journal.entries("cx-step").await.unwrap();
    let s2 = entries.iter().find(|e| e.key.as_deref() == Some("s2")).unwrap();
    assert_eq!(s2.status, EntryStatus::Succeeded, "the step in flight finishes");
    assert_eq!(attempts_of(&f, "cx-step", "s3").await, 0, "the next step never starts");
    // c3 was registered before s3 was refused: cleanups run for what was
    // requested, whether or not it came to exist (cleanups are idempotent).
    assert_eq!(keys(&actions(&f, "cx-step").await), ["undo:u2", "undo:u1", "cleanup:c3", "cleanup:c2", "cleanup:c1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_run_with_a_cancel_request_is_cancelled_on_resume() {
    let f = fixture();
    let rb = load(&f, artifacts::JANITOR).await;
    let p = rb.info.validate_params(&params(&[("sleep_after", "1"), ("sleep_ms", "60000")])).unwrap();
    let drive = f.engine.start(f.journal.clone(), &rb, RunRequest::new("cx-orphan", p), Observer::none());
    assert!(tokio::time::timeout(Duration::from_millis(800), drive).await.is_err());
    cancel(&f, "cx-orphan", "abandon").await;
    let run = f.engine.resume(f.journal.clone(), "cx-orphan", None, Observer::none()).await.unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(keys(&actions(&f, "cx-orphan").await), ["undo:u1", "cleanup:c1"]);
    assert_eq!(attempts_of(&f, "cx-orphan", "s1").await, 1);
    // Cancelling a finished run changes nothing.
    cancel(&f, "cx-orphan", "again").await;
    let after = f.journal.run("cx-orphan").await.unwrap().unwrap();
    assert_eq!(after.cancel.unwrap().reason, "abandon");
}
