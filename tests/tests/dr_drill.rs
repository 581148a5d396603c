//! `dr-drill` against the real emulators: a non-disruptive drill restores and
//! launches copies in the DR region, measures RTO and RPO, and leaves nothing
//! behind (checked here by reading the emulators directly, not through the
//! agent's own listing), whether it passes, fails midway, or is killed and
//! resumed; production records and the replica are never touched.

use drover_aws::{Clients, RUN_TAG, route53};
use drover_chaos::killed_by_sigkill;
use drover_chaos::topology::Seeded;
use drover_e2e::{agent, args, rt, seeded};
use drover_test_artifacts as artifacts;

/// Everything tagged with run `run_id` that still exists, in both regions,
/// plus the drill record if it is there.
fn left_behind(c: &Clients, s: &Seeded, run_id: &str) -> Vec<String> {
    let t = &s.topology;
    rt().block_on(async {
        let mut left = Vec::new();
        for region in [&t.primary_region, &t.dr_region] {
            let dbs = c.rds(region).describe_db_instances().send().await.unwrap();
            for i in dbs.db_instances() {
                if i.tag_list().iter().any(|tag| tag.key() == Some(RUN_TAG) && tag.value() == Some(run_id)) {
                    left.push(format!("db {} in {region}", i.db_instance_identifier().unwrap_or_default()));
                }
            }
            let f = aws_sdk_ec2::types::Filter::builder().name(format!("tag:{RUN_TAG}")).values(run_id).build();
            let out = c.ec2(region).describe_instances().filters(f).send().await.unwrap();
            for i in out.reservations().iter().flat_map(|r| r.instances()) {
                let state = i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default();
                if state != "terminated" && state != "shutting-down" {
                    left.push(format!("instance {} ({state}) in {region}", i.instance_id().unwrap_or_default()));
                }
            }
        }
        if !route53::get_records(c, &t.hosted_zone, &format!("drill.{}", t.hosted_zone)).await.unwrap().is_empty() {
            left.push("the drill record".into());
        }
        left
    })
}

/// Production is as seeded: the DB record on the primary, app weights 100/0,
/// the replica still a replica.
fn production_untouched(c: &Clients, s: &Seeded) {
    let t = &s.topology;
    rt().block_on(async {
        let db = route53::get_records(c, &t.hosted_zone, &t.db_record).await.unwrap();
        assert!(db[0].values[0].starts_with(&s.primary_endpoint), "{db:?}");
        let app = route53::get_records(c, &t.hosted_zone, &t.app_record).await.unwrap();
        let w = |region: &str| app.iter().find(|r| r.set_identifier.as_deref() == Some(region)).and_then(|r| r.weight);
        assert_eq!((w(&t.primary_region), w(&t.dr_region)), (Some(100), Some(0)), "{app:?}");
        let replica = drover_aws::rds::describe_instance(c, &t.dr_region, &t.replica).await.unwrap();
        assert!(replica.replica_source.is_some(), "{replica:?}");
    });
}

