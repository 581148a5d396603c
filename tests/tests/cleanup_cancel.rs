//! Cleanups survive crashes and cancel works, through the real `drover` binary.

use std::time::Duration;

use drover_chaos::{Agent, kill9, killed_by_sigkill};
use drover_test_artifacts as artifacts;
use serde_json::Value;

fn agent() -> (tempfile::TempDir, Agent) {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::new(dir.path().join("home"));
    (dir, agent)
}

fn actions(run: &Value) -> Vec<(String, String)> {
    run["cleanup"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (format!("{}:{}", a["kind"].as_str().unwrap(), a["key"].as_str().unwrap()), a["status"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn sigkill_during_cleanup_then_resume_finishes_the_rest_and_repeats_none() {
    let (_d, agent) = agent();
    // s3 fails; then undo u2, u1 and cleanups c3, c2, c1 run. Die right after cleanup c2.
    let mut child = agent.spawn(&["run", artifacts::JANITOR, "--run-id", "kc", "-p", "fail_at=3", "--quiet"], "after-step:cleanup:c2").unwrap();
    assert!(killed_by_sigkill(&child.wait().unwrap()));
    let mid = agent.show("kc").unwrap();
    assert_eq!(mid["status"], "running");
    assert_eq!(mid["cleanup"]["status"], "pending");

    let (status, run) = agent.json(&["resume", "kc", "--json", "--quiet"]).unwrap();
    assert_eq!(status.code(), Some(1), "{run:#}");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"]["code"], "janitor-failure");
    assert_eq!(run["cleanup"]["status"], "succeeded");
    for key in ["undo:u2", "undo:u1", "cleanup:c3", "cleanup:c2", "cleanup:c1"] {
        assert_eq!(agent.attempt_count("kc", key), 1, "{key}");
    }

    // Killed inside a cleanup that may take two attempts: it runs again, with the same key.
    let mut child = agent.spawn(&["run", artifacts::JANITOR, "--run-id", "kc2", "-p", "cleanup_attempts=2", "--quiet"], "before-complete:cleanup:c2").unwrap();
    assert!(killed_by_sigkill(&child.wait().unwrap()));
    let (status, run) = agent.json(&["resume", "kc2", "--json", "--quiet"]).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(agent.attempt_count("kc2", "cleanup:c3"), 1);
    assert_eq!(agent.attempt_count("kc2", "cleanup:c2"), 2);
    assert_eq!(agent.attempt_count("kc2", "cleanup:c1"), 1);
    assert!(actions(&run).iter().all(|(k, s)| if k.starts_with("undo") { s == "skipped" } else { s == "succeeded" }), "{:?}", actions(&run));

    // Killed inside a cleanup allowed one attempt: it is not run blind a
    // second time; the cleanup is reported failed, interrupted, and the
    // others still run.
    let mut child = agent.spawn(&["run", artifacts::JANITOR, "--run-id", "kc3", "--quiet"], "before-complete:cleanup:c2").unwrap();
    assert!(killed_by_sigkill(&child.wait().unwrap()));
    let (_, run) = agent.json(&["resume", "kc3", "--json", "--quiet"]).unwrap();
    assert_eq!(run["cleanup"]["status"], "failed", "{run:#}");
    assert_eq!(agent.attempt_count("kc3", "cleanup:c2"), 1);
    let c2 = run["cleanup"]["actions"].as_array().unwrap().iter().find(|a| a["key"] == "c2").unwrap();
    assert_eq!(c2["error"]["code"], "interrupted", "{c2:#}");
    assert_eq!(agent.attempt_count("kc3", "cleanup:c1"), 1);
    assert_eq!(agent.attempt_count("kc3", "cleanup:c3"), 1);
}

#[test]
fn drover_cancel_stops_a_sleeping_run_and_records_who_and_why() {
    let (_d, agent) = agent();
    let child = agent.spawn(&["run", artifacts::JANITOR, "--run-id", "cx", "-p", "sleep_after=2", "-p", "sleep_ms=120000", "--quiet"], "").unwrap();
    agent.wait_for_status("cx", "waiting", Duration::from_secs(30)).unwrap();
    let (status, run) = agent.json(&["cancel", "cx", "--reason", "game-day over", "--json", "--quiet"]).unwrap();
    assert_eq!(status.code(), Some(3), "{run:#}");
    assert_eq!(run["status"], "cancelled");
    assert_eq!(run["cancel"]["reason"], "game-day over");
    assert!(run["cancel"]["by"].as_str().unwrap().contains("pid"));
    assert_eq!(run["cleanup"]["status"], "succeeded");
    let ran: Vec<String> = actions(&run).into_iter().filter(|(_, s)| s == "succeeded").map(|(k, _)| k).collect();
    assert_eq!(ran.len(), 4, "{ran:?}");
    // The driver that was cancelled exits with the cancelled code.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));

    // Cancelling a finished run changes nothing and says so.
    let out = agent.output(&["cancel", "cx", "--reason", "again"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already ended (cancelled); cancel changes nothing"));
    assert_eq!(agent.show("cx").unwrap()["cancel"]["reason"], "game-day over");
}

#[test]
fn drover_cancel_of_a_run_whose_agent_died_runs_its_cleanups_itself() {
    let (_d, agent) = agent();
    let mut child = agent.spawn(&["run", artifacts::JANITOR, "--run-id", "orphan", "-p", "sleep_after=1", "-p", "sleep_ms=120000", "--quiet"], "").unwrap();
    agent.wait_for_status("orphan", "waiting", Duration::from_secs(30)).unwrap();
    kill9(&mut child);
    let (status, run) = agent.json(&["cancel", "orphan", "--reason", "region recovered", "--json", "--quiet"]).unwrap();
    assert_eq!(status.code(), Some(3), "{run:#}");
    assert_eq!(run["status"], "cancelled");
    assert_eq!(run["cleanup"]["status"], "succeeded");
    assert_eq!(agent.attempt_count("orphan", "s1"), 1);
    assert_eq!(agent.attempt_count("orphan", "undo:u1"), 1);
    assert_eq!(agent.attempt_count("orphan", "cleanup:c1"), 1);
}
