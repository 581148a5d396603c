//! `fleet-failover` end to end: the real `drover` binary against the real
//! emulators, a fleet of five databases, every request through the chaos
//! proxy, which counts what the emulators accepted (the side effects).
//! Each test seeds a fleet of its own (names suffixed).

use std::sync::Arc;

use drover_aws::{Clients, rds, route53};
use drover_chaos::Agent;
use drover_chaos::faults::Faults;
use drover_chaos::fleet::{Fleet, remove_fleet, seed_fleet};
use drover_chaos::killed_by_sigkill;
use drover_chaos::proxy::{Proxy, Upstreams};
use drover_e2e::{agent, args, emulators_configured};
use drover_test_artifacts as artifacts;
use serde_json::Value;

const DATABASES: usize = 5;

/// A fleet seeded for test `name`, an agent whose every request goes
/// through a proxy, and the proxy (with the runtime serving it).
struct Setup {
    c: Clients,
    fleet: Fleet,
    agent: Agent,
    _home: tempfile::TempDir,
    proxy: Proxy,
    rt: tokio::runtime::Runtime,
}

fn setup(name: &str) -> Setup {
    emulators_configured();
    // A runtime with a worker thread: it serves the proxy while the test
    // waits for the agent's processes.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let suffix = format!("{name}-{:06x}", rand::random::<u32>() & 0xffffff);
    let fleet = Fleet::new(DATABASES, &suffix);
    let (c, proxy) = rt.block_on(async {
        let c = Clients::load().await;
        seed_fleet(&c, &fleet).await.expect("the fleet seeds");
        let upstreams = Upstreams::from_env().expect("the emulators' endpoints");
        let proxy = Proxy::start(upstreams, Arc::new(Faults::new(0))).await.expect("the proxy starts");
        (c, proxy)
    });
    let (home, mut agent) = agent();
    let upstreams = Upstreams::from_env().unwrap();
    for (k, v) in upstreams.env_for(&proxy.url()) {
        agent = agent.with_env(&k, &v);
    }
    Setup { c, fleet, agent, _home: home, proxy, rt }
}

/// Reads the emulators back: every replica promoted (available, no
/// replication source), every record on its replica, the app on the DR
/// region, and the emulators accepted exactly one promotion per replica and
/// one change batch: every database record and the app's weights.
fn assert_fleet_failed_over(s: &Setup, context: &str) {
    let f = &s.fleet;
    s.rt.block_on(async {
        for db in &f.databases {
            let r = rds::describe_instance(&s.c, &f.dr_region, &db.replica).await.unwrap();
            assert!(r.status == "available" && r.replica_source.is_none(), "{context}: {} is '{}', source {:?}", db.replica, r.status, r.replica_source);
            let sets = route53::get_records(&s.c, &f.hosted_zone, &db.record).await.unwrap();
            assert_eq!(sets.len(), 1, "{context}: {sets:?}");
            let endpoint = route53::fqdn(r.endpoint.as_deref().unwrap_or_default());
            assert_eq!(route53::fqdn(&sets[0].values[0]), endpoint, "{context}: {} does not point at its replica", db.record);
        }
        let app = route53::get_records(&s.c, &f.hosted_zone, &f.app_record).await.unwrap();
        let weight = |set: &str| app.iter().find(|r| r.set_identifier.as_deref() == Some(set)).and_then(|r| r.weight);
        assert_eq!((weight(&f.primary_region), weight(&f.dr_region)), (Some(0), Some(100)), "{context}");
    });
    let faults = s.proxy.faults();
    assert_eq!(faults.accepted_count("rds", "PromoteReadReplica"), DATABASES as u64, "{context}: promotions accepted: {:?}", faults.accepted());
    assert_eq!(faults.accepted_count("route53", "ChangeResourceRecordSets"), 1, "{context}: record changes: {:?}", faults.accepted());
}

