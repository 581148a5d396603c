//! `drover redrive` through the real binary against the emulators: a
//! failover that fails at `point-db-record` because the operator had not
//! granted the record change goes on, once the grant is added, from that
//! step: the promotion is not made again (counted at the proxy, across both
//! processes), the record moves, and the run ends succeeded; its journal,
//! its report and the audit log show the first failure, the redrive and who
//! made it. What cannot be redriven is refused and changes nothing.

use drover_chaos::hypothesis::{Probe, check};
use drover_e2e::{Proxied, args, assert_attempts_share_a_key, assert_failed_over, config_without_the_record_grant, drover, rt, seeded};
use drover_engine::audit::AuditLog;
use drover_test_artifacts as artifacts;
use serde_json::Value;

#[test]
fn a_failover_stopped_by_a_missing_grant_is_redriven_without_promoting_twice() {
    let (c, s) = seeded("redrive");
    let p = Proxied::start();
    let dir = tempfile::tempdir().unwrap();
    let (config, full) = config_without_the_record_grant(dir.path());
    let (_home, agent) = p.agent_with(config.to_str().unwrap());
    let params = s.topology.params();

    // The operator starts the failover knowing a grant is missing (or not).
    let mut a = args(artifacts::REGIONAL_FAILOVER, "rd", &params);
    a.extend(["--json", "--accept-missing-grants"]);
    let (status, run) = agent.json(&a).unwrap();
    assert_eq!(status.code(), Some(1), "{run:#}");
    assert_eq!(run["error"]["code"], "permission-denied", "{run:#}");
    let failed = run["steps"].as_array().unwrap().iter().find(|s| s["key"] == "point-db-record").unwrap();
    assert_eq!(failed["status"], "failed", "{run:#}");
    assert_eq!(p.proxy.faults().accepted_count("rds", "PromoteReadReplica"), 1);
    let untouched = rt().block_on(check(&c, &s, Probe::DbRecordOnPrimary));
    assert!(untouched.ok, "the refused change did not reach Route 53: {}", untouched.detail);

    // Refused without a reason, and for a step the run does not have: nothing changes.
    let (code, _, stderr) = drover(&agent, &["redrive", "rd", "--reason", " "]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--reason is empty"), "{stderr}");
    let (code, _, stderr) = drover(&agent, &["redrive", "rd", "--reason", "x", "--from", "promote-everything"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("it has no step 'promote-everything'; redrive --from one of its steps: preflight"), "{stderr}");
    assert_eq!(agent.show("rd").unwrap()["status"], "failed");

    // The operator adds the grant and redrives.
    std::fs::write(&config, full).unwrap();
    let (status, run) = agent.json(&["redrive", "rd", "--reason", "granted upsert-cname on the db record", "--json", "--quiet"]).unwrap();
    assert_eq!(status.code(), Some(0), "{run:#}");
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(p.proxy.faults().accepted_count("rds", "PromoteReadReplica"), 1, "the promotion was made again: {:?}", p.proxy.faults().accepted());
    assert_failed_over(&c, &s);

    // The step's second attempt kept its idempotency key; the steps before it ran once.
    assert_attempts_share_a_key(&agent, "rd", "point-db-record", 2);
    for key in ["preflight", "promote", "wait-promoted"] {
        assert_eq!(agent.attempt_count("rd", key), 1, "{key} ran again: {:?}", agent.attempts("rd"));
    }

    // The journal says what happened and who did it.
    let events = run["events"].as_array().unwrap();
    let redrive = events.iter().find(|e| e["fields"].as_array().unwrap().iter().any(|f| f[0] == "control" && f[1] == "redrive")).unwrap();
    let message = redrive["message"].as_str().unwrap();
    assert!(message.contains("redriven from step 'point-db-record' by "), "{message}");
    assert!(message.contains("granted upsert-cname on the db record; it had ended with permission-denied"), "{message}");
    let audit = AuditLog::read(&agent.home.join("audit.jsonl")).unwrap();
    let redrives: Vec<_> = audit.iter().filter(|r| r.operation == "drover.redrive").map(|r| (r.run_id.as_str(), r.decision.as_str())).collect();
    // The refused --from (the empty reason is refused before anything is read), then the redrive.
    assert_eq!(redrives, [("rd", "deny"), ("rd", "allow")]);
    let out = tempfile::tempdir().unwrap();
    let (code, _, stderr) = drover(&agent, &["report", "rd", "--out", out.path().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let report = std::fs::read_to_string(out.path().join("rd.md")).unwrap();
    assert!(report.contains("## Operator actions") && report.contains("it had ended with permission-denied"), "{report}");

    // A succeeded run is not redriven.
    let (code, _, stderr) = drover(&agent, &["redrive", "rd", "--reason", "again"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("run 'rd' cannot be redriven: it succeeded"), "{stderr}");
    let audit = AuditLog::read(&agent.home.join("audit.jsonl")).unwrap();
    assert_eq!(audit.iter().filter(|r| r.operation == "drover.redrive" && r.decision == "deny").count(), 2, "{audit:?}");
    let again: Value = agent.show("rd").unwrap();
    assert_eq!(again["status"], "succeeded");
}
