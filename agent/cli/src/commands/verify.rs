//! `drover verify RUNBOOK.wasm --trusted KEY...`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use drover_signing::TrustStore;

#[derive(clap::Args)]
pub struct Args {
    /// The runbook component (.wasm); its signature is RUNBOOK.wasm.sig.
    pub runbook: PathBuf,
    /// A trusted public key: a .pub file, or the key itself
    /// ('drover-ed25519 BASE64 [COMMENT]' or the bare BASE64). Repeat for more.
    #[arg(long, value_name = "PUBFILE_OR_KEY", required = true)]
    pub trusted: Vec<String>,
}

/// Exit 0 when a trusted key signed these exact bytes, else 2 with why.
pub fn exec(args: Args) -> Result<ExitCode> {
    let label = args.runbook.display().to_string();
    let trust = TrustStore::from_specs(&args.trusted)?;
    let bytes = std::fs::read(&args.runbook).with_context(|| format!("cannot read runbook {label}"))?;
    let key_id = trust.verify_file(&args.runbook, &bytes)?;
    println!("ok: signed by key {key_id}");
    Ok(ExitCode::SUCCESS)
}
