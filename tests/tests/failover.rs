//! `regional-failover` end to end: the real `drover` binary against the real
//! emulators (scripts/test starts them and sets AWS_ENDPOINT_URL*). Each test
//! seeds a topology of its own (names suffixed), so tests run side by side.

use drover_aws::{Clients, rds, route53};
use drover_chaos::Agent;
use drover_chaos::hypothesis::{Probe, check};
use drover_chaos::killed_by_sigkill;
use drover_chaos::topology::Seeded;
use drover_e2e::{agent, args, rt, seeded};
use drover_test_artifacts as artifacts;
use serde_json::Value;

const STEPS: &[&str] = &["preflight", "promote", "wait-promoted", "point-db-record", "shift-app-weights", "final-snapshot", "copy-final-snapshot", "verify"];

/// Asserts that every probe holds, reading the emulators back (the same
/// probes the game-days check).
fn assert_holds(c: &Clients, s: &Seeded, probes: &[Probe], context: &str) {
    rt().block_on(async {
        for p in probes {
            let k = check(c, s, *p).await;
            assert!(k.ok, "{context}: {:?} does not hold: {}", k.probe, k.detail);
        }
    });
}

/// Reads the emulators back and checks the failed-over state: the replica
/// promoted once, the DB record (one record set) on it, the weights on the
/// DR region, one snapshot copy in the DR region.
fn assert_failed_over(c: &Clients, s: &Seeded, run_id: &str) {
    let t = &s.topology;
    let db = rt().block_on(route53::get_records(c, &t.hosted_zone, &t.db_record)).unwrap();
    assert_eq!(db.len(), 1, "run {run_id}: {db:?}");
    assert_holds(c, s, &[Probe::ReplicaPromotedOnce, Probe::DbRecordOnReplica, Probe::AppWeightsOnDr, Probe::OneFinalSnapshotCopy], &format!("run {run_id}"));
}

/// DNS still on the primary, weights unchanged, the replica not promoted.
fn assert_untouched(c: &Clients, s: &Seeded) {
    assert_holds(c, s, &[Probe::DbRecordOnPrimary, Probe::AppWeightsOnPrimary, Probe::ReplicaNotPromoted], "untouched");
}

