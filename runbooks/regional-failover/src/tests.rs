//! `regional-failover` against the simulated demo topology
//! (`runbooks/scenarios/demo.toml`): `cargo test` in `runbooks/`.

use drover_sdk::testing::{Fault, FaultEffect, Report, Scenario, TestRun};
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
    for step in ["promote", "wait-promoted", "point-db-record", "shift-app-weights", "final-snapshot", "copy-final-snapshot", "verify"] {
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
    // The records' read-back fails for good (the preflight's read of them
    // passed): verify fails, the undo runs.
    let scenario = demo().fault(Fault::new("route53.get-records-of", "AccessDenied").after(1).times(0));
    let r = TestRun::new(&scenario).run::<RegionalFailover>();
    assert!(!r.succeeded(), "{r}");
    assert_eq!(r.step("undo:restore-app-weights").status, "completed", "{r}");
    assert_eq!(weights(&r), [("us-east-1".to_string(), 100), ("us-west-2".to_string(), 0)]);
}

/// A stale read in `verify` (the replica as it was before its promotion,
/// which `wait-promoted` already saw finished) is not a failed failover:
/// verify reads again rather than fail and put the traffic back on the
/// region it left.
#[test]
fn a_stale_read_in_verify_is_read_again_not_rolled_back() {
    let mut stale = Fault::new("rds.describe-instance", "stale").effect(FaultEffect::Stale).after(1);
    stale.resource = Some("orders-db-replica".into());
    let r = TestRun::new(&demo().fault(stale)).run::<RegionalFailover>();
    assert!(r.succeeded(), "{r}");
    assert_eq!(r.step("verify").attempts, 2, "{r}");
    assert_eq!(weights(&r), [("us-east-1".to_string(), 0), ("us-west-2".to_string(), 100)]);
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

/// What a `succeeded` failover claims, checked against the simulated
/// cloud's state, not against what the runbook believes it did: the DB
/// record points at an instance that is available and no longer replicates,
/// and every weighted record type of the app gives the DR region all the
/// weight. Returns whether the run succeeded.
fn truthful(r: &Report) -> bool {
    if !r.succeeded() {
        return false;
    }
    let state = r.cloud.state();
    let target = db_record(r);
    let instances = state["rds"]["instances"].as_object().unwrap();
    let promoted = instances
        .values()
        .flat_map(|m| m.as_object().unwrap().values())
        .find(|d| d["instance"]["endpoint"].as_str().is_some_and(|e| e.trim_end_matches('.') == target.trim_end_matches('.')));
    let promoted = promoted.unwrap_or_else(|| panic!("{target} is no instance's endpoint\n{r}"));
    assert_eq!(promoted["instance"]["replica_source"], Value::Null, "succeeded, but {target} still replicates\n{r}");
    assert!(promoted["promoting_from"].is_null() || r.cloud.now_ms() >= promoted["ready_at"].as_i64().unwrap(), "succeeded before the promotion finished\n{r}");
    let zone = state["route53"]["zones"]["orders.example.internal"].as_array().unwrap();
    let app: Vec<&Value> = zone.iter().filter(|s| s["name"] == "app.orders.example.internal." && !s["weight"].is_null()).collect();
    let mut types: Vec<&str> = app.iter().map(|s| s["record_type"].as_str().unwrap()).collect();
    types.dedup();
    assert!(!(types.contains(&"CNAME") && types.iter().any(|t| *t != "CNAME")), "a CNAME beside other records\n{r}");
    for kind in types {
        for s in app.iter().filter(|s| s["record_type"] == kind) {
            let want = if s["set_identifier"] == "us-west-2" { 100 } else { 0 };
            assert_eq!(s["weight"], want, "succeeded, but {kind} {} has weight {}\n{r}", s["set_identifier"], s["weight"]);
        }
    }
    true
}

/// Nothing the run did changed the cloud.
fn changed_nothing(r: &Report) -> bool {
    r.calls().iter().all(|c| !c.changed)
}

#[test]
fn a_busy_replica_is_waited_for_and_never_taken_for_promoted() {
    // Busy when the failover starts: refused, nothing changed.
    for scenario in [demo().busy("orders-db-replica", "backing-up", Some(20)), demo().busy("orders-db-replica", "modifying", None)] {
        let r = TestRun::new(&scenario).run::<RegionalFailover>();
        assert_eq!(r.error().code(), "replica-not-available", "{r}");
        assert!(changed_nothing(&r), "{r}");
    }
    // Busy by the time of the promotion (the capability answers
    // `replica-busy`, retryable): the step waits, then promotes once.
    let scenario = demo().fault(Fault::new("rds.promote-read-replica", "replica-busy").times(3));
    let r = TestRun::new(&scenario).run::<RegionalFailover>();
    assert!(truthful(&r), "{r}");
    assert_eq!(r.cloud.changes("rds.promote-read-replica"), 1, "{r}");
    assert_eq!(r.step("promote").attempts, 4, "{r}");
    // Busy for good: the run fails before any DNS change.
    let scenario = demo().fault(Fault::new("rds.promote-read-replica", "replica-busy").times(0));
    let r = TestRun::new(&scenario).run::<RegionalFailover>();
    assert!(!r.succeeded(), "{r}");
    assert_eq!(r.cloud.changes("rds.promote-read-replica"), 0, "{r}");
    assert_eq!(r.cloud.changes("route53.upsert-cname"), 0, "{r}");
    assert_eq!(r.cloud.changes("route53.set-weights"), 0, "{r}");
}

#[test]
fn the_simulated_cloud_promotes_as_rds_does() {
    // A promotion takes time, during which RDS still shows the source: the
    // runbook's wait-promoted waits for the source to go, not for "available".
    let r = TestRun::new(&demo()).run::<RegionalFailover>();
    assert!(truthful(&r), "{r}");
    let promote = r.calls().iter().position(|c| c.call == "rds.promote-read-replica").unwrap();
    let pointed = r.calls().iter().position(|c| c.call == "route53.upsert-cname").unwrap();
    let promoted_at = r.calls()[promote].at_ms;
    assert!(r.calls()[pointed].at_ms >= promoted_at + 120_000, "DNS moved before the promotion finished\n{r}");
    // A replica that refuses its promotion is never "promoted" by a later attempt.
    let mut cloud = drover_sdk::testing::Cloud::new(&demo().busy("orders-db-replica", "backing-up", None)).unwrap();
    let err = cloud.rds_promote_read_replica("us-west-2", "orders-db-replica", "k1").unwrap_err();
    assert_eq!((err.code.as_str(), err.retryable), ("replica-busy", true));
    let i = cloud.rds_describe_instance("us-west-2", "orders-db-replica").unwrap();
    assert!(i.replica_source.is_some() && i.status == "backing-up", "{i:?}");
}

#[test]
fn a_refused_promotion_never_ends_succeeded() {
    // RDS answers InvalidDBInstanceState to every promotion: no DNS change, no success.
    let scenario = demo().fault(Fault::new("rds.promote-read-replica", "InvalidDBInstanceState").times(0));
    let r = TestRun::new(&scenario).run::<RegionalFailover>();
    assert!(!r.succeeded(), "{r}");
    assert_eq!(r.cloud.changes("route53.upsert-cname"), 0, "{r}");
    assert_eq!(weights(&r), [("us-east-1".to_string(), 100), ("us-west-2".to_string(), 0)]);
}

#[test]
fn an_unknown_lag_is_refused_unless_the_operator_accepts_it() {
    let cases = [
        ("replication not running", demo().lag("orders-db-replica", Some(-1.0))),
        ("no reading", demo().lag("orders-db-replica", None)),
        ("a stale reading", demo().lag("orders-db-replica", Some(1.0)).lag_age("orders-db-replica", 900)),
    ];
    for (what, scenario) in cases {
        let r = TestRun::new(&scenario).run::<RegionalFailover>();
        assert_eq!(r.error().code(), "replica-lag-unknown", "{what}: {r}");
        assert!(r.error().message().contains("accept_unknown_lag"), "{what}: {}", r.error());
        assert!(changed_nothing(&r), "{what}: {r}");
        let r = TestRun::new(&scenario).param("accept_unknown_lag", true).run::<RegionalFailover>();
        assert!(truthful(&r), "{what}: {r}");
        let out: Value = r.output();
        assert_eq!(out["estimated_rpo_seconds"], Value::Null, "{what}: never -1, never a guess: {out}");
        assert!(out["warnings"].to_string().contains("accepted by the operator"), "{what}: {out}");
    }
    // A fresh reading: the result says how old it was.
    let r = TestRun::new(&demo().lag_age("orders-db-replica", 45)).run::<RegionalFailover>();
    assert!(truthful(&r), "{r}");
    let out: Value = r.output();
    assert_eq!(out["lag_reading_age_seconds"], 45, "{out}");
}

#[test]
fn a_target_that_is_not_a_replica_is_refused_unless_it_is_declared_the_writer() {
    let scenario = demo().standalone("orders-db-replica");
    let r = TestRun::new(&scenario).run::<RegionalFailover>();
    assert_eq!(r.error().code(), "not-a-replica", "{r}");
    assert!(r.error().message().contains("target_is_writer"), "{}", r.error());
    assert!(changed_nothing(&r), "{r}");
    let r = TestRun::new(&scenario).param("target_is_writer", true).run::<RegionalFailover>();
    assert!(truthful(&r), "{r}");
    assert_eq!(r.cloud.count("rds.promote-read-replica"), 0, "{r}");
    // Declared the writer while it still replicates: refused.
    let r = TestRun::new(&demo()).param("target_is_writer", true).run::<RegionalFailover>();
    assert_eq!(r.error().code(), "not-the-writer", "{r}");
    assert!(changed_nothing(&r), "{r}");
}

#[test]
fn weighted_a_records_are_shifted_as_a_records() {
    let zone = "orders.example.internal";
    let app = "app.orders.example.internal";
    let scenario = demo().records(
        zone,
        app,
        &[
            ("A", Some("us-east-1"), Some(100), &["10.0.0.10", "10.0.0.11"]),
            ("A", Some("us-west-2"), Some(0), &["10.1.0.10"]),
            ("AAAA", Some("us-east-1"), Some(100), &["fd00::10"]),
            ("AAAA", Some("us-west-2"), Some(0), &["fd01::10"]),
        ],
    );
    let r = TestRun::new(&scenario).run::<RegionalFailover>();
    assert!(truthful(&r), "{r}");
    let sets = r.cloud.state()["route53"]["zones"][zone].clone();
    let app_sets: Vec<&Value> = sets.as_array().unwrap().iter().filter(|s| s["name"] == "app.orders.example.internal.").collect();
    assert_eq!(app_sets.len(), 4, "no CNAME added beside the A records: {app_sets:?}");
    assert!(app_sets.iter().all(|s| s["record_type"] != "CNAME"), "{app_sets:?}");
    let east_a = app_sets.iter().find(|s| s["record_type"] == "A" && s["set_identifier"] == "us-east-1").unwrap();
    assert_eq!(east_a["values"], serde_json::json!(["10.0.0.10", "10.0.0.11"]), "values kept");
    // An AAAA type without a DR set: its clients would not move. Refused before any change.
    let scenario = demo().records(
        zone,
        app,
        &[
            ("A", Some("us-east-1"), Some(100), &["10.0.0.10"]),
            ("A", Some("us-west-2"), Some(0), &["10.1.0.10"]),
            ("AAAA", Some("us-east-1"), Some(100), &["fd00::10"]),
        ],
    );
    let r = TestRun::new(&scenario).run::<RegionalFailover>();
    assert_eq!(r.error().code(), "record-not-found", "{r}");
    assert!(r.error().message().contains("AAAA"), "{}", r.error());
    assert!(changed_nothing(&r), "{r}");
}

/// The parity check with the agent: `tests/tests/simulated.rs` runs the
/// compiled component in the real engine (`drover test`) on the same
/// scenario and compares with the same file.
#[test]
fn journals_what_the_agent_journals_under_the_same_faults() {
    let scenario = Scenario::from_toml(include_str!("../../scenarios/parity/regional-failover.toml")).unwrap();
    TestRun::new(&scenario).run::<RegionalFailover>().assert_journal(include_str!("../../scenarios/parity/regional-failover.journal.json"));
}

/// A DNS change that fails for good waits for an operator
/// (`operator_wait_seconds`) at gate `failed:KEY:N`: retried, it succeeds
/// without a second promotion.
#[test]
fn a_record_change_that_failed_is_retried_by_the_operator() {
    let scenario = demo().fault(Fault::new("route53.upsert-cname", "AccessDenied").times(1)).approval("failed:point-db-record:1", "approve");
    let r = TestRun::new(&scenario).param("operator_wait_seconds", 600).run::<RegionalFailover>();
    assert!(r.succeeded(), "{r}");
    assert_eq!(r.step("point-db-record").attempts, 2, "{r}");
    assert_eq!(r.cloud.changes("rds.promote-read-replica"), 1);
    assert_eq!(db_record(&r), "orders-db-replica.c0ffee.us-west-2.rds.amazonaws.com");
}

/// Skipped by an operator, the record change hands the runbook `false`;
/// verify still reads where the record points: a record nobody moved fails
/// the failover, and the weights go back.
#[test]
fn a_skipped_record_change_does_not_make_verify_pass() {
    let scenario = demo().fault(Fault::new("route53.upsert-cname", "AccessDenied").times(0)).approval("failed:point-db-record:1", "skip");
    let r = TestRun::new(&scenario).param("operator_wait_seconds", 600).run::<RegionalFailover>();
    assert!(!r.succeeded(), "{r}");
    assert_eq!(r.error().code(), "verify-failed", "{r}");
    assert_eq!(r.step("point-db-record").status, "completed", "{r}");
    assert_eq!(r.step("undo:restore-app-weights").status, "completed", "{r}");
    assert_eq!(weights(&r), [("us-east-1".to_string(), 100), ("us-west-2".to_string(), 0)]);
}

/// Nobody decides: once the wait is over the failure stands, and the run
/// fails (and undoes) as it would have at once without the wait.
#[test]
fn a_held_step_nobody_decides_fails_when_the_wait_is_over() {
    let scenario = demo().fault(Fault::new("route53.set-weights", "AccessDenied").times(0));
    let r = TestRun::new(&scenario).param("operator_wait_seconds", 600).run::<RegionalFailover>();
    assert_eq!(r.error().code(), "AccessDenied", "{r}");
    assert_eq!(r.step("shift-app-weights").status, "failed", "{r}");
    assert_eq!(weights(&r), [("us-east-1".to_string(), 100), ("us-west-2".to_string(), 0)]);
    let out = demo().fault(Fault::new("route53.set-weights", "AccessDenied").times(0));
    let at_once = TestRun::new(&out).run::<RegionalFailover>();
    assert_eq!(at_once.error().code(), "AccessDenied", "{at_once}");
    assert!(r.cloud.now_ms() >= at_once.cloud.now_ms() + 600_000, "the run waited for an operator");
}

/// The demo topology with an Auto Scaling group and an ECS service in each
/// region (the DR ones at standby, the DR group's maximum too low), named
/// by the run's parameters.
fn with_compute() -> Scenario {
    const COMPUTE: &str = r#"
[[autoscaling.group]]
region = "us-east-1"
name = "orders-web"
min = 1
max = 6
desired = 3

[[autoscaling.group]]
region = "us-west-2"
name = "orders-web"
max = 2

[[ecs.service]]
region = "us-east-1"
cluster = "orders"
name = "api"
desired = 4

[[ecs.service]]
region = "us-west-2"
cluster = "orders"
name = "api"
"#;
    let mut s = Scenario::from_toml(&format!("{}\n{COMPUTE}", include_str!("../../scenarios/demo.toml"))).unwrap();
    for (k, v) in [("asg_name", "orders-web"), ("ecs_cluster", "orders"), ("ecs_service", "api")] {
        s.params.insert(k.into(), Value::String(v.into()));
    }
    s
}

fn dr_compute(r: &Report) -> (u64, u64, u64) {
    let state = r.cloud.state();
    let g = &state["autoscaling"]["groups"]["us-west-2"]["orders-web"];
    let s = &state["ecs"]["services"]["us-west-2"]["orders/api"]["service"];
    (g["desired"].as_u64().unwrap(), g["max"].as_u64().unwrap(), s["desired_count"].as_u64().unwrap())
}

fn position(r: &Report, key: &str) -> usize {
    r.steps.iter().position(|s| s.key == key).unwrap_or_else(|| panic!("no step {key}\n{r}"))
}

#[test]
fn dr_compute_is_scaled_to_the_primary_before_dns_moves() {
    let r = TestRun::new(&with_compute()).run::<RegionalFailover>();
    assert!(r.succeeded(), "{r}");
    // The primary's 3 instances and 4 tasks; the DR group's maximum raised to hold them.
    assert_eq!(dr_compute(&r), (3, 3, 4));
    assert!(position(&r, "scale-dr-compute") < position(&r, "promote"), "scaled while the database is promoted\n{r}");
    assert!(position(&r, "wait-dr-compute") < position(&r, "point-db-record"), "in service before DNS moves\n{r}");
    assert_eq!(r.cloud.changes("autoscaling.set-capacity"), 1, "{r}");
    assert_eq!(r.cloud.changes("ecs.set-desired-count"), 1, "{r}");
    let out: Value = r.output();
    assert!(out["warnings"].to_string().contains("raised to 3"), "{out}");
}

#[test]
fn a_crash_after_scaling_the_dr_compute_scales_it_once() {
    for step in ["scale-dr-compute", "wait-dr-compute"] {
        let r = TestRun::new(&with_compute()).crash_before_complete(step).run::<RegionalFailover>();
        assert!(r.succeeded(), "crash in {step}: {r}");
        assert_eq!(r.cloud.changes("autoscaling.set-capacity"), 1, "crash in {step}\n{r}");
        assert_eq!(r.cloud.changes("ecs.set-desired-count"), 1, "crash in {step}\n{r}");
        assert_eq!(dr_compute(&r), (3, 3, 4));
    }
}

#[test]
fn a_failed_failover_puts_the_dr_compute_back() {
    let scenario = with_compute().fault(Fault::new("route53.upsert-cname", "AccessDenied"));
    let r = TestRun::new(&scenario).run::<RegionalFailover>();
    assert!(!r.succeeded(), "{r}");
    assert_eq!(dr_compute(&r), (0, 2, 0), "the undo restored the standby capacity\n{r}");
}

#[test]
fn a_primary_region_down_scales_to_the_floor_or_refuses_without_one() {
    let r = TestRun::new(&with_compute().region_down("us-east-1")).run::<RegionalFailover>();
    assert!(!r.succeeded(), "{r}");
    assert_eq!(r.error().code(), "capacity-unknown", "{r}");
    assert_eq!(r.cloud.changes("rds.promote-read-replica"), 0, "nothing promoted: {r}");
    let mut floors = with_compute().region_down("us-east-1");
    floors.params.insert("asg_min_capacity".into(), Value::from(2));
    floors.params.insert("ecs_min_count".into(), Value::from(2));
    floors.params.insert("accept_unknown_lag".into(), Value::Bool(true));
    let r = TestRun::new(&floors).run::<RegionalFailover>();
    assert!(r.succeeded(), "{r}");
    assert_eq!(dr_compute(&r), (2, 2, 2));
    let out: Value = r.output();
    assert!(out["warnings"].to_string().contains("did not answer"), "{out}");
}
