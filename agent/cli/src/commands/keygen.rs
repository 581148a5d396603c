//! `drover keygen --out PREFIX [--comment TEXT]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use drover_signing::{SigningKey, write_keypair};

#[derive(clap::Args)]
pub struct Args {
    /// Where to write the key pair: PREFIX.key (secret, mode 0600) and
    /// PREFIX.pub (public). Existing files are never overwritten.
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,
    /// Free text stored in the public key, naming its owner.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub comment: String,
}

pub fn exec(args: Args) -> Result<ExitCode> {
    let key = SigningKey::generate()?;
    let (secret, public) = write_keypair(&args.out, &key, &args.comment)?;
    println!("secret key: {} (keep it private; sign with `drover sign RUNBOOK.wasm --key {0}`)", secret.display());
    println!("public key: {} (trust it with `[signing] trusted_keys` or `drover verify --trusted {0}`)", public.display());
    println!("key id: {}", key.key_id());
    Ok(ExitCode::SUCCESS)
}
