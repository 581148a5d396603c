//! A step that fails for good waits for an operator instead of failing (and
//! undoing) the failover: regional-failover with `operator_wait_seconds`,
//! through the real binary against the emulators, with the grant of the DB
//! record change missing. The run holds at `point-db-record` (status
//! `waiting`, gate `failed:point-db-record:1`), waits again after a SIGKILL
//! and resume, and goes on when the operator retries the step (`drover
//! redrive`, once the grant is added) or skips it (`drover skip`, having
//! moved the record by hand): the promotion is made once, and what the run
//! claims is checked against the cloud. Every decision is recorded with who
//! made it, in the run's events, the audit log and the report.

use std::time::Duration;

use drover_chaos::hypothesis::{Probe, check};
use drover_chaos::{Agent, kill9};
use drover_e2e::{Proxied, args, assert_attempts_share_a_key, assert_failed_over, config_without_the_record_grant, drover, rt, seeded, wait_until};
use drover_engine::audit::AuditLog;
use drover_test_artifacts as artifacts;
use serde_json::Value;

/// Waits until run `id` holds at `gate`, undecided; returns the run.
fn held_at(agent: &Agent, id: &str, gate: &str) -> Value {
    wait_until(&format!("run {id} to hold at {gate}"), Duration::from_secs(60), || {
        let (status, gates) = agent.json(&["approvals", id, "--json"]).ok()?;
        let waiting = status.success() && gates.as_array()?.iter().any(|g| g["gate"] == gate && g["decision"].is_null());
        waiting.then(|| agent.show(id)).flatten().filter(|r| r["status"] == "waiting")
    })
}

/// The run's events that record an operator's control: (control, message).
fn controls(run: &Value) -> Vec<(String, String)> {
    run["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let control = e["fields"].as_array()?.iter().find(|f| f[0] == "control")?[1].as_str()?.to_string();
            Some((control, e["message"].as_str()?.to_string()))
        })
        .collect()
}

