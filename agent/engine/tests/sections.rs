//! Parallel sections through the engine, with the `parallel` fixture and the
//! real embedded journal: branches as runs of their own, concurrency,
//! fail-fast, undos handed to the run, crash and resume, cancel, limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a test fails by panicking")]

mod common;

use std::time::Duration;

use common::*;
use drover_engine::{Limits, Observer, RunRequest};
use drover_journal::{CancelRequest, Entry, EntryKind, EntryStatus, RunStatus};
use drover_test_artifacts as artifacts;

async fn steps(f: &Fixture, run_id: &str) -> Vec<(String, EntryStatus)> {
    f.journal.entries(run_id).await.unwrap().into_iter().filter(|e| e.kind == EntryKind::Step).map(|e| (e.key.unwrap(), e.status)).collect()
}

async fn step(f: &Fixture, run_id: &str, key: &str) -> Entry {
    f.journal.entries(run_id).await.unwrap().into_iter().find(|e| e.key.as_deref() == Some(key)).unwrap_or_else(|| panic!("no step {key} in {run_id}"))
}

async fn status(f: &Fixture, run_id: &str) -> RunStatus {
    f.journal.run(run_id).await.unwrap().unwrap().status
}

#[tokio::test(flavor = "multi_thread")]
async fn branches_run_at_once_each_with_its_own_journal() {
    let f = fixture();
    let rb = load(&f, artifacts::PARALLEL).await;
    let run = start(&f, &rb, "fan-1", &[("branches", "4"), ("sleep_ms", "400")]).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.result.as_ref().unwrap()["branches"][2]["ok"]["branch"], "b2");
    let section = step(&f, "fan-1", "section:fan").await;
    assert_eq!(section.status, EntryStatus::Succeeded);
    assert_eq!(section.output.as_ref().unwrap()["outcomes"].as_array().unwrap().len(), 4);
    let mut firsts = Vec::new();
    let mut seconds = Vec::new();
    for i in 0..4 {
        let id = format!("fan-1.fan.b{i}");
        let b = f.journal.run(&id).await.unwrap().unwrap();
        assert_eq!(b.status, RunStatus::Succeeded);
        assert_eq!(b.origin.as_ref().unwrap()["kind"], "branch");
        assert_eq!(b.origin.as_ref().unwrap()["parent"], "fan-1");
        assert_eq!(steps(&f, &id).await, [("first".to_string(), EntryStatus::Succeeded), ("second".to_string(), EntryStatus::Succeeded)]);
        firsts.push(step(&f, &id, "first").await.started_at);
        seconds.push(step(&f, &id, "second").await.started_at);
    }
    // At once: every branch had begun before any finished its sleep.
    assert!(firsts.iter().max() < seconds.iter().min(), "branches ran one after another: {firsts:?} {seconds:?}");
    // A succeeded run runs no undo, its branches' included.
    assert!(steps(&f, "fan-1").await.iter().all(|(k, _)| !k.starts_with("undo:")));
    // People read the run with its branches.
    let all = drover_engine::entries_with_branches(f.journal.as_ref(), "fan-1").await.unwrap();
    let keys: Vec<String> = all.iter().filter(|e| e.kind == EntryKind::Step).map(|e| e.key.clone().unwrap()).collect();
    assert_eq!(keys[..4], ["before", "section:fan", "fan/b0/first", "fan/b0/second"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn fail_fast_stops_the_other_branches_and_each_runs_its_undos() {
    let f = fixture();
    let rb = load(&f, artifacts::PARALLEL).await;
    let run = start(&f, &rb, "ff-1", &[("branches", "3"), ("fail_first", "b1"), ("sleep_ms", "1500")]).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:?}");
    assert!(run.error.as_ref().unwrap().message.contains("branch 'b1'"), "{:?}", run.error);
    assert_eq!(status(&f, "ff-1.fan.b1").await, RunStatus::Failed);
    for other in ["ff-1.fan.b0", "ff-1.fan.b2"] {
        let b = f.journal.run(other).await.unwrap().unwrap();
        assert_eq!(b.status, RunStatus::Cancelled, "{other}: {b:?}");
        assert!(b.error.as_ref().unwrap().message.contains("drover (fail-fast)"), "{b:?}");
        // Stopped at its next step boundary: `second` never began; its own undo ran.
        let s = steps(&f, other).await;
        assert!(s.iter().all(|(k, _)| k != "second"), "{other}: {s:?}");
        assert_eq!(step(&f, other, "undo:undo-first").await.status, EntryStatus::Succeeded);
    }
    let section = step(&f, "ff-1", "section:fan").await;
    assert_eq!(section.status, EntryStatus::Failed);
    let outcomes = &section.output.as_ref().unwrap()["outcomes"];
    assert_eq!(outcomes[0]["status"], "stopped");
    assert_eq!(outcomes[1]["status"], "failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_fails_after_the_section_undoes_what_its_branches_did() {
    let f = fixture();
    let rb = load(&f, artifacts::PARALLEL).await;
    let run = start(&f, &rb, "after-1", &[("branches", "2"), ("fail_after", "true")]).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:?}");
    // The succeeded branches handed their undos to the run: they ran in its
    // journal, newest first, in the branch that registered them.
    let undos: Vec<(String, EntryStatus)> = steps(&f, "after-1").await.into_iter().filter(|(k, _)| k.starts_with("undo:")).collect();
    assert_eq!(undos, [("undo:fan/b1/undo-first".to_string(), EntryStatus::Succeeded), ("undo:fan/b0/undo-first".to_string(), EntryStatus::Succeeded)]);
    let events = f.journal.events("after-1").await.unwrap();
    assert!(events.iter().any(|e| e.message.starts_with("undo undo-first of b0 (payload {\"branch\":\"b0\"})")), "{events:?}");
    // Not in the branches' own journals.
    assert!(steps(&f, "after-1.fan.b0").await.iter().all(|(k, _)| !k.starts_with("undo:")));
}

#[tokio::test(flavor = "multi_thread")]
async fn collect_all_lets_every_branch_end_and_the_failed_one_undoes_itself() {
    let f = fixture();
    let rb = load(&f, artifacts::PARALLEL).await;
    let run = start(&f, &rb, "ca-1", &[("branches", "3"), ("join", "collect-all"), ("fail_second", "b2")]).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:?}");
    assert_eq!(status(&f, "ca-1.fan.b0").await, RunStatus::Succeeded);
    assert_eq!(status(&f, "ca-1.fan.b1").await, RunStatus::Succeeded);
    assert_eq!(status(&f, "ca-1.fan.b2").await, RunStatus::Failed);
    assert_eq!(step(&f, "ca-1.fan.b2", "undo:undo-first").await.status, EntryStatus::Succeeded);
    // The run failed: the others' undos ran in it.
    let keys: Vec<String> = steps(&f, "ca-1").await.into_iter().map(|(k, _)| k).collect();
    assert!(keys.contains(&"undo:fan/b0/undo-first".to_string()) && keys.contains(&"undo:fan/b1/undo-first".to_string()), "{keys:?}");
    assert!(!keys.contains(&"undo:fan/b2/undo-first".to_string()), "b2 undid itself: {keys:?}");
}

