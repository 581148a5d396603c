//! `drover new NAME [--dir PARENT] [--sdk PATH]`: a runbook crate that
//! builds to a component out of the box: Cargo.toml, src/lib.rs with a
//! two-step example (the second step uses the first's output), its tests
//! against the simulated cloud (src/tests.rs, `cargo test`), a README with
//! the commands to test, build, check, dry-run and run it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

#[derive(clap::Args)]
pub struct Args {
    /// The runbook's name: lowercase letters, digits and '-' (e.g. payments-failover).
    pub name: String,
    /// Where to create the crate (a directory NAME is made there).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// The drover-sdk crate to depend on (default: the SDK of the source
    /// tree this agent was built from).
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

pub fn exec(args: Args) -> Result<ExitCode> {
    let name = args.name.as_str();
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_lowercase()) || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        bail!("runbook name '{name}': use lowercase letters, digits and '-', starting with a letter (e.g. payments-failover)");
    }
    let sdk = match args.sdk {
        Some(p) => p,
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk")),
    };
    let sdk = std::fs::canonicalize(&sdk)
        .with_context(|| format!("the drover SDK is not at {}: pass --sdk PATH (the sdk/ directory of a drover checkout)", sdk.display()))?;
    if !sdk.join("Cargo.toml").exists() {
        bail!("{} is not the drover SDK (no Cargo.toml): pass --sdk PATH", sdk.display());
    }
    let root = args.dir.join(name);
    if root.exists() {
        bail!("{} already exists: choose another name or directory (nothing was written)", root.display());
    }
    std::fs::create_dir_all(root.join("src")).with_context(|| format!("cannot create {}", root.display()))?;
    let ty = name.split('-').map(|w| w[..1].to_uppercase() + &w[1..]).collect::<String>();
    write(&root, "Cargo.toml", &cargo_toml(name, &sdk))?;
    write(&root, "src/lib.rs", &LIB_RS.replace("{name}", name).replace("{Type}", &ty))?;
    write(&root, "src/tests.rs", &TESTS_RS.replace("{name}", name).replace("{Type}", &ty))?;
    write(&root, "README.md", &README.replace("{name}", name).replace("{crate}", &name.replace('-', "_")))?;
    write(&root, ".gitignore", "/target\n")?;
    println!("created runbook {name} in {}", root.display());
    println!("test it:   cd {} && cargo test", root.display());
    println!("build it:  cd {} && cargo build --release --target wasm32-wasip2", root.display());
    Ok(ExitCode::SUCCESS)
}

fn write(root: &Path, file: &str, text: &str) -> Result<()> {
    let path = root.join(file);
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn cargo_toml(name: &str, sdk: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
description = "A drover runbook"
version = "0.1.0"
edition = "2024"
publish = false

# A runbook is a WebAssembly component: build with
#   cargo build --release --target wasm32-wasip2
[lib]
crate-type = ["cdylib"]

[dependencies]
drover-sdk = {{ path = "{sdk}" }}
serde = {{ version = "1", features = ["derive"] }}

[profile.release]
opt-level = "s"
lto = true
strip = "debuginfo"

# Its own workspace, wherever it is created.
[workspace]
"#,
        sdk = sdk.display()
    )
}

const LIB_RS: &str = r#"//! `{name}`: a drover runbook.
//!
//! Every step is journaled: when the agent is killed and the run resumed,
//! completed steps return their recorded output and do not run again. Put
//! each side effect in its own step, and reach AWS only through
//! `drover_sdk::aws` inside a step (declare what you use in `describe()`).

use drover_sdk::{Ctx, Describe, Error, Param, Runbook, export_runbook};
use serde::{Deserialize, Serialize};

/// The run's parameters (`drover run ... -p target=payments`).
#[derive(Deserialize)]
struct Params {
    target: String,
}

/// What the first step found; the second uses it.
#[derive(Serialize, Deserialize)]
struct Found {
    target: String,
    at_unix: i64,
}

struct {Type};

impl Runbook for {Type} {
    type Params = Params;
    type Output = String;

