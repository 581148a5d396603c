//! `drover unblock RUN_ID --reason TEXT`: a failed automatic run no longer
//! holds its scope's triggers (see `drover_service::flapping`).

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// The failed run a trigger started, which holds its scope.
    pub run_id: String,
    /// Why (required): recorded with the run.
    #[arg(long)]
    pub reason: String,
    /// Through a running agent's HTTP API instead of the local store (token
    /// in $DROVER_API_TOKEN).
    #[arg(long, env = "DROVER_AGENT", value_name = "URL")]
    pub agent: Option<String>,
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let reason = args.reason.trim();
    if reason.is_empty() {
        bail!("--reason is empty: say why the hold of run {} is cleared (it is recorded with the run)", args.run_id);
    }
    if let Some(url) = &args.agent {
        let v = crate::remote::control(url, &args.run_id, "unblock", serde_json::json!({"reason": reason})).await?;
        eprintln!("hold cleared by the agent at {url}: scope '{}' may start runs again", v["scope"].as_str().unwrap_or("-"));
        return Ok(ExitCode::SUCCESS);
    }
    let journal = home.journal().await?;
    let run = drover_service::flapping::unblock(journal.as_ref(), &args.run_id, &super::who(), reason).await?;
    eprintln!(
        "hold cleared: triggers of {} may start runs in scope '{}' again (the clearing is recorded with run {})",
        run.runbook.name,
        run.scope.as_deref().unwrap_or("-"),
        run.run_id
    );
    Ok(ExitCode::SUCCESS)
}
