//! The game-days of `chaos/scenarios/`, in their short form, each a test:
//! the real `drover` binary behind the fault proxy, against the real
//! emulators. Each passes only if the steady state held before, holds after,
//! the run ended as the scenario expects, and the side effects the emulators
//! accepted stay within the scenario's bounds. They run one at a time (a
//! lock), so that one game-day's load does not skew another's RTO.

use std::path::PathBuf;
use std::sync::Mutex;

use drover_chaos::gameday::{self, Options};
use drover_chaos::scenario::Scenario;
use drover_e2e::{demo_config, emulators_configured};
use drover_test_artifacts as artifacts;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn game_day(name: &str) {
    emulators_configured();
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../chaos/scenarios");
    let path = dir.join(format!("{name}.toml"));
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let work = tempfile::tempdir().unwrap();
    let opts = Options {
        full: false,
        runbooks_dir: PathBuf::from(artifacts::DIR),
        scenario_dir: dir,
        config: Some(PathBuf::from(demo_config())),
        work_dir: work.path().to_path_buf(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let report = rt.block_on(gameday::run(scenario, &opts)).unwrap_or_else(|e| panic!("game-day {name} could not run: {e}"));
    assert!(report.passed(), "{}\n{:#?}", report.summary(), report.reasons);
    eprintln!("{}", report.summary());
}

#[test]
fn primary_region_blackholed() {
    game_day("primary-region-blackholed");
}

#[test]
fn throttled_and_slow() {
    game_day("throttled-and-slow");
}

#[test]
fn crash_restart_sweep() {
    game_day("crash-restart-sweep");
}

#[test]
fn dr_replica_missing() {
    game_day("dr-replica-missing");
}

#[test]
fn dns_shift_gate_fails() {
    game_day("dns-shift-gate-fails");
}

#[test]
fn journal_store_full() {
    game_day("journal-store-full");
}