#[test]
fn regional_failover_end_to_end_and_a_rerun_changes_nothing() {
    let (c, s) = seeded("e2e");
    let (_d, agent) = agent();
    let params = s.topology.params();
    let mut a = args(artifacts::REGIONAL_FAILOVER, "rf", &params);
    a.push("--json");
    let (status, run) = agent.json(&a).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(run["status"], "succeeded");
    let result = &run["result"];
    assert_eq!(result["rto_met"], true);
    assert!(result["rto_seconds"].as_f64().unwrap() >= 0.0);
    assert!(result["snapshot_copy"].as_str().unwrap().contains(":us-west-2:"));
    assert_failed_over(&c, &s, "rf");
    let steps: Vec<&str> = run["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(steps, STEPS);

    let before = agent.attempts("rf");
    let (status, again) = agent.json(&a).unwrap();
    assert!(status.success());
    assert_eq!(again["result"], run["result"]);
    assert_eq!(agent.attempts("rf"), before, "re-running a finished run id makes no call");
    assert_failed_over(&c, &s, "rf");
}

/// Once traffic runs in the DR region, a final snapshot that cannot be
/// copied there is a warning: the failover succeeds and nothing is undone.
/// Here the copy is refused by the agent's own policy (the operator did not
/// grant `copy-snapshot`, and accepted starting without it).
#[test]
fn a_final_snapshot_that_cannot_be_copied_is_a_warning_not_a_failback() {
    let (c, s) = seeded("nocopy");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("drover.toml");
    std::fs::write(
        &config,
        r#"
[runbooks.regional-failover]
grants = [
    { service = "rds", operations = ["describe-instance", "create-snapshot", "wait-snapshot-available", "promote-read-replica", "wait-instance-available", "replica-lag"], regions = ["us-east-1", "us-west-2"], resources = ["db/orders-db*", "snapshot/orders-db*"] },
    { service = "route53", operations = ["get-records-of", "upsert-cname", "set-weights"], resources = ["zone/orders*.example.internal", "record/*.orders*.example.internal"] },
]
"#,
    )
    .unwrap();
    let agent = Agent::new(dir.path().join("home")).with_env("DROVER_CONFIG", config.to_str().unwrap());
    let params = s.topology.params();
    let mut a = args(artifacts::REGIONAL_FAILOVER, "nocopy", &params);
    a.extend(["--json", "--accept-missing-grants"]);
    let (status, run) = agent.json(&a).unwrap();
    assert!(status.success(), "{run:#}");
    let result = &run["result"];
    assert_eq!(result["snapshot_copy"], Value::Null, "{run:#}");
    let warning =
        result["warnings"].as_array().unwrap().iter().filter_map(Value::as_str).find(|w| w.contains("was not copied")).unwrap_or_else(|| panic!("{run:#}"));
    assert!(warning.contains("permission denied") && warning.contains("stays in us-east-1"), "{warning}");
    let copy_step = run["steps"].as_array().unwrap().iter().find(|s| s["key"] == "copy-final-snapshot").unwrap();
    assert_eq!(copy_step["status"], "failed");
    // Traffic stays in the DR region: no undo ran.
    assert!(run["cleanup"]["actions"].as_array().unwrap().iter().all(|a| a["status"] == "skipped"), "{run:#}");
    let t = &s.topology;
    rt().block_on(async {
        let app = route53::get_records(&c, &t.hosted_zone, &t.app_record).await.unwrap();
        let weight = |set: &str| app.iter().find(|r| r.set_identifier.as_deref() == Some(set)).and_then(|r| r.weight);
        assert_eq!((weight(&t.primary_region), weight(&t.dr_region)), (Some(0), Some(100)));
    });
}

#[test]
fn sigkill_at_every_step_then_resume_converges_to_one_copy_one_promotion_one_dns_change() {
    for (i, step) in STEPS.iter().enumerate() {
        for point in ["after-step", "before-complete"] {
            let (c, s) = seeded(&format!("k{i}"));
            let (_d, agent) = agent();
            let params = s.topology.params();
            let id = format!("kill-{i}-{}", &point[..5]);
            let mut child = agent.spawn(&args(artifacts::REGIONAL_FAILOVER, &id, &params), &format!("{point}:{step}")).unwrap();
            let status = child.wait().unwrap();
            assert!(killed_by_sigkill(&status), "{point}:{step} should kill the agent: {status:?}");
            let (status, run) = agent.json(&["resume", &id, "--json", "--quiet"]).unwrap();
            assert!(status.success(), "{point}:{step}: {run:#}");
            assert_failed_over(&c, &s, &id);
            // Completed steps ran once; the step killed before its outcome was journaled ran twice, with one key.
            for (j, key) in STEPS.iter().enumerate() {
                let expected = if j == i && point == "before-complete" { 2 } else { 1 };
                assert_eq!(agent.attempt_count(&id, key), expected, "{point}:{step}: attempts of {key}");
            }
            let mut keys: Vec<String> = agent.attempts(&id).into_iter().filter(|a| a.key == *step).map(|a| a.idempotency_key).collect();
            keys.dedup();
            assert_eq!(keys.len(), 1);
        }
    }
}

fn failed_run(agent: &Agent, id: &str, params: &[String]) -> Value {
    let mut a = args(artifacts::REGIONAL_FAILOVER, id, params);
    a.push("--json");
    let (status, run) = agent.json(&a).unwrap();
    assert_eq!(status.code(), Some(1), "{run:#}");
    assert_eq!(run["status"], "failed");
    run
}

#[test]
fn a_missing_replica_or_a_wrong_zone_fails_clearly_and_dns_is_untouched() {
    let (c, s) = seeded("bad");
    let (_d, agent) = agent();

    let mut params = s.topology.params();
    params.retain(|p| !p.starts_with("replica="));
    // A name the grants cover (orders-db*), of a replica that does not exist.
    let gone = format!("{}-gone", s.topology.db_instance);
    params.push(format!("replica={gone}"));
    let run = failed_run(&agent, "missing-replica", &params);
    let msg = run["error"]["message"].as_str().unwrap();
    assert_eq!(run["error"]["code"], "DBInstanceNotFound", "{msg}");
    assert!(msg.contains(&gone) && msg.contains("us-west-2"), "{msg}");
    assert_untouched(&c, &s);

    let mut params = s.topology.params();
    params.retain(|p| !p.starts_with("hosted_zone="));
    params.push("hosted_zone=orders-nowhere.example.internal".into());
    let run = failed_run(&agent, "wrong-zone", &params);
    assert_eq!(run["error"]["code"], "NoSuchHostedZone");
    assert!(run["error"]["message"].as_str().unwrap().contains("orders-nowhere.example.internal"));
    assert_untouched(&c, &s);

    // A region the grants do not cover: refused before anything runs.
    let mut params = s.topology.params();
    params.retain(|p| !p.starts_with("dr_region="));
    params.push("dr_region=eu-west-1".into());
    let out = agent.output(&args(artifacts::REGIONAL_FAILOVER, "wrong-region", &params));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("- rds region eu-west-1"), "{stderr}");
    assert_untouched(&c, &s);
}

