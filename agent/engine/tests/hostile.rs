//! The hostile-runbook suite: real guest components that each misbehave in
//! one way run side by side in one agent process, next to a well-behaved
//! runbook. Each must be stopped with an error that names what it did (the
//! limit, or the missing permission), recorded in the journal (and, for
//! capability calls, in the audit log), while the well-behaved run finishes
//! normally. The capability policy and signatures are also driven through
//! the `drover` binary, where the operator sees them (`tests/tests/policy.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a test fails by panicking")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::policy;
use drover_engine::audit::AuditLog;
use drover_engine::{Engine, Limits, LoadedRunbook, Observer, RunRequest};
use drover_journal::{EntryStatus, Journal, RunRecord, RunStatus, SqliteJournal};
use drover_test_artifacts as artifacts;

struct Agent {
    _dir: tempfile::TempDir,
    home: std::path::PathBuf,
    engine: Arc<Engine>,
    journal: Arc<dyn Journal>,
}

fn agent(limits: Limits) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_path_buf();
    let engine = Arc::new(Engine::new(&home, limits).unwrap().with_policy(policy()));
    let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::open(home.join("runs.db")).unwrap());
    Agent { _dir: dir, home, engine, journal }
}

async fn load(a: &Agent, path: &str) -> Arc<LoadedRunbook> {
    Arc::new(a.engine.load(path, &std::fs::read(path).unwrap()).await.unwrap())
}

/// Starts run `id` of `rb` with `mode` on a task of its own.
fn spawn(a: &Agent, rb: &Arc<LoadedRunbook>, id: &str, params: &[(&str, &str)]) -> tokio::task::JoinHandle<RunRecord> {
    let (engine, journal, rb) = (a.engine.clone(), a.journal.clone(), rb.clone());
    let raw: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let id = id.to_string();
    tokio::spawn(async move {
        let params = rb.info.validate_params(&raw).unwrap();
        engine.start(journal, &rb, RunRequest::new(id, params), Observer::none()).await.unwrap()
    })
}

