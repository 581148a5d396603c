//! The console's pages. Everything a runbook, an alert or an operator wrote
//! is interpolated by maud, which escapes it; the only markup taken as is
//! comes from `drover_view::Report` (which escapes what it interpolates)
//! and [`super::chart`] (numbers only).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use drover_engine::readiness::Evaluation;
use drover_journal::{Approval, Entry, EntryKind, Event, RunFilter, RunRecord, RunStatus, rfc3339};
use drover_view::RunView;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use serde_json::Value;

use super::session::{CSRF_FIELD, Session};
use super::{page_session, percent, problem, secured};
use crate::api::AppState;

/// Most runs a list shows.
const LIST_LIMIT: usize = 200;
/// Most events a run's page shows (the newest).
const EVENTS_SHOWN: usize = 300;

/// The page around a view: navigation, who is logged in, logout.
fn layout(state: &AppState, session: &Session, title: &str, active: &str, body: Markup) -> Markup {
    let csrf = state.console.keys.csrf(session);
    let nav = [
        ("runs", "/console/runs", "Runs"),
        ("approvals", "/console/approvals", "Approvals"),
        ("readiness", "/console/readiness", "Readiness"),
        ("drills", "/console/drills", "Drills"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, true))
            body {
                header.top {
                    a.brand href="/console/runs" { "drover" }
                    nav {
                        @for (key, href, label) in nav {
                            a.active[key == active] href=(href) { (label) }
                        }
                    }
                    form.logout method="post" action="/console/logout" {
                        span.who { (state.api_identity) @if !session.name.is_empty() { " · " (session.name) } }
                        input type="hidden" name=(CSRF_FIELD) value=(csrf);
                        button type="submit" { "Log out" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A bare page (login, errors): no navigation.
fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, false))
            body { main.narrow { (body) } }
        }
    }
}

/// A page's head: its title, the stylesheet, and the live script (`live`).
fn head(title: &str, live: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · drover" }
            link rel="stylesheet" href="/console/static/console.css";
            @if live { script src="/console/static/console.js" defer {} }
        }
    }
}

/// The page of an error: what failed and what to do.
pub fn problem_page(title: &str, message: &str) -> Markup {
    bare(title, html! { h1 { (title) } p.error { (message) } p { a href="/console/runs" { "Back to the runs" } } })
}

