//! `drover readiness RUNBOOK.wasm [--param K=V]... [--json]`: would a run
//! succeed right now? Nothing is changed: the runbook runs as a dry run in
//! readiness mode and reports each condition it depends on; the agent adds
//! whether the grants it needs are in place. Exit 0 when ready, 1 when not.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// The runbook component (.wasm).
    pub runbook: PathBuf,
    /// A parameter as NAME=VALUE; repeat for more.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = super::run::parse_param)]
    pub params: Vec<(String, String)>,
    /// Print JSON: `{"runbook", "ready", "findings": [{"check", "ok", "detail", "resource", "fix"}], "evaluated_ms"}`.
    #[arg(long)]
    pub json: bool,
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let engine = home.engine()?;
    let runbook = home.load_runbook(&engine, &args.runbook).await?;
    let params = runbook.info.validate_params(&args.params)?;
    let evaluation = drover_engine::readiness::evaluate(&engine, &runbook, params).await?;
    let (ready, findings) = (evaluation.ready, &evaluation.findings);
    if args.json {
        let v = json!({
            "runbook": runbook.info.name,
            "ready": ready,
            "findings": findings,
            "evaluated_ms": evaluation.evaluated_ms,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("readiness of {} {} ({:.0} ms)", runbook.info.name, runbook.info.version, evaluation.evaluated_ms);
        for f in findings {
            println!("  {} {}: {}", if f.ok { "✔" } else { "✘" }, f.check, f.detail);
            if !f.ok {
                if let Some(r) = &f.resource {
                    println!("      resource: {r}");
                }
                if let Some(fix) = &f.fix {
                    println!("      fix: {fix}");
                }
            }
        }
        let problems = findings.iter().filter(|f| !f.ok).count();
        if ready {
            println!("READY: a run would succeed now, as far as these checks see");
        } else {
            println!("NOT READY: {problems} problem(s)");
        }
    }
    Ok(if ready { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
