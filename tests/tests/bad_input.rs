//! Every kind of bad input gets a clear error naming the thing at fault, and
//! loses nothing: the store stays consistent and other runs are untouched.

use drover_chaos::Agent;
use drover_test_artifacts as artifacts;

fn agent() -> (tempfile::TempDir, Agent) {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::new(dir.path().join("home"));
    (dir, agent)
}

/// Runs drover, expects exit code `code`, returns stderr.
fn fails(agent: &Agent, args: &[&str], code: i32) -> String {
    let out = agent.output(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "drover {args:?}: stdout {} stderr {stderr}", String::from_utf8_lossy(&out.stdout));
    stderr
}

#[test]
fn files_that_are_not_runbooks() {
    let (dir, agent) = agent();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "promote the replica").unwrap();
    let e = fails(&agent, &["run", text.to_str().unwrap()], 2);
    assert!(e.contains("notes.txt is not a WebAssembly file"), "{e}");

    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let e = fails(&agent, &["inspect", core.to_str().unwrap()], 2);
    assert!(e.contains("core.wasm is a core WebAssembly module, not a component"), "{e}");

    let e = fails(&agent, &["run", artifacts::FUTURE_CONTRACT], 2);
    assert!(e.contains("drover:runbook@0.9.0") && e.contains("this agent provides drover:runbook@0.1.5"), "{e}");

    let e = fails(&agent, &["run", artifacts::OTHER_WORLD], 2);
    assert!(e.contains("is not a drover runbook") && e.contains("wasi:cli/run"), "{e}");

    let e = fails(&agent, &["run", dir.path().join("missing.wasm").to_str().unwrap()], 2);
    assert!(e.contains("cannot read runbook") && e.contains("missing.wasm"), "{e}");
}

#[test]
fn parameters_that_do_not_fit() {
    let (_d, agent) = agent();
    let e = fails(&agent, &["run", artifacts::HELLO_DURABLE, "-p", "pause=3"], 2);
    assert!(e.contains("has no parameter 'pause'") && e.contains("target, pause_seconds"), "{e}");
    let e = fails(&agent, &["run", artifacts::HELLO_DURABLE, "-p", "pause_seconds=soon"], 2);
    assert!(e.contains("parameter 'pause_seconds'") && e.contains("expected an integer, got 'soon'"), "{e}");
    let e = fails(&agent, &["run", artifacts::HELLO_DURABLE, "-p", "novalue"], 2);
    assert!(e.contains("'novalue' is not NAME=VALUE"), "{e}");
    let e = fails(&agent, &["run", artifacts::HELLO_DURABLE, "--run-id", "no spaces"], 2);
    assert!(e.contains("run id 'no spaces' is invalid"), "{e}");
    // Nothing was recorded for refused runs.
    let out = agent.output(&["runs", "--json"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

#[test]
fn unknown_run_ids() {
    let (_d, agent) = agent();
    for cmd in ["resume", "show"] {
        let e = fails(&agent, &[cmd, "no-such-run"], 2);
        assert!(e.contains("no run with id 'no-such-run'") && e.contains("drover runs"), "{cmd}: {e}");
    }
}

#[test]
fn a_corrupt_store() {
    let (_d, agent) = agent();
    std::fs::write(agent.home.join("runs.db"), vec![0x5au8; 16384]).unwrap();
    let e = fails(&agent, &["runs"], 2);
    assert!(e.contains("runs.db is corrupt or not a drover store") && e.contains("move it aside"), "{e}");
    let e = fails(&agent, &["run", artifacts::PROBE], 2);
    assert!(e.contains("corrupt"), "{e}");
    // The file was not touched.
    assert_eq!(std::fs::read(agent.home.join("runs.db")).unwrap(), vec![0x5au8; 16384]);
}

#[test]
fn a_locked_store_then_recovery() {
    let (_d, agent) = agent();
    let out = agent.output(&["run", artifacts::PROBE, "--run-id", "before", "--quiet"]);
    assert!(out.status.success());
    let holder = rusqlite::Connection::open(agent.home.join("runs.db")).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let e = fails(&agent, &["run", artifacts::PROBE, "--run-id", "during", "--quiet"], 2);
    assert!(e.contains("is locked by another process"), "{e}");
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    let out = agent.output(&["run", artifacts::PROBE, "--run-id", "after", "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = agent.show("before").unwrap();
    assert_eq!(before["status"], "succeeded");
}

#[test]
fn a_runbook_that_panics_fails_its_run_only() {
    let (_d, agent) = agent();
    assert!(agent.output(&["run", artifacts::PROBE, "--run-id", "good", "--quiet"]).status.success());
    let (status, run) = agent.json(&["run", artifacts::PROBE, "--run-id", "bad", "-p", "panic_at=2", "--json", "--quiet"]).unwrap();
    assert_eq!(status.code(), Some(1));
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"]["code"], "panic");
    assert!(run["error"]["message"].as_str().unwrap().contains("probe panics in step s2 as asked"));
    let good = agent.show("good").unwrap();
    assert_eq!(good["status"], "succeeded");
    let out = agent.output(&["runs", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 2);
}

#[test]
fn show_json_has_the_documented_shape() {
    let (_d, agent) = agent();
    let (status, run) = agent.json(&["run", artifacts::HELLO_DURABLE, "--run-id", "shape", "-p", "pause_seconds=0", "--json", "--quiet"]).unwrap();
    assert!(status.success());
    let shown = agent.show("shape").unwrap();
    assert_eq!(run, shown);
    for field in ["run_id", "runbook", "status", "started_at", "finished_at", "steps"] {
        assert!(shown.get(field).is_some(), "missing {field}");
    }
    assert_eq!(shown["runbook"], "hello-durable");
    let step = &shown["steps"][0];
    for field in ["key", "status", "attempts", "started_at", "finished_at", "output", "error"] {
        assert!(step.get(field).is_some(), "step is missing {field}");
    }
    for t in [&shown["started_at"], &shown["finished_at"], &step["started_at"]] {
        chrono_like_rfc3339(t.as_str().unwrap());
    }
}

fn chrono_like_rfc3339(s: &str) {
    // 2026-11-27T01:32:43.256338Z
    let b = s.as_bytes();
    assert!(s.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && s.ends_with('Z'), "not RFC 3339: {s}");
}

/// A reader that goes away (`drover inspect RUNBOOK | head -0`) ends the
/// command quietly, as for any Unix tool: no panic, exit 141.
#[test]
fn a_closed_output_ends_quietly() {
    let (_dir, agent) = agent();
    // The reader is gone before drover writes a byte.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = agent.command(&["inspect", artifacts::PROBE]).stdout(writer).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}
