//! How runs look: the stable JSON of `show --json` and the human timeline.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use drover_journal::{CancelRequest, Entry, EntryKind, EntryStatus, ErrorRecord, RunRecord, rfc3339};
use serde::Serialize;
use serde_json::Value;

/// One step, as `show --json` prints it.
#[derive(Serialize)]
pub struct StepView {
    pub key: String,
    pub status: &'static str,
    pub attempts: u32,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub output: Option<Value>,
    pub error: Option<ErrorRecord>,
    pub idempotency_key: Option<String>,
    pub next_attempt_at: Option<String>,
    /// AWS requests its attempts sent (the agent's count; an attempt cut
    /// off by a crash is not counted).
    pub requests: u32,
}

/// A durable wait, as `show --json` prints it.
#[derive(Serialize)]
pub struct WaitView {
    /// `sleep` (a durable sleep) or `approval` (an approval gate).
    pub kind: &'static str,
    /// The gate's name (approvals only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    /// The gate's decision, once made (approvals only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<serde_json::Value>,
    pub started_at: String,
    pub until: Option<String>,
    pub finished_at: Option<String>,
    pub status: &'static str,
}

/// A registered cleanup or undo and where it stands.
#[derive(Serialize)]
pub struct ActionView {
    pub key: String,
    pub kind: &'static str,
    /// `pending` (not run yet), `skipped` (an undo of a run that succeeded),
    /// `running`, `succeeded` or `failed`.
    pub status: &'static str,
    pub attempts: u32,
    pub error: Option<ErrorRecord>,
}

/// The run's cleanups and undos: `status` is `none`, `pending`, `running`,
/// `succeeded`, `skipped` (only undos, of a run that succeeded) or `failed`
/// (some action failed after its retries).
#[derive(Serialize)]
pub struct CleanupView {
    pub status: &'static str,
    pub actions: Vec<ActionView>,
}

/// The process driving a run.
#[derive(Serialize)]
pub struct DriverView {
    pub host: String,
    pub pid: u32,
    pub alive: bool,
    /// When the driver's lease runs out unless renewed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<String>,
}

/// A run, as `show --json` prints it. The first seven fields are the stable
/// contract tests and tools rely on; the rest are additions.
#[derive(Serialize)]
pub struct RunView {
    pub run_id: String,
    pub runbook: String,
    pub status: &'static str,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub steps: Vec<StepView>,
    pub runbook_version: String,
    pub runbook_digest: String,
    pub params: Value,
    pub result: Option<Value>,
    pub error: Option<ErrorRecord>,
    /// Set while the run is stopped without an outcome (resumable): the
    /// code of why (`non-determinism`, `audit-log`); `error` says what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    pub waits: Vec<WaitView>,
    pub driver: Option<DriverView>,
    pub cancel: Option<CancelRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<CancelRequest>,
    pub cleanup: CleanupView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_override: Option<Value>,
    /// Why the run started, when not by hand, and where its runbook came
    /// from when a registry served it (`runbook_source`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Value>,
}

fn cleanup_view(run: &RunRecord, entries: &[Entry]) -> CleanupView {
    let ended = entries.iter().find(|e| e.kind == EntryKind::End);
    let succeeded = ended.is_some_and(|e| e.output.as_ref().is_some_and(|o| o["status"] == "succeeded"));
    let actions: Vec<ActionView> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Register)
        .filter_map(|reg| {
            let step_key = reg.key.clone()?;
            let (kind, key) = step_key.split_once(':')?;
            let kind = if kind == "undo" { "undo" } else { "cleanup" };
            let step = entries.iter().find(|e| e.kind == EntryKind::Step && e.key.as_deref() == Some(step_key.as_str()));
            let status = match step {
                Some(s) => s.status.as_str(),
                None if kind == "undo" && (succeeded || (ended.is_none() && run.status.is_final())) => "skipped",
                None => "pending",
            };
            Some(ActionView { key: key.to_string(), kind, status, attempts: step.map(|s| s.attempts).unwrap_or(0), error: step.and_then(|s| s.error.clone()) })
        })
        .collect();
    let status = if actions.is_empty() {
        "none"
    } else if actions.iter().any(|a| a.status == "failed") {
        "failed"
    } else if actions.iter().any(|a| a.status == "running") {
        "running"
    } else if actions.iter().any(|a| a.status == "pending") {
        "pending"
    } else if actions.iter().all(|a| a.status == "skipped") {
        "skipped"
    } else {
        "succeeded"
    };
    CleanupView { status, actions }
}

