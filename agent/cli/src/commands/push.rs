//! `drover push RUNBOOK.wasm REF [--plain-http HOST:PORT]...`: the component
//! and its signature (`RUNBOOK.wasm.sig`, if there is one) to a registry.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// The runbook component (its signature, if any, beside it as RUNBOOK.wasm.sig).
    pub runbook: PathBuf,
    /// Where: `REGISTRY/REPOSITORY:TAG` (e.g. `registry.example.com/sre/regional-failover:1.4.0`).
    pub reference: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print what was pushed as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How `push` and `pull` reach the registry.
#[derive(clap::Args)]
pub struct RegistryArgs {
    /// Reach this registry (`host:port`) over plain HTTP (loopback registries
    /// always are; others are listed under [registry] plain_http).
    #[arg(long, value_name = "HOST:PORT")]
    pub plain_http: Vec<String>,
}

impl RegistryArgs {
    /// The configured transport, with these registries added.
    pub fn transport(&self, home: &Home) -> drover_oci::Transport {
        let mut t = home.config.registry.transport();
        t.plain_http.extend(self.plain_http.iter().cloned());
        t
    }
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let reference = drover_oci::source::parse_reference(args.reference.trim_start_matches("oci://"))?;
    if reference.digest().is_some() {
        bail!("push to a tag (`{}/{}:TAG`): a digest names content that exists already", reference.registry(), reference.repository());
    }
    let label = args.runbook.display().to_string();
    let bytes = std::fs::read(&args.runbook).with_context(|| format!("cannot read runbook {label}"))?;
    let engine = home.engine()?;
    let runbook = engine.load(&label, &bytes).await?;
    let signature = match drover_signing::read_signature(&args.runbook) {
        Ok(sig) => {
            if sig.sha256 != drover_signing::sha256_hex(&bytes) {
                bail!(
                    "{} does not sign {label} as it is now (it was signed before a rebuild): sign it again with `drover sign`",
                    drover_signing::signature_path(&args.runbook).display()
                );
            }
            home.check_signatures(&label, &bytes, std::slice::from_ref(&sig))?;
            Some(sig)
        }
        Err(drover_signing::SigningError::Unsigned { .. }) => {
            home.check_signatures(&label, &bytes, &[])?;
            eprintln!("note: {label} has no signature ({label}.sig); an agent with [signing] require = true will refuse it");
            None
        }
        Err(e) => return Err(e.into()),
    };
    let transport = args.registry.transport(home);
    let meta = serde_json::to_value(&runbook.info)?;
    let title = args.runbook.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| format!("{}.wasm", runbook.info.name));
    let pushed = drover_oci::push(&reference, &transport, &bytes, meta, &title, signature.as_ref()).await?;
    if args.json {
        let v = serde_json::json!({"reference": reference.whole(), "pinned": pushed.pinned, "manifest_digest": pushed.manifest_digest, "signature_digest": pushed.signature_digest, "runbook": {"name": runbook.info.name, "version": runbook.info.version, "sha256": drover_signing::sha256_hex(&bytes)}});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}", pushed.pinned);
        eprintln!(
            "pushed {} {} to {} ({}); run it by digest: drover run {}",
            runbook.info.name,
            runbook.info.version,
            reference.whole(),
            if signature.is_some() { "with its signature" } else { "unsigned" },
            pushed.pinned
        );
    }
    Ok(ExitCode::SUCCESS)
}
