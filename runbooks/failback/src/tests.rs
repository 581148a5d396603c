//! `failback` against the simulated demo topology after a failover:
//! `cargo test` in `runbooks/`.

use drover_sdk::testing::{Fault, FaultEffect, Scenario, TestRun};
use serde_json::Value;

use super::Failback;

/// The demo topology as `regional-failover` leaves it: the replica promoted
/// and serving, the primary region back but without a database.
fn after_failover() -> Scenario {
    let mut s = Scenario::from_toml(include_str!("../../scenarios/demo.toml")).unwrap();
    s = s.without_rds_instance("us-east-1", "orders-db");
    for i in &mut s.rds.instances {
        i.replica_of = None;
        i.lag_seconds = None;
    }
    for r in &mut s.route53.records {
        if r.name.starts_with("db.") {
            r.values = vec!["orders-db-replica.c0ffee.us-west-2.rds.amazonaws.com".into()];
        }
        if let Some(set) = &r.set_identifier {
            r.weight = Some(if set == "us-west-2" { 100 } else { 0 });
        }
    }
    s
}

#[test]
fn fails_back_to_the_home_region() {
    let r = TestRun::new(&after_failover()).run::<Failback>();
    assert!(r.succeeded(), "{r}");
    let out: Value = r.output();
    assert_eq!(out["endpoint"], "orders-db-home.c0ffee.us-east-1.rds.amazonaws.com");
    for call in ["rds.create-read-replica", "rds.promote-read-replica", "route53.upsert-cname", "route53.set-weights"] {
        assert_eq!(r.cloud.changes(call), 1, "{call}\n{r}");
    }
    let home = &r.cloud.state()["rds"]["instances"]["us-east-1"]["orders-db-home"]["instance"];
    assert_eq!(home["replica_source"], Value::Null, "{home}");
}

#[test]
fn a_throttled_replica_creation_is_retried_and_creates_one() {
    let scenario = after_failover().fault(Fault::new("rds.create-read-replica", "Throttling").times(2));
    let r = TestRun::new(&scenario).run::<Failback>();
    assert!(r.succeeded(), "{r}");
    assert_eq!(r.step("create-home-replica").attempts, 3);
    assert_eq!(r.cloud.changes("rds.create-read-replica"), 1);
}

#[test]
fn a_missing_serving_instance_changes_nothing() {
    let scenario = after_failover().without_rds_instance("us-west-2", "orders-db-replica");
    let r = TestRun::new(&scenario).run::<Failback>();
    assert_eq!(r.error().code(), "DBInstanceNotFound", "{r}");
    assert!(r.calls().iter().all(|c| !c.changed));
}

#[test]
fn a_crash_after_each_side_effect_replays_without_repeating_it() {
    for step in ["create-home-replica", "wait-home-replica", "promote-home", "point-db-record", "shift-app-weights"] {
        let r = TestRun::new(&after_failover()).crash_before_complete(step).run::<Failback>();
        assert!(r.succeeded(), "crash in {step}: {r}");
        for call in ["rds.create-read-replica", "rds.promote-read-replica", "route53.upsert-cname", "route53.set-weights"] {
            assert_eq!(r.cloud.changes(call), 1, "crash in {step}: {call}\n{r}");
        }
    }
}

/// The parity check with the agent: `tests/tests/simulated.rs` runs the
/// compiled component in the real engine (`drover test`) on the same
/// scenario and compares with the same file.
#[test]
fn journals_what_the_agent_journals_under_the_same_faults() {
    let scenario = Scenario::from_toml(include_str!("../../scenarios/parity/failback.toml")).unwrap();
    TestRun::new(&scenario).run::<Failback>().assert_journal(include_str!("../../scenarios/parity/failback.journal.json"));
}