#[test]
fn a_drill_passes_measures_and_leaves_nothing_behind() {
    let (c, s) = seeded("drill");
    let (_d, agent) = agent();
    let params = s.topology.drill_params();

    // The dry run plans every change, teardown included, and makes none.
    let mut a = vec!["run", artifacts::DR_DRILL, "--dry-run", "--json", "--quiet"];
    params.iter().for_each(|p| a.extend(["-p", p]));
    let (status, out) = agent.json(&a).unwrap();
    assert!(status.success(), "{out:#}");
    let plan: Vec<(&str, &str)> = out["plan"].as_array().unwrap().iter().map(|c| (c["step"].as_str().unwrap(), c["operation"].as_str().unwrap())).collect();
    assert_eq!(
        plan,
        [
            ("restore-database", "RestoreDBInstanceFromDBSnapshot"),
            ("launch-app", "RunInstances"),
            ("drill-record", "ChangeResourceRecordSets"),
            ("teardown", "ChangeResourceRecordSets"),
            ("teardown", "TerminateInstances"),
            ("teardown", "DeleteDBInstance"),
        ]
    );
    assert_eq!(left_behind(&c, &s, out["run_id"].as_str().unwrap()), Vec::<String>::new());

    let mut a = args(artifacts::DR_DRILL, "drill-1", &params);
    a.push("--json");
    let (status, run) = agent.json(&a).unwrap();
    assert!(status.success(), "{run:#}");
    let r = &run["result"];
    assert_eq!(r["verdict"], "pass", "{r:#}");
    assert_eq!(r["restored_from"], format!("{}-nightly-dr", s.topology.db_instance));
    assert!(r["rto_seconds"].as_f64().unwrap() > 0.0 && r["rpo_seconds"].as_i64().unwrap() >= 0, "{r:#}");
    assert_eq!(r["left_behind"], 0);
    assert!(r["database"]["checks"].as_array().unwrap().iter().any(|c| c.as_str().unwrap().starts_with("engine matches the primary")), "{r:#}");
    assert_eq!(run["cleanup"]["status"], "succeeded", "{run:#}");
    assert_eq!(left_behind(&c, &s, "drill-1"), Vec::<String>::new());
    production_untouched(&c, &s);

    // The drill's report: the RPO it demonstrated, and what it did in AWS.
    let out = tempfile::tempdir().unwrap();
    let (code, _, stderr) = drover_e2e::drover(&agent, &["report", "drill-1", "--out", out.path().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let md = std::fs::read_to_string(out.path().join("drill-1.md")).unwrap();
    assert!(
        md.starts_with("# dr-drill run drill-1: PASSED") && md.contains("- **RPO demonstrated**: ") && md.contains("- **runbook's verdict**: pass"),
        "{md}"
    );
    assert!(md.contains("- rds.restore-from-snapshot on ") && md.contains("- rds.delete-instance on "), "{md}");
}

#[test]
fn a_drill_killed_anywhere_and_resumed_still_leaves_nothing() {
    let (c, s) = seeded("drillkill");
    let (_d, agent) = agent();
    let params = s.topology.drill_params();
    for (n, point) in ["after-step:restore-database", "in-step:launch-app", "after-step:drill-record", "in-step:teardown"].iter().enumerate() {
        let id = format!("kill-{n}");
        let mut child = agent.spawn(&args(artifacts::DR_DRILL, &id, &params), point).unwrap();
        assert!(killed_by_sigkill(&child.wait().unwrap()), "{point}");
        let (status, run) = agent.json(&["resume", &id, "--json", "--quiet"]).unwrap();
        assert!(status.success(), "{point}: {run:#}");
        assert_eq!(run["result"]["left_behind"], 0, "{point}");
        // One restore and one launch, however many times the agent died.
        assert_eq!(agent.attempt_count(&id, "restore-database"), 1, "{point}");
        assert_eq!(left_behind(&c, &s, &id), Vec::<String>::new(), "{point}");
    }
    production_untouched(&c, &s);
}

#[test]
fn a_drill_that_fails_midway_cleans_up_and_a_missing_copy_is_named() {
    let (c, s) = seeded("drillfail");
    let (_d, agent) = agent();
    let t = &s.topology;
    // The database is restored and the app launched, then the drill record's
    // zone does not exist: the run fails, and its cleanups remove both.
    let zone = format!("orders-nozone-{}.example.internal", &t.db_instance[t.db_instance.len() - 6..]);
    let mut params = t.drill_params();
    params.retain(|p| !p.starts_with("drill_zone=") && !p.starts_with("drill_record="));
    params.push(format!("drill_zone={zone}"));
    params.push(format!("drill_record=drill.{zone}"));
    let mut a = args(artifacts::DR_DRILL, "midway", &params);
    a.push("--json");
    let (status, run) = agent.json(&a).unwrap();
    assert_eq!(status.code(), Some(1), "{run:#}");
    assert_eq!(run["error"]["code"], "NoSuchHostedZone", "{run:#}");
    assert_eq!(run["cleanup"]["status"], "succeeded", "{run:#}");
    assert_eq!(left_behind(&c, &s, "midway"), Vec::<String>::new());

    // No snapshot copy in the DR region: a clear reason, nothing made.
    rt().block_on(async {
        c.rds(&t.dr_region).delete_db_snapshot().db_snapshot_identifier(format!("{}-nightly-dr", t.db_instance)).send().await.unwrap();
    });
    let mut a = args(artifacts::DR_DRILL, "no-copy", &params);
    a.push("--json");
    let (status, run) = agent.json(&a).unwrap();
    assert_eq!(status.code(), Some(1), "{run:#}");
    assert_eq!(run["error"]["code"], "no-snapshot-copy", "{run:#}");
    let msg = run["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&t.db_instance) && msg.contains(&t.dr_region), "{msg}");
    assert_eq!(left_behind(&c, &s, "no-copy"), Vec::<String>::new());
    production_untouched(&c, &s);
}
