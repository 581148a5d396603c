//! Engine benchmarks (not tests): `cargo bench -p drover-engine --bench engine`.
//!
//! Prints, for docs/BENCHMARKS.md:
//! 1. the overhead of one journaled step (guest -> host call, buffered begin,
//!    durable completion: one fdatasync), median and p99, from the interval
//!    between consecutive step completions of a run of empty steps;
//! 2. journaled steps per second with many runs at once (group commit);
//! 3. cold start: load a runbook whose compiled code is cached, and
//!    instantiate it; the start of a run in parts (created and claimed;
//!    from there to its first step begun); and the first compile, for
//!    reference;
//! 4. memory per concurrently running runbook instance (RSS growth).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a test fails by panicking")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_engine::{Engine, Limits, LoadedRunbook, Observer, RunEvent, RunRequest};
use drover_journal::{EntryStatus, Journal, RunStatus, SqliteJournal};
use drover_test_artifacts as artifacts;
use serde_json::json;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    pages * 4096
}

async fn probe_run(engine: &Engine, journal: Arc<dyn Journal>, rb: &LoadedRunbook, id: &str, params: serde_json::Value, observer: Observer) {
    let run = engine.start(journal, rb, RunRequest::new(id, params), observer).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
}

fn params(rb: &LoadedRunbook, pairs: &[(&str, &str)]) -> serde_json::Value {
    let raw: Vec<(String, String)> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    rb.info.validate_params(&raw).unwrap()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let bytes = std::fs::read(artifacts::PROBE).unwrap();

    // --- 3b. first compile (empty cache)
    let engine = Engine::new(&home, Limits::default()).unwrap();
    let t = Instant::now();
    let rb = engine.load("probe.wasm", &bytes).await.unwrap();
    let first_compile = t.elapsed();
    assert!(!rb.from_cache);

    // --- 0. the floor: one fdatasync of this disk, measured here and now
    // (an append of a step's size, then fdatasync), the reference of 1.
    let fsync = {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(dir.path().join("fsync.probe")).unwrap();
        let mut samples: Vec<Duration> = (0..500)
            .map(|_| {
                f.write_all(&[7u8; 512]).unwrap();
                let t = Instant::now();
                f.sync_data().unwrap();
                t.elapsed()
            })
            .collect();
        samples.sort();
        println!("fdatasync of this disk (512-byte append, 500 samples): median {}  p99 {}", ms(pct(&samples, 0.5)), ms(pct(&samples, 0.99)));
        pct(&samples, 0.5)
    };

    // --- 1. one journaled step
    let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::open(dir.path().join("runs.db")).unwrap());
    let steps = 2000;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let collector = tokio::spawn(async move {
        let mut done = Vec::new();
        while let Some(ev) = rx.recv().await {
            if let RunEvent::StepFinished { status: EntryStatus::Succeeded, .. } = ev {
                done.push(Instant::now());
            }
        }
        done
    });
    let t = Instant::now();
    probe_run(&engine, journal.clone(), &rb, "bench-steps", params(&rb, &[("steps", &steps.to_string())]), Observer::channel(tx)).await;
    let total = t.elapsed();
    let done = collector.await.unwrap();
    let mut per_step: Vec<Duration> = done.windows(2).map(|w| w[1] - w[0]).collect();
    per_step.sort();
    println!("journaled step (probe, {steps} steps, one run):");
    println!("  median {}  p99 {}  max {}  mean {}", ms(pct(&per_step, 0.5)), ms(pct(&per_step, 0.99)), ms(*per_step.last().unwrap()), ms(total / steps));
    println!("  median step / median fdatasync: {:.2} (target: at most 1.25)", pct(&per_step, 0.5).as_secs_f64() / fsync.as_secs_f64().max(f64::MIN_POSITIVE));

    // --- 2. group commit: many runs at once (each step one durable
    // commit), and the memory they hold
    for concurrent in [1usize, 10, 100, 1000] {
        let steps_each = 100;
        let rss_before = rss_bytes();
        let t = Instant::now();
        let mut tasks = Vec::new();
        let engine = Arc::new(Engine::new(&home, Limits::default()).unwrap());
        let rb = Arc::new(engine.load("probe.wasm", &bytes).await.unwrap());
        for i in 0..concurrent {
            let (engine, rb, journal) = (engine.clone(), rb.clone(), journal.clone());
            let p = params(&rb, &[("steps", &steps_each.to_string())]);
            tasks.push(tokio::spawn(async move {
                probe_run(&engine, journal, &rb, &format!("gc-{concurrent}-{i}"), p, Observer::none()).await;
            }));
        }
        // The most memory they hold while all run (sampled every 10 ms).
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(rss_bytes()));
        let sampler = {
            let peak = peak.clone();
            tokio::spawn(async move {
                loop {
                    peak.fetch_max(rss_bytes(), std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        for t in tasks {
            t.await.unwrap();
        }
        let el = t.elapsed();
        sampler.abort();
        let total_steps = (concurrent * steps_each) as f64;
        println!(
            "group commit: {concurrent:>4} concurrent runs x {steps_each} steps: {:.0} durable step commits/s ({} per step overall), peak RSS {:.0} MiB (+{:.0} MiB)",
            total_steps / el.as_secs_f64(),
            ms(el / (concurrent * steps_each) as u32),
            peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / (1 << 20) as f64,
            peak.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(rss_before) as f64 / (1 << 20) as f64
        );
    }

    // --- 3a. cold start from the cache: new engine (as a new process has), load, instantiate
    let mut loads = Vec::new();
    let mut inst = Vec::new();
    for i in 0..50 {
        let engine = Engine::new(&home, Limits::default()).unwrap();
        let t = Instant::now();
        let rb = engine.load("probe.wasm", &bytes).await.unwrap();
        loads.push(t.elapsed());
        assert!(rb.from_cache);
        let t = Instant::now();
        // A zero-step run: instantiate, call run, journal the outcome.
        probe_run(&engine, journal.clone(), &rb, &format!("cold-{i}"), params(&rb, &[("steps", "0")]), Observer::none()).await;
        inst.push(t.elapsed());
    }
    loads.sort();
    inst.sort();
    println!("cold start (cached compiled runbook, fresh engine, 50 samples):");
    println!("  load+validate+describe: median {}  p99 {}", ms(pct(&loads, 0.5)), ms(pct(&loads, 0.99)));
    println!("  instantiate+run(0 steps)+durable finish: median {}  p99 {}", ms(pct(&inst, 0.5)), ms(pct(&inst, 0.99)));
    println!("first compile of probe.wasm ({} KiB): {}", bytes.len() / 1024, ms(first_compile));

    // --- 3c. the start of a run, in parts (one engine, the component
    // loaded): from `start` to the run claimed (created and claimed: two
    // durable commits), and from there to its first step begun (a store,
    // the component instantiated from its InstancePre, the guest's `run`
    // entered, the step's begin sent).
    let engine = Engine::new(&home, Limits::default()).unwrap();
    let rb = engine.load("probe.wasm", &bytes).await.unwrap();
    let (mut claimed, mut entered) = (Vec::new(), Vec::new());
    for i in 0..200 {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // Each event stamped when it arrives (a task of its own waits for them).
        let stamps = tokio::spawn(async move {
            let (mut at_claim, mut at_step) = (None, None);
            while let Some(ev) = rx.recv().await {
                match ev {
                    RunEvent::Started { .. } if at_claim.is_none() => at_claim = Some(Instant::now()),
                    RunEvent::StepStarted { .. } if at_step.is_none() => at_step = Some(Instant::now()),
                    _ => {}
                }
            }
            (at_claim, at_step)
        });
        let t = Instant::now();
        probe_run(&engine, journal.clone(), &rb, &format!("enter-{i}"), params(&rb, &[("steps", "1")]), Observer::channel(tx)).await;
        let (at_claim, at_step) = stamps.await.unwrap();
        let (at_claim, at_step) = (at_claim.unwrap(), at_step.unwrap());
        claimed.push(at_claim - t);
        entered.push(at_step - at_claim);
    }
    claimed.sort();
    entered.sort();
    println!("start of a run (component loaded, 200 samples):");
    println!("  start -> run created and claimed (two durable commits): median {}  p99 {}", ms(pct(&claimed, 0.5)), ms(pct(&claimed, 0.99)));
    println!(
        "  claimed -> first step begun (store, instantiate from InstancePre, run entered, begin sent): median {}  p99 {}",
        ms(pct(&entered, 0.5)),
        ms(pct(&entered, 0.99))
    );

    // --- 4. memory per running instance
    let engine = Arc::new(Engine::new(&home, Limits::default()).unwrap());
    let rb = Arc::new(engine.load("probe.wasm", &bytes).await.unwrap());
    let n = 200;
    let before = rss_bytes();
    let mut tasks = Vec::new();
    for i in 0..n {
        let (engine, rb, journal) = (engine.clone(), rb.clone(), journal.clone());
        let p = params(&rb, &[("steps", "2"), ("sleep_after", "1"), ("sleep_ms", "3000")]);
        tasks.push(tokio::spawn(async move {
            probe_run(&engine, journal, &rb, &format!("mem-{i}"), p, Observer::none()).await;
        }));
    }
    // Wait until all are asleep in their durable sleep.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting = journal.runs(&drover_journal::RunFilter { status: Some(RunStatus::Waiting), ..Default::default() }).await.unwrap().len();
        if waiting >= n || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let during = rss_bytes();
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "memory: {n} runbook instances alive at once (in a durable sleep): RSS +{:.1} MiB, {:.0} KiB per instance",
        during.saturating_sub(before) as f64 / (1 << 20) as f64,
        during.saturating_sub(before) as f64 / n as f64 / 1024.0
    );
    let _ = json!(null);
}
