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

    /// Reads and loads the runbook component at `path` (checking its
    /// signature first when the configuration requires one).
    pub async fn load_runbook(&self, engine: &Engine, path: &Path) -> Result<LoadedRunbook> {
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
}
