//! `drover check`: the static checks before a runbook is deployed, through
//! the real binary: a reference runbook passes under the demo grants; the
//! same one fails the grants check without them and the signature check
//! against a trusted key until it is signed; a component of another contract
//! version fails; a missing file is an error.

use drover_chaos::Agent;
use drover_e2e::{demo_config, drover};
use drover_test_artifacts as artifacts;
use serde_json::Value;

fn failed(v: &Value) -> Vec<String> {
    v["findings"].as_array().unwrap().iter().filter(|f| f["ok"] == false).map(|f| f["check"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_reference_runbook_is_ready_and_each_failing_check_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let granted = Agent::new(dir.path().join("a")).with_env("DROVER_CONFIG", &demo_config());
    let (status, v) = granted.json(&["check", artifacts::REGIONAL_FAILOVER, "--json"]).unwrap();
    assert_eq!((status.code(), &v["ok"]), (Some(0), &Value::Bool(true)), "{v:#}");
    assert_eq!(v["findings"].as_array().unwrap().len(), 8, "{v:#}");

    // No configuration: nothing is granted.
    let bare = Agent::new(dir.path().join("b"));
    let (status, v) = bare.json(&["check", artifacts::REGIONAL_FAILOVER, "--json"]).unwrap();
    assert_eq!(status.code(), Some(1));
    assert_eq!(failed(&v), ["the configuration grants what it declares"], "{v:#}");
    let f = v["findings"].as_array().unwrap().iter().find(|f| f["ok"] == false).unwrap();
    assert!(f["fix"].as_str().unwrap().contains("[runbooks.regional-failover]"), "{f:#}");

    // Against a trusted key: unsigned fails, signed passes.
    let prefix = dir.path().join("ops");
    let wasm = dir.path().join("failover.wasm");
    std::fs::copy(artifacts::REGIONAL_FAILOVER, &wasm).unwrap();
    let (code, _, stderr) = drover(&granted, &["keygen", "--out", prefix.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let public = format!("{}.pub", prefix.display());
    let (status, v) = granted.json(&["check", wasm.to_str().unwrap(), "--trusted", &public, "--json"]).unwrap();
    assert_eq!((status.code(), failed(&v)), (Some(1), vec!["signed by a trusted key".to_string()]), "{v:#}");
    let (code, _, stderr) = drover(&granted, &["sign", wasm.to_str().unwrap(), "--key", &format!("{}.key", prefix.display())]);
    assert_eq!(code, Some(0), "{stderr}");
    let (status, v) = granted.json(&["check", wasm.to_str().unwrap(), "--trusted", &public, "--json"]).unwrap();
    assert_eq!(status.code(), Some(0), "{v:#}");
}

#[test]
fn another_contract_version_fails_and_a_missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::new(dir.path().join("h"));
    let (code, stdout, _) = drover(&agent, &["check", artifacts::FUTURE_CONTRACT]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("FAIL a component of a contract version this agent serves") && stdout.contains("not ready"), "{stdout}");
    let (code, _, stderr) = drover(&agent, &["check", "/no/such/runbook.wasm"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot read runbook /no/such/runbook.wasm"), "{stderr}");
}
