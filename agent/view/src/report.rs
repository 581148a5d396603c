//! The report of a run a person reads in a minute: pass or fail, the RTO
//! measured against the runbook's objective, the RPO estimate, a timeline of
//! the steps (waits and retries visible), what changed in AWS (from the
//! audit log), and each failed step with its error. Written as Markdown and
//! as a self-contained HTML page whose timeline is an inline SVG.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use drover_engine::audit::AuditRecord;
use drover_journal::Event;
use serde_json::Value;

use crate::run::RunView;

/// A bar of the timeline.
struct Bar {
    label: String,
    /// Seconds from the run's start.
    start: f64,
    end: f64,
    status: String,
    attempts: u32,
    /// AWS requests (steps only).
    requests: u32,
    /// A durable wait rather than a step.
    wait: bool,
}

/// Everything the report says, computed once for both formats.
pub struct Report {
    title: String,
    verdict: &'static str,
    facts: Vec<(String, String)>,
    bars: Vec<Bar>,
    total: f64,
    changes: Vec<String>,
    failures: Vec<(String, String, String)>,
    warnings: Vec<String>,
    actions: Vec<(String, String)>,
    /// What operators did to the run (redrive, takeover), from its events:
    /// when, and the event's words (who, why, and what the run had ended with).
    controls: Vec<(String, String)>,
}

