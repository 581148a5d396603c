//! `drover redrive RUN_ID --reason TEXT [--from STEP] [--runbook FILE]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use chrono::Utc;
use drover_engine::audit::{AuditLog, AuditRecord};
use drover_engine::redrive::{Redrive, plan};
use drover_journal::JournalError;

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// The failed or cancelled run to take up again (`drover runs` lists them).
    pub run_id: String,
    /// Why (required): recorded with the run and in the audit log.
    #[arg(long)]
    pub reason: String,
    /// Go on from this step instead of the one the run stopped at: it and
    /// every step after it run again (same idempotency keys); the steps
    /// before it are replayed from the journal.
    #[arg(long, value_name = "STEP")]
    pub from: Option<String>,
    /// Go on with this build of the runbook (a fix), pinned to the run
    /// before anything runs, as `drover resume --runbook` pins it; its
    /// replay of the steps before the point must match the journal.
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
    let id = args.run_id.as_str();
    let reason = args.reason.trim().to_string();
    if reason.is_empty() {
        bail!("--reason is empty: say why run {id} is redriven (it is recorded with the run and in the audit log)");
    }
    let journal = home.journal().await?;
    let engine = home.engine()?;
    let run = journal.run(id).await?.ok_or_else(|| JournalError::UnknownRun(id.into()))?;
    let who = super::who();
    let audit = AuditLog::new(home.dir.join("audit.jsonl"));
    let record = |decision: &str, why: String| AuditRecord {
        at: Utc::now(),
        run_id: id.to_string(),
        runbook: run.runbook.name.clone(),
        digest: run.runbook.digest.clone(),
        step: args.from.clone(),
        operation: "drover.redrive".into(),
        regions: Vec::new(),
        resources: vec![format!("run/{id}")],
        mutating: false,
        decision: decision.into(),
        reason: Some(why),
    };
    let entries = journal.entries(id).await?;
    let approvals = journal.approvals(Some(id), false).await?;
    let reopening = match plan(&run, &entries, &approvals, args.from.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            audit.append(&record("deny", format!("by {who}: {reason}; refused: {e}")))?;
            return Err(e.into());
        }
    };
    let replacement = match &args.runbook {
        Some(path) => Some(home.load_runbook(&engine, path).await?),
        None => None,
    };
    // Recorded (and on disk) before the run is reopened, like every audited action.
    audit.append(&record("allow", format!("by {who}: {reason}")))?;
    if !args.quiet {
        let from = reopening.step.as_deref().map_or("where its runbook returned".to_string(), |s| format!("step '{s}'"));
        eprintln!("redriving run {id} from {from}; the steps before it are replayed from the journal");
        for (action, status) in &reopening.actions_ran {
            eprintln!("  note: {action} had run after the run ended ({}); its step runs again", status.as_str());
        }
    }
    let redrive = Redrive { from: args.from.clone(), by: who, reason };
    let j = journal.clone();
    super::drive(&journal, id, args.json, args.quiet, |observer| async move { engine.redrive(j, id, &redrive, replacement.as_ref(), observer).await }).await
}