#[test]
fn an_unreachable_endpoint_fails_clearly_and_dns_is_untouched() {
    let (c, s) = seeded("down");
    let (_d, agent) = agent();
    let agent = agent.with_env("AWS_ENDPOINT_URL_RDS", "http://127.0.0.1:9");
    let run = failed_run(&agent, "unreachable", &s.topology.params());
    let err = &run["error"];
    assert_eq!(err["code"], "unreachable", "{err:#}");
    assert_eq!(err["retryable"], true);
    assert!(err["message"].as_str().unwrap().contains("could not connect"), "{err:#}");
    // Retryable: the preflight was tried per its retry policy.
    assert_eq!(agent.attempt_count("unreachable", "preflight"), 3);
    assert_untouched(&c, &s);
}

#[test]
fn dry_run_prints_the_plan_in_order_and_changes_nothing() {
    let (c, s) = seeded("dry");
    let (_d, agent) = agent();
    let params = s.topology.params();
    let mut a = vec!["run", artifacts::REGIONAL_FAILOVER, "--dry-run", "--json", "--quiet"];
    for p in &params {
        a.push("-p");
        a.push(p);
    }
    let (status, out) = agent.json(&a).unwrap();
    assert!(status.success(), "{out:#}");
    assert_eq!(out["dry_run"], true);
    assert_eq!(out["status"], "succeeded", "the runbook runs to its end on planned results: {out:#}");
    let plan: Vec<(String, String, String)> = out["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["step"].as_str().unwrap().into(), c["operation"].as_str().unwrap().into(), c["resource"].as_str().unwrap().into()))
        .collect();
    let t = &s.topology;
    let ops: Vec<(&str, &str)> = plan.iter().map(|(s, o, _)| (s.as_str(), o.as_str())).collect();
    assert_eq!(
        ops,
        [
            ("promote", "PromoteReadReplica"),
            ("point-db-record", "ChangeResourceRecordSets"),
            ("shift-app-weights", "ChangeResourceRecordSets"),
            // Requested once traffic is in the DR region (it then holds the
            // primary's writes until its clients left it), and copied.
            ("final-snapshot", "CreateDBSnapshot"),
            ("copy-final-snapshot", "CopyDBSnapshot"),
        ]
    );
    assert_eq!(plan[0].2, t.replica);
    assert_eq!(plan[1].2, t.db_record);
    let detail = out["plan"][2]["detail"].as_str().unwrap();
    assert!(detail.contains("us-east-1 100 -> 0") && detail.contains("us-west-2 0 -> 100"), "{detail}");
    // Nothing changed in the emulators, nothing was recorded in the store.
    assert_untouched(&c, &s);
    rt().block_on(async {
        let snaps = c.rds(&t.primary_region).describe_db_snapshots().db_instance_identifier(&t.db_instance).snapshot_type("manual").send().await.unwrap();
        // Only the seeded nightly backup: the dry run took none.
        let ids: Vec<&str> = snaps.db_snapshots().iter().filter_map(|s| s.db_snapshot_identifier()).collect();
        assert_eq!(ids, [format!("{}-nightly", t.db_instance)], "no snapshot was taken");
    });
    let out = agent.output(&["runs", "--json"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

#[test]
fn failback_brings_database_and_traffic_home_and_survives_a_crash() {
    let (c, s) = seeded("back");
    let (_d, agent) = agent();
    let out_params = s.topology.params();
    let mut a = args(artifacts::REGIONAL_FAILOVER, "out", &out_params);
    a.push("--json");
    let (status, run) = agent.json(&a).unwrap();
    assert!(status.success(), "{run:#}");

    let params = s.topology.failback_params();
    let mut child = agent.spawn(&args(artifacts::FAILBACK, "home", &params), "after-step:create-home-replica").unwrap();
    assert!(killed_by_sigkill(&child.wait().unwrap()));
    let (status, run) = agent.json(&["resume", "home", "--json", "--quiet"]).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(agent.attempt_count("home", "create-home-replica"), 1);

    let t = &s.topology;
    rt().block_on(async {
        let home = rds::describe_instance(&c, &t.primary_region, &format!("{}-home", t.db_instance)).await.unwrap();
        let tags = c.rds(&t.primary_region).list_tags_for_resource().resource_name(&home.arn).send().await.unwrap();
        assert_eq!(tags.tag_list().iter().filter(|t| t.key() == Some(rds::PROMOTED_TAG)).count(), 1, "promoted once");
        let db = route53::get_records(&c, &t.hosted_zone, &t.db_record).await.unwrap();
        assert_eq!(route53::fqdn(&db[0].values[0]), route53::fqdn(home.endpoint.as_deref().unwrap()));
        let app = route53::get_records(&c, &t.hosted_zone, &t.app_record).await.unwrap();
        let weight = |set: &str| app.iter().find(|r| r.set_identifier.as_deref() == Some(set)).and_then(|r| r.weight);
        assert_eq!((weight(&t.primary_region), weight(&t.dr_region)), (Some(100), Some(0)), "traffic home");
    });
}