fn at(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn anchor(key: &str) -> String {
    let slug: String = key.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    format!("step-{slug}")
}

impl Report {
    /// The report of `run`, with the audited calls of the agent's home and
    /// the run's events.
    pub fn new(run: &RunView, audit: &[AuditRecord], events: &[Event]) -> Self {
        let start = at(&run.started_at).unwrap_or_else(Utc::now);
        let end = run.finished_at.as_deref().and_then(at).unwrap_or_else(Utc::now);
        let secs = |t: &DateTime<Utc>| (*t - start).num_milliseconds() as f64 / 1000.0;
        let mut bars: Vec<Bar> = run
            .steps
            .iter()
            .map(|s| {
                let b = at(&s.started_at).unwrap_or(start);
                let e = s.finished_at.as_deref().and_then(at).unwrap_or(end);
                Bar {
                    label: s.key.clone(),
                    start: secs(&b),
                    end: secs(&e),
                    status: s.status.to_string(),
                    attempts: s.attempts,
                    requests: s.requests,
                    wait: false,
                }
            })
            .collect();
        for w in &run.waits {
            let b = at(&w.started_at).unwrap_or(start);
            // A wait still open is drawn up to now (or the run's end), not to its deadline.
            let e = w.finished_at.as_deref().and_then(at).unwrap_or(end);
            let label = match &w.gate {
                Some(g) => format!("approval: {g}"),
                None => "durable wait".into(),
            };
            bars.push(Bar { label, start: secs(&b), end: secs(&e), status: w.status.to_string(), attempts: 1, requests: 0, wait: true });
        }
        bars.sort_by(|a, b| a.start.total_cmp(&b.start));
        let total = secs(&end).max(bars.iter().map(|b| b.end).fold(0.0, f64::max)).max(0.001);

        let result = run.result.clone().unwrap_or(Value::Null);
        let verdict = match run.status {
            "succeeded" => "PASSED",
            "cancelled" => "CANCELLED",
            "failed" => "FAILED",
            _ => "IN PROGRESS",
        };
        let mut facts = vec![
            ("runbook".to_string(), format!("{} {} (sha256 {})", run.runbook, run.runbook_version, &run.runbook_digest[..run.runbook_digest.len().min(12)])),
            ("started".to_string(), run.started_at.clone()),
            ("finished".to_string(), run.finished_at.clone().unwrap_or_else(|| "not yet".into())),
            ("duration".to_string(), format!("{total:.2} s")),
        ];
        let objective = num(&result, "rto_objective_seconds").or_else(|| num(&run.params, "rto_seconds"));
        match (num(&result, "rto_seconds"), objective) {
            (Some(rto), Some(obj)) => {
                let met = if rto <= obj { "met" } else { "MISSED" };
                facts.push(("RTO".into(), format!("{rto:.2} s measured against an objective of {obj:.0} s: {met}")));
            }
            (Some(rto), None) => facts.push(("RTO".into(), format!("{rto:.2} s measured (no objective)"))),
            (None, Some(obj)) => facts.push(("RTO".into(), format!("not measured (the run did not get that far); objective {obj:.0} s"))),
            (None, None) => {}
        }
        let rpo_objective = num(&result, "rpo_objective_seconds").or_else(|| num(&run.params, "rpo_seconds"));
        // A failover estimates its RPO from the replica's lag; a drill
        // demonstrates one (the age of the data it restored).
        let objective_text = |obj: Option<f64>| obj.map(|o| format!(", objective {o:.0} s")).unwrap_or_default();
        match (num(&result, "estimated_rpo_seconds"), num(&result, "rpo_seconds"), rpo_objective) {
            (Some(rpo), _, obj) => facts.push(("RPO estimate".into(), format!("{rpo:.0} s of writes at risk (replica lag){}", objective_text(obj)))),
            (None, Some(rpo), obj) => facts.push(("RPO demonstrated".into(), format!("{rpo:.0} s (age of the data restored){}", objective_text(obj)))),
            (None, None, Some(obj)) => facts.push(("RPO estimate".into(), format!("unknown (no lag reading); objective {obj:.0} s"))),
            (None, None, None) => {}
        }
        if let Some(v) = result.get("verdict").and_then(Value::as_str) {
            facts.push(("runbook's verdict".into(), v.to_string()));
        }
        let retried: u32 = run.steps.iter().map(|s| s.attempts.saturating_sub(1)).sum();
        facts.push(("steps".into(), format!("{} ({} retried attempt(s))", run.steps.len(), retried)));
        let requests: u32 = run.steps.iter().map(|s| s.requests).sum();
        facts.push(("AWS requests".into(), format!("{requests} (as the agent counted them; each round trip to AWS is one)")));

        let mut changes: Vec<String> = Vec::new();
        for r in audit.iter().filter(|r| r.run_id == run.run_id && r.mutating) {
            let what = format!(
                "{}{} on {} in {}{}",
                if r.decision == "allow" { "" } else { "refused: " },
                r.operation,
                r.resources.join(", "),
                if r.regions.is_empty() { "global".to_string() } else { r.regions.join(", ") },
                r.step.as_deref().map(|s| format!(" (step {s})")).unwrap_or_default()
            );
            if !changes.contains(&what) {
                changes.push(what);
            }
        }
        let mut failures: Vec<(String, String, String)> = run
            .steps
            .iter()
            .filter(|s| s.status == "failed")
            .filter_map(|s| s.error.as_ref().map(|e| (s.key.clone(), e.code.clone(), e.message.clone())))
            .collect();
        if let Some(e) = &run.error
            && !failures.iter().any(|(_, c, m)| *c == e.code && *m == e.message)
        {
            failures.push(("run".into(), e.code.clone(), e.message.clone()));
        }
        let warnings =
            result.get("warnings").and_then(Value::as_array).map(|w| w.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default();
        let actions = run.cleanup.actions.iter().map(|a| (format!("{}:{}", a.kind, a.key), a.status.to_string())).collect();
        let controls =
            events.iter().filter(|e| e.fields.iter().any(|(k, _)| k == "control")).map(|e| (drover_journal::rfc3339(&e.at), e.message.clone())).collect();
        Report { title: format!("{} run {}", run.runbook, run.run_id), verdict, facts, bars, total, changes, failures, warnings, actions, controls }
    }

    /// The report in Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# {}: {}\n", self.title, self.verdict);
        for (k, v) in &self.facts {
            let _ = writeln!(s, "- **{k}**: {v}");
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(s, "\n## Warnings\n");
            for w in &self.warnings {
                let _ = writeln!(s, "- {w}");
            }
        }
        let _ = writeln!(s, "\n## Timeline\n\n| at | step | took | attempts | AWS requests | status |\n|---|---|---|---|---|---|");
        for b in &self.bars {
            let name = if b.status == "failed" { format!("[{}](#{})", b.label, anchor(&b.label)) } else { b.label.clone() };
            let _ = writeln!(s, "| +{:.3} s | {name} | {:.3} s | {} | {} | {} |", b.start, b.end - b.start, b.attempts, b.requests, b.status);
        }
        let _ = writeln!(s, "\n## What changed\n");
        if self.changes.is_empty() {
            let _ = writeln!(s, "Nothing: the run made no change in AWS.");
        } else {
            let _ = writeln!(
                s,
                "The changes the run asked AWS for, as the audit log recorded them before each call (a call that then failed is listed too; see the timeline):\n"
            );
        }
        for c in &self.changes {
            let _ = writeln!(s, "- {c}");
        }
        if !self.failures.is_empty() {
            let _ = writeln!(s, "\n## Failures\n");
            for (key, code, message) in &self.failures {
                let _ = writeln!(s, "### <a id=\"{}\"></a>{key}: `{code}`\n\n{message}\n", anchor(key));
            }
        }
        if !self.actions.is_empty() {
            let _ = writeln!(s, "\n## Cleanups and undos\n");
            for (k, st) in &self.actions {
                let _ = writeln!(s, "- {k}: {st}");
            }
        }
        if !self.controls.is_empty() {
            let _ = writeln!(s, "\n## Operator actions\n");
            for (at, what) in &self.controls {
                let _ = writeln!(s, "- {at}: {what}");
            }
        }
        s
    }

    /// The report as one self-contained HTML page.
    pub fn html(&self) -> String {
        let mut s = String::new();
        let color = match self.verdict {
            "PASSED" => "#1a7f37",
            "FAILED" => "#cf222e",
            _ => "#9a6700",
        };
        let _ = write!(
            s,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}: {v}</title>\n<style>\
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1000px;color:#1f2328}}\
.verdict{{color:{color}}} table{{border-collapse:collapse}} td,th{{padding:.2em .8em;border-bottom:1px solid #d0d7de;text-align:left}}\
.bar.succeeded{{fill:#2da44e}} .bar.failed{{fill:#cf222e}} .bar.running{{fill:#bf8700}} .bar.wait{{fill:url(#hatch)}}\
.label{{font-size:12px}} .retry{{fill:#fff;stroke:#1f2328}} code{{background:#f6f8fa;padding:0 .2em}}\
</style></head><body>\n",
            t = esc(&self.title),
            v = self.verdict
        );
        s.push_str(&self.body_html());
        s.push_str("</body></html>\n");
        s
    }

    /// The report's content without the page around it (what the console
    /// embeds in a run's page; its styles are the console's).
    pub fn body_html(&self) -> String {
        let mut s = String::new();
        let _ = write!(s, "<h1>{t}: <span class=\"verdict\">{v}</span></h1>\n<table>\n", t = esc(&self.title), v = self.verdict);
        for (k, v) in &self.facts {
            let _ = writeln!(s, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
        }
        let _ = writeln!(s, "</table>");
        if !self.warnings.is_empty() {
            let _ = writeln!(s, "<h2>Warnings</h2><ul>");
            for w in &self.warnings {
                let _ = writeln!(s, "<li>{}</li>", esc(w));
            }
            let _ = writeln!(s, "</ul>");
        }
        let _ = writeln!(s, "<h2>Timeline</h2>\n{}", self.svg());
        let _ = writeln!(s, "<h2>What changed</h2>");
        if !self.changes.is_empty() {
            let _ = writeln!(
                s,
                "<p>The changes the run asked AWS for, as the audit log recorded them before each call (a call that then failed is listed too; see the timeline).</p>"
            );
        }
        let _ = writeln!(s, "<ul>");
        if self.changes.is_empty() {
            let _ = writeln!(s, "<li>Nothing: the run made no change in AWS.</li>");
        }
        for c in &self.changes {
            let _ = writeln!(s, "<li>{}</li>", esc(c));
        }
        let _ = writeln!(s, "</ul>");
        if !self.failures.is_empty() {
            let _ = writeln!(s, "<h2>Failures</h2>");
            for (key, code, message) in &self.failures {
                let _ = writeln!(s, "<h3 id=\"{}\">{}: <code>{}</code></h3><p>{}</p>", anchor(key), esc(key), esc(code), esc(message));
            }
        }
        if !self.actions.is_empty() {
            let _ = writeln!(s, "<h2>Cleanups and undos</h2><ul>");
            for (k, st) in &self.actions {
                let _ = writeln!(s, "<li>{}: {}</li>", esc(k), esc(st));
            }
            let _ = writeln!(s, "</ul>");
        }
        if !self.controls.is_empty() {
            let _ = writeln!(s, "<h2>Operator actions</h2><ul>");
            for (at, what) in &self.controls {
                let _ = writeln!(s, "<li>{}: {}</li>", esc(at), esc(what));
            }
            let _ = writeln!(s, "</ul>");
        }
        s
    }

    /// One bar per step (and per durable wait) on a time axis; a failed
    /// step's bar links to its error; each retried attempt is a tick.
    pub fn svg(&self) -> String {
        const LEFT: f64 = 200.0;
        const WIDTH: f64 = 720.0;
        const ROW: f64 = 22.0;
        // A step of a few milliseconds in a run of minutes still gets a
        // bar a reader can see (and click, when it failed).
        const MIN_BAR: f64 = 6.0;
        let height = ROW * self.bars.len() as f64 + 30.0;
        let x = |t: f64| LEFT + t / self.total * WIDTH;
        let mut s = String::new();
        let _ = write!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" role=\"img\" aria-label=\"timeline of {n} steps\">\
<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"3\" height=\"6\" fill=\"#8c959f\"/></pattern></defs>",
            w = LEFT + WIDTH + 20.0,
            n = self.bars.len()
        );
        for (i, b) in self.bars.iter().enumerate() {
            let y = i as f64 * ROW + 4.0;
            let (x0, x1) = (x(b.start), x(b.end).max(x(b.start) + MIN_BAR));
            let class = if b.wait { "bar wait".to_string() } else { format!("bar {}", b.status) };
            let title = format!("{}: {} in {:.3} s, {} attempt(s), {} AWS request(s)", b.label, b.status, b.end - b.start, b.attempts, b.requests);
            let rect = format!(
                "<rect class=\"{class}\" data-step=\"{}\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{}</title></rect>",
                esc(&b.label),
                x1 - x0,
                ROW - 6.0,
                esc(&title)
            );
            let _ = write!(s, "<text class=\"label\" x=\"4\" y=\"{:.1}\">{}</text>", y + 12.0, esc(&b.label));
            if b.status == "failed" && !b.wait {
                let _ = write!(s, "<a href=\"#{}\">{rect}</a>", anchor(&b.label));
            } else {
                s.push_str(&rect);
            }
            for k in 1..b.attempts {
                let tx = x0 + (x1 - x0) * k as f64 / b.attempts as f64;
                let _ = write!(s, "<rect class=\"retry\" x=\"{:.1}\" y=\"{y:.1}\" width=\"2\" height=\"{:.1}\"/>", tx - 1.0, ROW - 6.0);
            }
        }
        let axis = height - 10.0;
        let _ = write!(
            s,
            "<text class=\"label\" x=\"{LEFT}\" y=\"{axis:.1}\">0 s</text><text class=\"label\" x=\"{:.1}\" y=\"{axis:.1}\" text-anchor=\"end\">{:.2} s</text></svg>",
            LEFT + WIDTH,
            self.total
        );
        s
    }
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