    fn describe() -> Describe {
        Describe::new("{name}", env!("CARGO_PKG_VERSION"))
            .description("Looks at a target, then acts on what it found. Replace both steps with your own.")
            .param(Param::string("target", "What the runbook acts on").default("example"))
    }

    fn run(ctx: &Ctx, p: Params) -> Result<String, Error> {
        // Step 1: look. Its output is journaled.
        let found: Found = ctx.step("inspect", || Ok(Found { target: p.target.clone(), at_unix: ctx.unix_seconds() }))?;
        // Step 2: act on what step 1 found; after a crash it runs with the same input.
        let done = ctx.step("act", || {
            if found.target.is_empty() {
                return Err(Error::new("no-target", "nothing to act on: pass -p target=NAME"));
            }
            Ok(format!("acted on {} (inspected at {})", found.target, found.at_unix))
        })?;
        ctx.info(&done);
        Ok(done)
    }
}

export_runbook!({Type});

#[cfg(test)]
mod tests;
"#;

const TESTS_RS: &str = r#"//! Tests of `{name}`: `cargo test` compiles the runbook natively and runs it
//! against drover's simulated cloud (drover_sdk::testing), with the agent's
//! journal, retries and replay, and crashes where a test asks for them. Give
//! the cloud resources and scripted failures with a Scenario (TOML, see the
//! drover_sdk::testing docs); assert on the result, the steps and the calls.

use drover_sdk::testing::{Scenario, TestRun};

use super::{Type};

#[test]
fn acts_on_what_it_inspected() {
    let r = TestRun::new(&Scenario::empty()).param("target", "payments").run::<{Type}>();
    assert!(r.succeeded(), "{r}");
    let out: String = r.output();
    assert!(out.starts_with("acted on payments"), "{out}");
}

#[test]
fn a_crash_before_act_is_journaled_runs_only_act_again() {
    let r = TestRun::new(&Scenario::empty()).crash_before_complete("act").run::<{Type}>();
    assert!(r.succeeded(), "{r}");
    assert_eq!(r.crashes, 1);
    assert_eq!(r.step("inspect").attempts, 1, "{r}");
    assert_eq!(r.step("act").attempts, 2, "{r}");
}

#[test]
fn an_empty_target_fails_with_a_clear_error() {
    let r = TestRun::new(&Scenario::empty()).param("target", "").run::<{Type}>();
    assert_eq!(r.error().code(), "no-target", "{r}");
}
"#;

const README: &str = r#"# {name}

A drover runbook (a WebAssembly component the drover agent runs durably).

```sh
cargo test                                          # natively, against the simulated cloud
rustup target add wasm32-wasip2                     # once
cargo build --release --target wasm32-wasip2        # -> target/wasm32-wasip2/release/{crate}.wasm
drover test target/wasm32-wasip2/release/{crate}.wasm --scenario SCENARIO.toml  # the component, simulated
drover check target/wasm32-wasip2/release/{crate}.wasm               # ready to deploy?
drover run target/wasm32-wasip2/release/{crate}.wasm --dry-run       # what it would change
drover run target/wasm32-wasip2/release/{crate}.wasm -p target=payments
```

Each `ctx.step` is journaled: kill the agent at any point and `drover
resume RUN_ID` goes on from the last completed step without repeating it.
To call AWS, use `drover_sdk::aws::{rds, ec2, route53, cloudwatch}` inside
a step and declare the capability in `describe()`
(`.capability(Capability::new("rds").operations([...]).regions([...]).resources([...]))`);
the operator grants it in the agent's configuration. `drover inspect`
shows what the runbook declares and what is granted.

`src/tests.rs` tests the runbook with `cargo test`, against an in-memory
cloud (`drover_sdk::testing`): describe the resources in a scenario, script
failures (`Fault::new("rds.promote-read-replica", "Throttling").times(2)`),
crash it after any step (`crash_before_complete("act")`), and assert on the
result, the journaled steps and the calls made (`report.cloud.changes(...)`).
"#;