fn limits() -> Limits {
    Limits {
        memory_bytes: 64 << 20,
        cpu_time: Duration::from_secs(20),
        step_cpu_time: Duration::from_secs(1),
        max_output_bytes: 1 << 20,
        max_log_bytes: 256 << 10,
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_runbooks_are_stopped_and_a_good_one_beside_them_finishes() {
    let a = agent(limits());
    let hog = load(&a, artifacts::HOG).await;
    let good = load(&a, artifacts::HELLO_DURABLE).await;

    // (mode, error code, words the error must contain)
    let cases: &[(&str, &str, &[&str])] = &[
        ("spin", "limit-exceeded", &["CPU budget of 1000 ms in step 'spin'", "cpu_seconds_per_step"]),
        ("grow", "limit-exceeded", &["memory", "memory_mib"]),
        ("recurse", "limit-exceeded", &["stack", "stack_kib"]),
        ("panic", "panic", &["the runbook panicked", "index out of bounds"]),
        ("logs", "limit-exceeded", &["more than 262144 bytes of log", "log_kib"]),
        ("output", "limit-exceeded", &["from step 'output', more than the limit of 1048576 bytes", "output_kib"]),
        ("region", "permission-denied", &["called rds.describe-instance on region eu-central-1", "did not declare"]),
        ("resource", "permission-denied", &["on resource db/payroll-db", "did not declare"]),
    ];
    let hostile: Vec<_> = cases.iter().map(|(mode, ..)| spawn(&a, &hog, &format!("hog-{mode}"), &[("mode", mode)])).collect();
    let well_behaved = spawn(&a, &good, "good", &[("target", "beside the hogs")]);

    for ((mode, code, words), task) in cases.iter().zip(hostile) {
        let run = task.await.unwrap();
        assert_eq!(run.status, RunStatus::Failed, "{mode}: {run:?}");
        let err = run.error.clone().unwrap();
        assert_eq!(err.code, *code, "{mode}: {err:?}");
        for w in *words {
            assert!(err.message.contains(w), "{mode}: '{w}' not in: {}", err.message);
        }
        // The journal holds the failed step with the same error.
        let entries = a.journal.entries(&run.run_id).await.unwrap();
        let step = entries.iter().find(|e| e.key.as_deref() == Some(*mode)).unwrap_or_else(|| panic!("{mode}: no step in {entries:?}"));
        assert_eq!(step.status, EntryStatus::Failed, "{mode}: {step:?}");
        assert_eq!(step.error.as_ref().unwrap().code, *code, "{mode}: {step:?}");
    }
    let good = well_behaved.await.unwrap();
    assert_eq!(good.status, RunStatus::Succeeded, "{good:?}");

    // Both denied calls are in the audit log, with the run, step and what was refused.
    let audit = AuditLog::read(&a.home.join("audit.jsonl")).unwrap();
    let denied: Vec<_> = audit.iter().filter(|r| r.decision == "deny").collect();
    assert_eq!(denied.len(), 2, "{audit:?}");
    for (run, step, subject) in [("hog-region", "region", "region eu-central-1"), ("hog-resource", "resource", "resource db/payroll-db")] {
        let r = denied.iter().find(|r| r.run_id == run).unwrap_or_else(|| panic!("no audit record for {run}: {audit:?}"));
        assert_eq!(r.step.as_deref(), Some(step));
        assert_eq!(r.operation, "rds.describe-instance");
        assert!(r.reason.as_deref().unwrap().contains(subject), "{r:?}");
        assert!(!r.mutating);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_outlives_its_wall_clock_is_stopped() {
    // CPU is plentiful here: only the wall clock can stop the spinning step.
    let a = agent(Limits {
        step_timeout: Duration::from_millis(600),
        cpu_time: Duration::from_secs(600),
        step_cpu_time: Duration::from_secs(600),
        ..Limits::default()
    });
    let hog = load(&a, artifacts::HOG).await;
    let run = spawn(&a, &hog, "slow", &[("mode", "spin")]).await.unwrap();
    let err = run.error.unwrap();
    assert_eq!(err.code, "limit-exceeded", "{err:?}");
    assert!(err.message.contains("spent more than 600 ms in step 'spin'") && err.message.contains("step_timeout_seconds"), "{}", err.message);
    // The agent goes on: the next run on the same engine is fine.
    let good = load(&a, artifacts::HELLO_DURABLE).await;
    assert_eq!(spawn(&a, &good, "after", &[]).await.unwrap().status, RunStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_its_wall_clock_is_stopped() {
    let a = agent(Limits {
        run_timeout: Duration::from_millis(700),
        cpu_time: Duration::from_secs(600),
        step_cpu_time: Duration::from_secs(600),
        ..Limits::default()
    });
    let hog = load(&a, artifacts::HOG).await;
    let run = spawn(&a, &hog, "long", &[("mode", "spin")]).await.unwrap();
    let err = run.error.unwrap();
    assert_eq!(err.code, "limit-exceeded", "{err:?}");
    assert!(err.message.contains("ran for more than 700 ms") && err.message.contains("run_timeout_seconds"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runbook_reaching_for_the_host_gets_nothing() {
    // WASI filesystem, sockets, environment and clock through plain Rust std.
    let a = agent(limits());
    let hog = load(&a, artifacts::HOG).await;
    let run = spawn(&a, &hog, "touch", &[("mode", "touch")]).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let seen: Vec<String> = serde_json::from_value(run.result.unwrap()).unwrap();
    assert!(seen.iter().all(|l| !l.contains("ALLOWED")), "the sandbox let through: {seen:?}");
    assert!(seen.iter().any(|l| l.starts_with("tcp connect: denied")), "{seen:?}");
    // A component importing a contract version the agent does not provide never links.
    let bytes = std::fs::read(artifacts::FUTURE_CONTRACT).unwrap();
    let err = a.engine.load("future-contract.wasm", &bytes).await.err().expect("a future contract is refused").to_string();
    assert!(err.contains("drover:runbook@0.9.0"), "{err}");
}

/// An agent whose runs call the simulated cloud (no AWS), on its time.
fn simulated_agent(limits: Limits) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_path_buf();
    let sim = drover_engine::simulation::Simulation::new(&drover_sim::Scenario::empty()).unwrap();
    let engine = Arc::new(Engine::new(&home, limits).unwrap().with_policy(policy()).with_simulation(sim));
    let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::open(home.join("runs.db")).unwrap());
    Agent { _dir: dir, home, engine, journal }
}

/// No guest value may panic the agent: extreme durations, timeouts, lengths
/// and retry policies handed to every host function of the contract get a
/// clear error naming the call and its limit, or a sane result; the agent
/// and its journal work on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_values_to_every_host_function_get_a_clear_answer() {
    let a = simulated_agent(limits());
    let rb = load(&a, artifacts::EXTREMES).await;
    // (mode, how the run ends, the error's code, words its message (or the result) must contain)
    let refused = Some("contract-violation");
    let cases: &[(&str, RunStatus, Option<&str>, &[&str])] = &[
        ("sleep-max", RunStatus::Failed, refused, &["clock.sleep asked to wait 18446744073709551615 ms", "at most 31622400000 ms (366 days)"]),
        ("sleep-zero", RunStatus::Succeeded, None, &["woke at"]),
        ("approval-max", RunStatus::Failed, refused, &["approval gate 'gate' asked to wait", "at most 31622400000 ms"]),
        ("approval-u32", RunStatus::Failed, refused, &["approval gate 'gate' asked to wait 4294967295000 ms"]),
        ("approval-message", RunStatus::Failed, refused, &["approval gate 'gate': the message is 2097152 bytes; at most 16384 bytes"]),
        ("random-zero", RunStatus::Succeeded, None, &["0 bytes"]),
        ("random-max", RunStatus::Failed, refused, &["random-bytes asked for 4294967295 bytes; at most 4096"]),
        ("log", RunStatus::Succeeded, None, &["logged"]),
        ("retry-zero", RunStatus::Succeeded, None, &["Err", "flake"]),
        ("retry-many", RunStatus::Succeeded, None, &["4"]),
        ("retry-max", RunStatus::Failed, refused, &["steps.begin 'max': retry policy initial-backoff-ms is 18446744073709551615; at most 86400000 ms"]),
        ("cleanup-max", RunStatus::Failed, refused, &["cleanup.defer 'max': retry policy initial-backoff-ms"]),
        ("cleanup-payload", RunStatus::Failed, refused, &["payload of undo 'big' is 2097154 bytes", "output_kib"]),
        ("error-huge", RunStatus::Failed, None, &["[truncated]"]),
        ("wait-max", RunStatus::Succeeded, None, &["ami-0000000000missing"]),
    ];
    for (mode, status, code, words) in cases {
        let run = spawn(&a, &rb, &format!("x-{mode}"), &[("mode", mode)]).await.unwrap_or_else(|e| panic!("{mode}: the agent panicked: {e}"));
        assert_eq!(run.status, *status, "{mode}: {run:?}");
        let text = match &run.error {
            Some(e) => {
                if let Some(code) = code {
                    assert_eq!(e.code, *code, "{mode}: {e:?}");
                }
                // Whatever a runbook writes, what is journaled stays small.
                assert!(e.code.len() <= 140 && e.message.len() <= 17 * 1024, "{mode}: {} / {} bytes", e.code.len(), e.message.len());
                e.message.clone()
            }
            None => run.result.clone().unwrap_or_default().to_string(),
        };
        for w in *words {
            assert!(text.contains(w), "{mode}: '{w}' not in: {}", &text[..text.len().min(600)]);
        }
    }
    // The agent works on: the journal answers, and a run after all that finishes.
    let after = spawn(&a, &rb, "x-after", &[("mode", "sleep-zero")]).await.unwrap();
    assert_eq!(after.status, RunStatus::Succeeded, "{after:?}");
}

/// A failed write of the audit log stops the run like a failed journal
/// write: no outcome, resumable, the error naming the log and what to do;
/// once the log can be written, a resume goes on and makes the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_audit_log_stops_the_run_resumable() {
    let a = simulated_agent(limits());
    let rb = load(&a, artifacts::EXTREMES).await;
    let audit = a.home.join("audit.jsonl");
    // A directory where the log should be: every append fails.
    std::fs::create_dir_all(audit.join("blocked")).unwrap();
    let params = rb.info.validate_params(&[("mode".to_string(), "tag".to_string())]).unwrap();
    let err = a.engine.start(a.journal.clone(), &rb, RunRequest::new("audited", params), Observer::none()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, drover_engine::EngineError::Stopped { .. }), "{err:?}");
    for w in ["cannot write the audit log", "audit.jsonl", "the call was not made", "drover resume audited"] {
        assert!(text.contains(w), "'{w}' not in: {text}");
    }
    let run = a.journal.run("audited").await.unwrap().unwrap();
    assert!(!run.status.is_final(), "{run:?}");
    assert_eq!(run.error.as_ref().map(|e| e.code.as_str()), Some("audit-log"), "{run:?}");
    assert!(a.engine.audit_path() == audit.as_path());
    let events = a.journal.events("audited").await.unwrap();
    assert!(events.iter().any(|e| e.message.contains("cannot write the audit log")), "{events:?}");
    // No undo or cleanup ran, nothing was recorded as the run's end.
    assert!(a.journal.entries("audited").await.unwrap().iter().all(|e| e.kind != drover_journal::EntryKind::End));

    std::fs::remove_dir_all(&audit).unwrap();
    let run = a.engine.resume(a.journal.clone(), "audited", None, Observer::none()).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.error, None);
    let records = AuditLog::read(&audit).unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!((records[0].operation.as_str(), records[0].decision.as_str()), ("ec2.tag", "allow"));
}
