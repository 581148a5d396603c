//! Readiness and the lag gate against the real emulators: `drover
//! readiness` reports ready on the healthy demo topology and names each
//! broken condition in turn (copies too old, a record missing, the replica
//! missing, the lag over budget), changing nothing; `regional-failover`
//! refuses to promote a replica lagging beyond the RPO budget unless the
//! operator overrides it, and the override is recorded with the run.

use drover_chaos::topology::{Seeded, publish_replica_lag};
use drover_e2e::{agent, args, rt, seeded};
use drover_test_artifacts as artifacts;
use serde_json::Value;

/// `drover readiness regional-failover` with the topology's parameters and `extra`.
fn readiness(agent: &drover_chaos::Agent, s: &Seeded, extra: &[String]) -> (i32, Value) {
    let mut params = s.topology.params();
    for e in extra {
        let name = e.split('=').next().unwrap();
        params.retain(|p| !p.starts_with(&format!("{name}=")));
        params.push(e.clone());
    }
    let mut a = vec!["readiness", artifacts::REGIONAL_FAILOVER, "--json"];
    params.iter().for_each(|p| a.extend(["-p", p]));
    let (status, v) = agent.json(&a).unwrap();
    (status.code().unwrap(), v)
}

/// The checks that failed.
fn problems(v: &Value) -> Vec<String> {
    v["findings"].as_array().unwrap().iter().filter(|f| f["ok"] == false).map(|f| f["check"].as_str().unwrap().to_string()).collect()
}

fn db_record_points_at_primary(c: &drover_aws::Clients, s: &Seeded) -> bool {
    let t = &s.topology;
    rt().block_on(async {
        let db = drover_aws::route53::get_records(c, &t.hosted_zone, &t.db_record).await.unwrap();
        db[0].values[0].starts_with(&s.primary_endpoint)
    })
}

#[test]
fn readiness_is_ready_when_healthy_and_names_each_broken_condition() {
    let (c, s) = seeded("ready");
    let (_d, agent) = agent();
    let (code, v) = readiness(&agent, &s, &[]);
    assert_eq!((code, &v["ready"]), (0, &Value::Bool(true)), "{v:#}");
    assert!(v["findings"].as_array().unwrap().len() >= 7, "{v:#}");

    let t = &s.topology;
    let cases: [(Vec<String>, &str); 3] = [
        (vec!["max_copy_age_seconds=0".into()], "a recent snapshot copy in the DR region"),
        (vec![format!("db_record=nodb.{}", t.hosted_zone)], "the database record exists"),
        (vec![format!("replica={}-gone", t.db_instance)], "the DR replica exists"),
    ];
    for (extra, broken) in cases {
        let (code, v) = readiness(&agent, &s, &extra);
        assert_eq!(code, 1, "{extra:?}: {v:#}");
        let p = problems(&v);
        assert!(p.contains(&broken.to_string()), "{extra:?}: {p:?}");
        let f = v["findings"].as_array().unwrap().iter().find(|f| f["check"] == broken).unwrap();
        assert!(f["fix"].as_str().is_some_and(|x| !x.is_empty()), "{f:#}");
    }

    rt().block_on(publish_replica_lag(&c, t, 900.0)).unwrap();
    let (code, v) = readiness(&agent, &s, &[]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(problems(&v), ["replica lag within the RPO budget"]);
    // Readiness changed nothing, and recorded no run.
    assert!(db_record_points_at_primary(&c, &s));
    let out = agent.output(&["runs", "--json"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

#[test]
fn a_lagging_replica_is_not_promoted_unless_the_operator_accepts_it() {
    let (c, s) = seeded("lag");
    let (_d, agent) = agent();
    rt().block_on(publish_replica_lag(&c, &s.topology, 900.0)).unwrap();

    let params = s.topology.params();
    let mut a = args(artifacts::REGIONAL_FAILOVER, "refused", &params);
    a.push("--json");
    let (status, run) = agent.json(&a).unwrap();
    assert_eq!(status.code(), Some(1), "{run:#}");
    assert_eq!(run["error"]["code"], "replica-lag-over-rpo", "{run:#}");
    let msg = run["error"]["message"].as_str().unwrap();
    assert!(msg.contains("lags 900 s") && msg.contains("RPO budget of 300 s") && msg.contains("accept_replica_lag=true"), "{msg}");
    assert_eq!(agent.attempt_count("refused", "promote"), 0);
    assert!(db_record_points_at_primary(&c, &s));

    let mut params = s.topology.params();
    params.push("accept_replica_lag=true".into());
    let mut a = args(artifacts::REGIONAL_FAILOVER, "accepted", &params);
    a.push("--json");
    let (status, run) = agent.json(&a).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(run["params"]["accept_replica_lag"], true, "the override is recorded with the run");
    assert_eq!(run["result"]["estimated_rpo_seconds"], 900.0);
    let warnings = run["result"]["warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().contains("accepted by the operator")), "{warnings:?}");
    assert!(!db_record_points_at_primary(&c, &s));
}
