//! The web console of `drover serve`, on the API's listener under
//! `/console`: what an incident commander opens at 3 a.m. instead of a CLI.
//!
//! Server-rendered HTML ([maud], which escapes everything it interpolates:
//! a runbook's `<script>` is text), progressive enhancement (every action is
//! a plain form post that works without JavaScript; one small static script
//! replaces the live parts of a page from server-sent events), no JS
//! toolchain to build or test. A strict Content-Security-Policy allows only
//! the console's own script and stylesheet.
//!
//! - [`session`]: login with the API token, the signed session cookie, the
//!   CSRF token of every form.
//! - [`pages`]: runs (filtered by status and runbook), a run (timeline,
//!   steps, gates, cleanups, events, RTO/RPO against objectives), pending
//!   approvals, readiness of each served runbook, drills with their RTO trend.
//! - [`actions`]: approve/reject, cancel, redrive/retry, skip, pause/unpause,
//!   evaluate readiness: the same operations as the API, recorded with the
//!   token's identity and the name given at login.
//! - [`live`]: the server-sent event streams that keep a page current.
//! - [`chart`]: the RTO trend of a drill, an inline SVG.

pub mod actions;
pub mod chart;
pub mod live;
pub mod pages;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;

use crate::api::AppState;
use session::{Keys, Session};

/// Most live streams open at once (each re-reads the store when a run moves).
pub const MAX_LIVE_STREAMS: usize = 64;

/// What the console keeps besides the API's state.
pub struct Console {
    /// Session and CSRF keys (derived from the API token).
    pub keys: Keys,
    /// Live streams open now (at most [`MAX_LIVE_STREAMS`]).
    pub streams: Arc<tokio::sync::Semaphore>,
    /// Turns true when the agent stops: live streams end, so the listener's
    /// graceful shutdown is not held open by them.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

impl Console {
    /// The console of an agent whose API token is `token`.
    pub fn new(token: &[u8], stopping: tokio::sync::watch::Receiver<bool>) -> Console {
        Console { keys: Keys::new(token), streams: Arc::new(tokio::sync::Semaphore::new(MAX_LIVE_STREAMS)), stopping }
    }
}

/// The console's routes (merged into the API's router).
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/runs") }))
        .route("/console/", get(|| async { Redirect::to("/console/runs") }))
        .route("/console/login", get(pages::login).post(actions::login))
        .route("/console/logout", post(actions::logout))
        .route("/console/runs", get(pages::runs))
        .route("/console/runs/live", get(live::runs))
        .route("/console/runs/{id}", get(pages::run))
        .route("/console/runs/{id}/live", get(live::run))
        .route("/console/runs/{id}/{action}", post(actions::control))
        .route("/console/approvals", get(pages::approvals))
        .route("/console/approvals/live", get(live::approvals))
        .route("/console/readiness", get(pages::readiness).post(actions::evaluate))
        .route("/console/drills", get(pages::drills))
        .route("/console/static/console.js", get(|| async { asset("text/javascript; charset=utf-8", include_str!("static/console.js")) }))
        .route("/console/static/console.css", get(|| async { asset("text/css; charset=utf-8", include_str!("static/console.css")) }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=300")], body).into_response();
    r.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

/// The headers every console page carries: nothing but the console's own
/// script and stylesheet may load, no framing, no caching of what a page
/// shows, no referrer leaking run ids.
pub fn secured(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The logged-in session of a request, if its cookie proves one.
pub fn session(state: &AppState, headers: &HeaderMap) -> Option<Session> {
    let cookies = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok());
    let value = session::cookie_of(cookies)?;
    state.console.keys.unseal(value, Utc::now().timestamp())
}

/// The session of a page request, or the redirect to the login page (which
/// comes back to `next` after logging in).
pub fn page_session(state: &AppState, headers: &HeaderMap, next: &str) -> Result<Session, Box<Response>> {
    session(state, headers).ok_or_else(|| {
        let next = if next.starts_with("/console/") && !next.starts_with("/console/login") { next } else { "/console/runs" };
        let mut r = Redirect::to(&format!("/console/login?next={}", percent(next))).into_response();
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Box::new(r)
    })
}

/// Who acts through the console: the API token's identity (the console
/// holds no credential of its own), with the name given at login as the
/// person's claim beside it.
pub fn identity(state: &AppState, session: &Session) -> String {
    match Some(session.name.trim()).filter(|n| !n.is_empty() && *n != state.api_identity) {
        Some(n) => format!("{} (console; claimed: {n})", state.api_identity),
        None => format!("{} (console)", state.api_identity),
    }
}

/// Whether the request came over HTTPS through a proxy that says so: the
/// session cookie is then `Secure`.
pub fn over_https(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// Percent-encodes a query value.
pub fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A page that says what went wrong and where to go from there.
pub fn problem(status: StatusCode, title: &str, message: &str) -> Response {
    secured((status, pages::problem_page(title, message)).into_response())
}
