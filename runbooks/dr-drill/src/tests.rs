//! `dr-drill` against the simulated demo topology
//! (`runbooks/scenarios/demo.toml`): `cargo test` in `runbooks/`.

use drover_sdk::testing::{Fault, Report, Scenario, TestRun};
use serde_json::Value;

use super::{DrDrill, drill_name};

fn demo() -> Scenario {
    Scenario::from_toml(include_str!("../../scenarios/demo.toml")).unwrap()
}

/// Nothing the drill made is left: no instance of the run, no drill record.
fn assert_clean(r: &Report) {
    let state = r.cloud.state();
    let dbs: Vec<&String> = state["rds"]["instances"]["us-west-2"].as_object().unwrap().keys().collect();
    assert_eq!(dbs, ["orders-db-replica"], "{r}");
    let live: Vec<&Value> =
        state["ec2"]["instances"]["us-west-2"].as_object().map(|m| m.values().filter(|i| i["instance"]["state"] != "terminated").collect()).unwrap_or_default();
    assert!(live.is_empty(), "instances left: {live:?}\n{r}");
    let zone = state["route53"]["zones"]["orders.example.internal"].as_array().unwrap();
    assert!(!zone.iter().any(|s| s["name"] == "drill.orders.example.internal."), "{r}");
}

#[test]
fn a_drill_restores_launches_checks_and_leaves_nothing() {
    let r = TestRun::new(&demo()).run::<DrDrill>();
    assert!(r.succeeded(), "{r}");
    let out: Value = r.output();
    assert_eq!(out["verdict"], "pass");
    assert_eq!(out["restored_from"], "orders-db-nightly-dr");
    assert_eq!(out["rpo_seconds"], 21600);
    for call in
        ["rds.restore-from-snapshot", "ec2.run-instance", "route53.upsert-cname", "rds.delete-instance", "ec2.terminate-instance", "route53.delete-cname"]
    {
        assert_eq!(r.cloud.changes(call), 1, "{call}\n{r}");
    }
    // Never a production record, never the primary or its replica.
    assert!(
        r.calls()
            .iter()
            .filter(|c| c.changed)
            .all(|c| !c.resource.contains("orders-db-replica") && c.resource != "orders-db" && !c.resource.starts_with("db.")),
        "{r}"
    );
    assert_clean(&r);
}

#[test]
fn a_throttled_restore_is_retried_and_restores_once() {
    let scenario = demo().fault(Fault::new("rds.restore-from-snapshot", "Throttling").times(2));
    let r = TestRun::new(&scenario).run::<DrDrill>();
    assert!(r.succeeded(), "{r}");
    assert_eq!(r.step("restore-database").attempts, 3);
    assert_eq!(r.cloud.changes("rds.restore-from-snapshot"), 1);
    assert_clean(&r);
}

#[test]
fn no_snapshot_copy_in_the_dr_region_fails_before_creating_anything() {
    let mut scenario = demo();
    scenario.rds.snapshots.clear();
    let r = TestRun::new(&scenario).run::<DrDrill>();
    assert_eq!(r.error().code(), "no-snapshot-copy", "{r}");
    assert!(r.calls().iter().all(|c| !c.changed), "{r}");
}

#[test]
fn a_failure_after_the_restore_still_cleans_up() {
    let scenario = demo().fault(Fault::new("ec2.run-instance", "InsufficientInstanceCapacity"));
    let r = TestRun::new(&scenario).run::<DrDrill>();
    assert_eq!(r.error().code(), "InsufficientInstanceCapacity", "{r}");
    assert_eq!(r.step("cleanup:drop-database").status, "completed", "{r}");
    assert_eq!(r.cloud.changes("rds.delete-instance"), 1);
    assert_clean(&r);
}

#[test]
fn a_missed_objective_fails_the_drill_and_still_cleans_up() {
    let r = TestRun::new(&demo()).param("rpo_seconds", 3600).run::<DrDrill>();
    assert_eq!(r.error().code(), "objective-missed", "{r}");
    assert!(r.error().message().contains("RPO 21600 s (objective 3600 s) MISSED"), "{}", r.error());
    assert_clean(&r);
}

