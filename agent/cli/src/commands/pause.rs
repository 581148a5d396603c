//! `drover pause RUN_ID --reason TEXT` and `drover unpause RUN_ID --reason TEXT`
//! (see `drover_service::pause`).

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::home::Home;
use drover_engine::audit::AuditLog;

#[derive(clap::Args)]
pub struct Args {
    /// The run.
    pub run_id: String,
    /// Why (required): recorded with the run and in the audit log.
    #[arg(long)]
    pub reason: String,
    /// Through a running agent's HTTP API instead of the local store (token
    /// in $DROVER_API_TOKEN).
    #[arg(long, env = "DROVER_AGENT", value_name = "URL")]
    pub agent: Option<String>,
}

pub async fn exec(home: &Home, args: Args, pause: bool) -> Result<ExitCode> {
    let id = args.run_id.as_str();
    let reason = args.reason.trim();
    let what = if pause { "paused" } else { "unpaused" };
    if reason.is_empty() {
        bail!("--reason is empty: say why run {id} is {what} (it is recorded with the run and in the audit log)");
    }
    if let Some(url) = &args.agent {
        crate::remote::control(url, id, if pause { "pause" } else { "unpause" }, serde_json::json!({"reason": reason})).await?;
        eprintln!(
            "{} recorded by the agent at {url}: run {id} {}",
            if pause { "pause" } else { "unpause" },
            if pause { "stops at its next step boundary and waits" } else { "goes on" }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let journal = home.journal().await?;
    let run = drover_service::pause::set(journal.as_ref(), &AuditLog::new(home.dir.join("audit.jsonl")), id, pause, &super::who(), reason).await?;
    let driver = match super::live_driver(&run) {
        Some(o) => format!("its driver (pid {} on {})", o.pid, o.host),
        None => "whoever drives it next (`drover resume`, or a `drover serve` on this store)".to_string(),
    };
    if pause {
        eprintln!("pause recorded: {driver} stops run {id} at its next step boundary and waits (status: waiting) until `drover unpause {id}`");
    } else {
        eprintln!("unpause recorded: {driver} takes run {id} up again at the step it waits before");
    }
    Ok(ExitCode::SUCCESS)
}
