//! `drover run RUNBOOK.wasm [--param K=V]... [--run-id ID] [--json]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
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
    /// Make no change: run against a throwaway journal, make every read for
    /// real, and print the changes the run would make, in order, with the
    /// resources they touch. The agent's store is not touched.
    #[arg(long)]
    pub dry_run: bool,
    /// Start even though the runbook declares capabilities the configuration
    /// does not grant. The override (who, when, what was missing) is recorded
    /// with the run, and the calls that need the missing grants are still
    /// refused.
    #[arg(long)]
    pub accept_missing_grants: bool,
}

pub fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("'{s}' is not NAME=VALUE")),
    }
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let engine = home.engine()?;
    let (runbook, source) = home.load_runbook_from(&engine, &args.runbook).await?;
    let params = runbook.info.validate_params(&args.params)?;
    if args.dry_run {
        return dry_run(&engine, &runbook, params, args.json, args.quiet).await;
    }
    let journal = home.journal().await?;
    // Manual runs are never held by the anti-flapping rules; the operator is told of the holds.
    if !args.quiet {
        for held in drover_service::flapping::holds(journal.as_ref(), &runbook.info.name).await? {
            eprintln!("note: {} (this manual run is not held)", held.reason);
        }
    }
    let run_id = args.run_id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    // A runbook from a registry: the reference and the digest it was pinned
    // to are kept with the run (a resume loads the component by its own
    // digest, whatever the tag says by then).
    let origin = source.map(|s| serde_json::json!({"kind": "cli", "runbook_source": s}));
    let req = RunRequest { accept_missing_grants: args.accept_missing_grants, origin, ..RunRequest::new(run_id.clone(), params) };
    let j = journal.clone();
    super::drive(&journal, &run_id, args.json, args.quiet, |observer| async move { engine.start(j, &runbook, req, observer).await }).await
}

async fn dry_run(
    engine: &drover_engine::Engine,
    runbook: &drover_engine::LoadedRunbook,
    params: serde_json::Value,
    json: bool,
    quiet: bool,
) -> Result<ExitCode> {
    let missing = engine.missing_grants(runbook, &params);
    let (observer, progress) = crate::progress::Progress::start(quiet);
    let outcome = engine.dry_run(runbook, params, observer).await;
    if let Some(p) = progress {
        p.finish().await;
    }
    let d = outcome?;
    let mut extra = serde_json::Map::new();
    extra.insert("dry_run".into(), true.into());
    extra.insert("plan".into(), serde_json::to_value(&d.plan)?);
    extra.insert("missing_grants".into(), serde_json::to_value(&missing)?);
    super::print_run(&d.run, &d.entries, &d.events, json, extra)?;
    if !json {
        println!("\ndry run: {} change(s) would be made, in this order:", d.plan.len());
        for (i, c) in d.plan.iter().enumerate() {
            println!("  {:>2}. [{}] {} {} {} in {}: {}", i + 1, c.step, c.service, c.operation, c.resource, c.region, c.detail);
        }
        if !missing.is_empty() {
            println!("\nnot granted (a real run is refused without --accept-missing-grants; these calls fail):");
            for m in &missing {
                println!("  - {m}");
            }
        }
    }
    Ok(super::exit_code(d.run.status))
}
