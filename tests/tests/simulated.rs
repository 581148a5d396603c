//! `drover test RUNBOOK.wasm --scenario FILE`: the compiled component, run
//! by the real engine against the simulated cloud on simulated time. No
//! emulator is used (the AWS endpoint is pointed at a closed port to prove
//! it), and the agent's own store stays empty.

use std::path::PathBuf;

use drover_chaos::Agent;
use drover_e2e::drover;
use drover_test_artifacts as artifacts;
use serde_json::Value;

fn demo() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runbooks/scenarios/demo.toml").to_string_lossy().into()
}

fn agent() -> (tempfile::TempDir, Agent) {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::new(dir.path().join("home")).with_env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    (dir, agent)
}

fn changed(v: &Value, call: &str) -> usize {
    v["simulated"]["calls"].as_array().unwrap().iter().filter(|c| c["call"] == call && c["changed"] == true).count()
}

fn step<'a>(run: &'a Value, key: &str) -> &'a Value {
    run["steps"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap_or_else(|| panic!("no step {key} in {run:#}"))
}

#[test]
fn the_failover_component_runs_against_the_simulated_demo_topology() {
    let (_d, agent) = agent();
    let (status, v) = agent.json(&["test", artifacts::REGIONAL_FAILOVER, "--scenario", &demo(), "--json"]).unwrap();
    assert!(status.success(), "{v:#}");
    assert_eq!(v["status"], "succeeded", "{v:#}");
    assert_eq!(v["result"]["endpoint"], "orders-db-replica.c0ffee.us-west-2.rds.amazonaws.com");
    for call in ["rds.create-snapshot", "rds.promote-read-replica", "rds.copy-snapshot", "route53.upsert-cname", "route53.set-weights"] {
        assert_eq!(changed(&v, call), 1, "{call}: {:#}", v["simulated"]["calls"]);
    }
    let replica = &v["simulated"]["state"]["rds"]["instances"]["us-west-2"]["orders-db-replica"]["instance"];
    assert_eq!(replica["replica_source"], Value::Null);
    // The promotion's wait (120 simulated seconds) is in the measured RTO.
    assert!(v["result"]["rto_seconds"].as_f64().unwrap() >= 120.0, "{:#}", v["result"]);
    // Nothing went into the agent's own store.
    let (status, runs) = agent.json(&["runs", "--json"]).unwrap();
    assert!(status.success());
    assert_eq!(runs.as_array().map(Vec::len), Some(0), "{runs:#}");
}

#[test]
fn scripted_faults_are_retried_by_the_engine_and_failures_change_nothing() {
    let (dir, agent) = agent();
    let throttled = dir.path().join("throttled.toml");
    let base = std::fs::read_to_string(demo()).unwrap();
    std::fs::write(&throttled, format!("{base}\n[[fault]]\ncall = \"rds.promote-read-replica\"\nerror = \"Throttling\"\ntimes = 2\n")).unwrap();
    let (status, v) = agent.json(&["test", artifacts::REGIONAL_FAILOVER, "--scenario", throttled.to_str().unwrap(), "--json"]).unwrap();
    assert!(status.success(), "{v:#}");
    assert_eq!(step(&v, "promote")["attempts"], 3, "{v:#}");
    assert_eq!(changed(&v, "rds.promote-read-replica"), 1);

    let (status, v) = agent.json(&["test", artifacts::REGIONAL_FAILOVER, "--scenario", &demo(), "-p", "replica=no-such-replica", "--json"]).unwrap();
    assert_eq!(status.code(), Some(1), "{v:#}");
    assert_eq!(v["error"]["code"], "DBInstanceNotFound", "{v:#}");
    assert!(v["simulated"]["calls"].as_array().unwrap().iter().all(|c| c["changed"] == false), "{v:#}");

    // The text form names every call and what it changed.
    let (code, out, err) = drover(&agent, &["test", artifacts::REGIONAL_FAILOVER, "--scenario", &demo()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("calls to the simulated cloud"), "{out}");
    assert!(out.lines().any(|l| l.contains("rds.promote-read-replica") && l.contains("CHANGED") && l.contains("[promote #1]")), "{out}");
}

#[test]
fn a_bad_scenario_is_refused_with_what_is_wrong() {
    let (dir, agent) = agent();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[rds.instance]]\nregion = \"us-east-1\"\nidentifer = \"typo\"\n").unwrap();
    let (code, _, err) = drover(&agent, &["test", artifacts::REGIONAL_FAILOVER, "--scenario", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("bad.toml") && err.contains("identifer"), "{err}");
    let (code, _, err) = drover(&agent, &["test", artifacts::REGIONAL_FAILOVER, "--scenario", "/no/such/scenario.toml"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot read scenario /no/such/scenario.toml"), "{err}");
}

/// The parity check with the runbook author's harness: each reference
/// runbook, compiled, runs in the real engine on its parity scenario
/// (scripted faults included) and must journal exactly what the file says:
/// the same steps, outcomes, attempt counts and idempotency keys. The
/// runbook's own `cargo test` (the SDK's native harness) compares with the
/// same file (`journals_what_the_agent_journals_under_the_same_faults`).
#[test]
fn the_engine_journals_what_the_native_harness_journals() {
    let parity = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runbooks/scenarios/parity");
    for (name, component) in [
        ("regional-failover", artifacts::REGIONAL_FAILOVER),
        ("fleet-failover", artifacts::FLEET_FAILOVER),
        ("failback", artifacts::FAILBACK),
        ("dr-drill", artifacts::DR_DRILL),
        ("dns-shift", artifacts::DNS_SHIFT),
        ("ami-replicate", artifacts::AMI_REPLICATE),
        ("hello-durable", artifacts::HELLO_DURABLE),
    ] {
        let (_d, agent) = agent();
        let scenario = parity.join(format!("{name}.toml"));
        let (_, v) = agent.json(&["test", component, "--scenario", scenario.to_str().unwrap(), "--json"]).unwrap();
        let got: Vec<drover_replay::StepSummary> = v["steps"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no steps in {v:#}"))
            .iter()
            .map(|s| drover_replay::StepSummary {
                key: s["key"].as_str().unwrap().into(),
                outcome: drover_replay::summary::outcome(s["status"].as_str().unwrap()).into(),
                attempts: s["attempts"].as_u64().unwrap() as u32,
                idempotency_key: s["idempotency_key"].as_str().unwrap_or_default().into(),
            })
            .collect();
        let want: Vec<drover_replay::StepSummary> =
            serde_json::from_str(&std::fs::read_to_string(parity.join(format!("{name}.journal.json"))).unwrap()).unwrap();
        assert_eq!(got, want, "{name}: the engine's journal differs from the harness's\n{v:#}");
    }
}
