//! `regional-failover` against the simulated demo topology
//! (`runbooks/scenarios/demo.toml`): `cargo test` in `runbooks/`.

use drover_sdk::testing::{Fault, Report, Scenario, TestRun};
use serde_json::Value;

use super::RegionalFailover;

fn demo() -> Scenario {
    Scenario::from_toml(include_str!("../../scenarios/demo.toml")).unwrap()
}

fn weights(r: &Report) -> Vec<(String, u8)> {
    let zone = &r.cloud.state()["route53"]["zones"]["orders.example.internal"];
    let mut w: Vec<(String, u8)> = zone
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "app.orders.example.internal.")
        .map(|s| (s["set_identifier"].as_str().unwrap().to_string(), s["weight"].as_u64().unwrap() as u8))
        .collect();
    w.sort();
    w
}

fn db_record(r: &Report) -> String {
    let zone = &r.cloud.state()["route53"]["zones"]["orders.example.internal"];
    zone.as_array().unwrap().iter().find(|s| s["name"] == "db.orders.example.internal.").unwrap()["values"][0].as_str().unwrap().to_string()
}

#[test]
fn fails_over_the_demo_topology() {
    let r = TestRun::new(&demo()).run::<RegionalFailover>();
    assert!(r.succeeded(), "{r}");
    let out: Value = r.output();
    assert_eq!(out["endpoint"], "orders-db-replica.c0ffee.us-west-2.rds.amazonaws.com");
    assert_eq!(out["estimated_rpo_seconds"], 2.0);
    assert_eq!(out["rto_met"], true);
    // One snapshot, one promotion, one copy, one DB record change, one weight change.
    for call in ["rds.create-snapshot", "rds.promote-read-replica", "rds.copy-snapshot", "route53.upsert-cname", "route53.set-weights"] {
        assert_eq!(r.cloud.changes(call), 1, "{call}\n{r}");
    }
    assert_eq!(weights(&r), [("us-east-1".to_string(), 0), ("us-west-2".to_string(), 100)]);
    assert_eq!(db_record(&r), "orders-db-replica.c0ffee.us-west-2.rds.amazonaws.com");
    let replica = &r.cloud.state()["rds"]["instances"]["us-west-2"]["orders-db-replica"]["instance"];
    assert_eq!(replica["replica_source"], Value::Null);
    // The promotion's wait took simulated time, not wall time.
    assert!(out["rto_seconds"].as_f64().unwrap() >= 120.0, "{out}");
}

#[test]
fn a_throttled_promotion_is_retried_and_happens_once() {
    let scenario = demo().fault(Fault::new("rds.promote-read-replica", "Throttling").times(2));
    let r = TestRun::new(&scenario).run::<RegionalFailover>();
    assert!(r.succeeded(), "{r}");
    assert_eq!(r.step("promote").attempts, 3, "{r}");
    assert_eq!(r.cloud.count("rds.promote-read-replica"), 3);
    assert_eq!(r.cloud.changes("rds.promote-read-replica"), 1);
}

#[test]
fn throttling_past_the_retries_fails_before_any_dns_change() {
    let scenario = demo().fault(Fault::new("rds.promote-read-replica", "Throttling").times(0));
    let r = TestRun::new(&scenario).run::<RegionalFailover>();
    assert!(!r.succeeded());
    assert_eq!(r.error().code(), "Throttling", "{r}");
    assert_eq!(r.step("promote").status, "failed");
    assert_eq!(r.cloud.changes("route53.upsert-cname"), 0);
    assert_eq!(r.cloud.changes("route53.set-weights"), 0);
    assert_eq!(weights(&r), [("us-east-1".to_string(), 100), ("us-west-2".to_string(), 0)]);
}

#[test]
fn a_missing_replica_changes_nothing() {
    let scenario = demo().without_rds_instance("us-west-2", "orders-db-replica");
    let r = TestRun::new(&scenario).run::<RegionalFailover>();
    assert!(!r.succeeded());
    assert_eq!(r.error().code(), "DBInstanceNotFound", "{r}");
    assert!(r.error().message().contains("orders-db-replica"), "{}", r.error());
    assert!(r.calls().iter().all(|c| !c.changed), "{r}");
}

