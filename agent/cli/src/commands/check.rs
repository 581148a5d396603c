//! `drover check RUNBOOK.wasm [--trusted KEY]... [--json]`: the static
//! checks to pass before a runbook is deployed: the contract version it
//! imports, what `describe()` says (name, semver version, description,
//! every parameter documented), its declared capabilities (and which are
//! broad), whether the configuration grants them, and its signature.
//! Exit 0 when every check passes, 1 when one does not, 2 when the file
//! cannot be read.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use drover_engine::{EngineError, policy};
use drover_signing::{TrustStore, signature_path};
use serde::Serialize;

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// The runbook component (.wasm).
    pub runbook: PathBuf,
    /// A trusted public key (a .pub file or the key itself) to check the
    /// signature against; default: the configuration's `[signing] trusted_keys`.
    #[arg(long, value_name = "PUBFILE_OR_KEY")]
    pub trusted: Vec<String>,
    /// Print JSON: {"ok", "findings": [{"check", "ok", "detail", "fix"}]}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Finding {
    check: &'static str,
    ok: bool,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

fn pass(check: &'static str, detail: impl Into<String>) -> Finding {
    Finding { check, ok: true, detail: detail.into(), fix: None }
}

fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding { check, ok: false, detail: detail.into(), fix: Some(fix.into()) }
}

/// Whether a capability operation only reads (by the contract's naming:
/// `describe-`, `get-`, `wait-`, `latest-`, `replica-lag`, `run-instances`).
fn reads_only(op: &str) -> bool {
    ["describe-", "get-", "wait-", "latest-"].iter().any(|p| op.starts_with(p)) || ["replica-lag", "run-instances"].contains(&op)
}

