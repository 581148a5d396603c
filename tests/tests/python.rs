//! A runbook written in Python (`runbooks/python/hello-python`, built with
//! componentize-py from PyPI against the same WIT contract) runs in the same
//! agent as the Rust ones: it passes `drover check`, runs, and after a
//! SIGKILL in its durable sleep `drover resume` finishes it without
//! repeating a step.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use drover_chaos::{Agent, kill9, killed_by_sigkill};
use serde_json::Value;

/// Builds the component once per test binary with the project's script,
/// its virtualenv and output under target/.
fn component() -> &'static str {
    static BUILT: OnceLock<String> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = root.join("target/runbooks/python/hello_python.wasm");
        let venv = root.join("target/runbooks/python/venv");
        let status = Command::new(root.join("runbooks/python/hello-python/build.sh"))
            .arg(root.join("wit"))
            .arg(&out)
            .arg(&venv)
            .status()
            .expect("runbooks/python/hello-python/build.sh runs");
        assert!(status.success(), "building the Python runbook failed ({status})");
        out.to_string_lossy().to_string()
    })
}

fn step<'a>(run: &'a Value, key: &str) -> &'a Value {
    run["steps"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap_or_else(|| panic!("no step {key} in {run:#}"))
}

#[test]
fn a_python_runbook_checks_runs_and_resumes_after_sigkill() {
    let wasm = component();
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::new(dir.path().join("home"));

    let (status, check) = agent.json(&["check", wasm, "--json"]).unwrap();
    assert_eq!(status.code(), Some(0), "{check:#}");

    let (status, run) = agent.json(&["run", wasm, "--run-id", "py-once", "-p", "pause_seconds=0", "-p", "target=sre", "--json", "--quiet"]).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(run["runbook"], "hello-python", "{run:#}");
    assert!(run["result"]["message"].as_str().unwrap().starts_with("hello sre, change CHG-"), "{run:#}");

    let mut child = agent.spawn(&["run", wasm, "--run-id", "py-sleepy", "-p", "pause_seconds=3", "--quiet"], "").unwrap();
    let waiting = agent.wait_for_status("py-sleepy", "waiting", Duration::from_secs(120)).unwrap();
    assert_eq!(step(&waiting, "announce")["status"], "succeeded", "{waiting:#}");
    assert!(killed_by_sigkill(&kill9(&mut child)));

    let (status, run) = agent.json(&["resume", "py-sleepy", "--json", "--quiet"]).unwrap();
    assert!(status.success(), "{run:#}");
    for key in ["plan", "announce", "verify"] {
        assert_eq!(step(&run, key)["attempts"], 1, "{key}: {run:#}");
    }
    assert_eq!(run["result"]["ticket"], step(&waiting, "plan")["output"]["ticket"]);
    assert!(run["result"]["paused_seconds"].as_i64().unwrap() >= 3, "{run:#}");
}