#[test]
fn a_failover_held_at_a_missing_grant_waits_across_a_sigkill_and_is_retried_by_the_operator() {
    let (c, s) = seeded("held-retry");
    let p = Proxied::start();
    let dir = tempfile::tempdir().unwrap();
    let (config, full) = config_without_the_record_grant(dir.path());
    let (_home, agent) = p.agent_with(config.to_str().unwrap());
    let mut params = s.topology.params();
    params.push("operator_wait_seconds=600".into());
    let mut a = args(artifacts::REGIONAL_FAILOVER, "h1", &params);
    a.push("--accept-missing-grants");
    let mut child = agent.spawn(&a, "").unwrap();

    let run = held_at(&agent, "h1", "failed:point-db-record:1");
    let (_, text, _) = drover(&agent, &["show", "h1"]);
    assert!(text.contains("waits for an operator at gate failed:point-db-record:1"), "{text}");
    assert!(controls(&run).is_empty(), "{run:#}");
    // Nothing was undone: the promotion stands, the record has not moved.
    assert_eq!(p.proxy.faults().accepted_count("rds", "PromoteReadReplica"), 1);
    assert!(rt().block_on(check(&c, &s, Probe::DbRecordOnPrimary)).ok);
    // A step that does not wait for an operator is not skipped, and this one may not be skipped without a reason.
    let (code, _, stderr) = drover(&agent, &["skip", "h1", "shift-app-weights", "--reason", "x"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot skip step 'shift-app-weights' of run 'h1': the run has not reached"), "{stderr}");
    let (code, _, stderr) = drover(&agent, &["skip", "h1", "point-db-record", "--reason", " "]);
    assert_eq!(code, Some(2), "{stderr}");

    // The driver dies while the run waits; the operator adds the grant, and a
    // resume (which reads the new configuration) waits at the same gate.
    assert!(drover_chaos::killed_by_sigkill(&kill9(&mut child)));
    std::fs::write(&config, &full).unwrap();
    let mut resumed = agent.spawn(&["resume", "h1", "--quiet"], "").unwrap();
    wait_until("the resumed driver to own h1", Duration::from_secs(30), || {
        agent.show("h1").filter(|r| r["driver"]["pid"].as_u64() == Some(u64::from(resumed.id()))).map(|_| ())
    });
    held_at(&agent, "h1", "failed:point-db-record:1");
    assert_eq!(agent.attempt_count("h1", "point-db-record"), 1, "the held step did not run again by itself");

    let (code, out, stderr) = drover(&agent, &["redrive", "h1", "--reason", "granted upsert-cname on the db record"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(out.contains("step point-db-record of run h1: retried"), "{out}");
    let status = resumed.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let run = agent.show("h1").unwrap();
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(p.proxy.faults().accepted_count("rds", "PromoteReadReplica"), 1, "the promotion was made again");
    assert_failed_over(&c, &s);
    assert_attempts_share_a_key(&agent, "h1", "point-db-record", 2);
    let said = controls(&run);
    assert!(said.iter().any(|(c, m)| c == "retry" && m.contains("step 'point-db-record' retried by ") && m.contains("granted upsert-cname")), "{said:?}");
    let audit = AuditLog::read(&agent.home.join("audit.jsonl")).unwrap();
    assert!(audit.iter().any(|r| r.operation == "drover.retry" && r.step.as_deref() == Some("point-db-record")), "{audit:?}");
    // A decided gate is not decided twice; an ended run is not skipped.
    let (code, _, stderr) = drover(&agent, &["skip", "h1", "point-db-record", "--reason", "late"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("run 'h1' has ended (succeeded); there is nothing to skip"), "{stderr}");
}

#[test]
fn a_held_record_change_is_skipped_after_the_operator_moved_the_record_by_hand_and_verify_still_checks_it() {
    let (c, s) = seeded("held-skip");
    let p = Proxied::start();
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config_without_the_record_grant(dir.path());
    let (_home, agent) = p.agent_with(config.to_str().unwrap());
    let mut params = s.topology.params();
    params.push("operator_wait_seconds=600".into());
    let mut a = args(artifacts::REGIONAL_FAILOVER, "h2", &params);
    a.extend(["--accept-missing-grants", "--json"]);
    let child = agent.spawn(&a, "").unwrap();
    let run = held_at(&agent, "h2", "failed:point-db-record:1");

    // The operator moves the record with their own tools, then skips the step.
    let endpoint = run["steps"].as_array().unwrap().iter().find(|s| s["key"] == "wait-promoted").unwrap()["output"].as_str().unwrap().to_string();
    let t = &s.topology;
    rt().block_on(drover_aws::route53::upsert_cname(&c, &t.hosted_zone, &t.db_record, &endpoint, 60, Duration::from_secs(30))).unwrap();
    let (code, out, stderr) = drover(&agent, &["skip", "h2", "point-db-record", "--reason", "moved db record by hand"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(out.contains("step point-db-record of run h2: skipped"), "{out}");
    let out = child.wait_with_output().unwrap();
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let warnings = run["result"]["warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().contains("was not moved by drover: an operator skipped point-db-record")), "{warnings:?}");
    let point = run["steps"].as_array().unwrap().iter().find(|s| s["key"] == "point-db-record").unwrap();
    assert_eq!((point["status"].as_str(), &point["output"]), (Some("succeeded"), &Value::Bool(false)), "{point:#}");
    // Verify read the record back: it points where the operator put it.
    assert_failed_over(&c, &s);
    assert_eq!(agent.attempt_count("h2", "verify"), 1);
    let said = controls(&run);
    assert!(said.iter().any(|(c, m)| c == "skip" && m.contains("step 'point-db-record' was skipped by ") && m.contains("moved db record by hand")), "{said:?}");
    let audit = AuditLog::read(&agent.home.join("audit.jsonl")).unwrap();
    assert!(audit.iter().any(|r| r.operation == "drover.skip" && r.step.as_deref() == Some("point-db-record")), "{audit:?}");
    // The report says who skipped what, and why.
    let (code, _, stderr) = drover(&agent, &["report", "h2", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let report = std::fs::read_to_string(dir.path().join("h2.md")).unwrap();
    assert!(report.contains("## Operator actions") && report.contains("was skipped by") && report.contains("moved db record by hand"), "{report}");
}
