//! `drover pause` / `unpause` through the real binary: a paused run stops at
//! its next step boundary and waits, showing who paused it and why; killed
//! with SIGKILL while paused, it is resumed and waits again (the pause is in
//! the journal, not in the process); unpaused, it goes on and no step runs
//! twice. Each control is recorded with the run and in the audit log.

use std::time::Duration;

use drover_chaos::{Agent, kill9};
use drover_e2e::{drover, wait_until};
use drover_engine::audit::AuditLog;
use drover_test_artifacts as artifacts;
use serde_json::Value;

/// The messages of the run's events that record an operator's control.
fn controls(agent: &Agent, id: &str) -> Vec<String> {
    let Some(run) = agent.show(id) else { return Vec::new() };
    run["events"]
        .as_array()
        .map(|evs| {
            evs.iter()
                .filter(|e| e["fields"].as_array().is_some_and(|f| f.iter().any(|f| f[0] == "control")))
                .filter_map(|e| e["message"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn held_before(agent: &Agent, id: &str, step: &str, times: usize) -> Value {
    let needle = format!("paused before step '{step}'");
    wait_until(&format!("run {id} to be held before {step}"), Duration::from_secs(30), || {
        let n = controls(agent, id).iter().filter(|m| m.contains(&needle)).count();
        (n >= times).then(|| agent.show(id)).flatten()
    })
}

#[test]
fn a_paused_run_waits_across_a_sigkill_and_goes_on_when_unpaused() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::new(dir.path().join("home"));
    // s1, a durable sleep of 1.5 s, then s2 and s3.
    let args = ["run", artifacts::PROBE, "--run-id", "p1", "--quiet", "-p", "steps=3", "-p", "sleep_after=1", "-p", "sleep_ms=1500"];
    let mut child = agent.spawn(&args, "").unwrap();
    wait_until("s1 to finish", Duration::from_secs(30), || (agent.attempt_count("p1", "s1") == 1).then_some(()));

    let (code, _, stderr) = drover(&agent, &["pause", "p1", "--reason", " "]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, _, stderr) = drover(&agent, &["pause", "p1", "--reason", "checking the replica by hand"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("stops run p1 at its next step boundary"), "{stderr}");
    let run = held_before(&agent, "p1", "s2", 1);
    assert_eq!(run["status"], "waiting", "{run:#}");
    assert_eq!(run["pause"]["reason"], "checking the replica by hand", "{run:#}");
    assert_eq!(agent.attempt_count("p1", "s2"), 0, "s2 did not start while paused");
    let (_, text, _) = drover(&agent, &["show", "p1"]);
    assert!(text.contains("paused    by ") && text.contains("drover unpause p1"), "{text}");

    // The driver dies while the run is paused; a resume waits again.
    assert!(drover_chaos::killed_by_sigkill(&kill9(&mut child)));
    let mut resumed = agent.spawn(&["resume", "p1", "--quiet", "--json"], "").unwrap();
    held_before(&agent, "p1", "s2", 2);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(agent.attempt_count("p1", "s2"), 0, "s2 did not start while paused");

    let (code, _, stderr) = drover(&agent, &["unpause", "p1", "--reason", "replica is fine"]);
    assert_eq!(code, Some(0), "{stderr}");
    let status = resumed.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let run = agent.show("p1").unwrap();
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert!(run.get("pause").is_none_or(Value::is_null), "{run:#}");
    for step in ["s1", "s2", "s3"] {
        assert_eq!(agent.attempt_count("p1", step), 1, "{step}");
    }
    let said = controls(&agent, "p1");
    assert!(said.iter().any(|m| m.contains("unpaused before step 's2'")), "{said:?}");
    let audit = AuditLog::read(&agent.home.join("audit.jsonl")).unwrap();
    let ops: Vec<&str> = audit.iter().map(|r| r.operation.as_str()).collect();
    assert_eq!(ops, ["drover.pause", "drover.unpause"], "{audit:?}");
    // An ended run is not paused.
    let (code, _, stderr) = drover(&agent, &["pause", "p1", "--reason", "late"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("run 'p1' has ended (succeeded); there is nothing to pause"), "{stderr}");
}
