//! The engine against real runbook components (built by drover-test-artifacts)
//! and the real embedded journal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a test fails by panicking")]

mod common;

use std::time::Duration;

use common::*;
use drover_engine::{EngineError, Limits, Observer, RunRequest};
use drover_journal::{EntryKind, EntryStatus, RunStatus};
use drover_test_artifacts as artifacts;

#[tokio::test(flavor = "multi_thread")]
async fn hello_durable_succeeds_and_steps_feed_each_other() {
    let f = fixture();
    let rb = load(&f, artifacts::HELLO_DURABLE).await;
    assert_eq!(rb.info.name, "hello-durable");
    assert_eq!(rb.info.contract, "0.1.5");
    let run = start(&f, &rb, "hello-1", &[("pause_seconds", "1"), ("target", "sre")]).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let result = run.result.unwrap();
    assert!(result["ticket"].as_str().unwrap().starts_with("CHG-"));
    assert!(result["message"].as_str().unwrap().contains(result["ticket"].as_str().unwrap()));
    assert!(result["paused_seconds"].as_i64().unwrap() >= 1);
    let entries = f.journal.entries("hello-1").await.unwrap();
    let steps: Vec<_> = entries.iter().filter(|e| e.kind == EntryKind::Step).map(|e| e.key.clone().unwrap()).collect();
    assert_eq!(steps, ["plan", "announce", "verify"]);
    assert!(entries.iter().any(|e| e.kind == EntryKind::Sleep && e.status == EntryStatus::Succeeded));
    let events = f.journal.events("hello-1").await.unwrap();
    assert!(events.iter().any(|e| e.message.contains("hello sre") && e.step.as_deref() == Some("announce")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_run_id_is_not_run_again() {
    let f = fixture();
    let rb = load(&f, artifacts::PROBE).await;
    let first = start(&f, &rb, "done-1", &[]).await;
    assert_eq!(first.status, RunStatus::Succeeded);
    let again = start(&f, &rb, "done-1", &[]).await;
    assert_eq!(again, first);
    assert_eq!(attempts_of(&f, "done-1", "s1").await, 1);
    let resumed = f.engine.resume(f.journal.clone(), "done-1", None, Observer::none()).await.unwrap();
    assert_eq!(resumed, first);
    // The same id with other parameters is a conflict, not a new run.
    let params = rb.info.validate_params(&params(&[("steps", "5")])).unwrap();
    let err = f.engine.start(f.journal.clone(), &rb, RunRequest::new("done-1", params), Observer::none()).await.unwrap_err();
    assert!(matches!(err, EngineError::RunIdConflict { .. }), "{err}");
}

/// Stops the driver in the middle of a durable sleep (dropping it, as a crash
/// would), then resumes: completed steps replay, with the same journaled values.
#[tokio::test(flavor = "multi_thread")]
async fn interrupted_run_resumes_without_repeating_steps() {
    let f = fixture();
    let rb = load(&f, artifacts::PROBE).await;
    let p = rb.info.validate_params(&params(&[("sleep_after", "2"), ("sleep_ms", "1500")])).unwrap();
    let drive = f.engine.start(f.journal.clone(), &rb, RunRequest::new("crash-1", p), Observer::none());
    assert!(tokio::time::timeout(Duration::from_millis(700), drive).await.is_err(), "the run should still be asleep");
    let mid = f.journal.run("crash-1").await.unwrap().unwrap();
    assert_eq!(mid.status, RunStatus::Waiting);
    let before = f.journal.entries("crash-1").await.unwrap();

    let run = f.engine.resume(f.journal.clone(), "crash-1", None, Observer::none()).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    for key in ["s1", "s2", "s3"] {
        assert_eq!(attempts_of(&f, "crash-1", key).await, 1, "{key} ran more than once");
    }
    let out = run.result.unwrap();
    let after = f.journal.entries("crash-1").await.unwrap();
    // The values journaled before the crash are the values the run used.
    assert_eq!(before[0].output.as_ref().unwrap()["random"], out[0]["random"]);
    assert_eq!(out[1]["prev_random"], out[0]["random"]);
    assert_eq!(&after[..before.len() - 1], &before[..before.len() - 1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_step_fails_the_run_and_later_steps_never_run() {
    let f = fixture();
    let rb = load(&f, artifacts::PROBE).await;
    let run = start(&f, &rb, "fail-1", &[("fail_at", "2")]).await;
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(err.code, "probe-failure");
    assert_eq!(err.resource.as_deref(), Some("probe/s2"));
    let entries = f.journal.entries("fail-1").await.unwrap();
    let s2 = entries.iter().find(|e| e.key.as_deref() == Some("s2")).unwrap();
    assert_eq!(s2.status, EntryStatus::Failed);
    assert!(entries.iter().all(|e| e.key.as_deref() != Some("s3")));
    assert_eq!(attempts_of(&f, "fail-1", "s3").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn retryable_failures_are_retried_with_journaled_attempts() {
    let f = fixture();
    let rb = load(&f, artifacts::PROBE).await;
    let run = start(&f, &rb, "flaky-1", &[("flaky_at", "2"), ("flaky_failures", "2")]).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let entries = f.journal.entries("flaky-1").await.unwrap();
    let s2 = entries.iter().find(|e| e.key.as_deref() == Some("s2")).unwrap();
    assert_eq!(s2.attempts, 3);
    assert_eq!(s2.status, EntryStatus::Succeeded);
    assert_eq!(s2.output.as_ref().unwrap()["attempt"], 3);
    let attempts: Vec<_> = f.journal.attempts("flaky-1").await.unwrap().into_iter().filter(|a| a.key == "s2").collect();
    assert_eq!(attempts.iter().map(|a| a.number).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(attempts.iter().all(|a| a.idempotency_key == attempts[0].idempotency_key));

    // Out of attempts: the step, then the run, fail with the last error.
    let run = start(&f, &rb, "flaky-2", &[("flaky_at", "1"), ("flaky_failures", "9"), ("max_attempts", "2")]).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.unwrap().code, "probe-flake");
    assert_eq!(attempts_of(&f, "flaky-2", "s1").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_runbook_fails_with_its_panic_message() {
    let f = fixture();
    let rb = load(&f, artifacts::PROBE).await;
    let run = start(&f, &rb, "panic-1", &[("panic_at", "2")]).await;
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(err.code, "panic");
    assert!(err.message.contains("probe panics in step s2 as asked"), "{}", err.message);
    let entries = f.journal.entries("panic-1").await.unwrap();
    assert_eq!(entries.iter().find(|e| e.key.as_deref() == Some("s2")).unwrap().status, EntryStatus::Failed);
    // Other runs are untouched and the store works on.
    let ok = start(&f, &rb, "after-panic", &[]).await;
    assert_eq!(ok.status, RunStatus::Succeeded);
}

/// Starts run `id` of probe with a 2 s durable sleep after s1 and stops
/// driving it at that sleep (as a crash would).
async fn probe_left_at_its_sleep(f: &Fixture, rb: &drover_engine::LoadedRunbook, id: &str) {
    let p = rb.info.validate_params(&params(&[("sleep_after", "1"), ("sleep_ms", "2000")])).unwrap();
    let drive = f.engine.start(f.journal.clone(), rb, RunRequest::new(id, p), Observer::none());
    assert!(tokio::time::timeout(Duration::from_millis(600), drive).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn resuming_with_reordered_steps_stops_resumable_and_runs_nothing() {
    let f = fixture();
    let rb = load(&f, artifacts::PROBE).await;
    probe_left_at_its_sleep(&f, &rb, "nd-1").await;

    let reordered = load(&f, artifacts::PROBE_REORDERED).await;
    let err = f.engine.resume(f.journal.clone(), "nd-1", Some(&reordered), Observer::none()).await.unwrap_err();
    let EngineError::Stopped { code, message, .. } = &err else { panic!("{err:?}") };
    assert_eq!(code, "non-determinism");
    assert!(message.contains("position 0") && message.contains("step 's1'") && message.contains("step 's3'"), "{message}");
    assert!(message.contains("no undo or cleanup ran") && message.contains("drover resume nd-1"), "{message}");
    // No outcome: the run is unfinished, says why, and is still pinned to probe.
    let run = f.journal.run("nd-1").await.unwrap().unwrap();
    assert!(!run.status.is_final(), "{run:?}");
    assert_eq!(run.error.as_ref().map(|e| e.code.as_str()), Some("non-determinism"));
    assert_eq!(run.runbook.digest, rb.info.digest);
    assert!(f.journal.entries("nd-1").await.unwrap().iter().all(|e| e.kind != EntryKind::End));
    assert_eq!(attempts_of(&f, "nd-1", "s3").await, 0);
    assert_eq!(attempts_of(&f, "nd-1", "s1").await, 1);

    // The build it started with continues it.
    let run = f.engine.resume(f.journal.clone(), "nd-1", None, Observer::none()).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.error, None);
    assert_eq!((attempts_of(&f, "nd-1", "s1").await, attempts_of(&f, "nd-1", "s3").await), (1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stopped_on_non_determinism_can_be_cancelled() {
    let f = fixture();
    let rb = load(&f, artifacts::PROBE).await;
    probe_left_at_its_sleep(&f, &rb, "nd-cancel").await;
    let reordered = load(&f, artifacts::PROBE_REORDERED).await;
    // Even a build that cannot replay ends the run once it is cancelled.
    let err = f.engine.resume(f.journal.clone(), "nd-cancel", Some(&reordered), Observer::none()).await.unwrap_err();
    assert!(matches!(err, EngineError::Stopped { .. }), "{err:?}");
    let request = drover_journal::CancelRequest { by: "sre".into(), reason: "diverged".into(), at: chrono::Utc::now() };
    f.journal.request_cancel("nd-cancel", &request).await.unwrap();
    let run = f.engine.resume(f.journal.clone(), "nd-cancel", Some(&reordered), Observer::none()).await.unwrap();
    assert_eq!(run.status, RunStatus::Cancelled, "{run:?}");
    assert_eq!(attempts_of(&f, "nd-cancel", "s3").await, 0);
}

/// `resume --runbook FIXED` pins the run to the fixed build before driving
/// it: a later resume without it (or another agent's takeover) runs the
/// fixed build, and the events say who changed it from what to what.
#[tokio::test(flavor = "multi_thread")]
async fn a_replacement_runbook_is_persisted_for_later_resumes() {
    let f = fixture();
    let rb = load(&f, artifacts::PROBE).await;
    probe_left_at_its_sleep(&f, &rb, "fixed-1").await;
    // A "fixed build": the same code with a custom section appended, so
    // another digest with the same replay.
    let mut bytes = std::fs::read(artifacts::PROBE).unwrap();
    let (name, payload) = (b"drover-test-fix", b"v2");
    bytes.extend([0u8, (1 + name.len() + payload.len()) as u8, name.len() as u8]);
    bytes.extend(name);
    bytes.extend(payload);
    let fixed = f.engine.load("probe-fixed.wasm", &bytes).await.unwrap();
    assert_ne!(fixed.info.digest, rb.info.digest);

    // Resumed with the fix, and interrupted again during the sleep.
    let drive = f.engine.resume(f.journal.clone(), "fixed-1", Some(&fixed), Observer::none());
    assert!(tokio::time::timeout(Duration::from_millis(300), drive).await.is_err());
    let run = f.journal.run("fixed-1").await.unwrap().unwrap();
    assert_eq!(run.runbook.digest, fixed.info.digest, "the replacement is the run's runbook now");
    let events = f.journal.events("fixed-1").await.unwrap();
    let said = events.iter().find(|e| e.message.contains("resumed with a replacement runbook")).expect("an event names the change");
    assert!(said.message.contains(&fixed.info.digest) && said.message.contains(&rb.info.digest) && said.message.contains(" by "), "{}", said.message);

    // A plain resume runs the pinned build: the fixed one.
    let run = f.engine.resume(f.journal.clone(), "fixed-1", None, Observer::none()).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.runbook.digest, fixed.info.digest);
    assert_eq!((attempts_of(&f, "fixed-1", "s1").await, attempts_of(&f, "fixed-1", "s3").await), (1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_components_are_refused_by_name() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not wasm at all").unwrap();
    let err = f.engine.load("notes.txt", &std::fs::read(&text).unwrap()).await.err().unwrap();
    assert!(matches!(err, EngineError::NotWasm { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt is not a WebAssembly file"), "{err}");

    let core = b"\0asm\x01\0\0\0";
    let err = f.engine.load("core.wasm", core).await.err().unwrap();
    assert!(err.to_string().contains("core.wasm is a core WebAssembly module, not a component"), "{err}");

    let truncated = &std::fs::read(artifacts::PROBE).unwrap()[..5000];
    let err = f.engine.load("truncated.wasm", truncated).await.err().unwrap();
    assert!(matches!(err, EngineError::InvalidComponent { .. }), "{err}");

    let future = std::fs::read(artifacts::FUTURE_CONTRACT).unwrap();
    let err = f.engine.load("future.wasm", &future).await.err().unwrap();
    assert!(matches!(err, EngineError::UnsupportedContract { .. }), "{err}");
    assert!(err.to_string().contains("drover:runbook@0.9.0") && err.to_string().contains("provides drover:runbook@0.1.5"), "{err}");

    let other = std::fs::read(artifacts::OTHER_WORLD).unwrap();
    let err = f.engine.load("other.wasm", &other).await.err().unwrap();
    assert!(matches!(err, EngineError::WrongWorld { .. }), "{err}");
    assert!(err.to_string().contains("wasi:cli/run"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn second_load_comes_from_the_compile_cache() {
    let f = fixture();
    let bytes = std::fs::read(artifacts::HELLO_DURABLE).unwrap();
    let _ = f.engine.load("a", &bytes).await.unwrap();
    let second = f.engine.load("a", &bytes).await.unwrap();
    assert!(second.from_cache);
    assert_eq!(second.info.digest.len(), 64);
}

#[tokio::test(flavor = "multi_thread")]
async fn step_outputs_over_the_limit_fail_the_run() {
    let f = fixture_with(Limits { max_output_bytes: 10_000, ..Limits::default() });
    let rb = load(&f, artifacts::PROBE).await;
    let run = start(&f, &rb, "big-1", &[("output_bytes", "20000")]).await;
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(err.code, "limit-exceeded", "{err:?}");
    assert!(err.message.contains("from step 's1', more than the limit of 10000 bytes"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runbook_that_spins_is_stopped_by_its_cpu_budget() {
    let f = fixture_with(Limits { cpu_time: Duration::from_millis(300), ..Limits::default() });
    let rb = load(&f, artifacts::HOG).await;
    let run = start(&f, &rb, "spin-1", &[("mode", "spin")]).await;
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(err.code, "limit-exceeded");
    assert!(err.message.contains("CPU budget of 300 ms"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runbook_that_hoards_memory_is_stopped_at_its_limit() {
    let f = fixture_with(Limits { memory_bytes: 32 << 20, ..Limits::default() });
    let rb = load(&f, artifacts::HOG).await;
    let run = start(&f, &rb, "grow-1", &[("mode", "grow")]).await;
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(err.code, "limit-exceeded", "{err:?}");
    assert!(err.message.contains("memory"), "{}", err.message);
    // The agent goes on.
    let ok = load(&f, artifacts::PROBE).await;
    assert_eq!(start(&f, &ok, "after-grow", &[]).await.status, RunStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_std_gets_no_files_network_environment_or_clock() {
    let f = fixture();
    let rb = load(&f, artifacts::HOG).await;
    let run = start(&f, &rb, "touch-1", &[("mode", "touch")]).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let seen: Vec<String> = serde_json::from_value(run.result.unwrap()).unwrap();
    for line in &seen {
        assert!(!line.contains("ALLOWED"), "the sandbox let through: {line}");
    }
    assert!(seen.contains(&"env vars: 0".to_string()), "{seen:?}");
    // The WASI wall clock is frozen at the run's creation, not the real time.
    let created = run.created_at.timestamp();
    assert!(seen.contains(&format!("wasi wall clock: {created}")), "{seen:?} vs {created}");
}

/// A step that fails for good and may wait for an operator
/// (`steps.fail-with`) holds the run at gate `failed:KEY:N`, showing
/// `waiting`, with nothing after it run and nothing undone. Approved, the
/// step runs again with the same idempotency key; skipped, the runbook gets
/// the output it declared for a skip; nobody deciding lets the failure stand
/// at the deadline. Who decided is in the run's events.
#[tokio::test(flavor = "multi_thread")]
async fn a_held_step_is_retried_skipped_or_fails_at_its_deadline() {
    use drover_journal::{Decision, Verdict};
    let f = fixture();
    let rb = load(&f, artifacts::PROBE).await;
    let held =
        |hold: &str| rb.info.validate_params(&params(&[("fail_at", "2"), ("fail_attempts", "1"), ("max_attempts", "1"), ("hold_seconds", hold)])).unwrap();
    for (id, verdict, control) in [("held-retry", Verdict::Approved, "retry"), ("held-skip", Verdict::Skipped, "skip")] {
        let drive = f.engine.start(f.journal.clone(), &rb, RunRequest::new(id, held("600")), Observer::none());
        let decide = async {
            loop {
                let gates = f.journal.approvals(Some(id), true).await.unwrap();
                if let Some(g) = gates.iter().find(|g| g.gate == "failed:s2:1") {
                    assert!(g.message.contains("step 's2' failed for good (attempt 1): step s2 fails as asked"), "{}", g.message);
                    assert_eq!(f.journal.run(id).await.unwrap().unwrap().status, RunStatus::Waiting);
                    assert_eq!(attempts_of(&f, id, "s3").await, 0, "nothing after the held step runs");
                    let d = Decision { verdict, by: "carol".into(), comment: "checked by hand".into(), at: chrono::Utc::now() };
                    f.journal.decide(id, &g.gate, &d).await.unwrap();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let (run, ()) = tokio::join!(drive, decide);
        let run = run.unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
        let out = run.result.unwrap();
        let attempts = f.journal.attempts(id).await.unwrap();
        let s2: Vec<_> = attempts.iter().filter(|a| a.key == "s2").collect();
        if verdict == Verdict::Approved {
            assert_eq!(s2.len(), 2, "{attempts:?}");
            assert_eq!(s2[0].idempotency_key, s2[1].idempotency_key);
            assert_eq!(out[1]["attempt"], 2);
        } else {
            assert_eq!(s2.len(), 1, "{attempts:?}");
            assert_eq!(out[1]["attempt"], 0, "the declared skip output: {out}");
        }
        assert_eq!(attempts_of(&f, id, "s3").await, 1);
        let events = f.journal.events(id).await.unwrap();
        let said = events.iter().find(|e| e.fields.iter().any(|(k, v)| k == "control" && v == control)).unwrap();
        assert!(said.message.contains("carol") && said.fields.iter().any(|(k, v)| k == "reason" && v == "checked by hand"), "{said:?}");
    }
    // Nobody decides: the failure stands once the wait is over.
    let run = start(&f, &rb, "held-late", &[("fail_at", "2"), ("fail_attempts", "1"), ("max_attempts", "1"), ("hold_seconds", "1")]).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:?}");
    assert_eq!(run.error.unwrap().code, "probe-failure");
    assert_eq!(attempts_of(&f, "held-late", "s2").await, 1);
    let gate = f.journal.approvals(Some("held-late"), false).await.unwrap().into_iter().find(|g| g.gate == "failed:s2:1").unwrap();
    assert_eq!(gate.decision.unwrap().verdict, Verdict::TimedOut);
}
