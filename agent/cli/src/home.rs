//! The agent's home directory and what lives in it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use drover_engine::{Engine, LoadedRunbook};

use crate::config::{Config, StoreConfig};
use drover_journal::{Journal, SqliteJournal};
use drover_journal_dynamodb::DynamoJournal;

/// The resolved home: `runs.db` (the journal), `runbooks/`, `cache/`,
/// `audit.jsonl`, and the configuration in force.
pub struct Home {
    pub dir: PathBuf,
    pub config: Config,
}

impl Home {
    /// `--home`, else `$DROVER_HOME` (clap reads it), else the platform data dir.
    /// The configuration is `config`, else `drover.toml` in the home.
    pub fn resolve(flag: Option<PathBuf>, config: Option<PathBuf>) -> Result<Self> {
        let dir = match flag {
            Some(d) => d,
            None => directories::ProjectDirs::from("", "", "drover")
                .map(|p| p.data_dir().to_path_buf())
                .context("cannot find a data directory for drover; set DROVER_HOME or pass --home DIR")?,
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create drover's home at {}", dir.display()))?;
        let config = Config::load(config.as_deref(), &dir)?;
        Ok(Home { dir, config })
    }

    /// The run store the configuration names: `runs.db` in the home, or
    /// the shared DynamoDB table.
    pub async fn journal(&self) -> Result<Arc<dyn Journal>> {
        Ok(match &self.config.store {
            StoreConfig::Embedded(e) => Arc::new(SqliteJournal::open_with_lease(self.dir.join("runs.db"), e.lease()?)?),
            StoreConfig::Dynamodb(d) => Arc::new(DynamoJournal::open(d.settings()?).await),
        })
    }

    /// The engine, with the configured limits and grants.
    pub fn engine(&self) -> Result<Engine> {
        Ok(Engine::new(&self.dir, self.config.limits()?)?.with_policy(self.config.policy()).with_span_hook(crate::telemetry::Telemetry::span_hook()))
    }

    /// Reads and loads the runbook at `path`: a component file, or an OCI
    /// reference (see [`Home::load_runbook_from`]).
    pub async fn load_runbook(&self, engine: &Engine, path: &Path) -> Result<LoadedRunbook> {
        Ok(self.load_runbook_from(engine, path).await?.0)
    }

    /// Reads and loads the runbook at `path` (checking its signature first
    /// when the configuration requires one). A path that is an OCI
    /// reference (`oci://REF`, or `REGISTRY/REPO:TAG` / `@sha256:...` that is
    /// no file) is pulled, pinned to its digest and checked by digest; its
    /// signatures are the referrers the registry lists; its config must
    /// agree with what the component says of itself. Returns where it came
    /// from, for an OCI artifact.
    pub async fn load_runbook_from(&self, engine: &Engine, path: &Path) -> Result<(LoadedRunbook, Option<OciSource>)> {
        let arg = path.to_string_lossy();
        let reference = match drover_oci::parse_source(&arg)? {
            drover_oci::RunbookSource::File(path) => return Ok((self.load_file(engine, &path).await?, None)),
            drover_oci::RunbookSource::Oci(r) => r,
        };
        let (pulled, key) = self.pull_checked(&reference, &self.config.registry.transport()).await?;
        let runbook = load_pulled(engine, &pulled).await?;
        let source = OciSource { requested: reference.whole(), pinned: pulled.pinned, manifest_digest: pulled.manifest_digest, signed_by: key };
        Ok((runbook, Some(source)))
    }

    async fn load_file(&self, engine: &Engine, path: &Path) -> Result<LoadedRunbook> {
        let label = path.display().to_string();
        let bytes = std::fs::read(path).with_context(|| format!("cannot read runbook {label}"))?;
        if let Some(trust) = self.config.trust()? {
            let key = trust
                .verify_file(path, &bytes)
                .with_context(|| format!("refusing runbook {label}: the configuration requires a signature by a trusted key ([signing] require = true)"))?;
            tracing::info!(runbook = %label, key = %key, "signature verified");
        }
        Ok(engine.load(&label, &bytes).await?)
    }

    /// Pulls `reference`, checked by digest (`drover_oci::pull`) and, under
    /// `[signing] require`, by a trusted referrer signature: the artifact,
    /// and the trusted key that signed it.
    pub async fn pull_checked(&self, reference: &drover_oci::Reference, transport: &drover_oci::Transport) -> Result<(drover_oci::Pulled, Option<String>)> {
        let pulled = drover_oci::pull(reference, transport).await?;
        let key = self.check_signatures(&pulled.pinned, &pulled.component, &pulled.signatures)?;
        Ok((pulled, key))
    }

    /// With `[signing] require`, the key of the first of `signatures` that a
    /// trusted key made over `bytes`; refused if none is. Without it, the
    /// key of a signature that checks, if any.
    pub fn check_signatures(&self, label: &str, bytes: &[u8], signatures: &[drover_signing::Signature]) -> Result<Option<String>> {
        let Some(trust) = self.config.trust()? else {
            return Ok(None);
        };
        let refused = match trust.verify_any(bytes, signatures) {
            Ok(key) => {
                tracing::info!(runbook = %label, key = %key, "signature verified");
                return Ok(Some(key.to_string()));
            }
            Err(refused) => refused,
        };
        let found = if refused.is_empty() {
            "it has no drover signature".to_string()
        } else {
            format!("none of its signatures checks: {}", refused.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
        };
        anyhow::bail!(
            "refusing runbook {label}: the configuration requires a signature by a trusted key ([signing] require = true), and {found}; \
             push it with its signature (`drover sign` writes RUNBOOK.wasm.sig, which `drover push` attaches)"
        )
    }
}

/// Where a runbook loaded from a registry came from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OciSource {
    /// The reference as given (a tag, or a digest).
    pub requested: String,
    /// It, pinned to the manifest pulled: `REGISTRY/REPO@sha256:HEX`.
    pub pinned: String,
    /// The manifest's digest.
    pub manifest_digest: String,
    /// The trusted key whose signature was checked, when one is required.
    pub signed_by: Option<String>,
}

/// Loads a pulled artifact into `engine` (labelled with its pinned
/// reference); its config must agree with the component.
pub async fn load_pulled(engine: &Engine, pulled: &drover_oci::Pulled) -> Result<LoadedRunbook> {
    let runbook = engine.load(&pulled.pinned, &pulled.component).await?;
    check_config(&pulled.pinned, &runbook, &pulled.config.drover)?;
    Ok(runbook)
}

/// The artifact's config (not signed) must say what the component says of
/// itself.
fn check_config(label: &str, runbook: &LoadedRunbook, meta: &serde_json::Value) -> Result<()> {
    let info = &runbook.info;
    let said = (meta["name"].as_str(), meta["version"].as_str());
    if said != (Some(info.name.as_str()), Some(info.version.as_str())) {
        anyhow::bail!(
            "refusing runbook {label}: its OCI config says {} {} but the component describes itself as {} {} (the artifact was altered, or pushed by another tool)",
            said.0.unwrap_or("(no name)"),
            said.1.unwrap_or("(no version)"),
            info.name,
            info.version
        );
    }
    Ok(())
}