/// Found by `drover simulate` (seed 170 of its parity scenario): a failback
/// that failed after creating the home instance left it behind, unsaid, and
/// the next failback could not adopt it. Its undo deletes it now, but never
/// while the database record points at it.
#[test]
fn a_failback_that_fails_drops_the_home_instance_it_made() {
    let scenario = after_failover().fault(Fault::new("rds.promote-read-replica", "InvalidParameterCombination"));
    let r = TestRun::new(&scenario).run::<Failback>();
    assert_eq!(r.error().code(), "InvalidParameterCombination", "{r}");
    assert_eq!(r.cloud.changes("rds.delete-instance"), 1, "{r}");
    assert_eq!(r.cloud.state()["rds"]["instances"]["us-east-1"]["orders-db-home"], Value::Null, "{r}");

    // Failing after the record moved: the instance serves, it is kept and the undo says why.
    let scenario = after_failover().fault(Fault::new("route53.set-weights", "InvalidChangeBatch"));
    let r = TestRun::new(&scenario).run::<Failback>();
    assert_eq!(r.error().code(), "InvalidChangeBatch", "{r}");
    assert_eq!(r.cloud.changes("rds.delete-instance"), 0, "{r}");
    let undo = r.step("undo:drop-home-instance");
    assert_eq!(undo.status, "failed", "{r}");
    assert!(undo.error.as_deref().is_some_and(|e| e.contains("kept-in-use")), "{r}");
}

/// Found by the simulation (stale reads): just after its creation, a read
/// may not see the home instance yet. The undo took that "not found" for
/// "gone" and left the instance; it now asks the delete, which asks RDS.
#[test]
fn a_home_instance_not_seen_yet_is_still_dropped() {
    let mut wait_fails = Fault::new("rds.wait-instance-available", "InternalFailure").times(0);
    wait_fails.retryable = Some(false);
    let mut stale = Fault::new("rds.describe-instance", "stale").effect(FaultEffect::Stale);
    stale.resource = Some("orders-db-home".into());
    let r = TestRun::new(&after_failover().fault(wait_fails).fault(stale)).run::<Failback>();
    assert_eq!(r.error().code(), "InternalFailure", "{r}");
    assert_eq!(r.cloud.changes("rds.delete-instance"), 1, "{r}");
    assert_eq!(r.cloud.state()["rds"]["instances"]["us-east-1"]["orders-db-home"], Value::Null, "{r}");
}

/// After a failover that scaled the DR compute up (the home region's compute
/// scaled down while it was out): the failback brings the home compute to
/// the DR's capacity before DNS moves home, and the DR's back to standby.
#[test]
fn home_compute_comes_up_before_dns_and_the_dr_compute_goes_back_to_standby() {
    const COMPUTE: &str = r#"
[[autoscaling.group]]
region = "us-east-1"
name = "orders-web"
max = 6

[[autoscaling.group]]
region = "us-west-2"
name = "orders-web"
max = 6
desired = 3

[[ecs.service]]
region = "us-east-1"
cluster = "orders"
name = "api"

[[ecs.service]]
region = "us-west-2"
cluster = "orders"
name = "api"
desired = 4
"#;
    let base = after_failover();
    let mut s = Scenario::from_toml(&format!("{}\n{COMPUTE}", include_str!("../../scenarios/demo.toml"))).unwrap();
    (s.rds, s.route53) = (base.rds, base.route53);
    for (k, v) in [("asg_name", "orders-web"), ("ecs_cluster", "orders"), ("ecs_service", "api")] {
        s.params.insert(k.into(), Value::String(v.into()));
    }
    s.params.insert("standby_capacity".into(), Value::from(1));
    let r = TestRun::new(&s).run::<Failback>();
    assert!(r.succeeded(), "{r}");
    let at = |k: &str| r.steps.iter().position(|s| s.key == k).unwrap_or_else(|| panic!("no step {k}\n{r}"));
    assert!(at("scale-home-compute") < at("wait-home-compute") && at("wait-home-compute") < at("point-db-record"), "{r}");
    assert!(at("verify") < at("scale-down-dr-compute"), "{r}");
    let state = r.cloud.state();
    let desired = |region: &str| state["autoscaling"]["groups"][region]["orders-web"]["desired"].as_u64().unwrap();
    let tasks = |region: &str| state["ecs"]["services"][region]["orders/api"]["service"]["desired_count"].as_u64().unwrap();
    assert_eq!((desired("us-east-1"), tasks("us-east-1")), (3, 4), "home holds what the DR held");
    assert_eq!((desired("us-west-2"), tasks("us-west-2")), (1, 0), "the DR back to standby");
}
