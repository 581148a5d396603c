//! Builds every runbook in `runbooks/` (reference runbooks and test fixtures)
//! for wasm32-wasip2, in release mode, into `<target>/runbooks`, and writes
//! their paths as constants for the host's tests (the pattern of wasmtime's
//! `crates/test-programs/artifacts`).

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().and_then(Path::parent).expect("tests/artifacts sits two levels below the root").to_path_buf();
    let runbooks = root.join("runbooks");
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d).join("runbooks"),
        None => root.join("target").join("runbooks"),
    };

    for entry in std::fs::read_dir(&runbooks).expect("runbooks/ exists") {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n != "target") {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-changed={}", root.join("sdk").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    let out_dir = target_dir.join(TARGET).join("release");
    // The power test's build of regional-failover (its lag gate reverted),
    // first, and kept apart: the workspace build below rebuilds the real one.
    cargo_build(&runbooks, &target_dir, &["-p", "regional-failover", "--features", "power-test"]);
    let variants = target_dir.join("power-test");
    std::fs::create_dir_all(&variants).expect("cannot create the power-test directory");
    let reverted = variants.join("regional_failover_lag_reverted.wasm");
    std::fs::copy(out_dir.join("regional_failover.wasm"), &reverted).expect("the power-test build wrote regional_failover.wasm");
    cargo_build(&runbooks, &target_dir, &["--workspace"]);

    let mut consts = String::new();
    consts.push_str(&format!(
        "/// `regional-failover` built with its `power-test` feature (the lag gate's refusal of -1 reverted), for the simulation's power test.\npub const REGIONAL_FAILOVER_LAG_REVERTED: &str = {:?};\n",
        reverted.display().to_string()
    ));
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&out_dir).expect("the runbook build wrote its output") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wasm") {
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            let ident = stem.replace('-', "_").to_uppercase();
            consts.push_str(&format!("/// The `{stem}` component.\npub const {ident}: &str = {:?};\n", path.display().to_string()));
            names.push(stem);
        }
    }
    names.sort();
    consts.push_str(&format!("/// Every component built.\npub const ALL: &[&str] = &{names:?};\n"));
    consts.push_str(&format!("/// Where the components are.\npub const DIR: &str = {:?};\n", out_dir.display().to_string()));
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("runbooks.rs");
    std::fs::write(out, consts).unwrap();
}

/// `cargo build --release --target wasm32-wasip2` of the runbooks workspace with `args`.
fn cargo_build(runbooks: &Path, target_dir: &Path, args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(runbooks).args(["build", "--release", "--target", TARGET]).args(args).arg("--target-dir").arg(target_dir);
    // Settings meant for the host build must not leak into the guest build.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().to_string();
        let keep = ["CARGO_HOME", "CARGO_MAKEFLAGS", "CARGO_NET_OFFLINE"].contains(&key.as_str())
            || key.starts_with("CARGO_REGISTRIES_")
            || key.starts_with("CARGO_HTTP_")
            || key.starts_with("CARGO_NET_");
        if (key.starts_with("CARGO_") && !keep) || ["RUSTFLAGS", "RUSTC_WORKSPACE_WRAPPER", "RUSTDOCFLAGS"].contains(&key.as_str()) {
            cmd.env_remove(&key);
        }
    }
    let status = cmd.status().expect("cannot run cargo to build the runbooks");
    if !status.success() {
        panic!(
            "building the runbooks for {TARGET} failed (see above). If the target is missing, \
             run `rustup target add {TARGET}`"
        );
    }
}
