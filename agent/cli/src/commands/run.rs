//! `drover run RUNBOOK.wasm [--param K=V]... [--run-id ID] [--json]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use drover_engine::RunRequest;

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// The runbook component (.wasm).
    pub runbook: PathBuf,
    /// A parameter as NAME=VALUE; repeat for more. `drover inspect` lists them.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// The run's id (default: a new time-ordered id). Reusing the id of an
    /// earlier run continues it, or reports it if it has ended.
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// Print the run as JSON (the shape of `show --json`) instead of a timeline.
    #[arg(long)]
    pub json: bool,
    /// No live progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("'{s}' is not NAME=VALUE")),
    }
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let label = args.runbook.display().to_string();
    let bytes = std::fs::read(&args.runbook).with_context(|| format!("cannot read runbook {label}"))?;
    let engine = home.engine()?;
    let runbook = engine.load(&label, &bytes).await?;
    let params = runbook.info.validate_params(&args.params)?;
    let journal = home.journal()?;
    let run_id = args.run_id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let req = RunRequest { run_id: run_id.clone(), params };
    let j = journal.clone();
    super::drive(&journal, &run_id, args.json, args.quiet, |observer| async move {
        engine.start(j, &runbook, req, observer).await
    })
    .await
}
