//! `dns-shift` against the simulated demo topology
//! (`runbooks/scenarios/demo.toml`): `cargo test` in `runbooks/`.

use drover_sdk::testing::{Fault, Report, Scenario, TestRun};
use serde_json::Value;

use super::DnsShift;

fn demo() -> Scenario {
    Scenario::from_toml(include_str!("../../scenarios/demo.toml")).unwrap()
}

fn gated(s: &Scenario) -> TestRun {
    TestRun::new(s).param("health_check", "hc-orders-app-dr").param("alarms", "orders-app-dr-5xx")
}

fn weights(r: &Report) -> Vec<(String, u64)> {
    let zone = &r.cloud.state()["route53"]["zones"]["orders.example.internal"];
    let mut w: Vec<(String, u64)> = zone
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "app.orders.example.internal.")
        .map(|s| (s["set_identifier"].as_str().unwrap().to_string(), s["weight"].as_u64().unwrap()))
        .collect();
    w.sort();
    w
}

fn before() -> Vec<(String, u64)> {
    vec![("us-east-1".into(), 100), ("us-west-2".into(), 0)]
}

#[test]
fn shifts_in_stages_gated_on_the_destination() {
    let r = gated(&demo()).run::<DnsShift>();
    assert!(r.succeeded(), "{r}");
    let out: Value = r.output();
    assert_eq!(out["stages"], serde_json::json!([10, 50, 100]));
    assert_eq!(r.cloud.changes("route53.set-weights"), 3);
    assert_eq!(weights(&r), [("us-east-1".to_string(), 0), ("us-west-2".to_string(), 100)]);
    // Each stage soaked 300 s of simulated time, read every 30 s.
    assert_eq!(out["gate_checks"], 31);
}

#[test]
fn an_alarm_during_a_soak_puts_every_weight_back() {
    let mut scenario = demo();
    // Fires 400 s in: during the 50 % stage's soak.
    scenario.cloudwatch.alarms[0].alarm_after_seconds = Some(400);
    let r = gated(&scenario).run::<DnsShift>();
    assert_eq!(r.error().code(), "health-gate-failed", "{r}");
    assert!(r.error().message().contains("orders-app-dr-5xx"), "{}", r.error());
    assert!(!r.has_step("stage-100"));
    assert_eq!(r.step("undo:restore-weights").status, "completed");
    assert_eq!(weights(&r), before());
}

#[test]
fn a_throttled_weight_change_is_retried_and_applied_once() {
    let scenario = demo().fault(Fault::new("route53.set-weights", "Throttling").times(2));
    let r = gated(&scenario).run::<DnsShift>();
    assert!(r.succeeded(), "{r}");
    assert_eq!(r.step("stage-10").attempts, 3);
    assert_eq!(r.cloud.changes("route53.set-weights"), 3);
}

#[test]
fn a_missing_weighted_set_changes_nothing() {
    let r = gated(&demo()).param("to", "eu-west-1").run::<DnsShift>();
    assert_eq!(r.error().code(), "record-not-found", "{r}");
    assert!(r.calls().iter().all(|c| !c.changed));
}

#[test]
fn no_health_signal_is_refused_unless_ungated() {
    let r = TestRun::new(&demo()).run::<DnsShift>();
    assert_eq!(r.error().code(), "no-health-gate", "{r}");
    let r = TestRun::new(&demo()).param("ungated", true).run::<DnsShift>();
    assert!(r.succeeded(), "{r}");
}

#[test]
fn a_crash_after_a_stage_or_a_gate_check_replays_without_reapplying() {
    for step in ["stage-10", "gate-10-3", "stage-50", "gate-100-10"] {
        let r = gated(&demo()).crash_before_complete(step).run::<DnsShift>();
        assert!(r.succeeded(), "crash in {step}: {r}");
        assert_eq!(r.crashes, 1);
        assert_eq!(r.cloud.changes("route53.set-weights"), 3, "crash in {step}\n{r}");
    }
}

/// The parity check with the agent: `tests/tests/simulated.rs` runs the
/// compiled component in the real engine (`drover test`) on the same
/// scenario and compares with the same file.
#[test]
fn journals_what_the_agent_journals_under_the_same_faults() {
    let scenario = Scenario::from_toml(include_str!("../../scenarios/parity/dns-shift.toml")).unwrap();
    TestRun::new(&scenario).run::<DnsShift>().assert_journal(include_str!("../../scenarios/parity/dns-shift.journal.json"));
}
