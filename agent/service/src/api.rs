//! The HTTP API (JSON) and the trigger endpoints, on one listener:
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /v1/health` | none | the agent is up; runs it drives |
//! | `GET /metrics` | none | Prometheus metrics |
//! | `GET /v1/runs?status=S&runbook=R&limit=N` | API token | runs, newest first |
//! | `GET /v1/runs/{id}` | API token | one run with its journal entries |
//! | `GET /v1/approvals?all=true` | API token | approval gates waiting (or all) |
//! | `POST /v1/runs/{id}/approvals/{gate}` | API token | `{"approve": bool, "comment": "...", "by": "..."}` |
//! | `POST /v1/runs/{id}/cancel` | API token | `{"reason": "...", "by": "..."}` |
//! | `POST /v1/runs/{id}/redrive` | API token | `{"reason": "...", "by": "...", "from": "STEP"}`: a failed or cancelled run goes on (`drover redrive`) |
//! | `POST /v1/runs/{id}/skip` | API token | `{"step": "KEY", "reason": "...", "by": "..."}`: a step held after failing for good is skipped (its declared skip outcome), or an approval gate is passed (`drover skip`) |
//! | `POST /v1/runs/{id}/pause` | API token | `{"reason": "...", "by": "..."}`: the run stops at its next step boundary and waits |
//! | `POST /v1/runs/{id}/unpause` | API token | `{"reason": "...", "by": "..."}`: it goes on |
//! | `POST /v1/runs/{id}/unblock` | API token | `{"reason": "...", "by": "..."}`: a failed automatic run no longer holds its scope's triggers |
//! | `POST /v1/triggers/{name}` | the trigger's own | an incident: see `triggers.rs` |
//! | `/console/...` | session cookie (login with the API token) | the web console: see `console/` |
//!
//! Who decided or cancelled is who authenticated: the API token's name
//! (`[serve] api_token_name`, else a label of the token). A `"by"` in the
//! body is what the caller says of itself (e.g. the person behind a chat
//! bot) and is recorded as a claim beside it, never instead of it.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use drover_journal::{Approval, CancelRequest, Decision, Journal, JournalError, RunFilter, RunStatus, Verdict};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Verifier;
use crate::supervisor::{Redriven, Supervisor};
use crate::triggers::Triggers;

/// What every handler shares.
pub struct AppState {
    pub supervisor: Arc<Supervisor>,
    pub api_token: Verifier,
    /// Who holds the API token: recorded for every decision and cancel made with it.
    pub api_identity: String,
    pub triggers: Triggers,
    /// The web console's keys and live streams.
    pub console: crate::console::Console,
    /// The readiness of the served runbooks (the console shows it).
    pub readiness: Arc<crate::readiness::Readiness>,
    /// The scheduled drills (the console shows them).
    pub drills: Vec<crate::config::DrillConfig>,
}

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/runs", get(runs))
        .route("/v1/runs/{id}", get(run))
        .route("/v1/approvals", get(approvals))
        .route("/v1/runs/{id}/approvals/{gate}", post(decide))
        .route("/v1/runs/{id}/cancel", post(cancel))
        .route("/v1/runs/{id}/redrive", post(redrive))
        .route("/v1/runs/{id}/unblock", post(unblock))
        .route("/v1/runs/{id}/skip", post(skip))
        .route("/v1/runs/{id}/pause", post(pause))
        .route("/v1/runs/{id}/unpause", post(unpause))
        .route("/v1/triggers/{name}", post(crate::triggers::handle))
        .merge(crate::console::router())
        .with_state(state)
}

/// A JSON error: `{"error": "..."}` with a status.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

fn journal_error(e: JournalError) -> Response {
    error(journal_status(&e), e.to_string())
}

/// 404 for an unknown run or gate; 503 when the store failed.
pub(crate) fn journal_status(e: &JournalError) -> StatusCode {
    match e {
        JournalError::UnknownRun(_) | JournalError::UnknownGate { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A 401 that says why (never what the secret is) and how to authenticate.
pub fn unauthorized(message: impl Into<String>) -> Response {
    let mut resp = error(StatusCode::UNAUTHORIZED, message);
    resp.headers_mut().insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
    resp
}

/// Checks the API token: the 401 to answer when it is missing or wrong.
fn refused(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let r = state.api_token.check(header, b"", Utc::now().timestamp()).err()?;
    tracing::warn!(reason = %r, "API request refused");
    Some(unauthorized(format!("unauthorized: {r}")))
}

/// Who is acting through the API: the token's identity, with what the
/// caller says of itself (`claimed`, unverified) beside it.
fn caller(state: &AppState, claimed: Option<&str>) -> String {
    match claimed.map(str::trim).filter(|c| !c.is_empty() && *c != state.api_identity) {
        Some(c) => format!("{} (API; claimed: {c})", state.api_identity),
        None => format!("{} (API)", state.api_identity),
    }
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    Json(json!({"status": "ok", "driving": state.supervisor.driving()})).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let body = state.supervisor.metrics().encode();
    ([("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}

#[derive(Deserialize)]
struct RunsQuery {
    status: Option<String>,
    runbook: Option<String>,
    limit: Option<usize>,
}

async fn runs(State(state): State<Arc<AppState>>, headers: HeaderMap, Query(q): Query<RunsQuery>) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let status = match q.status.as_deref().map(RunStatus::parse) {
        Some(None) => return error(StatusCode::BAD_REQUEST, "status must be running, waiting, succeeded, failed or cancelled"),
        Some(s) => s,
        None => None,
    };
    let runbook = q.runbook.filter(|r| !r.is_empty());
    match state.supervisor.journal().runs(&RunFilter { status, runbook, limit: Some(q.limit.unwrap_or(100).min(1000)), ..Default::default() }).await {
        Ok(runs) => Json(json!({"runs": runs})).into_response(),
        Err(e) => journal_error(e),
    }
}

async fn run(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let journal = state.supervisor.journal();
    let run = match journal.run(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return journal_error(JournalError::UnknownRun(id)),
        Err(e) => return journal_error(e),
    };
    let (entries, approvals) = match (drover_engine::entries_with_branches(journal.as_ref(), &id).await, journal.approvals(Some(&id), false).await) {
        (Ok(e), Ok(a)) => (e, a),
        (Err(e), _) | (_, Err(e)) => return journal_error(e),
    };
    Json(json!({"run": run, "entries": entries, "approvals": approvals})).into_response()
}

#[derive(Deserialize)]
struct ApprovalsQuery {
    #[serde(default)]
    all: bool,
}

async fn approvals(State(state): State<Arc<AppState>>, headers: HeaderMap, Query(q): Query<ApprovalsQuery>) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    match state.supervisor.journal().approvals(None, !q.all).await {
        Ok(a) => Json(json!({"approvals": a})).into_response(),
        Err(e) => journal_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    approve: bool,
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    comment: String,
}

async fn decide(State(state): State<Arc<AppState>>, headers: HeaderMap, Path((id, gate)): Path<(String, String)>, body: axum::body::Bytes) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let body: DecideBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("expected {{\"approve\": true|false, \"comment\": \"why\"}}: {e}")),
    };
    let verdict = if body.approve { Verdict::Approved } else { Verdict::Rejected };
    match decide_gate(state.supervisor.journal().as_ref(), &id, &gate, verdict, caller(&state, body.by.as_deref()), body.comment).await {
        Ok((recorded, a)) => {
            let status = if recorded { StatusCode::OK } else { StatusCode::CONFLICT };
            (status, Json(json!({"recorded": recorded, "approval": a}))).into_response()
        }
        Err(e) => journal_error(e),
    }
}

/// Records `verdict` at `gate` of run `run_id` as `by`'s decision (the API's
/// and the console's): whether it was recorded (the first decision wins;
/// `false`: another was there) and the gate as it stands.
pub(crate) async fn decide_gate(
    journal: &dyn Journal,
    run_id: &str,
    gate: &str,
    verdict: Verdict,
    by: String,
    comment: String,
) -> Result<(bool, Approval), JournalError> {
    let ours = Decision { verdict, by, comment, at: Utc::now() };
    let a = journal.decide(run_id, gate, &ours).await?;
    let recorded = a.decision.as_ref() == Some(&ours);
    tracing::info!(run_id, gate, verdict = verdict.as_str(), by = %ours.by, recorded, "approval decision");
    Ok((recorded, a))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    reason: String,
}

async fn cancel(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let body: CancelBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("expected {{\"reason\": \"why\"}}: {e}")),
    };
    let req = CancelRequest { by: caller(&state, body.by.as_deref()), reason: body.reason, at: Utc::now() };
    match state.supervisor.journal().request_cancel(&id, &req).await {
        Ok(run) => (StatusCode::ACCEPTED, Json(json!({"run": run}))).into_response(),
        Err(e) => journal_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlBody {
    #[serde(default)]
    by: Option<String>,
    reason: String,
    #[serde(default)]
    from: Option<String>,
}

/// The body of a redrive or unblock (a reason is required), or why it is a 400.
fn control_body(body: &[u8], what: &str) -> Result<ControlBody, String> {
    let b: ControlBody = serde_json::from_slice(body).map_err(|e| format!("expected {{\"reason\": \"why\"}}: {e}"))?;
    if b.reason.trim().is_empty() {
        return Err(format!("\"reason\" is empty: say why the run is {what} (it is recorded with the run)"));
    }
    Ok(b)
}

/// A refusal of a control: 404 for an unknown run, 409 for a run the
/// control does not apply to (the message says why and what to do).
fn control_error(e: crate::ServiceError) -> Response {
    error(control_status(&e), e.to_string())
}

/// The status of a refused control (the API's and the console's).
pub(crate) fn control_status(e: &crate::ServiceError) -> StatusCode {
    match e {
        crate::ServiceError::Journal(j) | crate::ServiceError::Engine(drover_engine::EngineError::Journal(j)) => journal_status(j),
        crate::ServiceError::NotHeld { .. }
        | crate::ServiceError::Ended { .. }
        | crate::ServiceError::Refused { .. }
        | crate::ServiceError::Engine(drover_engine::EngineError::RedriveRefused { .. }) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn redrive(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let body = match control_body(&body, "redriven") {
        Ok(b) => b,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let by = caller(&state, body.by.as_deref());
    match state.supervisor.redrive_or_retry(&id, body.from, &by, &body.reason).await {
        Ok(Redriven::Retried(gate)) => (StatusCode::ACCEPTED, Json(json!({"run_id": id, "retried": gate}))).into_response(),
        Ok(Redriven::From(step)) => (StatusCode::ACCEPTED, Json(json!({"run_id": id, "from_step": step}))).into_response(),
        Err(e) => control_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SkipBody {
    step: String,
    #[serde(default)]
    by: Option<String>,
    reason: String,
}

async fn skip(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let body: SkipBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("expected {{\"step\": \"KEY\", \"reason\": \"why\"}}: {e}")),
    };
    if body.reason.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "\"reason\" is empty: say why the step is skipped (it is recorded with the run)");
    }
    let audit = state.supervisor.audit_log();
    match crate::held::skip(state.supervisor.journal().as_ref(), &audit, &id, &body.step, &caller(&state, body.by.as_deref()), &body.reason).await {
        Ok(d) => (StatusCode::ACCEPTED, Json(json!({"run_id": id, "skipped": d.gate, "failed_step": d.failure_gate}))).into_response(),
        Err(e) => control_error(e),
    }
}

async fn unblock(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let body = match control_body(&body, "unblocked") {
        Ok(b) => b,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    match crate::flapping::unblock(state.supervisor.journal().as_ref(), &id, &caller(&state, body.by.as_deref()), &body.reason).await {
        Ok(run) => Json(json!({"run_id": run.run_id, "unblocked": true, "scope": run.scope})).into_response(),
        Err(e) => control_error(e),
    }
}

async fn pause(state: State<Arc<AppState>>, headers: HeaderMap, id: Path<String>, body: axum::body::Bytes) -> Response {
    set_pause(state, headers, id, body, true).await
}

async fn unpause(state: State<Arc<AppState>>, headers: HeaderMap, id: Path<String>, body: axum::body::Bytes) -> Response {
    set_pause(state, headers, id, body, false).await
}

async fn set_pause(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>, body: axum::body::Bytes, on: bool) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let body = match control_body(&body, if on { "paused" } else { "unpaused" }) {
        Ok(b) => b,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let audit = state.supervisor.audit_log();
    match crate::pause::set(state.supervisor.journal().as_ref(), &audit, &id, on, &caller(&state, body.by.as_deref()), &body.reason).await {
        Ok(run) => (StatusCode::ACCEPTED, Json(json!({"run_id": run.run_id, "paused": run.pause.is_some(), "pause": run.pause}))).into_response(),
        Err(e) => control_error(e),
    }
}
