//! `drover runs [--json]`

use std::process::ExitCode;

use anyhow::Result;
use drover_journal::{RunFilter, RunStatus, rfc3339};
use serde_json::json;

use crate::home::Home;
use drover_view::{orphaned, stopped};

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON: a list of runs.
    #[arg(long)]
    pub json: bool,
    /// Only runs with this status (running, waiting, succeeded, failed, cancelled).
    #[arg(long, value_parser = parse_status)]
    pub status: Option<RunStatus>,
    /// Only runs of this runbook (its name, as `drover runs` lists it).
    #[arg(long)]
    pub runbook: Option<String>,
    /// At most this many runs, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Also list the runs of parallel sections' branches (`RUN.SECTION.BRANCH`;
    /// `drover show RUN` shows them with their run).
    #[arg(long)]
    pub branches: bool,
}

fn parse_status(s: &str) -> Result<RunStatus, String> {
    RunStatus::parse(s).ok_or_else(|| format!("'{s}' is not a status: use running, waiting, succeeded, failed or cancelled"))
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let journal = home.journal().await?;
    let runs = journal.runs(&RunFilter { status: args.status, runbook: args.runbook, limit: Some(args.limit), ..Default::default() }).await?;
    let is_branch = |r: &drover_journal::RunRecord| r.origin.as_ref().is_some_and(|o| o["kind"] == "branch");
    let runs: Vec<_> = runs.into_iter().filter(|r| args.branches || !is_branch(r)).collect();
    if args.json {
        let list: Vec<_> = runs
            .iter()
            .map(|r| {
                json!({
                    "run_id": r.run_id,
                    "runbook": r.runbook.name,
                    "runbook_version": r.runbook.version,
                    "status": r.status.as_str(),
                    "started_at": rfc3339(&r.created_at),
                    "finished_at": r.finished_at.as_ref().map(rfc3339),
                    "needs_resume": orphaned(r),
                    "stopped": stopped(r).map(|e| e.code.as_str()),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("no runs yet; start one with `drover run RUNBOOK.wasm`");
        return Ok(ExitCode::SUCCESS);
    }
    let w = runs.iter().map(|r| r.run_id.len()).max().unwrap_or(6).max(6);
    let rw = runs.iter().map(|r| r.runbook.name.len()).max().unwrap_or(7).max(7);
    println!("{:<w$}  {:<rw$}  {:<9}  {:<27}  NOTE", "RUN ID", "RUNBOOK", "STATUS", "STARTED");
    for r in &runs {
        let note = match stopped(r) {
            Some(why) => format!("stopped on {}: `drover show {}` says what to do", why.code, r.run_id),
            None if orphaned(r) => "driver gone: `drover resume` it".to_string(),
            None => String::new(),
        };
        println!("{:<w$}  {:<rw$}  {:<9}  {:<27}  {note}", r.run_id, r.runbook.name, r.status.as_str(), rfc3339(&r.created_at));
    }
    Ok(ExitCode::SUCCESS)
}
