//! `fleet-failover` against the simulated five-database fleet
//! (`runbooks/scenarios/fleet.toml`): `cargo test` in `runbooks/`.

use drover_sdk::testing::{Fault, Report, Scenario, TestRun};
use serde_json::Value;

use super::FleetFailover;

const DATABASES: [&str; 5] = ["orders", "billing", "users", "inventory", "sessions"];

fn fleet() -> Scenario {
    Scenario::from_toml(include_str!("../../scenarios/fleet.toml")).unwrap()
}

fn zone(r: &Report) -> Vec<Value> {
    r.cloud.state()["route53"]["zones"]["fleet.example.internal"].as_array().unwrap().clone()
}

fn record(r: &Report, db: &str) -> String {
    let name = format!("db.{db}.fleet.example.internal.");
    zone(r).iter().find(|s| s["name"] == name.as_str()).unwrap()["values"][0].as_str().unwrap().to_string()
}

fn weights(r: &Report) -> Vec<(String, u64)> {
    let mut w: Vec<(String, u64)> = zone(r)
        .iter()
        .filter(|s| s["name"] == "app.fleet.example.internal.")
        .map(|s| (s["set_identifier"].as_str().unwrap().to_string(), s["weight"].as_u64().unwrap()))
        .collect();
    w.sort();
    w
}

fn replica_endpoint(db: &str) -> String {
    format!("fleet-{db}-db-replica.c0ffee.us-west-2.rds.amazonaws.com")
}

fn promoted(r: &Report, db: &str) -> bool {
    r.cloud.state()["rds"]["instances"]["us-west-2"][format!("fleet-{db}-db-replica")]["instance"]["replica_source"].is_null()
}

fn moved_everything(r: &Report) {
    assert!(r.succeeded(), "{r}");
    assert_eq!(r.cloud.changes("rds.promote-read-replica"), 5, "{r}");
    assert_eq!(r.cloud.changes("route53.change-records"), 1, "one change batch moves every record and the app's weights\n{r}");
    assert_eq!(r.cloud.changes("route53.set-weights"), 0, "{r}");
    for db in DATABASES {
        assert!(promoted(r, db), "{db}\n{r}");
        assert_eq!(record(r, db), replica_endpoint(db), "{r}");
    }
    assert_eq!(weights(r), [("us-east-1".to_string(), 0), ("us-west-2".to_string(), 100)]);
}

#[test]
fn fails_the_fleet_over() {
    let r = TestRun::new(&fleet()).run::<FleetFailover>();
    moved_everything(&r);
    let out: Value = r.output();
    let dbs = out["databases"].as_array().unwrap();
    assert_eq!(dbs.len(), 5);
    assert_eq!(dbs[1]["name"], "billing");
    assert_eq!(dbs[1]["estimated_rpo_seconds"], 2.0);
    assert_eq!(dbs[1]["endpoint"], replica_endpoint("billing"));
    // Each branch journals its own steps, named after its section and branch.
    for db in DATABASES {
        for step in ["check/{db}/check", "failover/{db}/promote", "failover/{db}/wait-promoted", "verify/{db}/verify"] {
            let key = step.replace("{db}", db);
            assert_eq!(r.step(&key).status, "completed", "{key}\n{r}");
        }
    }
    for step in ["section:failover", "check/dns/check-records", "shift-traffic", "verify/dns/verify-records"] {
        assert_eq!(r.step(step).status, "completed", "{step}\n{r}");
    }
    // The records are read together: one read in the check, one in the
    // read-back (Route 53 answers 5 requests a second per account).
    assert_eq!(r.calls().iter().filter(|c| c.call.starts_with("route53.get-records")).count(), 2, "{r}");
}

#[test]
fn one_lagging_replica_refuses_the_whole_fleet() {
    let r = TestRun::new(&fleet().lag("fleet-users-db-replica", Some(900.0))).run::<FleetFailover>();
    assert!(!r.succeeded());
    assert_eq!(r.error().code(), "fleet-check-failed", "{r}");
    assert!(r.error().message().contains("users: replica fleet-users-db-replica lags 900 s"), "{}", r.error());
    assert!(r.error().message().contains("nothing was changed"), "{}", r.error());
    assert!(r.calls().iter().all(|c| !c.changed), "{r}");
    // The others were checked all the same: the operator learns everything at once.
    assert_eq!(r.step("check/sessions/check").status, "completed");
}

#[test]
fn a_database_outside_the_declaration_is_refused_before_anything_runs() {
    let r = TestRun::new(&fleet()).param("db_prefix", "fleet-u").run::<FleetFailover>();
    assert_eq!(r.error().code(), "outside-declaration", "{r}");
    assert!(r.error().message().contains("fleet-orders-db of database 'orders' does not start with db_prefix 'fleet-u'"), "{}", r.error());
    assert!(r.calls().is_empty(), "{r}");
}

