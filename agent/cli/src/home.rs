//! The agent's home directory and what lives in it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use drover_engine::{Engine, Limits};
use drover_journal::{Journal, SqliteJournal};

/// The resolved home: `runs.db` (the journal), `runbooks/` and `cache/`.
pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    /// `--home`, else `$DROVER_HOME` (clap reads it), else the platform data dir.
    pub fn resolve(flag: Option<PathBuf>) -> Result<Self> {
        let dir = match flag {
            Some(d) => d,
            None => directories::ProjectDirs::from("", "", "drover")
                .map(|p| p.data_dir().to_path_buf())
                .context("cannot find a data directory for drover; set DROVER_HOME or pass --home DIR")?,
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create drover's home at {}", dir.display()))?;
        Ok(Home { dir })
    }

    /// The run journal.
    pub fn journal(&self) -> Result<Arc<dyn Journal>> {
        Ok(Arc::new(SqliteJournal::open(self.dir.join("runs.db"))?))
    }

    /// The engine, with default limits.
    pub fn engine(&self) -> Result<Engine> {
        Ok(Engine::new(&self.dir, Limits::default())?)
    }
}