#[test]
fn a_crash_after_each_side_effect_replays_without_repeating_it() {
    for step in ["restore-database", "check-database", "launch-app", "drill-record", "teardown"] {
        let r = TestRun::new(&demo()).crash_before_complete(step).run::<DrDrill>();
        assert!(r.succeeded(), "crash in {step}: {r}");
        assert_eq!(r.crashes, 1);
        assert_eq!(r.cloud.changes("rds.restore-from-snapshot"), 1, "crash in {step}\n{r}");
        assert_eq!(r.cloud.changes("ec2.run-instance"), 1, "crash in {step}\n{r}");
        assert_clean(&r);
    }
}

#[test]
fn a_crash_during_a_cleanup_resumes_the_cleanups_left() {
    let scenario = demo().fault(Fault::new("ec2.run-instance", "InsufficientInstanceCapacity"));
    let r = TestRun::new(&scenario).crash_before_complete("cleanup:drop-database").run::<DrDrill>();
    assert_eq!(r.error().code(), "InsufficientInstanceCapacity", "{r}");
    assert_eq!(r.step("cleanup:drop-database").attempts, 2, "{r}");
    assert_eq!(r.cloud.changes("rds.delete-instance"), 1);
    assert_clean(&r);
}

#[test]
fn a_cancel_mid_drill_cleans_up() {
    let r = TestRun::new(&demo()).cancel_before("launch-app").run::<DrDrill>();
    assert_eq!(r.ending, drover_sdk::Ending::Cancelled, "{r}");
    assert!(!r.has_step("launch-app"));
    assert_clean(&r);
}

/// The names of what a drill restores and launches (from its changes).
fn made(r: &Report) -> Vec<String> {
    r.calls().iter().filter(|c| c.changed && (c.call == "rds.restore-from-snapshot" || c.call == "ec2.run-instance")).map(|c| c.resource.clone()).collect()
}

#[test]
fn drills_a_year_apart_use_their_own_names_and_a_replay_the_same() {
    // Scheduled slots a year apart: the same last 12 characters.
    let (a, b) = ("drill-nightly-20250105T033000Z", "drill-nightly-20260105T033000Z");
    assert_eq!(a[a.len() - 12..], b[b.len() - 12..]);
    assert_ne!(drill_name("orders-db", a), drill_name("orders-db", b));
    assert_eq!(drill_name("orders-db", a), drill_name("orders-db", a));
    let run = |id: &str| {
        let mut scenario = demo();
        scenario.settings.run_id = id.into();
        scenario
    };
    let first = TestRun::new(&run(a)).run::<DrDrill>();
    let second = TestRun::new(&run(b)).run::<DrDrill>();
    assert!(first.succeeded() && second.succeeded(), "{first}\n{second}");
    let (names_a, names_b) = (made(&first), made(&second));
    assert_eq!(names_a.len(), 2, "{first}");
    assert!(names_a.iter().all(|n| !names_b.contains(n)), "{names_a:?} vs {names_b:?}");
    // The same run, crashed after the restore and resumed: the same names.
    let replayed = TestRun::new(&run(a)).crash_before_complete("launch-app").run::<DrDrill>();
    assert!(replayed.succeeded(), "{replayed}");
    assert_eq!(made(&replayed), names_a);
    // Within RDS's 63 characters, however long the base.
    let long = drill_name(&"d".repeat(80), a);
    assert!(long.len() <= 63 && long.ends_with(&drill_name("x", a)[1..]), "{long}");
}

/// The parity check with the agent: `tests/tests/simulated.rs` runs the
/// compiled component in the real engine (`drover test`) on the same
/// scenario and compares with the same file.
#[test]
fn journals_what_the_agent_journals_under_the_same_faults() {
    let scenario = Scenario::from_toml(include_str!("../../scenarios/parity/dr-drill.toml")).unwrap();
    TestRun::new(&scenario).run::<DrDrill>().assert_journal(include_str!("../../scenarios/parity/dr-drill.journal.json"));
}