#[test]
fn a_database_may_not_take_the_dns_branch_name() {
    let mut scenario = fleet();
    scenario.params.insert(
        "databases".into(),
        serde_json::json!([{"name": "dns", "primary": "fleet-orders-db", "replica": "fleet-orders-db-replica", "record": "db.orders.fleet.example.internal"}]),
    );
    let r = TestRun::new(&scenario).run::<FleetFailover>();
    assert_eq!(r.error().code(), "bad-databases", "{r}");
    assert!(r.calls().is_empty(), "{r}");
}

#[test]
fn an_unknown_lag_refuses_unless_accepted() {
    let scenario = fleet().lag("fleet-billing-db-replica", None);
    let r = TestRun::new(&scenario).run::<FleetFailover>();
    assert_eq!(r.error().code(), "fleet-check-failed", "{r}");
    assert!(r.error().message().contains("replica-lag-unknown"), "{}", r.error());
    let r = TestRun::new(&scenario).param("accept_unknown_lag", true).run::<FleetFailover>();
    moved_everything(&r);
    let out: Value = r.output();
    assert!(out["warnings"][0].as_str().unwrap().starts_with("billing: no ReplicaLag reading"), "{out}");
}

#[test]
fn a_failed_promotion_stops_the_rest_and_moves_no_record_and_no_traffic() {
    let scenario = fleet().fault(Fault::new("rds.promote-read-replica", "InvalidDBInstanceState").resource("fleet-users-db-replica").times(0));
    let r = TestRun::new(&scenario).run::<FleetFailover>();
    assert!(!r.succeeded());
    let e = r.error().message();
    // The harness runs branches in order: orders and billing were promoted
    // before users failed; inventory and sessions were stopped before promoting.
    assert!(e.contains("promoted: [orders, billing]"), "{e}");
    assert!(e.contains("users (") && e.contains("inventory (stopped: ") && e.contains("sessions (stopped: "), "{e}");
    assert!(e.contains("No database record was repointed and the application's traffic was not moved"), "{e}");
    assert_eq!(r.cloud.changes("route53.change-records"), 0, "{r}");
    assert_ne!(record(&r, "orders"), replica_endpoint("orders"), "a record moves only once every replica is promoted");
    assert_eq!(weights(&r), [("us-east-1".to_string(), 100), ("us-west-2".to_string(), 0)]);
    assert!(!promoted(&r, "inventory") && !promoted(&r, "sessions"));
    assert_eq!(r.step("section:failover").status, "failed");
}

#[test]
fn a_crash_inside_a_branch_resumes_it_without_promoting_twice() {
    for (crash, after) in [
        ("failover/billing/promote", false),
        ("failover/billing/promote", true),
        ("shift-traffic", false),
        ("shift-traffic", true),
        ("verify/dns/verify-records", false),
        ("check/inventory/check", true),
        ("verify/orders/verify", false),
    ] {
        let run = TestRun::new(&fleet());
        let run = if after { run.crash_after_complete(crash) } else { run.crash_before_complete(crash) };
        let r = run.run::<FleetFailover>();
        assert_eq!(r.crashes, 1, "{crash}");
        moved_everything(&r);
    }
}

#[test]
fn a_cancel_in_a_branch_stops_every_branch_and_promotes_nothing_more() {
    let r = TestRun::new(&fleet()).cancel_before("failover/users/promote").run::<FleetFailover>();
    assert_eq!(r.ending, drover_sdk::Ending::Cancelled, "{r}");
    assert_eq!(r.cloud.changes("rds.promote-read-replica"), 2, "{r}");
    assert_eq!(r.cloud.changes("route53.change-records"), 0, "{r}");
}

/// The parity check with the agent: `drover test` (the real engine) runs the
/// parity scenario and compares with the same file.
#[test]
fn journals_what_the_agent_journals_under_the_same_faults() {
    let scenario = Scenario::from_toml(include_str!("../../scenarios/parity/fleet-failover.toml")).unwrap();
    TestRun::new(&scenario).run::<FleetFailover>().assert_journal(include_str!("../../scenarios/parity/fleet-failover.journal.json"));
}

#[test]
fn readiness_checks_every_database_at_once_and_changes_nothing() {
    let r = TestRun::new(&fleet().lag("fleet-inventory-db-replica", Some(900.0))).readiness().run::<FleetFailover>();
    assert!(r.succeeded(), "{r}");
    let out: Value = r.output();
    let findings = out["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 6, "{out:#}");
    let inventory = findings.iter().find(|f| f["check"] == "database 'inventory' can fail over").unwrap();
    assert_eq!(inventory["ok"], false, "{inventory}");
    assert!(inventory["detail"].as_str().unwrap().contains("lags 900 s"), "{inventory}");
    assert_eq!(findings.iter().filter(|f| f["ok"] == true).count(), 5, "{out:#}");
    assert!(r.calls().iter().all(|c| !c.changed), "{r}");
}
