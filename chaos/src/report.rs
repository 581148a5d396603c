//! What a game-day writes: a machine-readable result (`result.json`) and a
//! summary a person reads in a minute (`summary.md`): the hypothesis before
//! and after, the faults injected per kind, the steps retried, the RTO
//! achieved (and the clean one), the invariants checked, and the verdict.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::hypothesis::Check;

/// One run of the agent within a game-day.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// `clean` (the baseline), `game-day`, or `crash at POINT`.
    pub label: String,
    /// The run's id.
    pub run_id: String,
    /// How it ended: `succeeded`, `failed`, `cancelled`, or `hung`.
    pub status: String,
    /// Its error code and message, if it did not succeed.
    pub error: Option<(String, String)>,
    /// Its RTO (the runbook's `rto_seconds`, else the run's duration).
    pub rto_seconds: Option<f64>,
    /// Attempts beyond the first, over all steps.
    pub steps_retried: u64,
    /// Attempts per step, in order.
    pub steps: Vec<(String, u64)>,
    /// The warnings in its result.
    pub warnings: Vec<String>,
    /// Whether the agent was killed and resumed.
    pub crashed_and_resumed: bool,
    /// Whether the agent stopped on a store fault and was resumed once the store recovered.
    pub store_fault_survived: bool,
    /// The hypothesis before.
    pub before: Vec<Check>,
    /// The hypothesis after.
    pub after: Vec<Check>,
    /// Faults injected, per kind.
    pub faults_injected: BTreeMap<String, u64>,
    /// Requests the emulators accepted (2xx: took effect), per `service:Operation`.
    pub accepted: BTreeMap<String, u64>,
    /// Requests the emulators refused, per `service:Operation`.
    pub refused: BTreeMap<String, u64>,
    /// Why this run fails the game-day (empty: it passes).
    pub problems: Vec<String>,
    /// The run as `drover show --json` printed it.
    #[serde(skip)]
    pub shown: Value,
}

/// A game-day's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario.
    pub scenario: String,
    /// What it proves.
    pub description: String,
    /// Full form or short.
    pub full: bool,
    /// `pass` or `fail`.
    pub verdict: String,
    /// Why it failed, over all runs.
    pub reasons: Vec<String>,
    /// The clean run's RTO, when the scenario compares with one.
    pub clean_rto_seconds: Option<f64>,
    /// Every run.
    pub runs: Vec<RunReport>,
    /// Wall time of the whole game-day.
    pub duration_seconds: f64,
}

impl Report {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }

    /// Faults injected over all runs, per kind.
    pub fn faults_injected(&self) -> BTreeMap<String, u64> {
        let mut all = BTreeMap::new();
        for r in &self.runs {
            for (k, v) in &r.faults_injected {
                *all.entry(k.clone()).or_insert(0) += v;
            }
        }
        all
    }

    /// The summary, in Markdown.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Game-day `{}`: {}\n", self.scenario, self.verdict.to_uppercase());
        if !self.description.is_empty() {
            let _ = writeln!(s, "{}\n", self.description);
        }
        let _ = writeln!(s, "- form: {}; {} run(s) in {:.1} s", if self.full { "full" } else { "short" }, self.runs.len(), self.duration_seconds);
        let faults: Vec<String> = self.faults_injected().iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "- faults injected: {}", if faults.is_empty() { "none".into() } else { faults.join(", ") });
        if let Some(c) = self.clean_rto_seconds {
            let _ = writeln!(s, "- clean RTO: {c:.2} s");
        }
        for reason in &self.reasons {
            let _ = writeln!(s, "- **{reason}**");
        }
        let _ = writeln!(s, "\n| run | status | RTO | steps retried | faults | hypothesis after |\n|---|---|---|---|---|---|");
        for r in &self.runs {
            let faults: u64 = r.faults_injected.values().sum();
            let after = if r.after.iter().all(|c| c.ok) {
                "holds".to_string()
            } else {
                r.after.iter().filter(|c| !c.ok).map(|c| format!("{:?} broken: {}", c.probe, c.detail)).collect::<Vec<_>>().join("; ")
            };
            let mut status = match &r.error {
                Some((code, _)) => format!("{} ({code})", r.status),
                None => r.status.clone(),
            };
            if r.crashed_and_resumed {
                status.push_str(", after SIGKILL and resume");
            }
            if r.store_fault_survived {
                status.push_str(", after the store failed and recovered");
            }
            let rto = r.rto_seconds.map(|x| format!("{x:.2} s")).unwrap_or_else(|| "-".into());
            let _ = writeln!(s, "| {} | {status} | {rto} | {} | {faults} | {after} |", r.label, r.steps_retried);
        }
        s
    }
}
