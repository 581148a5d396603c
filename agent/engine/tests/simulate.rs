//! The deterministic simulation over the reference runbooks: every one
//! passes its budget of schedules, a seed replays bit for bit, and the power
//! test: with a fix of the truthful-failover issue reverted, the simulation
//! finds a broken invariant within its budget and prints a seed that
//! replays it.

use std::sync::Arc;
use std::time::Duration;

use drover_engine::Limits;
use drover_engine::simulate::Simulator;
use drover_replay::revert::{self, Fix};
use drover_sim::Scenario;

fn demo() -> Scenario {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../runbooks/scenarios/demo.toml")).expect("demo scenario");
    Scenario::from_toml(&text).expect("demo scenario parses")
}

async fn simulator(wasm: &str, params: &[(&str, &str)]) -> (tempfile::TempDir, Arc<Simulator>) {
    let home = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(wasm).expect("runbook built");
    let params: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let sim = Simulator::new(home.path(), Limits::default(), wasm, &bytes, demo(), &params).await.expect("simulator");
    (home, Arc::new(sim))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regional_failover_quick_look() {
    let (_home, sim) = simulator(drover_test_artifacts::REGIONAL_FAILOVER, &[]).await;
    eprintln!("points: {}", sim.points());
    let o = sim.run(5).await.expect("runs");
    eprintln!("{o:#?}");
    let s = sim.clone();
    let report = tokio::task::spawn_blocking(move || s.explore(0, Some(400), None, 2)).await.expect("join").expect("explore");
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
}
