//! End-to-end tests of drover live in `tests/tests/`: they drive the real
//! `drover` binary (through `drover-chaos`'s harness) against real runbook
//! components built by `drover-test-artifacts` and, for the AWS runbooks, the
//! real emulators (`scripts/test` starts them). This library holds what the
//! test files share.

use drover_aws::Clients;
use drover_chaos::Agent;
use drover_chaos::topology::{Seeded, Topology, seed};

/// A runtime for the async setup and checks of a synchronous test.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

/// Fails with what to do when the emulators are not configured.
pub fn emulators_configured() {
    let ep = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        ep.starts_with("http://127.0.0.1"),
        "these tests need the local emulators: run them through scripts/test (AWS_ENDPOINT_URL='{ep}')"
    );
}

/// Seeds a demo topology of its own for test `name` (names suffixed).
pub fn seeded(name: &str) -> (Clients, Seeded) {
    emulators_configured();
    let suffix = format!("{name}-{:06x}", rand::random::<u32>() & 0xffffff);
    rt().block_on(async {
        let c = Clients::load().await;
        let s = seed(&c, &Topology::demo(&suffix)).await.expect("the demo topology seeds");
        (c, s)
    })
}

/// The documented example configuration, whose grants fit the demo topology
/// (and the suffixed copies tests seed).
pub fn demo_config() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/drover.toml").to_string()
}

/// An agent with a home of its own (removed with the returned directory),
/// configured with [`demo_config`].
pub fn agent() -> (tempfile::TempDir, Agent) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let agent = Agent::new(dir.path().join("home")).with_env("DROVER_CONFIG", &demo_config());
    (dir, agent)
}

/// `drover ARGS` in `agent`'s home: (exit code, stdout, stderr).
pub fn drover(agent: &Agent, args: &[&str]) -> (Option<i32>, String, String) {
    let out = agent.output(args);
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// `drover run RUNBOOK --run-id ID --quiet -p P...`
pub fn args<'a>(runbook: &'a str, id: &'a str, params: &'a [String]) -> Vec<&'a str> {
    let mut a = vec!["run", runbook, "--run-id", id, "--quiet"];
    for p in params {
        a.push("-p");
        a.push(p);
    }
    a
}