fn semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let mut label = args.runbook.display().to_string();
    // An OCI reference is checked as pulled, with the signatures that refer to it.
    let pulled = match drover_oci::parse_source(&label)? {
        drover_oci::RunbookSource::Oci(reference) => Some(drover_oci::pull(&reference, &home.config.registry.transport()).await?),
        drover_oci::RunbookSource::File(_) => None,
    };
    let bytes = match &pulled {
        Some(p) => {
            label = p.pinned.clone();
            p.component.clone()
        }
        None => std::fs::read(&args.runbook).with_context(|| format!("cannot read runbook {label}"))?,
    };
    let mut f = Vec::new();
    match drover_engine::check_header(&label, &bytes) {
        Ok(()) => {}
        Err(e) => f.push(fail("a component of a contract version this agent serves", e.to_string(), "rebuild it against this agent's wit/ (drover-sdk)")),
    }
    let engine = home.engine()?;
    let loaded = if f.is_empty() { Some(engine.load(&label, &bytes).await) } else { None };
    match loaded {
        Some(Ok(rb)) => {
            let info = &rb.info;
            f.push(pass("a component of a contract version this agent serves", format!("imports drover:runbook@{}", info.contract)));
            f.push(pass("describe() answers", format!("{} {}", info.name, info.version)));
            if semver(&info.version) {
                f.push(pass("the version is semver", info.version.clone()));
            } else {
                f.push(fail("the version is semver", format!("'{}'", info.version), "give MAJOR.MINOR.PATCH (env!(\"CARGO_PKG_VERSION\") does)"));
            }
            if info.description.trim().is_empty() {
                f.push(fail(
                    "the runbook is described",
                    "describe() gives no description",
                    "say in one paragraph what it does and when to use it (.description(...))",
                ));
            } else {
                f.push(pass("the runbook is described", format!("{} characters", info.description.len())));
            }
            let undocumented: Vec<&str> = info.params.iter().filter(|p| p.description.trim().is_empty()).map(|p| p.name.as_str()).collect();
            if undocumented.is_empty() {
                f.push(pass("every parameter is documented", format!("{} parameter(s)", info.params.len())));
            } else {
                f.push(fail(
                    "every parameter is documented",
                    format!("no description: {}", undocumented.join(", ")),
                    "give each Param a description: operators read it in drover inspect",
                ));
            }
            // Every operation is broad; every resource is broad only where the
            // runbook changes something (reading every alarm's state is harmless).
            let broad: Vec<String> = info
                .capabilities
                .iter()
                .flat_map(|c| {
                    let ops = c.operations.iter().any(|o| o == "*").then(|| format!("{}: every operation", c.service));
                    let changes = c.operations.iter().any(|o| !reads_only(o));
                    let res = c
                        .resources
                        .iter()
                        .filter(move |r| changes && (r.as_str() == "*" || r.ends_with("/*")))
                        .map(|r| format!("{}: resources {r} with operations that change things", c.service));
                    ops.into_iter().chain(res)
                })
                .collect();
            if broad.is_empty() {
                f.push(pass("the capabilities are narrow", format!("{} declared, none with * for every operation or resource", info.capabilities.len())));
            } else {
                f.push(fail(
                    "the capabilities are narrow",
                    broad.join("; "),
                    "name the operations and the resources ({param} placeholders narrow them to the run's values); operators grant less than *",
                ));
            }
            match info.validate_params(&[]) {
                Ok(params) => {
                    let missing = policy::missing(&policy::resolve(info, &params), engine.policy().grants_for(info));
                    if missing.is_empty() {
                        f.push(pass("the configuration grants what it declares", "with the parameters' defaults"));
                    } else {
                        f.push(fail(
                            "the configuration grants what it declares",
                            format!("with the parameters' defaults, not granted: {}", missing.join("; ")),
                            format!("add them under [runbooks.{}] grants in the configuration (drover inspect compares both)", info.name),
                        ));
                    }
                }
                Err(_) => f.push(pass("the configuration grants what it declares", "depends on required parameters: check with drover inspect -p NAME=VALUE")),
            }
        }
        Some(Err(e)) => match e {
            EngineError::NotWasm { .. }
            | EngineError::CoreModule { .. }
            | EngineError::InvalidComponent { .. }
            | EngineError::UnsupportedContract { .. }
            | EngineError::UnknownImport { .. }
            | EngineError::WrongWorld { .. } => {
                f.push(fail("a component of a contract version this agent serves", e.to_string(), "rebuild it against this agent's wit/ (drover-sdk)"))
            }
            e => f.push(fail("describe() answers", e.to_string(), "fix the runbook's describe() (it must return its description and call nothing)")),
        },
        None => {}
    }
    let trust = if args.trusted.is_empty() { home.config.trust()? } else { Some(TrustStore::from_specs(&args.trusted)?) };
    let sig = signature_path(&args.runbook);
    if let Some(p) = &pulled {
        f.push(match trust.as_ref().map(|t| t.verify_any(&bytes, &p.signatures)) {
            Some(verified) => match verified {
                Ok(key) => pass("signed by a trusted key", format!("key {key} (a referrer of {label})")),
                Err(_) => fail(
                    "signed by a trusted key",
                    format!("{} signature(s) refer to it, none by a trusted key", p.signatures.len()),
                    "sign it (drover sign RUNBOOK.wasm --key KEY.key) and push it again: drover push attaches RUNBOOK.wasm.sig",
                ),
            },
            None => {
                pass("signed by a trusted key", format!("{} signature(s) refer to it; no trusted key to check them against (--trusted)", p.signatures.len()))
            }
        });
    } else {
        match (&trust, sig.exists()) {
            (Some(t), _) => match t.verify_file(&args.runbook, &bytes) {
                Ok(key) => f.push(pass("signed by a trusted key", format!("key {key}"))),
                Err(e) => {
                    f.push(fail("signed by a trusted key", format!("{e:#}"), "sign it: drover sign RUNBOOK.wasm --key KEY.key, with a key the agents trust"))
                }
            },
            (None, true) => f.push(pass("signed by a trusted key", format!("{} exists; no trusted key to check it against (--trusted)", sig.display()))),
            (None, false) => f.push(pass("signed by a trusted key", "not signed; the configuration does not require it ([signing] require = false)")),
        }
    }

    let ok = f.iter().all(|x| x.ok);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "ok": ok, "findings": f }))?);
    } else {
        for x in &f {
            println!("{} {}: {}", if x.ok { "ok  " } else { "FAIL" }, x.check, x.detail);
            if let Some(fix) = &x.fix {
                println!("       fix: {fix}");
            }
        }
        println!("{}", if ok { "\nready to deploy" } else { "\nnot ready: fix the checks marked FAIL" });
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
