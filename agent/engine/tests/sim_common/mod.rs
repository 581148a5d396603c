//! What the simulation tests share: a simulator of a runbook on the demo
//! scenario, and the budget CI gives it.
#![allow(dead_code, clippy::expect_used, reason = "test helpers fail by panicking; not every test binary uses each")]

use std::sync::Arc;
use std::time::Duration;

use drover_engine::Limits;
use drover_engine::simulate::Simulator;
use drover_sim::Scenario;

/// The scenario of reference runbook `name`: its parity scenario
/// (`runbooks/scenarios/parity/NAME.toml`: the demo topology as the runbook
/// finds it, with its parameters).
pub fn scenario_of(name: &str) -> (String, Scenario) {
    let path = format!("runbooks/scenarios/parity/{name}.toml");
    let text = std::fs::read_to_string(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))).expect("parity scenario");
    (path, Scenario::from_toml(&text).expect("parity scenario parses"))
}

/// A simulator of component `wasm` of reference runbook `name` on its
/// scenario (and the home it compiles into, and the scenario's path).
pub async fn simulator(name: &str, wasm: &str) -> (tempfile::TempDir, Arc<Simulator>, String) {
    simulator_with(name, wasm, 1).await
}

/// As [`simulator`], with `agents` agents.
pub async fn simulator_with(name: &str, wasm: &str, agents: u8) -> (tempfile::TempDir, Arc<Simulator>, String) {
    let home = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(wasm).expect("runbook built");
    let (path, scenario) = scenario_of(name);
    let sim = Simulator::new(home.path(), Limits::default(), wasm, &bytes, scenario, &[]).await.expect("simulator").with_agents(agents);
    (home, Arc::new(sim), path)
}

/// Schedules per runbook, and the time they may take: `DROVER_SIM_SEEDS`
/// (default 2000) and `DROVER_SIM_SECONDS` (default 20).
pub fn budget() -> (u64, Duration) {
    let var = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    (var("DROVER_SIM_SEEDS", 2000), Duration::from_secs(var("DROVER_SIM_SECONDS", 20)))
}
