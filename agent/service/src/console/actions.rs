//! What a form of the console does. Every post but the login needs the
//! session cookie and the session's CSRF token (403 otherwise, nothing
//! done); each control is the API's own operation, recorded as done by the
//! API token's identity with the name given at login as a claim
//! ([`super::identity`]). Then Post/Redirect/Get back to the run.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use drover_journal::{CancelRequest, Verdict};

use super::session::{CSRF_FIELD, Session, clear_cookie, set_cookie};
use super::{identity, over_https, percent, problem, secured, session};
use crate::api::{AppState, control_status, decide_gate, journal_status};
use crate::supervisor::Redriven;

type Fields = BTreeMap<String, String>;

fn field<'a>(f: &'a Fields, name: &str) -> &'a str {
    f.get(name).map(|s| s.trim()).unwrap_or("")
}

/// The session of a form post whose CSRF token matches it, or the refusal.
fn checked(state: &AppState, headers: &HeaderMap, f: &Fields) -> Result<Session, Box<Response>> {
    let Some(s) = session(state, headers) else {
        return Err(Box::new(problem(StatusCode::UNAUTHORIZED, "Not logged in", "Log in to the console first (/console/login); nothing was done.")));
    };
    if !state.console.keys.csrf_ok(&s, field(f, CSRF_FIELD)) {
        tracing::warn!("console form refused: missing or wrong CSRF token");
        return Err(Box::new(problem(
            StatusCode::FORBIDDEN,
            "Refused",
            "The form carried no valid CSRF token (it did not come from a console page of this session); nothing was done. Reload the page and try again.",
        )));
    }
    Ok(s)
}

/// `POST /console/login`: checks the API token, then sets the session cookie.
pub async fn login(State(state): State<Arc<AppState>>, headers: HeaderMap, Form(f): Form<Fields>) -> Response {
    let next = match field(&f, "next") {
        n if n.starts_with("/console/") && !n.starts_with("/console/login") && !n.contains("//") => n.to_string(),
        _ => "/console/runs".to_string(),
    };
    let token = field(&f, "token");
    let bearer = format!("Bearer {token}");
    let presented = |name: &str| (name == "authorization").then_some(bearer.as_str());
    if let Err(why) = state.api_token.check(presented, b"", Utc::now().timestamp()) {
        tracing::warn!(reason = %why, "console login refused");
        let page = super::pages::login_page(&next, Some("That is not the agent's API token. Nothing was logged in."));
        return secured((StatusCode::UNAUTHORIZED, page).into_response());
    }
    let s = state.console.keys.open(field(&f, "name"));
    tracing::info!(name = %s.name, "console login");
    let mut r = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(&state.console.keys.seal(&s), over_https(&headers))) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    secured(r)
}

/// `POST /console/logout`: forgets the session in this browser.
pub async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap, Form(f): Form<Fields>) -> Response {
    if let Err(r) = checked(&state, &headers, &f) {
        return *r;
    }
    let mut r = Redirect::to("/console/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&clear_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    secured(r)
}

/// `POST /console/runs/{id}/{action}`: approve, reject, cancel, redrive,
/// skip, pause, unpause.
pub async fn control(State(state): State<Arc<AppState>>, headers: HeaderMap, Path((id, action)): Path<(String, String)>, Form(f): Form<Fields>) -> Response {
    let s = match checked(&state, &headers, &f) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let by = identity(&state, &s);
    let reason = field(&f, "reason").to_string();
    let needs_reason = matches!(action.as_str(), "cancel" | "redrive" | "skip" | "pause" | "unpause");
    if needs_reason && reason.is_empty() {
        return problem(
            StatusCode::BAD_REQUEST,
            "A reason is needed",
            &format!("Say why ({action} is recorded with the run and its reason); nothing was done."),
        );
    }
    let sup = &state.supervisor;
    let journal = sup.journal();
    let audit = sup.audit_log();
    let done: Result<String, (StatusCode, String)> = match action.as_str() {
        "approve" | "reject" => {
            let verdict = if action == "approve" { Verdict::Approved } else { Verdict::Rejected };
            let gate = field(&f, "gate");
            match decide_gate(journal.as_ref(), &id, gate, verdict, by.clone(), field(&f, "comment").to_string()).await {
                Ok((true, _)) => Ok(format!("{action}d gate {gate}")),
                Ok((false, a)) => Err((
                    StatusCode::CONFLICT,
                    format!(
                        "gate '{gate}' was already decided: {} by {}",
                        a.decision.as_ref().map(|d| d.verdict.as_str()).unwrap_or("?"),
                        a.decision.as_ref().map(|d| d.by.as_str()).unwrap_or("?")
                    ),
                )),
                Err(e) => Err((journal_status(&e), e.to_string())),
            }
        }
        "cancel" => match journal.request_cancel(&id, &CancelRequest { by: by.clone(), reason, at: Utc::now() }).await {
            Ok(_) => Ok("cancel requested".into()),
            Err(e) => Err((journal_status(&e), e.to_string())),
        },
        "redrive" => {
            let from = Some(field(&f, "from").to_string()).filter(|s| !s.is_empty());
            match sup.redrive_or_retry(&id, from, &by, &reason).await {
                Ok(Redriven::Retried(g)) => Ok(format!("retrying the step held at {}", g.gate)),
                Ok(Redriven::From(step)) => Ok(format!("redriven from {}", step.as_deref().unwrap_or("its start"))),
                Err(e) => Err((control_status(&e), e.to_string())),
            }
        }
        "skip" => match crate::held::skip(journal.as_ref(), &audit, &id, field(&f, "step"), &by, &reason).await {
            Ok(d) => Ok(format!("skipped at {}", d.gate.gate)),
            Err(e) => Err((control_status(&e), e.to_string())),
        },
        "pause" | "unpause" => match crate::pause::set(journal.as_ref(), &audit, &id, action == "pause", &by, &reason).await {
            Ok(_) => Ok(format!("{action}d")),
            Err(e) => Err((control_status(&e), e.to_string())),
        },
        other => Err((StatusCode::NOT_FOUND, format!("the console has no control '{other}'"))),
    };
    match done {
        Ok(what) => {
            tracing::info!(run_id = %id, action = %action, by = %by, "console: {what}");
            secured(Redirect::to(&format!("/console/runs/{}", percent(&id))).into_response())
        }
        Err((status, message)) => problem(status, &format!("Cannot {action} run {id}"), &message),
    }
}

/// `POST /console/readiness`: evaluates one served runbook now.
pub async fn evaluate(State(state): State<Arc<AppState>>, headers: HeaderMap, Form(f): Form<Fields>) -> Response {
    if let Err(r) = checked(&state, &headers, &f) {
        return *r;
    }
    let name = field(&f, "runbook");
    if !state.readiness.evaluate(name).await {
        return problem(StatusCode::NOT_FOUND, "Unknown runbook", &format!("this agent serves no runbook '{name}'"));
    }
    secured(Redirect::to("/console/readiness").into_response())
}
