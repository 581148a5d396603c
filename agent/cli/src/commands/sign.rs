//! `drover sign RUNBOOK.wasm --key PREFIX.key`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use drover_signing::{load_secret, sign, write_signature};

#[derive(clap::Args)]
pub struct Args {
    /// The runbook component (.wasm) to sign; the signature goes to RUNBOOK.wasm.sig.
    pub runbook: PathBuf,
    /// The secret key (`drover keygen` writes PREFIX.key).
    #[arg(long, value_name = "PREFIX.key")]
    pub key: PathBuf,
}

pub fn exec(args: Args) -> Result<ExitCode> {
    let label = args.runbook.display().to_string();
    let bytes = std::fs::read(&args.runbook).with_context(|| format!("cannot read runbook {label}"))?;
    // Only runbook components are signed.
    drover_engine::check_header(&label, &bytes)?;
    let key = load_secret(&args.key)?;
    let sig = sign(&bytes, &key);
    let sig_path = write_signature(&args.runbook, &sig)?;
    println!("signed {label} with key {}", sig.key_id);
    println!("sha256: {}", sig.sha256);
    println!("signature: {}", sig_path.display());
    Ok(ExitCode::SUCCESS)
}
