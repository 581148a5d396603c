//! Sandbox benchmarks (not tests): `cargo bench -p drover-engine --bench sandbox`.
//!
//! Prints, for docs/BENCHMARKS.md:
//! 1. the cost of the policy check of one capability call (declaration and
//!    grants, regions and resources), to set against an AWS call;
//! 2. the time from a limit being exceeded to the run being stopped and
//!    recorded as failed, for the wall-clock step limit (exact instant known)
//!    and the CPU budget of a step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a test fails by panicking")]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_engine::policy::{Access, Grant, Guard, Policy, Resource, RunbookGrants};
use drover_engine::{Engine, Limits, Observer, RunRequest};
use drover_journal::{Journal, RunStatus, SqliteJournal};
use drover_test_artifacts as artifacts;
use serde_json::json;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::open(dir.path().join("runs.db")).unwrap());
    let bytes = std::fs::read(artifacts::REGIONAL_FAILOVER).unwrap();

    // --- 1. policy check per call, on regional-failover's real declaration and the demo's grants
    let engine = Engine::new(&home, Limits::default()).unwrap();
    let rb = engine.load("regional-failover.wasm", &bytes).await.unwrap();
    let params = rb.info.validate_params(&[]).unwrap();
    let mut policy = Policy::default();
    let grants = vec![
        Grant {
            service: "rds".into(),
            operations: vec!["*".into()],
            regions: vec!["us-east-1".into(), "us-west-2".into()],
            resources: vec!["db/orders-db*".into(), "snapshot/orders-db*".into()],
        },
        Grant {
            service: "route53".into(),
            operations: vec!["*".into()],
            regions: vec![],
            resources: vec!["zone/orders*.example.internal".into(), "record/*.orders*.example.internal".into()],
        },
    ];
    policy.runbooks.insert("regional-failover".into(), RunbookGrants { sha256: None, grants });
    let guard = Guard::new(&rb.info, &params, &policy).unwrap();
    let calls = [
        Access {
            service: "rds",
            operation: "promote-read-replica",
            regions: vec!["us-west-2".into()],
            resources: vec![Resource::new("db", "orders-db-replica")],
            mutating: true,
        },
        Access {
            service: "rds",
            operation: "copy-snapshot",
            regions: vec!["us-east-1".into(), "us-west-2".into()],
            resources: vec![Resource::new("snapshot", "orders-db-final-0123456789ab"), Resource::new("snapshot", "orders-db-final-0123456789ab-dr")],
            mutating: true,
        },
        Access {
            service: "route53",
            operation: "set-weights",
            regions: vec![],
            resources: vec![Resource::new("zone", "orders.example.internal"), Resource::new("record", "app.orders.example.internal")],
            mutating: true,
        },
    ];
    let n = 300_000;
    let t = Instant::now();
    for i in 0..n {
        guard.check(std::hint::black_box(&calls[i % calls.len()])).unwrap();
    }
    let per_call = t.elapsed() / n as u32;
    let denied = Access { service: "rds", operation: "promote-read-replica", regions: vec!["eu-west-1".into()], resources: vec![], mutating: true };
    let t = Instant::now();
    for _ in 0..n {
        guard.check(std::hint::black_box(&denied)).unwrap_err();
    }
    let per_denial = t.elapsed() / n as u32;
    println!("policy check per capability call (regional-failover's declaration, demo grants, {n} calls):");
    println!("  allowed: {:.2} µs   denied (with its message): {:.2} µs", per_call.as_secs_f64() * 1e6, per_denial.as_secs_f64() * 1e6);

    // --- 2. limit exceeded -> run stopped and recorded
    let hog_bytes = std::fs::read(artifacts::HOG).unwrap();
    for (label, limits, budget) in [
        (
            "step wall clock (step_timeout_seconds 0.2)",
            Limits {
                step_timeout: Duration::from_millis(200),
                cpu_time: Duration::from_secs(600),
                step_cpu_time: Duration::from_secs(600),
                ..Limits::default()
            },
            Duration::from_millis(200),
        ),
        (
            "step CPU budget (cpu_seconds_per_step 0.2)",
            Limits { step_cpu_time: Duration::from_millis(200), cpu_time: Duration::from_secs(600), ..Limits::default() },
            Duration::from_millis(200),
        ),
    ] {
        let engine = Engine::new(&home, limits).unwrap().with_policy(common::policy());
        let hog = engine.load("hog.wasm", &hog_bytes).await.unwrap();
        let mut lat = Vec::new();
        let slug: String = label.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        for i in 0..20 {
            let params = json!({"mode": "spin"});
            let run = engine.start(journal.clone(), &hog, RunRequest::new(format!("{slug}-{i}"), params), Observer::none()).await.unwrap();
            assert_eq!(run.status, RunStatus::Failed);
            assert_eq!(run.error.unwrap().code, "limit-exceeded");
            // From the attempt's journaled start plus the budget (the instant the
            // limit was exceeded) to the run's recorded end.
            let attempt = journal.attempts(&run.run_id).await.unwrap().into_iter().next().unwrap();
            let over = (run.finished_at.unwrap() - attempt.started_at).to_std().unwrap().saturating_sub(budget);
            lat.push(over);
        }
        lat.sort();
        println!("limit exceeded -> run stopped and recorded failed, {label}, 20 runs: median {}  p99 {}", ms(pct(&lat, 0.5)), ms(pct(&lat, 0.99)));
    }
}
