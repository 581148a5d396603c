//! One module per subcommand; what they share is here.

pub mod approve;
pub mod cancel;
pub mod check;
pub mod inspect;
pub mod keygen;
pub mod new;
pub mod pause;
pub mod pull;
pub mod push;
pub mod readiness;
pub mod redrive;
pub mod report;
pub mod resume;
pub mod run;
pub mod runs;
pub mod serve;
pub mod show;
pub mod sign;
pub mod simulate;
pub mod skip;
pub mod store;
pub mod takeover;
pub mod test;
pub mod unblock;
pub mod verify;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use drover_engine::{EngineError, Observer};
use drover_journal::{Entry, Event, Journal, JournalError, RunRecord, RunStatus};
use serde_json::{Map, Value};

use crate::progress::Progress;
use drover_view::{RunView, timeline};

/// `user@host (pid N)` of this process: who a cancel or a decision is recorded as.
pub fn who() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    let owner = drover_journal::current_owner();
    format!("{user}@{} (pid {})", owner.host, owner.pid)
}

/// Prints run `run_id` (JSON or timeline) and returns the exit code its status means.
pub async fn report(journal: &Arc<dyn Journal>, run: &RunRecord, json: bool) -> Result<ExitCode> {
    let entries = drover_engine::entries_with_branches(journal.as_ref(), &run.run_id).await?;
    let events = if json { journal.events(&run.run_id).await? } else { Vec::new() };
    print_run(run, &entries, &events, json, Map::new())?;
    Ok(exit_code(run.status))
}

/// Prints a run: as JSON, the `show --json` shape with its `events` and any
/// `extra` fields; otherwise the timeline.
pub fn print_run(run: &RunRecord, entries: &[Entry], events: &[Event], json: bool, extra: Map<String, Value>) -> Result<()> {
    if json {
        let mut view = serde_json::to_value(RunView::new(run, entries))?;
        view["events"] = serde_json::to_value(events)?;
        if let Value::Object(fields) = &mut view {
            fields.extend(extra);
        }
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", timeline(run, entries));
    }
    Ok(())
}

/// The driver of `run`, if it is alive now: what an operator records in
/// the store reaches it at once; otherwise the next `drover resume` (or a
/// `drover serve` on the store) acts on it.
pub fn live_driver(run: &RunRecord) -> Option<&drover_journal::Owner> {
    run.owner.as_ref().filter(|_| !run.driver_gone(chrono::Utc::now()))
}

/// The exit code a run's status means (see `main.rs`).
pub fn exit_code(status: RunStatus) -> ExitCode {
    match status {
        RunStatus::Failed => ExitCode::from(1),
        RunStatus::Cancelled => ExitCode::from(3),
        _ => ExitCode::SUCCESS,
    }
}

/// Drives a run with a live progress display, stopping cleanly on Ctrl-C
/// (the run stays resumable), then reports it.
pub async fn drive<F>(journal: &Arc<dyn Journal>, run_id: &str, json: bool, quiet: bool, go: impl FnOnce(Observer) -> F) -> Result<ExitCode>
where
    F: std::future::Future<Output = Result<RunRecord, EngineError>>,
{
    let (observer, progress) = Progress::start(quiet);
    let outcome = tokio::select! {
        r = go(observer) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    if let Some(p) = progress {
        p.finish().await;
    }
    match outcome {
        None => {
            eprintln!("interrupted: run {run_id} keeps every journaled step; `drover resume {run_id}` continues it");
            Ok(ExitCode::from(130))
        }
        Some(Ok(run)) => report(journal, &run, json).await,
        Some(Err(EngineError::Journal(JournalError::RunBusy { run_id, host, pid }))) => {
            anyhow::bail!(
                "run '{run_id}' is being driven by process {pid} on {host}; wait for it, or stop that process and run `drover resume {run_id}` \
                 (if that host is gone for good: `drover takeover {run_id} --reason TEXT --force`, or wait for its lease to run out)"
            )
        }
        Some(Err(e @ EngineError::Stopped { .. })) => {
            // Stopped without an outcome, resumable: the run as it stands,
            // then why and what to do.
            if let Some(run) = journal.run(run_id).await? {
                report(journal, &run, json).await?;
            }
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
        Some(Err(e)) => Err(e.into()),
    }
}
