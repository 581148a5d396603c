//! The deterministic simulation over the reference runbooks: every one
//! passes its budget of schedules on the demo scenario, and a seed replays
//! bit for bit. (The power test, which reverts fixes process-wide, has its
//! own process: `simulate_power.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a test fails by panicking")]

mod sim_common;

use sim_common::{budget, simulator_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reference_runbook_passes_its_budget() {
    let runbooks = [
        ("regional-failover", drover_test_artifacts::REGIONAL_FAILOVER),
        ("fleet-failover", drover_test_artifacts::FLEET_FAILOVER),
        ("failback", drover_test_artifacts::FAILBACK),
        ("dns-shift", drover_test_artifacts::DNS_SHIFT),
        ("dr-drill", drover_test_artifacts::DR_DRILL),
        ("ami-replicate", drover_test_artifacts::AMI_REPLICATE),
        ("hello-durable", drover_test_artifacts::HELLO_DURABLE),
    ];
    for (name, wasm) in runbooks {
        // Two agents: after the crash sweep, a takeover at every point in turn.
        let (_home, sim, scenario) = simulator_with(name, wasm, 2).await;
        let s = sim.clone();
        let (seeds, time) = budget();
        let report = tokio::task::spawn_blocking(move || s.explore(0, Some(seeds), Some(time), 2)).await.expect("join").expect("explore");
        eprintln!(
            "{}: {} schedules ({} crash points) in {:.1} s, {:.0}/min, endings {:?}",
            report.runbook, report.schedules, report.points, report.seconds, report.per_minute, report.endings
        );
        if let Some(f) = &report.failure {
            panic!("{} broke an invariant: replay with `drover simulate {wasm} --scenario {scenario} --seed {}`\n{f:#?}", report.runbook, f.schedule.seed);
        }
        assert!(report.endings.get("succeeded").is_some_and(|n| *n > 0), "{name}: no schedule succeeded on its own scenario: {:?}", report.endings);
        assert!(report.schedules >= 3 * report.points as u64, "{}: the exhaustive crash and takeover sweeps did not finish within the budget", report.runbook);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_replays_bit_for_bit() {
    let (_home, sim, _) = simulator_with("regional-failover", drover_test_artifacts::REGIONAL_FAILOVER, 2).await;
    // The end of the takeover sweep (two agents), then drawn schedules,
    // several with faults.
    let first = 3 * sim.points() as u64 - 10;
    let mut with_faults = 0;
    for seed in first..first + 50 {
        let (a, b) = (sim.run(seed).await.expect("runs"), sim.run(seed).await.expect("runs"));
        assert_eq!(a.fingerprint, b.fingerprint, "seed {seed} did not replay the same journal and calls");
        assert_eq!((a.ending.clone(), a.calls, a.restarts), (b.ending, b.calls, b.restarts));
        with_faults += usize::from(!a.schedule.faults.is_empty());
    }
    assert!(with_faults > 10, "the drawn schedules inject faults");
}
