//! `drover cancel RUN_ID [--reason TEXT]`

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::Utc;
use drover_journal::{CancelRequest, JournalError};

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// The run to cancel.
    pub run_id: String,
    /// Why, recorded with the run.
    #[arg(long, default_value = "no reason given")]
    pub reason: String,
    /// How long to wait for a live driver to stop the run, in seconds.
    #[arg(long, default_value_t = 300)]
    pub wait: u64,
    /// Print the run as JSON.
    #[arg(long)]
    pub json: bool,
    /// No live progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let journal = home.journal().await?;
    let id = args.run_id.as_str();
    let run = journal.run(id).await?.ok_or_else(|| JournalError::UnknownRun(id.into()))?;
    if run.status.is_final() {
        eprintln!("run {id} already ended ({}); cancel changes nothing", run.status);
        return Ok(ExitCode::SUCCESS);
    }
    let request = CancelRequest { by: super::who(), reason: args.reason.clone(), at: Utc::now() };
    let run = journal.request_cancel(id, &request).await?;
    if run.status.is_final() {
        eprintln!("run {id} ended ({}) before the cancel took effect; cancel changes nothing", run.status);
        return Ok(ExitCode::SUCCESS);
    }
    match super::live_driver(&run) {
        Some(owner) => {
            if !args.quiet {
                eprintln!("cancel recorded; the driver (pid {} on {}) stops run {id} at its next step boundary and runs its cleanups", owner.pid, owner.host);
            }
            let deadline = Instant::now() + Duration::from_secs(args.wait);
            loop {
                let run = journal.run(id).await?.ok_or_else(|| JournalError::UnknownRun(id.into()))?;
                if run.status.is_final() {
                    return super::report(&journal, &run, args.json).await;
                }
                if Instant::now() > deadline {
                    eprintln!("run {id} is still {} after {} s; the cancel stays recorded and takes effect at its next step boundary", run.status, args.wait);
                    return Ok(ExitCode::SUCCESS);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        None => {
            // No live driver: this process drives the run to its cancelled end
            // (the journal answers what was done; cleanups and undos run).
            let engine = home.engine()?;
            let j = journal.clone();
            super::drive(&journal, id, args.json, args.quiet, |observer| async move { engine.resume(j, id, None, observer).await }).await
        }
    }
}
