//! The live view of a run while it executes: a spinner line on a terminal,
//! plain lines otherwise (so CI logs keep a readable trail).

use std::io::IsTerminal;
use std::time::Duration;

use chrono::Utc;
use drover_engine::{Observer, RunEvent};
use drover_journal::{EntryStatus, rfc3339};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A running progress display; `finish` clears it.
pub struct Progress {
    task: JoinHandle<()>,
}

impl Progress {
    /// Starts a display on stderr, or none when `quiet`.
    pub fn start(quiet: bool) -> (Observer, Option<Progress>) {
        if quiet {
            return (Observer::none(), None);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let task = if std::io::stderr().is_terminal() { tokio::spawn(spinner(rx)) } else { tokio::spawn(lines(rx)) };
        (Observer::channel(tx), Some(Progress { task }))
    }

    /// Waits for the display to drain (the sender side must be dropped).
    pub async fn finish(self) {
        let _ = self.task.await;
    }
}

fn describe(ev: &RunEvent) -> Option<String> {
    Some(match ev {
        RunEvent::Started { run_id, journaled_entries: 0 } => format!("run {run_id}: started"),
        RunEvent::Started { run_id, journaled_entries } => {
            format!("run {run_id}: resuming, replaying {journaled_entries} journaled calls")
        }
        RunEvent::StepReplayed { key, status } => format!("step {key}: {} (from the journal)", status.as_str()),
        RunEvent::StepStarted { key, attempt: 1 } => format!("step {key}: running"),
        RunEvent::StepStarted { key, attempt } => format!("step {key}: running (attempt {attempt})"),
        RunEvent::StepRetrying { key, attempt, backoff, error } => {
            format!("step {key}: attempt {attempt} failed ({error}); retrying in {:.1} s", backoff.as_secs_f64())
        }
        RunEvent::StepFinished { key, status: EntryStatus::Failed, error, .. } => match error {
            Some(e) => format!("step {key}: failed: {e}"),
            None => format!("step {key}: failed"),
        },
        RunEvent::StepFinished { key, status, .. } => format!("step {key}: {}", status.as_str()),
        RunEvent::Sleeping { step: None, until } => format!("waiting durably until {}", rfc3339(until)),
        RunEvent::Sleeping { step: Some(k), until } => format!("step {k}: waiting until {}", rfc3339(until)),
        RunEvent::Woke => return None,
        RunEvent::AwaitingApproval { gate, message, deadline } => {
            let until = deadline.map(|d| format!(", until {}", rfc3339(&d))).unwrap_or_default();
            format!("gate {gate}: waiting for approval{until}: {message} (`drover approve RUN_ID {gate}` or `--reject`)")
        }
        RunEvent::Decided { gate, decision } => {
            let comment = if decision.comment.is_empty() { String::new() } else { format!(": {}", decision.comment) };
            format!("gate {gate}: {} by {}{comment}", decision.verdict.as_str(), decision.by)
        }
        RunEvent::Log(ev) => {
            let step = ev.step.as_deref().map(|s| format!(" [{s}]")).unwrap_or_default();
            format!("{}{step}: {}", ev.level.as_str(), ev.message)
        }
    })
}

async fn lines(mut rx: mpsc::UnboundedReceiver<RunEvent>) {
    while let Some(ev) = rx.recv().await {
        if let Some(line) = describe(&ev) {
            eprintln!("{line}");
        }
    }
}

async fn spinner(mut rx: mpsc::UnboundedReceiver<RunEvent>) {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    pb.enable_steady_tick(Duration::from_millis(120));
    let mut waiting_until = None;
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                match &ev {
                    RunEvent::Sleeping { until, .. } => waiting_until = Some(*until),
                    RunEvent::Woke | RunEvent::StepStarted { .. } => waiting_until = None,
                    _ => {}
                }
                if let Some(line) = describe(&ev) {
                    // Finished things scroll up; the current one stays on the line.
                    match ev {
                        RunEvent::StepStarted { .. } | RunEvent::Sleeping { .. } | RunEvent::AwaitingApproval { .. } => pb.set_message(line),
                        _ => pb.println(line),
                    }
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(500)), if waiting_until.is_some() => {
                if let Some(until) = waiting_until {
                    let left = (until - Utc::now()).num_seconds().max(0);
                    pb.set_message(format!("waiting durably until {} ({left} s left)", rfc3339(&until)));
                }
            }
        }
    }
    pb.finish_and_clear();
}
