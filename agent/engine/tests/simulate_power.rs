//! The simulation's power test: each of these fixes of the truthful-failover
//! issue is reverted in turn (a test-only switch, `drover_replay::revert`,
//! compiled in only with the `power-test` feature), and the simulation must
//! find a broken invariant within its CI budget, with a seed that replays it.
//! Its own process: the switch is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a test fails by panicking")]

mod sim_common;

use drover_replay::revert::{self, Fix};
use sim_common::{budget, simulator_with};

async fn finds(fix: Fix, name: &str, wasm: &str, invariant: &str) {
    // Two agents: the takeover schedules are drawn too.
    let (_home, sim, _) = simulator_with(name, wasm, 2).await;
    let s = sim.clone();
    let clean = tokio::task::spawn_blocking(move || s.explore(0, Some(300), None, 2)).await.expect("join").expect("explore");
    assert!(clean.failure.is_none(), "{fix:?}: fails with the fix in place: {:#?}", clean.failure);

    revert::set(fix, true);
    let s = sim.clone();
    let (seeds, time) = budget();
    let report = tokio::task::spawn_blocking(move || s.explore(0, Some(seeds), Some(time), 2)).await.expect("join").expect("explore");
    let failure = report.failure.clone().unwrap_or_else(|| panic!("{fix:?} reverted: {} schedules found nothing ({:?})", report.schedules, report.endings));
    let seed = failure.schedule.seed;
    eprintln!(
        "{fix:?} reverted: found after {} schedules ({:.1} s): seed {seed}, {:?}\n  schedule: {:?}",
        report.schedules,
        report.seconds,
        failure.broken,
        failure.schedule.describe()
    );
    assert!(failure.broken.iter().any(|b| b.invariant == invariant), "{fix:?}: expected '{invariant}' broken, got {:?}", failure.broken);
    // The seed replays it: same journal, same calls, same verdict.
    let again = sim.run(seed).await.expect("replays");
    assert_eq!((again.fingerprint, again.broken), (failure.fingerprint, failure.broken), "seed {seed} does not replay");
    revert::set(fix, false);
    assert!(sim.run(seed).await.expect("runs").broken.is_empty(), "{fix:?}: seed {seed} still fails with the fix back");
}

async fn finds_lag_minus_one_accepted() {
    // This fix lives in the runbook: the reverted build is a separate
    // component (regional-failover's `power-test` feature).
    let (_home, sim, _) = simulator_with("regional-failover", drover_test_artifacts::REGIONAL_FAILOVER_LAG_REVERTED, 1).await;
    let s = sim.clone();
    let (seeds, time) = budget();
    let report = tokio::task::spawn_blocking(move || s.explore(0, Some(seeds), Some(time), 2)).await.expect("join").expect("explore");
    let failure = report.failure.clone().unwrap_or_else(|| panic!("lag -1 accepted: {} schedules found nothing ({:?})", report.schedules, report.endings));
    eprintln!("lag -1 accepted: found after {} schedules: seed {}, {:?}", report.schedules, failure.schedule.seed, failure.broken);
    assert!(failure.broken.iter().any(|b| b.invariant == "rpo-reported"), "{:?}", failure.broken);
    let again = sim.run(failure.schedule.seed).await.expect("replays");
    assert_eq!(again.fingerprint, failure.fingerprint);
}

// One test: the switches are process-wide, so the cases run one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulation_finds_each_reverted_fix() {
    finds_lag_minus_one_accepted().await;
    finds(Fix::BusyPromotionRefused, "regional-failover", drover_test_artifacts::REGIONAL_FAILOVER, "true-answers").await;
    finds(Fix::NonDeterminismStops, "regional-failover", drover_test_artifacts::REGIONAL_FAILOVER, "nothing-after-divergence").await;
    finds(Fix::InterruptedAttemptCounts, "regional-failover", drover_test_artifacts::REGIONAL_FAILOVER, "attempts-within-policy").await;
    finds(Fix::NoBlindResend, "ami-replicate", drover_test_artifacts::AMI_REPLICATE, "at-most-once").await;
    finds(Fix::FenceReadBeforeSideEffect, "regional-failover", drover_test_artifacts::REGIONAL_FAILOVER, "one-writer").await;
}
