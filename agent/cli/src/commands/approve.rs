//! `drover approve RUN_ID GATE [--reject] [--comment TEXT]` and
//! `drover approvals [RUN_ID] [--all] [--json]`.
//!
//! A decision is written to the run store; the run's driver (a `drover run`,
//! `resume` or `serve` process) sees it within a fraction of a second. With
//! no live driver, the decision waits in the store for the next resume.

use std::process::ExitCode;

use anyhow::Result;
use chrono::Utc;
use drover_journal::{Approval, Decision, JournalError, Verdict, rfc3339};

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// The run waiting at the gate (`drover approvals` lists them).
    pub run_id: String,
    /// The gate.
    pub gate: String,
    /// Reject instead of approve: the run fails at the gate and its undos run.
    #[arg(long)]
    pub reject: bool,
    /// Why, recorded with the decision.
    #[arg(long, default_value = "")]
    pub comment: String,
    /// Decide through a running agent's HTTP API instead of the local store
    /// (token in $DROVER_API_TOKEN).
    #[arg(long, env = "DROVER_AGENT", value_name = "URL")]
    pub agent: Option<String>,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Only the gates of this run.
    pub run_id: Option<String>,
    /// Decided gates too, not only those waiting.
    #[arg(long)]
    pub all: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Ask a running agent's HTTP API instead of the local store (token in
    /// $DROVER_API_TOKEN).
    #[arg(long, env = "DROVER_AGENT", value_name = "URL")]
    pub agent: Option<String>,
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    if let Some(url) = &args.agent {
        return remote_decide(url, &args).await;
    }
    let journal = home.journal().await?;
    let run = journal.run(&args.run_id).await?.ok_or_else(|| JournalError::UnknownRun(args.run_id.clone()))?;
    let verdict = if args.reject { Verdict::Rejected } else { Verdict::Approved };
    let ours = Decision { verdict, by: super::who(), comment: args.comment.clone(), at: Utc::now() };
    let gate = journal.decide(&args.run_id, &args.gate, &ours).await?;
    let Some(recorded) = gate.decision else {
        anyhow::bail!("the decision on gate '{}' of run {} was not recorded; try again", args.gate, args.run_id);
    };
    if recorded != ours {
        return Ok(already_decided(&args, &recorded));
    }
    println!("gate {} of run {}: {}", args.gate, args.run_id, verdict.as_str());
    match super::live_driver(&run) {
        Some(o) => eprintln!("the driver (pid {} on {}) goes on from the gate", o.pid, o.host),
        None if !run.status.is_final() => {
            eprintln!("no live process drives run {} now: `drover resume {}` goes on from the gate", args.run_id, args.run_id)
        }
        None => {}
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn list(home: &Home, args: ListArgs) -> Result<ExitCode> {
    let gates: Vec<Approval> = match &args.agent {
        Some(url) => {
            let path = if args.all { "/v1/approvals?all=true" } else { "/v1/approvals" };
            let (status, v) = crate::remote::Remote::new(url)?.call(reqwest::Method::GET, path, None).await?;
            if status != 200 {
                anyhow::bail!("the agent at {url} answered {status}: {}", v["error"].as_str().unwrap_or("no detail"));
            }
            let all: Vec<Approval> = serde_json::from_value(v["approvals"].clone())?;
            all.into_iter().filter(|g| args.run_id.as_ref().is_none_or(|id| &g.run_id == id)).collect()
        }
        None => home.journal().await?.approvals(args.run_id.as_deref(), !args.all).await?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&gates)?);
        return Ok(ExitCode::SUCCESS);
    }
    if gates.is_empty() {
        println!("{}", if args.all { "no approval gates" } else { "no approval gate is waiting for a decision" });
    }
    for g in &gates {
        println!("{}", line(g));
    }
    Ok(ExitCode::SUCCESS)
}

async fn remote_decide(url: &str, args: &Args) -> Result<ExitCode> {
    let body = serde_json::json!({"approve": !args.reject, "by": super::who(), "comment": args.comment});
    let path = format!("/v1/runs/{}/approvals/{}", args.run_id, args.gate);
    let (status, v) = crate::remote::Remote::new(url)?.call(reqwest::Method::POST, &path, Some(&body)).await?;
    match status {
        200 => {
            println!("gate {} of run {}: {}", args.gate, args.run_id, if args.reject { "rejected" } else { "approved" });
            Ok(ExitCode::SUCCESS)
        }
        409 => {
            let gate: Approval = serde_json::from_value(v["approval"].clone())?;
            let recorded = gate.decision.ok_or_else(|| anyhow::anyhow!("the agent at {url} answered 409 without the decision"))?;
            Ok(already_decided(args, &recorded))
        }
        _ => anyhow::bail!("the agent at {url} answered {status}: {}", v["error"].as_str().unwrap_or("no detail")),
    }
}

/// Says that the gate was decided before, by whom; exit code 1.
fn already_decided(args: &Args, recorded: &Decision) -> ExitCode {
    eprintln!(
        "gate {} of run {} was already decided: {} by {} at {}; your decision changes nothing",
        args.gate,
        args.run_id,
        recorded.verdict.as_str(),
        recorded.by,
        rfc3339(&recorded.at)
    );
    ExitCode::from(1)
}

fn line(g: &Approval) -> String {
    let state = match &g.decision {
        Some(d) => format!("{} by {}", d.verdict.as_str(), d.by),
        None => match g.deadline {
            Some(d) => format!("waiting (until {})", rfc3339(&d)),
            None => "waiting".into(),
        },
    };
    format!("{}  {}  {}  since {}\n    {}", g.run_id, g.gate, state, rfc3339(&g.requested_at), g.message)
}
