//! `drover show RUN_ID [--json]`

use std::process::ExitCode;

use anyhow::Result;
use drover_journal::JournalError;

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// The run (`drover runs` lists them).
    pub run_id: String,
    /// Print JSON: {"run_id", "runbook", "status", "started_at", "finished_at", "steps": [...], ...}.
    #[arg(long)]
    pub json: bool,
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let journal = home.journal().await?;
    let run = journal.run(&args.run_id).await?.ok_or_else(|| JournalError::UnknownRun(args.run_id.clone()))?;
    // `show` reports a run; the run's outcome is not this command's failure.
    super::report(&journal, &run, args.json).await?;
    if !args.json {
        let events = journal.events(&args.run_id).await?;
        if !events.is_empty() {
            println!("\nevents");
            for ev in events {
                let step = ev.step.map(|s| format!(" [{s}]")).unwrap_or_default();
                let fields: String = ev.fields.iter().map(|(k, v)| format!(" {k}={v}")).collect();
                println!("  {} {:<5}{step} {}{fields}", drover_journal::rfc3339(&ev.at), ev.level.as_str(), ev.message);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