impl RunView {
    pub fn new(run: &RunRecord, entries: &[Entry]) -> Self {
        let steps = entries
            .iter()
            .filter(|e| e.kind == EntryKind::Step)
            .map(|e| StepView {
                key: e.key.clone().unwrap_or_default(),
                status: e.status.as_str(),
                attempts: e.attempts,
                started_at: rfc3339(&e.started_at),
                finished_at: e.finished_at.as_ref().map(rfc3339),
                output: e.output.clone(),
                error: e.error.clone(),
                idempotency_key: e.idempotency_key.clone(),
                next_attempt_at: e.next_attempt_at.as_ref().map(rfc3339),
                requests: e.requests,
            })
            .collect();
        let waits = entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::Sleep | EntryKind::Approval))
            .map(|e| WaitView {
                kind: if e.kind == EntryKind::Sleep { "sleep" } else { "approval" },
                gate: (e.kind == EntryKind::Approval).then(|| e.key.clone().unwrap_or_default()),
                decision: e.output.as_ref().and_then(|o| o.get("decision")).cloned(),
                started_at: rfc3339(&e.started_at),
                until: e.next_attempt_at.as_ref().map(rfc3339),
                finished_at: e.finished_at.as_ref().map(rfc3339),
                status: e.status.as_str(),
            })
            .collect();
        RunView {
            run_id: run.run_id.clone(),
            runbook: run.runbook.name.clone(),
            status: run.status.as_str(),
            started_at: rfc3339(&run.created_at),
            finished_at: run.finished_at.as_ref().map(rfc3339),
            steps,
            runbook_version: run.runbook.version.clone(),
            runbook_digest: run.runbook.digest.clone(),
            params: run.params.clone(),
            result: run.result.clone(),
            error: run.error.clone(),
            stopped: stopped(run).map(|e| e.code.clone()),
            waits,
            driver: run.owner.as_ref().map(|o| DriverView {
                host: o.host.clone(),
                pid: o.pid,
                alive: !run.driver_gone(chrono::Utc::now()),
                lease_expires_at: run.lease_expires_at.as_ref().map(rfc3339),
            }),
            cancel: run.cancel.clone(),
            pause: run.pause.clone(),
            policy_override: run.policy_override.clone(),
            origin: run.origin.clone(),
            cleanup: cleanup_view(run, entries),
        }
    }
}

fn secs(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds();
    if ms < 1000 { format!("{ms} ms") } else { format!("{:.2} s", ms as f64 / 1000.0) }
}

fn offset(start: &DateTime<Utc>, t: &DateTime<Utc>) -> String {
    format!("+{:.3}s", (*t - *start).num_milliseconds() as f64 / 1000.0)
}

fn compact(v: &Value, max: usize) -> String {
    let s = v.to_string();
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes)", &s[..cut], s.len())
}

/// Why a run that has not ended stopped without an outcome (non-determinism,
/// an unwritable audit log), if it did: it waits for an operator's resume or cancel.
pub fn stopped(run: &RunRecord) -> Option<&drover_journal::ErrorRecord> {
    if run.status.is_final() { None } else { run.error.as_ref() }
}

/// Whether a non-final run has lost its driver (crashed) and needs a resume.
pub fn orphaned(run: &RunRecord) -> bool {
    !run.status.is_final() && run.driver_gone(chrono::Utc::now())
}