#[test]
fn fleet_failover_end_to_end() {
    let s = setup("fleet");
    let params = s.fleet.params();

    // A dry run first: every change planned, in its branch, none made.
    let mut a = vec!["run", artifacts::FLEET_FAILOVER, "--dry-run", "--json", "--quiet"];
    for p in &params {
        a.push("-p");
        a.push(p);
    }
    let (status, plan) = s.agent.json(&a).unwrap();
    assert!(status.success(), "{plan:#}");
    let changes: Vec<String> =
        plan["plan"].as_array().unwrap().iter().map(|c| format!("{} {}", c["step"].as_str().unwrap(), c["operation"].as_str().unwrap())).collect();
    for db in 1..=DATABASES {
        assert!(changes.contains(&format!("failover/db{db}/promote PromoteReadReplica")), "{changes:?}");
    }
    // Every record and the app's weights in the one batch of `shift-traffic` (planned per name).
    assert_eq!(changes.iter().filter(|c| *c == "shift-traffic ChangeResourceRecordSets").count(), DATABASES + 1, "{changes:?}");
    assert_eq!(changes.last().map(String::as_str), Some("shift-traffic ChangeResourceRecordSets"), "traffic moves last: {changes:?}");
    assert_eq!(changes.len(), 2 * DATABASES + 1, "{changes:?}");
    assert!(plan["steps"].as_array().unwrap().iter().any(|s| s["key"] == "failover/db3/wait-promoted"), "{plan:#}");
    assert_eq!(s.proxy.faults().accepted_count("rds", "PromoteReadReplica"), 0, "a dry run promoted");
    assert_eq!(s.proxy.faults().accepted_count("route53", "ChangeResourceRecordSets"), 0, "a dry run changed DNS");

    let mut a = args(artifacts::FLEET_FAILOVER, "fleet-1", &params);
    a.push("--json");
    let (status, run) = s.agent.json(&a).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(run["status"], "succeeded");
    let dbs = run["result"]["databases"].as_array().unwrap();
    assert_eq!(dbs.len(), DATABASES);
    assert_eq!(dbs[2]["estimated_rpo_seconds"], 3.0, "{run:#}");
    assert_fleet_failed_over(&s, "fleet-1");
    // `show` lists each branch's steps after its section.
    let keys: Vec<&str> = run["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    let at = keys.iter().position(|k| *k == "section:failover").unwrap();
    assert_eq!(keys[at + 1..at + 3], ["failover/db1/promote", "failover/db1/wait-promoted"], "{keys:?}");
    // Branch runs are hidden from `drover runs` unless asked for.
    let (_, runs) = s.agent.json(&["runs", "--json"]).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs:#}");
    let (_, all) = s.agent.json(&["runs", "--json", "--branches"]).unwrap();
    // Each database has a branch in each of the three sections; the records' one in `check` and `verify`.
    assert_eq!(all.as_array().unwrap().len(), 1 + 3 * DATABASES + 2, "{all:#}");
}

/// One replica lagging over the RPO refuses the whole failover: nothing
/// was promoted, no record moved.
#[test]
fn one_lagging_replica_refuses_the_whole_fleet() {
    let s = setup("lag");
    let lagging = &s.fleet.databases[3];
    s.rt.block_on(drover_chaos::topology::publish_lag(&s.c, &s.fleet.dr_region, &lagging.replica, 900.0)).unwrap();
    let params = s.fleet.params();
    let mut a = args(artifacts::FLEET_FAILOVER, "lag-1", &params);
    a.push("--json");
    let (status, run) = s.agent.json(&a).unwrap();
    assert_eq!(status.code(), Some(1), "{run:#}");
    assert_eq!(run["error"]["code"], "fleet-check-failed", "{run:#}");
    let msg = run["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&format!("{}: replica {} lags 900 s", lagging.name, lagging.replica)), "{msg}");
    assert_eq!(s.proxy.faults().accepted_count("rds", "PromoteReadReplica"), 0);
    assert_eq!(s.proxy.faults().accepted_count("route53", "ChangeResourceRecordSets"), 0);
}

/// SIGKILL inside and between the steps of the branches (every step kind,
/// every crash point kind, each branch in turn), then `drover resume`: one
/// promotion per replica and one change batch, counted at the proxy across
/// both processes. (Every crash point of every branch: the long run
/// `sigkill_at_every_crash_point_of_every_branch`.)
#[test]
fn sigkill_in_the_branches_then_resume_promotes_each_replica_once() {
    let mut kills: Vec<(String, String)> = Vec::new();
    for (j, step) in ["promote", "wait-promoted"].iter().enumerate() {
        for (k, point) in ["in-step", "before-complete", "after-step"].iter().enumerate() {
            let db = (j * 3 + k) % DATABASES + 1;
            kills.push((point.to_string(), format!("failover/db{db}/{step}")));
        }
    }
    // The one change batch of every record and the weights: inside it, its answer in, after it.
    for point in ["in-step", "before-complete", "after-step"] {
        kills.push((point.into(), "shift-traffic".into()));
    }
    kills.push(("before-complete".into(), "check/db2/check".into()));
    kills.push(("after-step".into(), "verify/db4/verify".into()));
    kills.push(("before-step".into(), "section:failover".into()));
    sweep("kill", &kills);
}

/// Every crash point (inside the step, its answer in but not journaled,
/// after it) of every step of every branch and of the run, and before
/// every section: 72 SIGKILLs, each on a fresh fleet, then `drover resume`.
/// A long run (about 3 minutes), not in CI's budget:
/// `cargo test -p drover-e2e --test fleet -- --ignored` with the emulators
/// up (`scripts/emulators start`, `eval "$(scripts/emulators env)"`).
#[test]
#[ignore = "long run (72 SIGKILLs): cargo test -p drover-e2e --test fleet -- --ignored"]
fn sigkill_at_every_crash_point_of_every_branch() {
    let mut steps: Vec<String> = Vec::new();
    for db in 1..=DATABASES {
        for step in ["check/db{db}/check", "failover/db{db}/promote", "failover/db{db}/wait-promoted", "verify/db{db}/verify"] {
            steps.push(step.replace("{db}", &db.to_string()));
        }
    }
    steps.extend(["check/dns/check-records", "shift-traffic", "verify/dns/verify-records"].map(String::from));
    let mut kills: Vec<(String, String)> = Vec::new();
    for step in &steps {
        for point in ["in-step", "before-complete", "after-step"] {
            kills.push((point.to_string(), step.clone()));
        }
    }
    for section in ["section:check", "section:failover", "section:verify"] {
        kills.push(("before-step".into(), section.into()));
    }
    assert_eq!(kills.len(), 72);
    sweep("every", &kills);
}

/// For each (crash point, step) of `kills`, on a fresh fleet: a run killed
/// there by SIGKILL, `drover resume`, and the fleet failed over with one
/// promotion per replica and one change batch.
fn sweep(prefix: &str, kills: &[(String, String)]) {
    for (n, (point, step)) in kills.iter().enumerate() {
        let s = setup(&format!("{prefix}{n}"));
        let params = s.fleet.params();
        let id = format!("{prefix}-{n}");
        let mut child = s.agent.spawn(&args(artifacts::FLEET_FAILOVER, &id, &params), &format!("{point}:{step}")).unwrap();
        let status = child.wait().unwrap();
        assert!(killed_by_sigkill(&status), "{point}:{step} should kill the agent: {status:?}");
        let (status, run) = s.agent.json(&["resume", &id, "--json", "--quiet"]).unwrap();
        assert!(status.success(), "{point}:{step}: {run:#}");
        assert_eq!(run["status"], "succeeded", "{point}:{step}: {run:#}");
        assert_fleet_failed_over(&s, &format!("{point}:{step}"));
        // In each branch, one idempotency key per step, and at most two
        // attempts: the kill stops every branch at once, so a step of
        // another branch in flight at that moment was interrupted too (its
        // attempt counts); the step killed in its attempt (begun, or its body
        // done, no outcome journaled) surely ran a second one.
        for db in 1..=DATABASES {
            let branch = format!("{id}.failover.db{db}");
            for key in ["promote", "wait-promoted"] {
                let killed = (point == "before-complete" || point == "in-step") && *step == format!("failover/db{db}/{key}");
                let attempts: Vec<_> = s.agent.attempts(&branch).into_iter().filter(|a| a.key == key).collect();
                let n = attempts.len();
                assert!(if killed { n == 2 } else { (1..=2).contains(&n) }, "{point}:{step}: {n} attempts of {branch} {key}");
                let mut keys: Vec<&str> = attempts.iter().map(|a| a.idempotency_key.as_str()).collect();
                keys.dedup();
                assert_eq!(keys.len(), 1, "{point}:{step}: {branch} {key}");
            }
        }
        let steps: Vec<Value> = run["steps"].as_array().unwrap().clone();
        assert!(steps.iter().all(|s| s["status"] == "succeeded"), "{point}:{step}: {steps:#?}");
        s.rt.block_on(remove_fleet(&s.c, &s.fleet)).unwrap();
    }
}
