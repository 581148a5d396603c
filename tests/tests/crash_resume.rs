//! SIGKILL the real `drover` process mid-run, then `drover resume`: the run
//! succeeds, completed steps ran exactly once, and the step in flight re-ran
//! with the same idempotency key.

use std::time::Duration;

use drover_chaos::{Agent, kill9, killed_by_sigkill};
use drover_journal::AttemptRecord;
use drover_test_artifacts as artifacts;
use serde_json::Value;

fn agent() -> (tempfile::TempDir, Agent) {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::new(dir.path().join("home"));
    (dir, agent)
}

fn count(attempts: &[AttemptRecord], key: &str) -> usize {
    attempts.iter().filter(|a| a.key == key).count()
}

fn step<'a>(run: &'a Value, key: &str) -> &'a Value {
    run["steps"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap_or_else(|| panic!("no step {key} in {run:#}"))
}

#[test]
fn sigkill_during_the_durable_sleep_then_resume() {
    let (_d, agent) = agent();
    let mut child = agent.spawn(&["run", artifacts::HELLO_DURABLE, "--run-id", "sleepy", "-p", "pause_seconds=3", "--quiet"], "").unwrap();
    let waiting = agent.wait_for_status("sleepy", "waiting", Duration::from_secs(30)).unwrap();
    assert_eq!(waiting["driver"]["alive"], true);
    let status = kill9(&mut child);
    assert!(killed_by_sigkill(&status));

    let orphan = agent.show("sleepy").unwrap();
    assert_eq!(orphan["status"], "waiting");
    assert_eq!(orphan["driver"]["alive"], false);
    assert_eq!(step(&orphan, "announce")["status"], "succeeded");
    assert!(orphan["steps"].as_array().unwrap().iter().all(|s| s["key"] != "verify"));

    let (status, run) = agent.json(&["resume", "sleepy", "--json", "--quiet"]).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(run["status"], "succeeded");
    for key in ["plan", "announce", "verify"] {
        assert_eq!(step(&run, key)["attempts"], 1, "{key}");
    }
    let a = agent.attempts("sleepy");
    assert_eq!((count(&a, "plan"), count(&a, "announce"), count(&a, "verify")), (1, 1, 1));
    // The ticket planned before the crash is the one the run finished with.
    assert_eq!(run["result"]["ticket"], step(&orphan, "plan")["output"]["ticket"]);
    assert!(run["result"]["paused_seconds"].as_i64().unwrap() >= 3);
    // The announcement was logged once, by the execution that made it.
    let announced = run["events"].as_array().unwrap().iter().filter(|e| e["step"] == "announce").count();
    assert_eq!(announced, 1);
}

#[test]
fn sigkill_between_two_steps_then_resume() {
    let (_d, agent) = agent();
    let mut child = agent.spawn(&["run", artifacts::HELLO_DURABLE, "--run-id", "between", "-p", "pause_seconds=0", "--quiet"], "after-step:announce").unwrap();
    let status = child.wait().unwrap();
    assert!(killed_by_sigkill(&status), "the failpoint should have killed drover: {status:?}");
    let orphan = agent.show("between").unwrap();
    assert_eq!(orphan["status"], "running");
    assert_eq!(orphan["steps"].as_array().unwrap().len(), 2);

    let (status, run) = agent.json(&["resume", "between", "--json", "--quiet"]).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(run["status"], "succeeded");
    let a = agent.attempts("between");
    assert_eq!((count(&a, "plan"), count(&a, "announce"), count(&a, "verify")), (1, 1, 1));
}

#[test]
fn sigkill_inside_a_step_reruns_only_that_step_with_the_same_key() {
    let (_d, agent) = agent();
    // Two attempts per step: the one the crash interrupted counts.
    let mut child = agent.spawn(&["run", artifacts::PROBE, "--run-id", "inside", "-p", "max_attempts=2", "--quiet"], "before-complete:s2").unwrap();
    assert!(killed_by_sigkill(&child.wait().unwrap()));
    let orphan = agent.show("inside").unwrap();
    assert_eq!(step(&orphan, "s2")["status"], "running");

    let (status, run) = agent.json(&["resume", "inside", "--json", "--quiet"]).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(step(&run, "s1")["attempts"], 1);
    assert_eq!(step(&run, "s2")["attempts"], 2);
    assert_eq!(step(&run, "s3")["attempts"], 1);
    let a = agent.attempts("inside");
    let s2: Vec<_> = a.iter().filter(|x| x.key == "s2").collect();
    assert_eq!(s2.len(), 2);
    assert_eq!(s2[0].idempotency_key, s2[1].idempotency_key);
    assert_eq!(step(&run, "s2")["output"]["idempotency_key"], s2[0].idempotency_key.as_str());
    assert_eq!(count(&a, "s1"), 1);
}

