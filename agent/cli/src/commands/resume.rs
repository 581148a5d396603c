//! `drover resume RUN_ID [--runbook FILE]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// The run to resume (`drover runs` lists them).
    pub run_id: String,
    /// Resume with this build of the runbook instead of the one the run is
    /// pinned to (a hotfix); the run is pinned to it (journaled) before
    /// anything runs. Its replay is checked against the journal: if it asks
    /// for different steps, the run stops before anything executes (no
    /// outcome, no undo), resumable, and stays pinned to the build before.
    #[arg(long, value_name = "FILE")]
    pub runbook: Option<PathBuf>,
    /// Print the run as JSON.
    #[arg(long)]
    pub json: bool,
    /// No live progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let journal = home.journal().await?;
    let engine = home.engine()?;
    let replacement = match &args.runbook {
        Some(path) => Some(home.load_runbook(&engine, path).await?),
        None => None,
    };
    let j = journal.clone();
    let id = args.run_id.clone();
    super::drive(&journal, &args.run_id, args.json, args.quiet, |observer| async move { engine.resume(j, &id, replacement.as_ref(), observer).await }).await
}