#[test]
fn replica_lag_over_the_rpo_is_refused_unless_accepted() {
    let scenario = demo().lag("orders-db-replica", Some(900.0));
    let r = TestRun::new(&scenario).run::<RegionalFailover>();
    assert_eq!(r.error().code(), "replica-lag-over-rpo", "{r}");
    assert!(r.calls().iter().all(|c| !c.changed));
    let r = TestRun::new(&scenario).param("accept_replica_lag", true).run::<RegionalFailover>();
    assert!(r.succeeded(), "{r}");
    let out: Value = r.output();
    assert_eq!(out["estimated_rpo_seconds"], 900.0);
}

#[test]
fn a_dead_primary_region_skips_the_final_snapshot() {
    let r = TestRun::new(&demo().region_down("us-east-1")).run::<RegionalFailover>();
    assert!(r.succeeded(), "{r}");
    let out: Value = r.output();
    assert_eq!(out["snapshot_copy"], Value::Null);
    assert!(out["warnings"].to_string().contains("final snapshot skipped"), "{out}");
    assert_eq!(r.cloud.changes("rds.promote-read-replica"), 1);
}

#[test]
fn a_crash_after_each_side_effect_replays_without_repeating_it() {
    for step in ["final-snapshot", "promote", "wait-promoted", "point-db-record", "shift-app-weights", "copy-final-snapshot", "verify"] {
        let r = TestRun::new(&demo()).crash_before_complete(step).run::<RegionalFailover>();
        assert!(r.succeeded(), "crash in {step}: {r}");
        assert_eq!((r.crashes, r.executions), (1, 2));
        assert_eq!(r.step(step).attempts, 2, "{r}");
        for call in ["rds.create-snapshot", "rds.promote-read-replica", "rds.copy-snapshot", "route53.upsert-cname", "route53.set-weights"] {
            assert_eq!(r.cloud.changes(call), 1, "crash in {step}: {call} changed more than once\n{r}");
        }
        // The replay ran only the crashed step's body again.
        let promoted = r.calls().iter().filter(|c| c.call == "rds.promote-read-replica").count();
        assert_eq!(promoted, if step == "promote" { 2 } else { 1 }, "{r}");
    }
}

#[test]
fn a_crash_after_a_journaled_step_does_not_run_it_again() {
    let r = TestRun::new(&demo()).crash_after_complete("promote").run::<RegionalFailover>();
    assert!(r.succeeded(), "{r}");
    assert_eq!(r.step("promote").attempts, 1);
    assert_eq!(r.cloud.count("rds.promote-read-replica"), 1);
}

#[test]
fn a_failed_verification_puts_the_weights_back() {
    // The DB record's read-back fails for good: verify fails, the undo runs.
    let scenario = demo().fault(Fault::new("route53.get-records", "AccessDenied").after(2).times(0));
    let r = TestRun::new(&scenario).run::<RegionalFailover>();
    assert!(!r.succeeded(), "{r}");
    assert_eq!(r.step("undo:restore-app-weights").status, "completed", "{r}");
    assert_eq!(weights(&r), [("us-east-1".to_string(), 100), ("us-west-2".to_string(), 0)]);
}

#[test]
fn readiness_reads_and_reports_without_changing_anything() {
    let r = TestRun::new(&demo().lag("orders-db-replica", None)).readiness().run::<RegionalFailover>();
    assert!(r.succeeded(), "{r}");
    let found: Value = r.output();
    let text = found.to_string();
    assert!(text.contains("no ReplicaLag reading"), "{text}");
    assert!(r.calls().iter().all(|c| !c.changed));
}

#[test]
fn the_approval_gate_rejected_changes_nothing() {
    let scenario = demo().approval("failover", "reject");
    let r = TestRun::new(&scenario).param("approval", true).run::<RegionalFailover>();
    assert_eq!(r.error().code(), "rejected", "{r}");
    assert!(r.calls().iter().all(|c| !c.changed), "{r}");
}
