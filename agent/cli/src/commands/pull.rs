//! `drover pull REF [-o FILE] [--plain-http HOST:PORT]...`: a runbook from a
//! registry to a file (and its signature to FILE.sig), checked as `drover
//! run REF` checks it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// `REGISTRY/REPOSITORY:TAG` or `REGISTRY/REPOSITORY@sha256:HEX`.
    pub reference: String,
    /// Where to write the component (default: NAME-VERSION.wasm here); its
    /// signature goes to FILE.sig.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub registry: super::push::RegistryArgs,
    /// Print what was pulled as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let reference = drover_oci::source::parse_reference(args.reference.trim_start_matches("oci://"))?;
    let (pulled, key) = home.pull_checked(&reference, &args.registry.transport(home)).await?;
    let runbook = crate::home::load_pulled(&home.engine()?, &pulled).await?;
    let out = args.out.unwrap_or_else(|| PathBuf::from(format!("{}-{}.wasm", runbook.info.name, runbook.info.version)));
    std::fs::write(&out, &pulled.component).with_context(|| format!("cannot write {}", out.display()))?;
    // The signature a trusted key made, else the first one.
    let sha = drover_signing::sha256_hex(&pulled.component);
    let sig = pulled.signatures.iter().find(|s| key.as_deref() == Some(s.key_id.as_str())).or_else(|| pulled.signatures.iter().find(|s| s.sha256 == sha));
    let sig_path = match sig {
        Some(s) => Some(drover_signing::write_signature(&out, s)?),
        None => None,
    };
    if args.json {
        let v = serde_json::json!({"pinned": pulled.pinned, "manifest_digest": pulled.manifest_digest, "file": out, "signature": sig_path, "signatures": pulled.signatures.len(), "verified_by": key, "runbook": {"name": runbook.info.name, "version": runbook.info.version, "sha256": sha}});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}", pulled.pinned);
        eprintln!(
            "pulled {} {} to {}{}",
            runbook.info.name,
            runbook.info.version,
            out.display(),
            match (&sig_path, &key) {
                (Some(p), Some(k)) => format!(" (signature {} by trusted key {k})", p.display()),
                (Some(p), None) => format!(" (signature {}, not checked: no key is trusted here)", p.display()),
                (None, _) => " (unsigned)".to_string(),
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
