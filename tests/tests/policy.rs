//! The capability policy and required signatures, through the real binary:
//! a runbook whose declared needs are not granted does not start (unless the
//! operator overrides it, which is recorded); a call outside the declaration
//! or the grants fails its step before it reaches AWS and is audited; with
//! `[signing] require = true` only runbooks signed by a trusted key run.
//! None of this needs the emulators: a refused call never leaves the agent.

use std::path::Path;

use drover_chaos::Agent;
use drover_e2e::{demo_config, drover};
use drover_engine::audit::AuditLog;
use drover_test_artifacts as artifacts;

fn agent_with(dir: &Path, config: &str) -> Agent {
    let path = dir.join("drover.toml");
    std::fs::write(&path, config).unwrap();
    Agent::new(dir.join("home")).with_env("DROVER_CONFIG", path.to_str().unwrap())
}

const HOG_GRANTS: &str = r#"
[runbooks.hog]
grants = [{ service = "rds", operations = ["describe-instance"], regions = ["us-east-1"], resources = ["db/allowed-*"] }]
"#;

#[test]
fn a_runbook_without_its_grants_does_not_start_unless_the_operator_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_with(dir.path(), "# no grants at all\n");

    let (code, _, stderr) = drover(&agent, &["run", artifacts::REGIONAL_FAILOVER, "--run-id", "no-grants", "--quiet"]);
    assert_eq!(code, Some(2), "{stderr}");
    for w in [
        "runbook 'regional-failover' declares capabilities the operator has not granted",
        "rds operation promote-read-replica",
        "rds region us-west-2",
        "route53 resource record/db.orders.example.internal",
        "--accept-missing-grants",
    ] {
        assert!(stderr.contains(w), "'{w}' not in: {stderr}");
    }
    let (code, stdout, _) = drover(&agent, &["runs"]);
    assert_eq!(code, Some(0));
    assert!(!stdout.contains("no-grants"), "a refused run is not recorded: {stdout}");

    // `inspect` shows the same comparison.
    let (code, stdout, _) = drover(&agent, &["inspect", artifacts::REGIONAL_FAILOVER]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("(nothing: add [runbooks.regional-failover] grants") && stdout.contains("- rds operation promote-read-replica"), "{stdout}");

    // Overridden: the run starts, records who overrode what, and its first
    // AWS call is still refused (and audited) before it leaves the agent.
    let (code, stdout, stderr) = drover(&agent, &["run", artifacts::REGIONAL_FAILOVER, "--run-id", "override", "--quiet", "--json", "--accept-missing-grants"]);
    assert_eq!(code, Some(1), "{stderr}");
    let run: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(run["error"]["code"], "permission-denied", "{run:#}");
    let o = &run["policy_override"];
    assert!(o["accepted_missing_grants"].as_array().unwrap().iter().any(|m| m == "rds operation promote-read-replica"), "{run:#}");
    assert!(o["by"].as_str().unwrap().contains("pid"), "{o}");
    let audit = AuditLog::read(&agent.home.join("audit.jsonl")).unwrap();
    let first = audit.first().expect("the refused call is audited");
    assert_eq!((first.run_id.as_str(), first.decision.as_str(), first.operation.as_str()), ("override", "deny", "rds.describe-instance"));
    assert!(first.reason.as_deref().unwrap().contains("has not granted"), "{first:?}");
}

#[test]
fn a_region_outside_the_grants_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::new(dir.path().join("home")).with_env("DROVER_CONFIG", &demo_config());
    let (code, _, stderr) = drover(&agent, &["run", artifacts::REGIONAL_FAILOVER, "-p", "dr_region=eu-west-1", "--quiet"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("- rds region eu-west-1") && !stderr.contains("us-west-2"), "{stderr}");
    // With the demo's own regions, every declared need is granted.
    let (code, stdout, _) = drover(&agent, &["inspect", artifacts::REGIONAL_FAILOVER]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("missing: nothing; every declared capability is granted"), "{stdout}");
}

#[test]
fn calls_outside_the_declaration_fail_their_step_and_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_with(dir.path(), HOG_GRANTS);
    for (mode, subject) in [("region", "region eu-central-1"), ("resource", "resource db/payroll-db")] {
        let (code, stdout, stderr) = drover(&agent, &["run", artifacts::HOG, "-p", &format!("mode={mode}"), "--run-id", mode, "--json", "--quiet"]);
        assert_eq!(code, Some(1), "{stderr}");
        let run: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(run["error"]["code"], "permission-denied", "{run:#}");
        let msg = run["error"]["message"].as_str().unwrap();
        assert!(msg.contains(&format!("runbook 'hog' called rds.describe-instance on {subject}, which it did not declare")), "{msg}");
        assert!(run.get("policy_override").is_none(), "{run:#}");
    }
    let audit = AuditLog::read(&agent.home.join("audit.jsonl")).unwrap();
    assert_eq!(audit.iter().map(|r| (r.run_id.as_str(), r.decision.as_str())).collect::<Vec<_>>(), [("region", "deny"), ("resource", "deny")]);
}

#[test]
fn with_signatures_required_only_trusted_runbooks_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let bootstrap = Agent::new(dir.path().join("home"));
    for who in ["ops", "intruder"] {
        let (code, _, stderr) = drover(&bootstrap, &["keygen", "--out", &p(who)]);
        assert_eq!(code, Some(0), "{stderr}");
    }
    // Key paths in the configuration are relative to it.
    let agent = agent_with(dir.path(), "[signing]\nrequire = true\ntrusted_keys = [\"ops.pub\"]\n");
    let wasm = p("hello.wasm");
    std::fs::copy(artifacts::HELLO_DURABLE, &wasm).unwrap();

    let (code, _, stderr) = drover(&agent, &["run", &wasm, "--quiet"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("refusing runbook") && stderr.contains("is not signed"), "{stderr}");

    let (code, _, stderr) = drover(&agent, &["sign", &wasm, "--key", &p("intruder.key")]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = drover(&agent, &["run", &wasm, "--quiet"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("trusted_keys"), "{stderr}");

    let (code, _, stderr) = drover(&agent, &["sign", &wasm, "--key", &p("ops.key")]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = drover(&agent, &["run", &wasm, "--quiet", "--run-id", "signed"]);
    assert_eq!(code, Some(0), "{stderr}");

    // One byte changed after signing: refused, and nothing is recorded.
    let mut bytes = std::fs::read(&wasm).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&wasm, &bytes).unwrap();
    let (code, _, stderr) = drover(&agent, &["run", &wasm, "--quiet", "--run-id", "tampered"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("refusing runbook"), "{stderr}");
    let (_, stdout, _) = drover(&agent, &["runs"]);
    assert!(stdout.contains("signed") && !stdout.contains("tampered"), "{stdout}");

    // A configuration that requires signatures but trusts no key is refused outright.
    let broken = agent_with(dir.path(), "[signing]\nrequire = true\n");
    let (code, _, stderr) = drover(&broken, &["runs"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("trusted_keys is empty"), "{stderr}");
}
