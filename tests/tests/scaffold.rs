//! `drover new`: a fresh runbook crate builds to a component out of the
//! box, passes `drover check`, and runs. Bad names and existing directories
//! are refused without writing anything.

use std::path::PathBuf;
use std::process::Command;

use drover_chaos::Agent;
use drover_e2e::drover;

#[test]
fn a_new_runbook_builds_checks_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::new(dir.path().join("home"));
    let parent = dir.path().to_str().unwrap();
    let (code, stdout, stderr) = drover(&agent, &["new", "team-failover", "--dir", parent]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("created runbook team-failover"), "{stdout}");
    let root = dir.path().join("team-failover");
    for f in ["Cargo.toml", "src/lib.rs", "src/tests.rs", "README.md", ".gitignore"] {
        assert!(root.join(f).exists(), "{f}");
    }
    let (code, _, stderr) = drover(&agent, &["new", "team-failover", "--dir", parent]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("already exists"), "{stderr}");
    let (code, _, stderr) = drover(&agent, &["new", "Team_Failover", "--dir", parent]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("lowercase letters, digits and '-'"), "{stderr}");
    assert!(!dir.path().join("Team_Failover").exists());

    // Test and build it as its README says, into a target directory kept between runs.
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/scaffold");
    let out = cargo(&root, &target, &["test"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let tests = String::from_utf8_lossy(&out.stdout);
    assert!(tests.contains("test result: ok. 3 passed"), "{tests}");
    let out = cargo(&root, &target, &["build", "--release", "--target", "wasm32-wasip2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let wasm = target.join("wasm32-wasip2/release/team_failover.wasm");
    assert!(wasm.exists());

    let (status, v) = agent.json(&["check", wasm.to_str().unwrap(), "--json"]).unwrap();
    assert_eq!(status.code(), Some(0), "{v:#}");
    let (status, run) = agent.json(&["run", wasm.to_str().unwrap(), "-p", "target=payments", "--json", "--quiet"]).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(run["result"], "acted on payments (inspected at ".to_string() + &run["steps"][0]["output"]["at_unix"].to_string() + ")", "{run:#}");
}

/// Runs cargo in the new crate as its author would: none of this test's own
/// cargo settings leak in, only where the registry and its network are.
fn cargo(root: &std::path::Path, target: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root).args(args);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().to_string();
        if key == "RUSTFLAGS"
            || (key.starts_with("CARGO_")
                && !key.starts_with("CARGO_HOME")
                && !key.starts_with("CARGO_NET")
                && !key.starts_with("CARGO_HTTP")
                && !key.starts_with("CARGO_REGISTRIES"))
        {
            cmd.env_remove(&key);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target);
    cmd.output().unwrap()
}
