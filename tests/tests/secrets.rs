//! A planted secret value must appear nowhere: not in the store's files, not
//! in any output or log of the agent, not in `show --json`, after a run that
//! uses it, one that fails with it in an error path, one that panics with it,
//! and one that is killed and resumed. The value holds what JSON escapes (a
//! quote, a backslash, a newline, a tab) and non-ASCII text, and is looked
//! for as it is, JSON-escaped and Debug-escaped.

use drover_chaos::{Agent, killed_by_sigkill};
use drover_test_artifacts as artifacts;

const PLANTED: &str = "pl4nted\"S3\\cret\n\t\u{e9}\u{65e5}-9f2c1e";
const PART1: &str = "pl4nted\"S3\\c";
const PART2: &str = "ret\n\t\u{e9}\u{65e5}-9f2c1e";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The planted value as it is, as it reads inside a JSON string, and as
/// Rust's `{:?}` writes it.
fn leaked_forms() -> Vec<String> {
    let json = serde_json::Value::String(PLANTED.into()).to_string();
    vec![PLANTED.to_string(), json[1..json.len() - 1].to_string(), PLANTED.escape_debug().to_string()]
}

fn leaks(haystack: &[u8]) -> Option<String> {
    leaked_forms().into_iter().find(|f| contains(haystack, f))
}

fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files_under(&path, out) } else { out.push(path) }
    }
}

#[test]
fn a_planted_secret_is_found_nowhere() {
    assert_eq!(format!("{PART1}{PART2}"), PLANTED);
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::new(dir.path().join("home"))
        .with_env("DROVER_TEST_DB_PASSWORD", PLANTED)
        .with_env("DROVER_LOG", "drover=trace,drover_engine=trace,drover_journal=trace,drover::runbook=trace,info");
    let secret = "password=env:DROVER_TEST_DB_PASSWORD";
    let p1 = format!("part1={PART1}");
    let p2 = format!("part2={PART2}");
    let mut seen: Vec<u8> = Vec::new();
    let mut run = |args: &[&str], failpoints: &str| -> std::process::Output {
        let out = agent.spawn(args, failpoints).unwrap().wait_with_output().unwrap();
        seen.extend(&out.stdout);
        seen.extend(&out.stderr);
        out
    };

    // Succeeds, using the secret and writing the reconstructed value
    // everywhere (an approval gate's question too: it times out, the run goes on).
    let out = run(&["run", artifacts::SECRETIVE, "--run-id", "ok", "-p", secret, "-p", &p1, "-p", &p2, "-p", "gate=true", "--json"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = shown["result"].as_str().unwrap();
    assert!(result.contains("[secret password]"), "the runbook sees a handle: {result}");
    assert!(result.contains("[masked:password]"), "the value it rebuilt is masked: {result}");
    let gate = shown["waits"].as_array().unwrap().iter().find(|w| w["gate"] == "confirm").cloned();
    assert!(gate.is_some_and(|g| g["decision"]["verdict"] == "timed-out"), "the gate asked with the note: {shown:#}");
    assert_eq!(shown["params"]["password"], serde_json::json!({"$secret": "password", "source": "env:DROVER_TEST_DB_PASSWORD"}));

    // Fails with the value in its error message and resource.
    let out = run(&["run", artifacts::SECRETIVE, "--run-id", "fails", "-p", secret, "-p", &p1, "-p", &p2, "-p", "fail=true", "--json"], "");
    assert_eq!(out.status.code(), Some(1));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(shown["error"]["message"].as_str().unwrap().contains("[masked:password]"));

    // Panics with the value in the panic message.
    let out = run(&["run", artifacts::SECRETIVE, "--run-id", "panics", "-p", secret, "-p", &p1, "-p", &p2, "-p", "panic=true", "--json"], "");
    assert_eq!(out.status.code(), Some(1));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["error"]["code"], "panic");
    assert!(shown["error"]["message"].as_str().unwrap().contains("[masked:password]"), "{shown:#}");

    // Killed after the step that used it, then resumed (the secret resolves again).
    let out = run(&["run", artifacts::SECRETIVE, "--run-id", "killed", "-p", secret, "-p", &p1, "-p", &p2], "after-step:use-secret");
    assert!(killed_by_sigkill(&out.status));
    let out = run(&["resume", "killed", "--json"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The value pasted straight into a plain parameter is masked before it is journaled.
    let pasted = format!("part1={PLANTED}");
    let out = run(&["run", artifacts::SECRETIVE, "--run-id", "pasted", "-p", secret, "-p", &pasted, "-p", "part2=x", "--json"], "");
    assert!(out.status.success());

    // A value given where a reference belongs is refused, and not echoed.
    let literal = format!("password={PLANTED}");
    let out = run(&["run", artifacts::SECRETIVE, "-p", &literal, "-p", &p1, "-p", &p2], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a secret: pass a reference"));

    for id in ["ok", "fails", "panics", "killed", "pasted"] {
        for args in [vec!["show", id, "--json"], vec!["show", id]] {
            run(&args, "");
        }
    }
    run(&["runs", "--json"], "");

    assert_eq!(leaks(&seen), None, "the secret leaked into the agent's output:\n{}", String::from_utf8_lossy(&seen));
    let mut files = Vec::new();
    files_under(&agent.home, &mut files);
    assert!(files.iter().any(|f| f.ends_with("runs.db")));
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert_eq!(leaks(&bytes), None, "the secret leaked into {}", f.display());
    }
}
