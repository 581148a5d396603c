//! `dns-shift` against the real emulators: a healthy shift goes through
//! every stage; a health gate that fails after the 50 percent stage (the DR
//! side's 5xx alarm goes off) fails the run and puts the weights back as
//! they were before the shift; a gate that fails before the first stage, a
//! mistyped alarm, no gate at all, or bad stages change nothing.

use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::StateValue;
use drover_chaos::topology::{Seeded, set_alarm};
use drover_e2e::{agent, args, rt, seeded};
use drover_test_artifacts as artifacts;
use serde_json::Value;

/// The weights of the app's weighted sets: (primary, DR).
fn weights(c: &drover_aws::Clients, s: &Seeded) -> (u8, u8) {
    let t = &s.topology;
    let sets = rt().block_on(drover_aws::route53::get_records(c, &t.hosted_zone, &t.app_record)).unwrap();
    let w = |region: &str| sets.iter().find(|r| r.set_identifier.as_deref() == Some(region)).and_then(|r| r.weight).unwrap();
    (w(&t.primary_region), w(&t.dr_region))
}

fn step_keys(run: &Value) -> Vec<String> {
    run["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap().to_string()).collect()
}

fn shift_params(s: &Seeded, extra: &[&str]) -> Vec<String> {
    let mut p = s.shift_params();
    for e in extra {
        let name = e.split('=').next().unwrap();
        p.retain(|x| !x.starts_with(&format!("{name}=")));
        p.push(e.to_string());
    }
    p
}

#[test]
fn a_healthy_shift_goes_through_every_stage() {
    let (c, s) = seeded("shift-ok");
    let (_d, agent) = agent();
    let params = shift_params(&s, &["stages=10,50,100", "soak_seconds=1", "check_interval_seconds=1"]);
    let out = agent.output(&args(artifacts::DNS_SHIFT, "ok", &params));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(weights(&c, &s), (0, 100));
    let run = agent.show("ok").unwrap();
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let keys = step_keys(&run);
    for k in ["preflight", "gate-before", "stage-10", "gate-10-1", "stage-50", "gate-50-1", "stage-100", "gate-100-1"] {
        assert!(keys.contains(&k.to_string()), "{k} in {keys:?}");
    }
    assert_eq!(run["result"]["stages"], serde_json::json!([10, 50, 100]), "{run:#}");
}

#[test]
fn a_gate_failing_after_the_50_percent_stage_rolls_the_weights_back() {
    let (c, s) = seeded("shift-bad");
    let (_d, agent) = agent();
    // A soak long enough for the alarm to go off while the 50 percent stage stands.
    let params = shift_params(&s, &["stages=10,50,100", "soak_seconds=4", "check_interval_seconds=1"]);
    let mut child = agent.spawn(&args(artifacts::DNS_SHIFT, "bad", &params), "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while weights(&c, &s) != (50, 50) {
        assert!(Instant::now() < deadline, "the 50 percent stage never came");
        assert!(child.try_wait().unwrap().is_none(), "the shift ended before its 50 percent stage");
        std::thread::sleep(Duration::from_millis(50));
    }
    rt().block_on(set_alarm(&c, &s.topology.dr_region, &s.dr_alarm, StateValue::Alarm, "game-day: 5xx over threshold")).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());

    let run = agent.show("bad").unwrap();
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["error"]["code"], "health-gate-failed", "{run:#}");
    let msg = run["error"]["message"].as_str().unwrap();
    assert!(msg.contains("after the 50 percent stage") && msg.contains(&s.dr_alarm) && msg.contains("game-day"), "{msg}");
    assert!(!step_keys(&run).contains(&"stage-100".to_string()), "{run:#}");
    let undo = run["cleanup"]["actions"].as_array().unwrap().iter().find(|a| a["key"] == "restore-weights").unwrap();
    assert_eq!(undo["status"], "succeeded", "{run:#}");
    assert_eq!(weights(&c, &s), (100, 0), "the weights are back as before the shift");
}

#[test]
fn a_shift_that_cannot_be_gated_changes_nothing() {
    let (c, s) = seeded("shift-none");
    let (_d, agent) = agent();
    let cases: [(&str, Vec<&str>, &str); 3] = [
        ("typo", vec!["alarms=orders-app-no-such-alarm"], "alarm-not-found"),
        ("blind", vec!["alarms=", "health_check="], "no-health-gate"),
        ("stages", vec!["stages=50,10"], "bad-stages"),
    ];
    for (id, extra, code) in cases {
        let params = shift_params(&s, &extra);
        let out = agent.output(&args(artifacts::DNS_SHIFT, id, &params));
        assert!(!out.status.success(), "{id}");
        let run = agent.show(id).unwrap();
        assert_eq!(run["error"]["code"], code, "{id}: {run:#}");
        assert_eq!(weights(&c, &s), (100, 0), "{id}");
    }

    // The DR side is already failing: refused before any change.
    rt().block_on(set_alarm(&c, &s.topology.dr_region, &s.dr_alarm, StateValue::Alarm, "already failing")).unwrap();
    let params = shift_params(&s, &["soak_seconds=1", "check_interval_seconds=1"]);
    let out = agent.output(&args(artifacts::DNS_SHIFT, "before", &params));
    assert!(!out.status.success());
    let run = agent.show("before").unwrap();
    assert_eq!(run["error"]["code"], "health-gate-failed", "{run:#}");
    let msg = run["error"]["message"].as_str().unwrap();
    assert!(msg.contains("before any change") && msg.contains("DNS left unchanged"), "{msg}");
    assert!(!step_keys(&run).iter().any(|k| k.starts_with("stage-")), "{run:#}");
    assert_eq!(weights(&c, &s), (100, 0));
}
