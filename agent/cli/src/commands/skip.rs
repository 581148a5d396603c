//! `drover skip RUN_ID STEP --reason TEXT [--agent URL]` (see
//! `drover_service::held`).

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::home::Home;
use drover_engine::audit::AuditLog;

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub run_id: String,
    /// The step that waits for an operator after it failed for good (its
    /// runbook allows a skip), or an approval gate waiting for a decision.
    pub step: String,
    /// Why (required): recorded with the run, in its report and in the
    /// audit log.
    #[arg(long)]
    pub reason: String,
    /// Skip through a running agent's HTTP API instead of the local store
    /// (token in $DROVER_API_TOKEN).
    #[arg(long, env = "DROVER_AGENT", value_name = "URL")]
    pub agent: Option<String>,
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let (id, step) = (args.run_id.as_str(), args.step.as_str());
    let reason = args.reason.trim();
    if reason.is_empty() {
        bail!("--reason is empty: say why step {step} of run {id} is skipped (it is recorded with the run and in the audit log)");
    }
    if let Some(url) = &args.agent {
        let v = crate::remote::control(url, id, "skip", serde_json::json!({"step": step, "reason": reason})).await?;
        println!("step {step} of run {id}: skipped (gate {})", v["skipped"]["gate"].as_str().unwrap_or(step));
        return Ok(ExitCode::SUCCESS);
    }
    let journal = home.journal().await?;
    let d = drover_service::held::skip(journal.as_ref(), &AuditLog::new(home.dir.join("audit.jsonl")), id, step, &super::who(), reason).await?;
    println!("step {step} of run {id}: skipped (gate {})", d.gate.gate);
    let run = &d.run;
    match super::live_driver(run) {
        Some(o) => eprintln!("its driver (pid {} on {}) goes on after the step", o.pid, o.host),
        None => eprintln!("no live process drives run {id} now: `drover resume {id}` goes on after the step"),
    }
    Ok(ExitCode::SUCCESS)
}