/// The driver is dropped in the middle of the section (as a crash would stop
/// it), then the run is resumed: every branch continues where it stopped.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_in_the_section_resumes_every_branch_where_it_stopped() {
    let f = fixture();
    let rb = load(&f, artifacts::PARALLEL).await;
    let p = rb.info.validate_params(&params(&[("branches", "3"), ("sleep_ms", "1500")])).unwrap();
    let drive = f.engine.start(f.journal.clone(), &rb, RunRequest::new("crash-s", p), Observer::none());
    assert!(tokio::time::timeout(Duration::from_millis(900), drive).await.is_err(), "the branches should still be asleep");
    assert_eq!(step(&f, "crash-s", "section:fan").await.status, EntryStatus::Running);
    assert_eq!(step(&f, "crash-s.fan.b1", "first").await.status, EntryStatus::Succeeded);
    let run = f.engine.resume(f.journal.clone(), "crash-s", None, Observer::none()).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    for i in 0..3 {
        let id = format!("crash-s.fan.b{i}");
        assert_eq!(attempts_of(&f, &id, "first").await, 1, "{id}: first ran again");
        assert_eq!(attempts_of(&f, &id, "second").await, 1, "{id}");
    }
    assert_eq!(attempts_of(&f, "crash-s", "before").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_during_the_section_stops_every_branch_and_runs_every_undo() {
    let f = fixture();
    let rb = load(&f, artifacts::PARALLEL).await;
    let p = rb.info.validate_params(&params(&[("branches", "3"), ("sleep_ms", "3000")])).unwrap();
    let journal = f.journal.clone();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let req = CancelRequest { by: "tester".into(), reason: "game day".into(), at: chrono::Utc::now() };
        journal.request_cancel("cancel-s", &req).await.unwrap();
    });
    let run = f.engine.start(f.journal.clone(), &rb, RunRequest::new("cancel-s", p), Observer::none()).await.unwrap();
    canceller.await.unwrap();
    assert_eq!(run.status, RunStatus::Cancelled, "{run:?}");
    assert!(run.error.as_ref().unwrap().message.contains("cancelled by tester: game day"), "{:?}", run.error);
    for i in 0..3 {
        let id = format!("cancel-s.fan.b{i}");
        assert_eq!(status(&f, &id).await, RunStatus::Cancelled, "{id}");
        assert!(steps(&f, &id).await.iter().all(|(k, _)| k != "second"), "{id} went on after the cancel");
        assert_eq!(step(&f, &id, "undo:undo-first").await.status, EntryStatus::Succeeded, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sections_do_not_nest_and_a_run_has_a_cap_on_branches() {
    let f = fixture();
    let rb = load(&f, artifacts::PARALLEL).await;
    let run = start(&f, &rb, "nest-1", &[("branches", "2"), ("nested", "true")]).await;
    assert_eq!(run.status, RunStatus::Failed);
    let b0 = f.journal.run("nest-1.fan.b0").await.unwrap().unwrap();
    assert_eq!(b0.error.as_ref().unwrap().code, "contract-violation", "{b0:?}");
    assert!(b0.error.as_ref().unwrap().message.contains("parallel section 'inner' was started inside branch 'b0'; sections do not nest"), "{b0:?}");

    let f = fixture_with(Limits { max_branches: 3, ..Limits::default() });
    let rb = load(&f, artifacts::PARALLEL).await;
    let run = start(&f, &rb, "cap-1", &[("branches", "4")]).await;
    assert_eq!(run.status, RunStatus::Failed);
    let e = run.error.unwrap();
    assert!(e.message.contains("asks for 4 branches") && e.message.contains("max_branches"), "{e:?}");
    assert!(f.journal.run("cap-1.fan.b0").await.unwrap().is_none(), "no branch started");
}
