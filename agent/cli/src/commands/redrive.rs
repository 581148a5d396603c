//! `drover redrive RUN_ID --reason TEXT [--from STEP] [--runbook FILE]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use drover_engine::redrive::{Redrive, plan};
use drover_journal::JournalError;

use crate::home::Home;
use drover_engine::audit::AuditLog;

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
    /// Through a running agent's HTTP API instead of the local store (token
    /// in $DROVER_API_TOKEN): the agent drives the run; this returns at once.
    #[arg(long, env = "DROVER_AGENT", value_name = "URL", conflicts_with = "runbook")]
    pub agent: Option<String>,
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let id = args.run_id.as_str();
    let reason = args.reason.trim().to_string();
    if reason.is_empty() {
        bail!("--reason is empty: say why run {id} is redriven (it is recorded with the run and in the audit log)");
    }
    if let Some(url) = &args.agent {
        let mut body = serde_json::json!({"reason": reason});
        if let Some(from) = &args.from {
            body["from"] = serde_json::Value::String(from.clone());
        }
        let v = crate::remote::control(url, id, "redrive", body).await?;
        match v["retried"]["gate"].as_str() {
            Some(gate) => println!("run {id}: the agent at {url} retries the step held at gate {gate}"),
            None => println!("run {id}: the agent at {url} redrives it from {}", v["from_step"].as_str().unwrap_or("where its runbook returned")),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let journal = home.journal().await?;
    // A run that has not ended, held at a step that failed: retry the step.
    if args.from.is_none()
        && args.runbook.is_none()
        && let Some(d) = drover_service::held::retry(journal.as_ref(), &AuditLog::new(home.dir.join("audit.jsonl")), id, &super::who(), &reason).await?
    {
        let step = drover_engine::held::parse_failure_gate(&d.gate.gate).map_or("?", |(k, _)| k).to_string();
        println!("step {step} of run {id}: retried (gate {} approved)", d.gate.gate);
        let run = &d.run;
        match super::live_driver(run) {
            Some(o) => eprintln!("its driver (pid {} on {}) runs the step again", o.pid, o.host),
            None => eprintln!("no live process drives run {id} now: `drover resume {id}` runs the step again"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let engine = home.engine()?;
    let run = journal.run(id).await?.ok_or_else(|| JournalError::UnknownRun(id.into()))?;
    let entries = journal.entries(id).await?;
    let approvals = journal.approvals(Some(id), false).await?;
    // A refusal is said (and audited) by the engine; what a redrive will do is said here.
    let reopening = plan(&run, &entries, &approvals, args.from.as_deref()).ok();
    let replacement = match &args.runbook {
        Some(path) => Some(home.load_runbook(&engine, path).await?),
        None => None,
    };
    if let Some(reopening) = reopening.filter(|_| !args.quiet) {
        let from = reopening.step.as_deref().map_or("where its runbook returned".to_string(), |s| format!("step '{s}'"));
        eprintln!("redriving run {id} from {from}; the steps before it are replayed from the journal");
        for (action, status) in &reopening.actions_ran {
            eprintln!("  note: {action} had run after the run ended ({}); its step runs again", status.as_str());
        }
    }
    let redrive = Redrive { from: args.from.clone(), by: super::who(), reason };
    let j = journal.clone();
    super::drive(&journal, id, args.json, args.quiet, |observer| async move { engine.redrive(j, id, &redrive, replacement.as_ref(), observer).await }).await
}
