//! `drover verify RUNBOOK.wasm --trusted KEY...`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use drover_signing::TrustStore;

#[derive(clap::Args)]
pub struct Args {
    /// The runbook component (.wasm; its signature is RUNBOOK.wasm.sig), or
    /// an OCI reference (its signatures are its referrers).
    pub runbook: PathBuf,
    /// A trusted public key: a .pub file, or the key itself
    /// ('drover-ed25519 BASE64 [COMMENT]' or the bare BASE64). Repeat for more.
    #[arg(long, value_name = "PUBFILE_OR_KEY", required = true)]
    pub trusted: Vec<String>,
}

/// Exit 0 when a trusted key signed these exact bytes, else 2 with why. An
/// OCI reference is checked against the signatures that refer to it.
pub async fn exec(home: &crate::home::Home, args: Args) -> Result<ExitCode> {
    let label = args.runbook.display().to_string();
    let trust = TrustStore::from_specs(&args.trusted)?;
    if let drover_oci::RunbookSource::Oci(reference) = drover_oci::parse_source(&label)? {
        let pulled = drover_oci::pull(&reference, &home.config.registry.transport()).await?;
        match trust.verify_any(&pulled.component, &pulled.signatures) {
            Ok(key_id) => {
                println!("ok: {} signed by key {key_id}", pulled.pinned);
                return Ok(ExitCode::SUCCESS);
            }
            Err(refused) => {
                let why = if refused.is_empty() {
                    "it has no drover signature".to_string()
                } else {
                    refused.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                };
                anyhow::bail!("{} is not signed by a trusted key: {why}", pulled.pinned);
            }
        }
    }
    let bytes = std::fs::read(&args.runbook).with_context(|| format!("cannot read runbook {label}"))?;
    let key_id = trust.verify_file(&args.runbook, &bytes)?;
    println!("ok: signed by key {key_id}");
    Ok(ExitCode::SUCCESS)
}
