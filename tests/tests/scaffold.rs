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
    for f in ["Cargo.toml", "src/lib.rs", "README.md", ".gitignore"] {
        assert!(root.join(f).exists(), "{f}");
    }
    let (code, _, stderr) = drover(&agent, &["new", "team-failover", "--dir", parent]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("already exists"), "{stderr}");
    let (code, _, stderr) = drover(&agent, &["new", "Team_Failover", "--dir", parent]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("lowercase letters, digits and '-'"), "{stderr}");
    assert!(!dir.path().join("Team_Failover").exists());

    // Build it as its README says, into a target directory kept between runs.
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/scaffold");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.current_dir(&root).args(["build", "--release", "--target", "wasm32-wasip2"]).env("CARGO_TARGET_DIR", &target);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().to_string();
        if key == "RUSTFLAGS" || (key.starts_with("CARGO_") && !key.starts_with("CARGO_HOME") && !key.starts_with("CARGO_NET") && !key.starts_with("CARGO_HTTP") && !key.starts_with("CARGO_REGISTRIES")) {
            build.env_remove(&key);
        }
    }
    build.env("CARGO_TARGET_DIR", &target);
    let out = build.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let wasm = target.join("wasm32-wasip2/release/team_failover.wasm");
    assert!(wasm.exists());

    let (status, v) = agent.json(&["check", wasm.to_str().unwrap(), "--json"]).unwrap();
    assert_eq!(status.code(), Some(0), "{v:#}");
    let (status, run) = agent.json(&["run", wasm.to_str().unwrap(), "-p", "target=payments", "--json", "--quiet"]).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(run["result"], "acted on payments (inspected at ".to_string() + &run["steps"][0]["output"]["at_unix"].to_string() + ")", "{run:#}");
}
