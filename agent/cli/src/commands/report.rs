//! `drover report RUN_ID [--out DIR]`: the run's report, as Markdown and as
//! a self-contained HTML page (see `drover_view::report`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use drover_engine::audit::AuditLog;
use drover_journal::JournalError;

use crate::home::Home;
use drover_view::Report;
use drover_view::RunView;

#[derive(clap::Args)]
pub struct Args {
    /// The run (`drover runs` lists them).
    pub run_id: String,
    /// Where to write RUN_ID.md and RUN_ID.html.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let journal = home.journal().await?;
    let run = journal.run(&args.run_id).await?.ok_or_else(|| JournalError::UnknownRun(args.run_id.clone()))?;
    let entries = drover_engine::entries_with_branches(journal.as_ref(), &run.run_id).await?;
    let audit_path = home.dir.join("audit.jsonl");
    let audit = AuditLog::read(&audit_path).with_context(|| format!("cannot read the audit log {}", audit_path.display()))?;
    let events = journal.events(&run.run_id).await?;
    let report = Report::new(&RunView::new(&run, &entries), &audit, &events);
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    for (ext, text) in [("md", report.markdown()), ("html", report.html())] {
        let path = args.out.join(format!("{}.{ext}", run.run_id));
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