/// The human timeline of a run.
pub fn timeline(run: &RunRecord, entries: &[Entry]) -> String {
    let mut out = String::new();
    let start = run.created_at;
    let _ = writeln!(out, "run       {}", run.run_id);
    let _ = writeln!(out, "runbook   {} {}  sha256:{}", run.runbook.name, run.runbook.version, &run.runbook.digest[..run.runbook.digest.len().min(12)]);
    if let Some(source) = run.origin.as_ref().map(|o| &o["runbook_source"]).filter(|s| s.is_object()) {
        let _ = writeln!(out, "source    {} pinned to {}", source["requested"].as_str().unwrap_or("?"), source["pinned"].as_str().unwrap_or("?"));
    }
    let took = run.finished_at.map(|f| format!("  (took {})", secs(f - start))).unwrap_or_default();
    let mut status = format!("{}{took}", run.status);
    if let Some(why) = stopped(run) {
        status.push_str(&format!("  (stopped on {}: {})", why.code, why.message));
    } else if orphaned(run) {
        status.push_str(&format!("  (no live driver: `drover resume {}` continues it)", run.run_id));
    }
    let _ = writeln!(out, "status    {status}");
    let _ = writeln!(out, "started   {}", rfc3339(&start));
    if let Some(f) = &run.finished_at {
        let _ = writeln!(out, "finished  {}", rfc3339(f));
    }
    let _ = writeln!(out, "params    {}", compact(&run.params, 200));
    let _ = writeln!(out);
    let width = entries.iter().filter_map(|e| e.key.as_ref()).map(|k| k.len()).max().unwrap_or(4).max(4);
    for e in entries {
        match e.kind {
            EntryKind::Step => {
                let key = e.key.as_deref().unwrap_or("?");
                let (mark, status) = match e.status {
                    EntryStatus::Succeeded => ("✔", "succeeded"),
                    EntryStatus::Failed => ("✘", "failed"),
                    EntryStatus::Running => ("▸", "running"),
                };
                let attempts = if e.attempts == 1 { "1 attempt".to_string() } else { format!("{} attempts", e.attempts) };
                let dur = e.finished_at.map(|f| secs(f - e.started_at)).unwrap_or_else(|| "…".into());
                let requests = match e.requests {
                    0 => String::new(),
                    1 => "  1 AWS request".to_string(),
                    n => format!("  {n} AWS requests"),
                };
                let _ = writeln!(out, "  {:>9}  {mark} {key:<width$}  {status:<9}  {attempts:<10}  {dur}{requests}", offset(&start, &e.started_at));
                if let Some(at) = e.next_attempt_at.filter(|_| e.status == EntryStatus::Running) {
                    let _ = writeln!(out, "  {:>9}    next attempt at {}", "", rfc3339(&at));
                }
                if let Some(h) = drover_engine::durable::held_of(e) {
                    let skip = if h.skip == drover_engine::held::Skip::Refused { "retry it or let it fail" } else { "retry, skip, or let it fail" };
                    let _ = writeln!(out, "  {:>9}    failed for good: waits for an operator at gate {} until {} ({skip})", "", h.gate, h.deadline);
                }
                if let Some(err) = &e.error {
                    let label = if e.status == EntryStatus::Failed { "error" } else { "last error" };
                    let _ = writeln!(out, "  {:>9}    {label}: {err}", "");
                }
            }
            EntryKind::Sleep => {
                let until = e.next_attempt_at.map(|u| rfc3339(&u)).unwrap_or_default();
                let what = match e.status {
                    EntryStatus::Succeeded => format!("slept until {until}"),
                    _ => format!("sleeping until {until}"),
                };
                let _ = writeln!(out, "  {:>9}  ⏸ {what}", offset(&start, &e.started_at));
            }
            EntryKind::Approval => {
                let gate = e.key.as_deref().unwrap_or("?");
                let out_ = e.output.as_ref();
                let what = match out_.and_then(|o| o.get("decision")) {
                    Some(d) => {
                        let comment = d["comment"].as_str().filter(|c| !c.is_empty()).map(|c| format!(": {c}")).unwrap_or_default();
                        format!("gate {gate}: {} by {}{comment}", d["verdict"].as_str().unwrap_or("?"), d["by"].as_str().unwrap_or("?"))
                    }
                    None => {
                        let until = e.next_attempt_at.map(|u| format!(" (until {})", rfc3339(&u))).unwrap_or_default();
                        let message = out_.and_then(|o| o["message"].as_str()).unwrap_or("");
                        format!("gate {gate}: waiting for approval{until}: {message}")
                    }
                };
                let _ = writeln!(out, "  {:>9}  ⚑ {what}", offset(&start, &e.started_at));
            }
            EntryKind::Register => {
                let what = e.key.as_deref().unwrap_or("?").replacen(':', " registered: ", 1);
                let _ = writeln!(out, "  {:>9}  ↺ {what}", offset(&start, &e.started_at));
            }
            EntryKind::End => {
                let status = e.output.as_ref().and_then(|o| o["status"].as_str()).unwrap_or("?");
                let _ = writeln!(out, "  {:>9}  ■ run ended: {status}", offset(&start, &e.started_at));
            }
            EntryKind::Now | EntryKind::Random => {}
        }
    }
    if let Some(result) = &run.result {
        let _ = writeln!(out, "\nresult    {}", compact(result, 2000));
    }
    if let Some(err) = &run.error {
        let _ = writeln!(out, "\nerror     {err}");
    }
    if let Some(o) = &run.policy_override {
        let missing: Vec<&str> = o["accepted_missing_grants"].as_array().map(|a| a.iter().filter_map(|m| m.as_str()).collect()).unwrap_or_default();
        let _ = writeln!(out, "override  started by {} without the grants: {}", o["by"].as_str().unwrap_or("?"), missing.join("; "));
    }
    if let Some(p) = &run.pause {
        let _ = writeln!(out, "paused    by {} at {}: {} (`drover unpause {}` lets it go on)", p.by, rfc3339(&p.at), p.reason, run.run_id);
    }
    if let Some(c) = &run.cancel {
        let _ = writeln!(out, "cancel    requested by {} at {}: {}", c.by, rfc3339(&c.at), c.reason);
    }
    let cleanup = cleanup_view(run, entries);
    if cleanup.status != "none" {
        let _ = writeln!(out, "cleanup   {}", cleanup.status);
        for a in &cleanup.actions {
            let err = a.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default();
            let _ = writeln!(out, "  {:<7} {:<24} {}{err}", a.kind, a.key, a.status);
        }
    }
    out
}
