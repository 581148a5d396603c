//! The embedded store's lease, and `drover takeover`: an agent's container
//! is re-created with the same volume (the same home and `runs.db`) under a
//! new host name, leaving a run claimed by a host that will never come
//! back. The old container is played by `DROVER_HOST_NAME=old-host` (the
//! host-name test hook) and a SIGKILL.

use std::path::Path;
use std::time::Duration;

use drover_chaos::{Agent, kill9};
use drover_e2e::{Served, free_port, wait_until};
use drover_engine::audit::AuditLog;
use drover_test_artifacts as artifacts;
use serde_json::{Value, json};

/// The agent before and after the re-creation: one home, two host names.
fn agents(home: &Path, store: &str) -> (Agent, Agent) {
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(home.join("drover.toml"), format!("store = {store}\n")).unwrap();
    (Agent::new(home).with_env(drover_journal::HOST_NAME_ENV, "old-host"), Agent::new(home))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Before the old lease runs out, `resume` and a plain `takeover` are
/// refused, naming the holder and how long its lease lasts; `takeover
/// --force` takes the run, recorded with the run and in the audit log
/// (the refusal too); then `cancel` drives it to its end.
#[test]
fn a_run_held_by_a_gone_host_is_taken_over_on_the_operators_word_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (old, new) = agents(&home, "{ embedded = { lease_seconds = 300 } }");
    let mut child = old.spawn(&["run", artifacts::HELLO_DURABLE, "--run-id", "stuck", "-p", "pause_seconds=600", "--quiet"], "").unwrap();
    old.wait_for_status("stuck", "waiting", Duration::from_secs(60)).unwrap();
    kill9(&mut child);

    let run = new.show("stuck").unwrap();
    assert_eq!((run["driver"]["host"].as_str(), run["driver"]["alive"].as_bool()), (Some("old-host"), Some(true)), "{run:#}");
    assert!(run["driver"]["lease_expires_at"].is_string(), "{run:#}");
    let out = new.output(&["resume", "stuck", "--quiet"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("on old-host") && stderr(&out).contains("drover takeover stuck"), "{}", stderr(&out));

    let out = new.output(&["takeover", "stuck", "--reason", "container re-created"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("old-host") && err.contains("lease until") && err.contains("--force"), "{err}");
    assert_eq!(new.show("stuck").unwrap()["driver"]["host"], "old-host", "a refused takeover changes nothing");

    let (status, done) = new.json(&["takeover", "stuck", "--reason", "container re-created", "--force", "--json"]).unwrap();
    assert!(status.success(), "{done:#}");
    assert_eq!((done["forced"].as_bool(), done["reason"].as_str()), (Some(true), Some("container re-created")), "{done:#}");
    assert!(done["taken_over_from"].as_str().unwrap().contains("old-host"), "{done:#}");

    let audit = AuditLog::read(&home.join("audit.jsonl")).unwrap();
    let takeovers: Vec<_> = audit.iter().filter(|r| r.operation == "drover.takeover" && r.run_id == "stuck").collect();
    assert_eq!(takeovers.iter().map(|r| r.decision.as_str()).collect::<Vec<_>>(), ["deny", "allow"], "{audit:?}");
    let why = takeovers[1].reason.as_deref().unwrap();
    assert!(why.contains("container re-created") && why.contains("old-host") && why.contains("forced"), "{why}");
    let run = new.show("stuck").unwrap();
    assert!(run["driver"].is_null(), "the run is left for whoever resumes it: {run:#}");
    let event = run["events"].as_array().unwrap().iter().find(|e| e["message"].as_str().unwrap_or("").contains("taken over by")).cloned();
    assert!(event.is_some_and(|e| e.to_string().contains("container re-created")), "{run:#}");

    // No live driver now: cancel drives the run to its end itself.
    let out = new.output(&["cancel", "stuck", "--reason", "failover abandoned", "--quiet"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(new.show("stuck").unwrap()["status"], "cancelled");
}

/// Once the old host's lease has run out, nobody has to step in: the run
/// shows no live driver and `drover resume` finishes it.
#[test]
fn a_run_left_by_a_re_created_container_resumes_once_its_lease_ran_out() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = agents(&dir.path().join("home"), "{ embedded = { lease_seconds = 2 } }");
    let mut child = old.spawn(&["run", artifacts::HELLO_DURABLE, "--run-id", "left", "-p", "pause_seconds=2", "--quiet"], "").unwrap();
    old.wait_for_status("left", "waiting", Duration::from_secs(60)).unwrap();
    kill9(&mut child);
    wait_until("the old host's lease to run out", Duration::from_secs(60), || new.show("left").filter(|r| r["driver"]["alive"] == false).map(|_| ()));
    let (status, run) = new.json(&["resume", "left", "--json", "--quiet"]).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(new.attempt_count("left", "announce"), 1, "a step completed before the re-creation is not run again");
}

/// `drover serve` in the re-created container: the alert that started the
/// run before joins it (one failover per outage), and the new agent takes
/// the run up once the old lease ran out: it waits at its gate again, is
/// approved over the API and finishes.
#[test]
fn the_scope_of_a_run_left_by_a_re_created_container_is_joined_and_the_run_taken_up() {
    const API: &str = "api-token-0123456789abcdef";
    const AM: &str = "alertmanager-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = agents(&dir.path().join("home"), "{ embedded = { lease_seconds = 2 } }");
    let (old, new) = (old.with_env("T_API", API).with_env("T_AM", AM), new.with_env("T_API", API).with_env("T_AM", AM));
    let cfg = dir.path().join("drover.toml");
    std::fs::write(
        &cfg,
        format!(
            "store = {{ embedded = {{ lease_seconds = 2 }} }}\n[serve]\napi_token_env = \"T_API\"\n\
             [[serve.runbook]]\npath = \"{}\"\n\
             [[serve.trigger]]\nname = \"am\"\nkind = \"alertmanager\"\nauth = {{ bearer_env = \"T_AM\" }}\nrunbook = \"janitor\"\n\
             params = {{ gate_after = 1 }}\nscope = \"app:{{app}}\"\n",
            artifacts::JANITOR
        ),
    )
    .unwrap();
    let alert = json!({"version": "4", "status": "firing", "receiver": "drover", "groupKey": "{}:{}",
        "alerts": [{"status": "firing", "labels": {"alertname": "OrdersDown", "app": "orders"}, "annotations": {}, "fingerprint": "f1"}]})
    .to_string();
    let am = format!("Bearer {AM}");
    let api = format!("Bearer {API}");
    let fire = |s: &Served| -> Value {
        let (code, v) = s.call("POST", "/v1/triggers/am", &[("authorization", &am)], alert.as_bytes());
        assert_eq!(code, 202, "{v}");
        v["runs"][0].clone()
    };

    let addr = format!("127.0.0.1:{}", free_port());
    let s = Served::start(&old, &cfg, &addr, &dir.path().join("old.log"));
    let first = fire(&s);
    let id = first["run_id"].as_str().unwrap().to_string();
    old.wait_for_status(&id, "waiting", Duration::from_secs(60)).unwrap();
    s.kill();

    let s = Served::start(&new, &cfg, &addr, &dir.path().join("new.log"));
    let again = fire(&s);
    assert_eq!((again["run_id"].as_str(), again["joined"].as_bool()), (Some(id.as_str()), Some(true)), "{again}");
    wait_until("the new agent to take the run up at its gate", Duration::from_secs(60), || {
        let (_, health) = s.call("GET", "/v1/health", &[], b"");
        health["driving"].as_array().is_some_and(|d| d.iter().any(|r| r == id.as_str())).then_some(())
    });
    let (code, v) = s.call(
        "POST",
        &format!("/v1/runs/{id}/approvals/g1"),
        &[("authorization", &api), ("content-type", "application/json")],
        json!({"approve": true, "by": "sre-oncall"}).to_string().as_bytes(),
    );
    assert_eq!(code, 200, "{v}");
    new.wait_for_status(&id, "succeeded", Duration::from_secs(60)).unwrap();
    assert_eq!(new.attempt_count(&id, "s1"), 1, "the step before the gate ran once");
}
