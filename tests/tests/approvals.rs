//! Approval gates through the real `drover` binary: a run waits durably at a
//! gate until `drover approve` (or `--reject`, or the gate's deadline), and
//! the wait survives SIGKILL.

use std::time::Duration;

use drover_chaos::{Agent, kill9, killed_by_sigkill};
use drover_test_artifacts as artifacts;
use serde_json::Value;

fn agent() -> (tempfile::TempDir, Agent) {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::new(dir.path().join("home"));
    (dir, agent)
}

fn gate(run: &Value) -> Value {
    run["waits"].as_array().unwrap().iter().find(|w| w["kind"] == "approval").cloned().unwrap_or(Value::Null)
}

fn pending(agent: &Agent) -> Vec<Value> {
    let (status, gates) = agent.json(&["approvals", "--json"]).unwrap();
    assert!(status.success());
    gates.as_array().unwrap().clone()
}

#[test]
fn a_gate_waits_until_drover_approve_and_records_who() {
    let (_d, agent) = agent();
    let child = agent.spawn(&["run", artifacts::JANITOR, "--run-id", "ga", "-p", "gate_after=1", "--quiet", "--json"], "").unwrap();
    agent.wait_for_status("ga", "waiting", Duration::from_secs(30)).unwrap();
    let gates = pending(&agent);
    assert_eq!(gates.len(), 1, "{gates:?}");
    assert_eq!((gates[0]["run_id"].as_str(), gates[0]["gate"].as_str()), (Some("ga"), Some("g1")));
    assert_eq!(gates[0]["message"], "go on after s1?");
    // Nothing past the gate ran while it waited.
    assert_eq!(agent.attempt_count("ga", "s2"), 0);

    let out = agent.output(&["approve", "ga", "g1", "--comment", "looks right"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["status"], "succeeded");
    let g = gate(&run);
    assert_eq!(g["decision"]["verdict"], "approved", "{g}");
    assert_eq!(g["decision"]["comment"], "looks right");
    assert!(g["decision"]["by"].as_str().unwrap().contains("pid"), "{g}");
    assert!(pending(&agent).is_empty());

    // A second decision changes nothing and says so.
    let out = agent.output(&["approve", "ga", "g1", "--reject"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already decided: approved"), "{}", String::from_utf8_lossy(&out.stderr));
    // A gate that does not exist is named.
    let out = agent.output(&["approve", "ga", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no approval gate 'nope'"));
}

#[test]
fn a_rejected_gate_fails_the_run_and_its_undos_run() {
    let (_d, agent) = agent();
    let child = agent.spawn(&["run", artifacts::JANITOR, "--run-id", "gr", "-p", "gate_after=2", "--quiet", "--json"], "").unwrap();
    agent.wait_for_status("gr", "waiting", Duration::from_secs(30)).unwrap();
    assert!(agent.output(&["approve", "gr", "g2", "--reject", "--comment", "not during the sale"]).status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["error"]["code"], "rejected", "{run:#}");
    assert!(run["error"]["message"].as_str().unwrap().contains("not during the sale"));
    assert_eq!(agent.attempt_count("gr", "s3"), 0);
    assert_eq!(agent.attempt_count("gr", "undo:u2"), 1);
    assert_eq!(agent.attempt_count("gr", "undo:u1"), 1);
}

#[test]
fn sigkill_at_a_gate_then_resume_waits_again_and_a_decision_made_meanwhile_counts() {
    let (_d, agent) = agent();
    let mut child = agent.spawn(&["run", artifacts::JANITOR, "--run-id", "gk", "-p", "gate_after=1", "--quiet"], "").unwrap();
    agent.wait_for_status("gk", "waiting", Duration::from_secs(30)).unwrap();
    assert!(killed_by_sigkill(&kill9(&mut child)));

    // Resumed, the run waits at the same gate again; s1 is not repeated.
    let mut resumed = agent.spawn(&["resume", "gk", "--quiet"], "").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(agent.show("gk").unwrap()["status"], "waiting");
    assert_eq!(pending(&agent).len(), 1);
    assert!(killed_by_sigkill(&kill9(&mut resumed)));

    // Approved while no process drives the run: the next resume goes straight on.
    let out = agent.output(&["approve", "gk", "g1"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`drover resume gk` goes on from the gate"));
    let (status, run) = agent.json(&["resume", "gk", "--json", "--quiet"]).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(agent.attempt_count("gk", "s1"), 1);
    assert_eq!(agent.attempt_count("gk", "s3"), 1);
}

#[test]
fn a_gate_nobody_decides_times_out_and_a_dry_run_assumes_approval() {
    let (_d, agent) = agent();
    let (status, run) =
        agent.json(&["run", artifacts::JANITOR, "--run-id", "gt", "-p", "gate_after=1", "-p", "gate_timeout_s=1", "--json", "--quiet"]).unwrap();
    assert_eq!(status.code(), Some(1));
    assert_eq!(run["error"]["code"], "approval-timed-out", "{run:#}");
    assert_eq!(gate(&run)["decision"]["by"], "drover (deadline)");

    let (status, run) = agent.json(&["run", artifacts::JANITOR, "-p", "gate_after=1", "--dry-run", "--json", "--quiet"]).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(gate(&run)["decision"]["by"], "drover (dry run)");
}