#[test]
fn a_step_interrupted_with_its_attempts_used_up_is_not_run_again() {
    let (_d, agent) = agent();
    // One attempt per step (probe's default): the crash used it up.
    let mut child = agent.spawn(&["run", artifacts::PROBE, "--run-id", "once-only", "--quiet"], "before-complete:s2").unwrap();
    assert!(killed_by_sigkill(&child.wait().unwrap()));

    let (status, run) = agent.json(&["resume", "once-only", "--json", "--quiet"]).unwrap();
    assert_eq!(status.code(), Some(1), "{run:#}");
    assert_eq!(run["status"], "failed");
    let s2 = step(&run, "s2");
    assert_eq!(s2["status"], "failed");
    assert_eq!(s2["attempts"], 1);
    let err = &run["error"];
    assert_eq!(err["code"], "interrupted", "{err:#}");
    let msg = err["message"].as_str().unwrap();
    for w in ["step 's2' was interrupted", "during attempt 1", "allows 1 attempt in all", "Check whether it did"] {
        assert!(msg.contains(w), "'{w}' not in: {msg}");
    }
    // The body did not run again, and nothing after it ran.
    let a = agent.attempts("once-only");
    assert_eq!((count(&a, "s1"), count(&a, "s2"), count(&a, "s3")), (1, 1, 0));
    let said =
        run["events"].as_array().unwrap().iter().any(|e| e["step"] == "s2" && e["level"] == "error" && e["message"].as_str().unwrap().contains("interrupted"));
    assert!(said, "the run's events say why: {:#}", run["events"]);
}

#[test]
fn resume_of_a_finished_run_and_rerun_of_its_id_execute_nothing() {
    let (_d, agent) = agent();
    let (status, first) = agent.json(&["run", artifacts::PROBE, "--run-id", "once", "--json", "--quiet"]).unwrap();
    assert!(status.success());
    let (status, again) = agent.json(&["run", artifacts::PROBE, "--run-id", "once", "--json", "--quiet"]).unwrap();
    assert!(status.success());
    let (_, resumed) = agent.json(&["resume", "once", "--json", "--quiet"]).unwrap();
    assert_eq!(first["steps"], again["steps"]);
    assert_eq!(first["steps"], resumed["steps"]);
    assert_eq!(agent.attempts("once").len(), 3);
}

#[test]
fn resume_with_a_reordered_runbook_stops_resumable_on_non_determinism() {
    let (_d, agent) = agent();
    let mut child = agent.spawn(&["run", artifacts::PROBE, "--run-id", "nd", "--quiet"], "after-step:s1").unwrap();
    assert!(killed_by_sigkill(&child.wait().unwrap()));
    let pinned = agent.show("nd").unwrap()["runbook_digest"].clone();
    let (status, run) = agent.json(&["resume", "nd", "--runbook", artifacts::PROBE_REORDERED, "--json", "--quiet"]).unwrap();
    // Stopped, not ended: no outcome recorded, no undo, resumable.
    assert_eq!(status.code(), Some(2), "{run:#}");
    assert_eq!(run["status"], "running", "{run:#}");
    assert!(run["finished_at"].is_null());
    assert_eq!(run["stopped"], "non-determinism");
    assert_eq!(run["error"]["code"], "non-determinism");
    let msg = run["error"]["message"].as_str().unwrap();
    for w in ["journal position 0", "step 's1'", "step 's3'", "drover resume nd", "--runbook", "drover cancel nd"] {
        assert!(msg.contains(w), "'{w}' not in: {msg}");
    }
    let a = agent.attempts("nd");
    assert_eq!((count(&a, "s1"), count(&a, "s2"), count(&a, "s3")), (1, 0, 0));
    // The diverging build did not take the pin: the run is still probe's.
    assert_eq!(run["runbook_digest"], pinned);
    assert!(run["events"].as_array().unwrap().iter().any(|e| e["message"].as_str().unwrap().contains("drover resume nd")), "{:#}", run["events"]);
    let listed = agent.output(&["runs", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["stopped"], "non-determinism", "{listed:#}");

    // The build it started with replays and finishes it.
    let (status, run) = agent.json(&["resume", "nd", "--json", "--quiet"]).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(run["status"], "succeeded");
    assert!(run["error"].is_null() && run["stopped"].is_null(), "{run:#}");
    let a = agent.attempts("nd");
    assert_eq!((count(&a, "s1"), count(&a, "s2"), count(&a, "s3")), (1, 1, 1));
}

#[test]
fn a_run_with_a_live_driver_cannot_be_resumed_twice() {
    let (_d, agent) = agent();
    let mut child = agent.spawn(&["run", artifacts::HELLO_DURABLE, "--run-id", "busy", "-p", "pause_seconds=20", "--quiet"], "").unwrap();
    agent.wait_for_status("busy", "waiting", Duration::from_secs(30)).unwrap();
    let out = agent.output(&["resume", "busy", "--quiet"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run 'busy' is being driven by process"), "{err}");
    kill9(&mut child);
}
