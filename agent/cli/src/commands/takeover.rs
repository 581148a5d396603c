//! `drover takeover RUN_ID --reason TEXT [--force]`: an operator takes a run
//! away from a driver that is gone (its container was re-created under a new
//! host name, its machine will not come back), recorded with the run and in
//! the audit log. The run is left unclaimed: `drover resume` or `drover
//! cancel` (or a `drover serve` on the store) takes it up from its journal.

use std::process::ExitCode;

use anyhow::{Result, bail};
use chrono::Utc;
use drover_engine::audit::{AuditLog, AuditRecord};
use drover_journal::{Durability, Event, JournalError, Level, Op, RunRecord, current_owner, rfc3339};
use serde_json::json;

use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// The run to take over (`drover runs` lists them).
    pub run_id: String,
    /// Why (required): recorded with the run and in the audit log.
    #[arg(long)]
    pub reason: String,
    /// Take the run although its driver's lease has not run out: only when
    /// that driver is known to be gone for good (its host or container no
    /// longer exists). The driver, if it still runs, is fenced out: every
    /// write and side effect it tries next is refused.
    #[arg(long)]
    pub force: bool,
    /// Print what was done as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The driver holding `run`, as a person reads it.
fn holder(run: &RunRecord) -> String {
    match (&run.owner, run.lease_expires_at) {
        (None, _) => "none".into(),
        (Some(o), Some(until)) => format!("process {} on {}, lease until {}", o.pid, o.host, rfc3339(&until)),
        (Some(o), None) => format!("process {} on {}", o.pid, o.host),
    }
}

pub async fn exec(home: &Home, args: Args) -> Result<ExitCode> {
    let id = args.run_id.as_str();
    let reason = args.reason.trim();
    if reason.is_empty() {
        bail!("--reason is empty: say why run {id} is taken over (it is recorded with the run and in the audit log)");
    }
    let journal = home.journal().await?;
    let run = journal.run(id).await?.ok_or_else(|| JournalError::UnknownRun(id.into()))?;
    if run.status.is_final() {
        eprintln!("run {id} already ended ({}); there is nothing to take over", run.status);
        return Ok(ExitCode::SUCCESS);
    }
    let now = Utc::now();
    let who = super::who();
    let previous = holder(&run);
    let live = run.owner.is_some() && !run.driver_gone(now);
    let audit = AuditLog::new(home.dir.join("audit.jsonl"));
    let record = |decision: &str, why: String| AuditRecord::control(&run, "drover.takeover", None, format!("run/{id}"), decision, why);
    if live && !args.force {
        audit.append(&record("deny", format!("by {who}: {reason}; refused: the driver ({previous}) holds a live lease"))).await?;
        bail!(
            "run {id} is held by {previous}, renewed while that driver runs; nothing was changed. \
             If that host or container is gone for good, take the run now with `drover takeover {id} --reason \"...\" --force`; \
             otherwise wait for the driver, or for its lease to run out, then `drover resume {id}`"
        );
    }
    let forced = live && args.force;
    // Recorded (and on disk) before the run changes hands, like every audited action.
    let why = format!("by {who}: {reason}; previous driver: {previous}{}", if forced { "; forced before its lease ran out" } else { "" });
    audit.append(&record("allow", why)).await?;
    let me = current_owner();
    let lease = if forced { journal.take_over(id, &me).await? } else { journal.claim(id, &me).await? };
    let event = Event {
        at: now,
        level: Level::Warn,
        step: None,
        message: format!("run taken over by {who}: {reason}"),
        fields: vec![
            ("control".into(), "takeover".into()),
            ("by".into(), who.clone()),
            ("reason".into(), reason.to_string()),
            ("previous_driver".into(), previous.clone()),
            ("forced".into(), forced.to_string()),
        ],
    };
    let recorded = journal.commit(&lease, vec![Op::AddEvent(event)], Durability::Durable).await;
    // The run is left unclaimed for whoever resumes or cancels it.
    let released = journal.release(&lease).await;
    recorded?;
    released?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "run_id": id,
                "taken_over_from": previous,
                "by": who,
                "reason": reason,
                "forced": forced,
                "at": rfc3339(&now),
            }))?
        );
    } else {
        eprintln!(
            "run {id} taken over from {previous}{}; recorded with the run and in {}. \
             `drover resume {id}` continues it from its journal, `drover cancel {id}` stops it \
             (a `drover serve` on this store takes it up by itself)",
            if forced { " before its lease ran out (that driver, if it still runs, is fenced out)" } else { "" },
            audit.path().display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