fn page(markup: Markup) -> Response {
    secured(markup.into_response())
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /console/login`: the form asking for the API token.
pub async fn login(Query(q): Query<LoginQuery>) -> Response {
    page(login_page(q.next.as_deref().unwrap_or("/console/runs"), None))
}

/// The login form, with why the last attempt was refused.
pub fn login_page(next: &str, refused: Option<&str>) -> Markup {
    bare(
        "Log in",
        html! {
            h1 { "drover console" }
            p { "Log in with the agent's API token (the value of the variable " code { "[serve] api_token_env" } " names). What you do here is recorded as done with that token, with your name beside it." }
            @if let Some(why) = refused { p.error role="alert" { (why) } }
            form.login method="post" action="/console/login" {
                input type="hidden" name="next" value=(next);
                label { "Your name " input type="text" name="name" autocomplete="username" required placeholder="e.g. alice (on call)"; }
                label { "API token " input type="password" name="token" autocomplete="current-password" required; }
                button type="submit" { "Log in" }
            }
        },
    )
}

#[derive(Deserialize, Default)]
pub struct RunsQuery {
    status: Option<String>,
    runbook: Option<String>,
}

impl RunsQuery {
    /// The store filter, or why the status is not one.
    fn filter(&self) -> Result<RunFilter, String> {
        let status = match self.status.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(RunStatus::parse(s).ok_or_else(|| format!("'{s}' is not a status: use running, waiting, succeeded, failed or cancelled"))?),
            None => None,
        };
        Ok(RunFilter { status, runbook: self.runbook.clone().filter(|r| !r.is_empty()), limit: Some(LIST_LIMIT), ..Default::default() })
    }

    fn query_string(&self) -> String {
        format!("status={}&runbook={}", percent(self.status.as_deref().unwrap_or("")), percent(self.runbook.as_deref().unwrap_or("")))
    }
}

/// `GET /console/runs`: runs, newest first, filtered by status and runbook.
pub async fn runs(State(state): State<Arc<AppState>>, headers: HeaderMap, Query(q): Query<RunsQuery>) -> Response {
    let next = match (q.status.as_deref().unwrap_or(""), q.runbook.as_deref().unwrap_or("")) {
        ("", "") => "/console/runs".to_string(),
        _ => format!("/console/runs?{}", q.query_string()),
    };
    let session = match page_session(&state, &headers, &next) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let table = match runs_table(&state, &q).await {
        Ok(t) => t,
        Err((status, message)) => return problem(status, "Cannot list runs", &message),
    };
    let pending = state.supervisor.journal().approvals(None, true).await.map(|a| a.len()).unwrap_or(0);
    let statuses = ["running", "waiting", "succeeded", "failed", "cancelled"];
    let body = html! {
        h1 { "Runs" }
        @if pending > 0 {
            p.banner { a href="/console/approvals" { (pending) " approval(s) waiting for a decision" } }
        }
        form.filters method="get" action="/console/runs" {
            label { "Status " select name="status" {
                option value="" { "any" }
                @for s in statuses { option value=(s) selected[q.status.as_deref() == Some(s)] { (s) } }
            } }
            label { "Runbook " select name="runbook" {
                option value="" { "any" }
                @for r in state.supervisor.runbooks().keys() { option value=(r) selected[q.runbook.as_deref() == Some(r.as_str())] { (r) } }
            } }
            button type="submit" { "Filter" }
        }
        div #runs data-live=(format!("/console/runs/live?{}", q.query_string())) { (table) }
    };
    page(layout(&state, &session, "Runs", "runs", body))
}

/// The runs table (also what the live stream of the runs page sends).
pub async fn runs_table(state: &AppState, q: &RunsQuery) -> Result<Markup, (StatusCode, String)> {
    let filter = q.filter().map_err(|m| (StatusCode::BAD_REQUEST, m))?;
    let runs = state.supervisor.journal().runs(&filter).await.map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let runs: Vec<RunRecord> = runs.into_iter().filter(|r| !r.origin.as_ref().is_some_and(|o| o["kind"] == "branch")).collect();
    let now = Utc::now();
    Ok(html! {
        @if runs.is_empty() {
            p.empty { "No run matches." }
        } @else {
            table.runs {
                thead { tr { th { "run" } th { "runbook" } th { "status" } th { "scope" } th { "origin" } th { "age" } th { "took" } } }
                tbody {
                    @for r in &runs {
                        tr data-run=(r.run_id) {
                            td { a href=(format!("/console/runs/{}", percent(&r.run_id))) { (r.run_id) } }
                            td { (r.runbook.name) " " span.muted { (r.runbook.version) } }
                            td { (status_badge(r)) }
                            td { (r.scope.as_deref().unwrap_or("")) }
                            td { (origin_text(r.origin.as_ref())) }
                            td title=(rfc3339(&r.created_at)) { (ago(now, r.created_at)) }
                            td { (r.finished_at.map(|f| took(f - r.created_at)).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    })
}

fn status_badge(r: &RunRecord) -> Markup {
    let paused = r.pause.is_some() && !r.status.is_final();
    html! {
        span class=(format!("status {}", r.status.as_str())) { (r.status.as_str()) }
        @if paused { " " span.status.paused { "paused" } }
        @if drover_view::stopped(r).is_some() { " " span.status.failed title="stopped without an outcome: resume or cancel it" { "stopped" } }
        @else if drover_view::orphaned(r) { " " span.status.failed title="its driver is gone: drover resume continues it" { "no driver" } }
    }
}

/// Why a run started, in a few words.
fn origin_text(origin: Option<&Value>) -> String {
    let Some(o) = origin else { return "by hand".into() };
    let name = o["name"].as_str().unwrap_or("");
    match o["kind"].as_str().unwrap_or("") {
        "drill" => format!("drill {name}"),
        "trigger" => {
            let alert = o["alerts"][0]["labels"]["alertname"].as_str().or_else(|| o["alerts"][0]["name"].as_str());
            match alert {
                Some(a) => format!("trigger {name} ({} alert {a})", o["source"].as_str().unwrap_or("")),
                None => format!("trigger {name}"),
            }
        }
        "cli" | "" => "by hand".into(),
        other => format!("{other} {name}"),
    }
}

fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86400),
    }
}

fn took(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds();
    if ms < 1000 { format!("{ms} ms") } else { format!("{:.1} s", ms as f64 / 1000.0) }
}

/// `GET /console/runs/{id}`: one run, kept current while it moves.
pub async fn run(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let session = match page_session(&state, &headers, &format!("/console/runs/{}", percent(&id))) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let detail = match run_detail(&state, &session, &id).await {
        Ok(d) => d,
        Err((status, message)) => return problem(status, "No such run", &message),
    };
    let body = html! {
        p.crumbs { a href="/console/runs" { "Runs" } " / " (id) }
        div #run data-live=(format!("/console/runs/{}/live", percent(&id))) { (detail) }
    };
    page(layout(&state, &session, &format!("Run {id}"), "runs", body))
}

/// Everything a run's page shows below its title (what its live stream sends).
pub async fn run_detail(state: &AppState, session: &Session, id: &str) -> Result<Markup, (StatusCode, String)> {
    let journal = state.supervisor.journal();
    let unavailable = |e: drover_journal::JournalError| (StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    let run = journal
        .run(id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| (StatusCode::NOT_FOUND, format!("there is no run '{id}' in this agent's store; the runs page lists the runs it knows")))?;
    let entries = drover_engine::entries_with_branches(journal.as_ref(), id).await.map_err(unavailable)?;
    let approvals = journal.approvals(Some(id), false).await.map_err(unavailable)?;
    let events = journal.events(id).await.map_err(unavailable)?;
    let view = RunView::new(&run, &entries);
    let report = drover_view::Report::new(&view, &[], &events);
    let csrf = state.console.keys.csrf(session);
    Ok(html! {
        (facts(&run))
        (controls(&run, &approvals, &csrf))
        section.report { (PreEscaped(report.body_html())) }
        (steps(&entries))
        (gates(&approvals))
        (event_log(&events))
        details.params { summary { "Parameters" } pre { (serde_json::to_string_pretty(&run.params).unwrap_or_default()) } }
        @if let Some(result) = &run.result {
            details.result { summary { "Result" } pre { (serde_json::to_string_pretty(result).unwrap_or_default()) } }
        }
    })
}

fn facts(run: &RunRecord) -> Markup {
    html! {
        table.facts {
            tr { th { "status" } td { (status_badge(run)) } }
            tr { th { "origin" } td { (origin_text(run.origin.as_ref())) } }
            @if let Some(scope) = &run.scope { tr { th { "scope" } td { (scope) } } }
            @if let Some(source) = run.origin.as_ref().map(|o| &o["runbook_source"]).filter(|s| s.is_object()) {
                tr { th { "source" } td { (source["requested"].as_str().unwrap_or("?")) " pinned to " (source["pinned"].as_str().unwrap_or("?")) } }
            }
            @if let Some(o) = &run.owner {
                tr { th { "driver" } td { (o.host) " pid " (o.pid) @if run.driver_gone(Utc::now()) && !run.status.is_final() { " (gone: " code { "drover resume " (run.run_id) } " continues it)" } } }
            }
            @if let Some(p) = run.pause.as_ref().filter(|_| !run.status.is_final()) {
                tr { th { "paused" } td { "by " (p.by) " at " (rfc3339(&p.at)) ": " (p.reason) } }
            }
            @if let Some(c) = &run.cancel {
                tr { th { "cancel" } td { "requested by " (c.by) " at " (rfc3339(&c.at)) ": " (c.reason) } }
            }
            @if let Some(e) = drover_view::stopped(run) {
                tr { th { "stopped" } td.error { (e.code) ": " (e.message) } }
            }
            @if let Some(o) = &run.policy_override {
                tr { th { "override" } td { "started by " (o["by"].as_str().unwrap_or("?")) " without some grants" } }
            }
        }
    }
}

/// The operator's controls that apply to the run as it stands.
fn controls(run: &RunRecord, approvals: &[Approval], csrf: &str) -> Markup {
    let action = |what: &str| format!("/console/runs/{}/{what}", percent(&run.run_id));
    let pending: Vec<&Approval> = approvals.iter().filter(|a| a.decision.is_none()).collect();
    html! {
        @if !pending.is_empty() && !run.status.is_final() {
            section.gates-pending {
                @for a in &pending {
                    @let failed = drover_engine::held::parse_failure_gate(&a.gate);
                    div.gate data-gate=(a.gate) {
                        @if let Some((step, _)) = failed {
                            h2 { "Step " code { (step) } " failed for good: waiting for an operator" }
                        } @else {
                            h2 { "Waiting for approval at gate " code { (a.gate) } }
                        }
                        p.question { (a.message) }
                        p.muted { "asked at " (rfc3339(&a.requested_at)) @if let Some(d) = a.deadline { ", decided by " (rfc3339(&d)) " at the latest" } }
                        @if let Some((step, _)) = failed {
                            form method="post" action=(action("redrive")) {
                                (hidden(csrf))
                                input type="text" name="reason" required placeholder="why retry (recorded)";
                                button.go type="submit" { "Retry the step" }
                            }
                            form method="post" action=(action("skip")) {
                                (hidden(csrf))
                                input type="hidden" name="step" value=(step);
                                input type="text" name="reason" required placeholder="why skip (recorded)";
                                button type="submit" { "Skip it" }
                            }
                            form method="post" action=(action("reject")) {
                                (hidden(csrf))
                                input type="hidden" name="gate" value=(a.gate);
                                input type="text" name="comment" placeholder="comment";
                                button.stop type="submit" { "Let it fail" }
                            }
                        } @else {
                            form method="post" action=(action("approve")) {
                                (hidden(csrf))
                                input type="hidden" name="gate" value=(a.gate);
                                input type="text" name="comment" placeholder="comment (recorded)";
                                button.go.approve type="submit" { "Approve" }
                            }
                            form method="post" action=(action("reject")) {
                                (hidden(csrf))
                                input type="hidden" name="gate" value=(a.gate);
                                input type="text" name="comment" placeholder="comment (recorded)";
                                button.stop.reject type="submit" { "Reject" }
                            }
                        }
                    }
                }
            }
        }
        section.controls {
            @if !run.status.is_final() {
                @if run.pause.is_some() {
                    form method="post" action=(action("unpause")) { (hidden(csrf)) input type="text" name="reason" required placeholder="why go on"; button.go type="submit" { "Unpause" } }
                } @else {
                    form method="post" action=(action("pause")) { (hidden(csrf)) input type="text" name="reason" required placeholder="why pause"; button type="submit" { "Pause" } }
                }
                @if run.cancel.is_none() {
                    form method="post" action=(action("cancel")) { (hidden(csrf)) input type="text" name="reason" required placeholder="why cancel"; button.stop type="submit" { "Cancel the run" } }
                }
            } @else if matches!(run.status, RunStatus::Failed | RunStatus::Cancelled) {
                form method="post" action=(action("redrive")) {
                    (hidden(csrf))
                    input type="text" name="reason" required placeholder="why redrive (recorded)";
                    input type="text" name="from" placeholder="from step (optional)";
                    button.go type="submit" { "Redrive" }
                }
            }
        }
    }
}

fn hidden(csrf: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(csrf); }
}

fn steps(entries: &[Entry]) -> Markup {
    let steps: Vec<&Entry> = entries.iter().filter(|e| e.kind == EntryKind::Step).collect();
    html! {
        h2 { "Steps" }
        table.steps {
            thead { tr { th { "step" } th { "status" } th { "attempts" } th { "started" } th { "took" } th { "error / next" } th { "idempotency key" } } }
            tbody {
                @for e in &steps {
                    tr data-step=(e.key.as_deref().unwrap_or("")) {
                        td { code { (e.key.as_deref().unwrap_or("?")) } }
                        td { span class=(format!("status {}", e.status.as_str())) { (e.status.as_str()) } }
                        td { (e.attempts) }
                        td { (rfc3339(&e.started_at)) }
                        td { (e.finished_at.map(|f| took(f - e.started_at)).unwrap_or_else(|| "…".into())) }
                        td {
                            @if let Some(h) = drover_engine::durable::held_of(e) { "waits for an operator at gate " code { (h.gate) } " until " (h.deadline) br; }
                            @if let Some(at) = e.next_attempt_at { "next attempt at " (rfc3339(&at)) br; }
                            @if let Some(err) = &e.error { span.error { (err.to_string()) } }
                        }
                        td.muted { (e.idempotency_key.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

fn gates(approvals: &[Approval]) -> Markup {
    let decided: Vec<&Approval> = approvals.iter().filter(|a| a.decision.is_some()).collect();
    html! {
        @if !decided.is_empty() {
            h2 { "Decisions" }
            table.decisions {
                thead { tr { th { "gate" } th { "question" } th { "decision" } th { "by" } th { "at" } th { "comment" } } }
                tbody {
                    @for a in &decided {
                        @if let Some(d) = &a.decision {
                            tr data-gate=(a.gate) { td { code { (a.gate) } } td { (a.message) } td { (d.verdict.as_str()) } td { (d.by) } td { (rfc3339(&d.at)) } td { (d.comment) } }
                        }
                    }
                }
            }
        }
    }
}

fn event_log(events: &[Event]) -> Markup {
    let shown = &events[events.len().saturating_sub(EVENTS_SHOWN)..];
    html! {
        h2 { "Events" }
        @if shown.len() < events.len() { p.muted { "The newest " (shown.len()) " of " (events.len()) " events; " code { "drover show RUN --json" } " has them all." } }
        table.events {
            thead { tr { th { "at" } th { "level" } th { "step" } th { "message" } th { "fields" } } }
            tbody {
                @for e in shown {
                    tr class=(format!("level-{}", e.level.as_str())) {
                        td { (rfc3339(&e.at)) }
                        td { (e.level.as_str()) }
                        td { (e.step.as_deref().unwrap_or("")) }
                        td.message { (e.message) }
                        td.muted { @for (k, v) in &e.fields { (k) "=" (v) " " } }
                    }
                }
            }
        }
    }
}

/// `GET /console/approvals`: the gates waiting for a decision, across runs.
pub async fn approvals(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let session = match page_session(&state, &headers, "/console/approvals") {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let table = match approvals_list(&state, &session).await {
        Ok(t) => t,
        Err(message) => return problem(StatusCode::SERVICE_UNAVAILABLE, "Cannot list approvals", &message),
    };
    page(layout(
        &state,
        &session,
        "Approvals",
        "approvals",
        html! { h1 { "Approvals waiting" } div #approvals data-live="/console/approvals/live" { (table) } },
    ))
}

/// The pending approvals (also what the approvals page's stream sends).
pub async fn approvals_list(state: &AppState, session: &Session) -> Result<Markup, String> {
    let journal = state.supervisor.journal();
    let pending = journal.approvals(None, true).await.map_err(|e| e.to_string())?;
    let csrf = state.console.keys.csrf(session);
    let mut out = Vec::new();
    for a in &pending {
        if let Ok(Some(run)) = journal.run(&a.run_id).await {
            out.push(html! {
                div.approval {
                    p { a href=(format!("/console/runs/{}", percent(&run.run_id))) { (run.run_id) } " · " (run.runbook.name) " · " (origin_text(run.origin.as_ref())) }
                    (controls(&run, std::slice::from_ref(a), &csrf))
                }
            });
        }
    }
    Ok(html! {
        @if out.is_empty() { p.empty { "Nothing waits for a decision." } }
        @for m in out { (m) }
    })
}

/// `GET /console/readiness`: the last readiness evaluation of each served runbook.
pub async fn readiness(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let session = match page_session(&state, &headers, "/console/readiness") {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let csrf = state.console.keys.csrf(&session);
    let last = state.readiness.last();
    let interval = state.readiness.interval();
    let body = html! {
        h1 { "Readiness" }
        p.muted {
            "Would a run succeed now? Each served runbook runs as a dry run that checks what it depends on; nothing is changed. "
            @match interval {
                Some(i) => { "Evaluated every " (i.as_secs()) " s and on demand." }
                None => { "Evaluated on demand (set " code { "[serve] readiness_interval_seconds" } " to evaluate on a schedule)." }
            }
        }
        @for name in state.supervisor.runbooks().keys() {
            section.readiness data-runbook=(name) {
                h2 { (name) }
                form method="post" action="/console/readiness" {
                    (hidden(&csrf))
                    input type="hidden" name="runbook" value=(name);
                    button type="submit" { "Evaluate now" }
                }
                @match last.get(name) {
                    None => p.muted { "Not evaluated yet." },
                    Some(Err(e)) => p.error { "The last evaluation could not run: " (e) },
                    Some(Ok(ev)) => (evaluation(ev)),
                }
            }
        }
    };
    page(layout(&state, &session, "Readiness", "readiness", body))
}

fn evaluation(ev: &Evaluation) -> Markup {
    html! {
        p {
            @if ev.ready { span.status.succeeded { "READY" } } @else { span.status.failed { "NOT READY" } }
            " " span.muted { (ev.version) " · evaluated " (rfc3339(&ev.at)) " in " (format!("{:.0}", ev.evaluated_ms)) " ms" }
        }
        table.findings {
            thead { tr { th {} th { "check" } th { "found" } th { "resource" } th { "fix" } } }
            tbody {
                @for f in &ev.findings {
                    tr.ok[f.ok] {
                        td { @if f.ok { "✔" } @else { "✘" } }
                        td { (f.check) }
                        td { (f.detail) }
                        td { (f.resource.as_deref().unwrap_or("")) }
                        td { @if !f.ok { (f.fix.as_deref().unwrap_or("")) } }
                    }
                }
            }
        }
        @if !ev.plan.is_empty() {
            details { summary { "What a run would change now (" (ev.plan.len()) ")" } ul { @for c in &ev.plan { li { (c) } } } }
        }
    }
}

/// `GET /console/drills`: each scheduled drill, its next slot, its last
/// result and the RTO it demonstrated, run after run.
pub async fn drills(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let session = match page_session(&state, &headers, "/console/drills") {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let journal = state.supervisor.journal();
    let mut sections = Vec::new();
    let runbooks: BTreeSet<&str> = state.drills.iter().map(|d| d.runbook.as_str()).collect();
    let mut runs: Vec<RunRecord> = Vec::new();
    for r in runbooks {
        match journal.runs(&RunFilter { runbook: Some(r.to_string()), limit: Some(500), ..Default::default() }).await {
            Ok(found) => runs.extend(found),
            Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, "Cannot list drills", &e.to_string()),
        }
    }
    for d in &state.drills {
        let mut mine: Vec<&RunRecord> =
            runs.iter().filter(|r| r.origin.as_ref().is_some_and(|o| o["kind"] == "drill" && o["name"] == d.name.as_str())).collect();
        mine.sort_by_key(|r| r.created_at);
        let next = crate::schedule::next_slot(&d.cron, Utc::now());
        let points: Vec<super::chart::Point> = mine
            .iter()
            .filter(|r| r.status.is_final())
            .map(|r| super::chart::Point {
                at: r.created_at,
                rto_seconds: r.result.as_ref().and_then(|v| v["rto_seconds"].as_f64()),
                passed: r.status == RunStatus::Succeeded,
            })
            .collect();
        let objective =
            mine.iter().rev().find_map(|r| r.result.as_ref().and_then(|v| v["rto_objective_seconds"].as_f64()).or_else(|| r.params["rto_seconds"].as_f64()));
        let last = mine.last();
        sections.push(html! {
            section.drill data-drill=(d.name) {
                h2 { (d.name) }
                table.facts {
                    tr { th { "runbook" } td { (d.runbook) } }
                    tr { th { "schedule" } td { code { (d.cron) } " (UTC)" @if let Some(n) = next { ", next at " (rfc3339(&n)) } } }
                    tr { th { "last result" } td {
                        @match last {
                            Some(r) => { a href=(format!("/console/runs/{}", percent(&r.run_id))) { (r.run_id) } " " (status_badge(r)) }
                            None => { "never run" }
                        }
                    } }
                    tr { th { "runs" } td { (mine.len()) " (" (mine.iter().filter(|r| r.status == RunStatus::Succeeded).count()) " passed)" } }
                }
                h3 { "Demonstrated RTO" }
                (PreEscaped(super::chart::rto_trend(&points, objective)))
            }
        });
    }
    let body = html! {
        h1 { "Drills" }
        @if sections.is_empty() { p.empty { "No drill is scheduled: add one under " code { "[[serve.drill]]" } "." } }
        @for s in sections { (s) }
    };
    page(layout(&state, &session, "Drills", "drills", body))
}
