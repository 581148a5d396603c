//! The live parts of the console's pages: a server-sent event stream per
//! page sends the part again (event `update`, its HTML as data) whenever it
//! changed. The part is rendered again when any run this agent drives
//! moves (the supervisor's wake-up) and every two seconds (a run driven by
//! another agent on a shared store, a clock that moved on). Streams end
//! when the agent stops, so they never hold up its shutdown; at most
//! [`super::MAX_LIVE_STREAMS`] are open at once.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;

use super::pages::{self, RunsQuery};
use super::{problem, session};
use crate::api::AppState;

/// How often a part is rendered again when nothing woke it.
const TICK: Duration = Duration::from_secs(2);

/// `GET /console/runs/live`: the runs table.
pub async fn runs(State(state): State<Arc<AppState>>, headers: HeaderMap, Query(q): Query<RunsQuery>) -> Response {
    if session(&state, &headers).is_none() {
        return problem(StatusCode::UNAUTHORIZED, "Not logged in", "Log in to the console first.");
    }
    let q = Arc::new(q);
    let st = state.clone();
    stream(&state, move || {
        let (st, q) = (st.clone(), q.clone());
        async move { pages::runs_table(&st, &q).await.ok().map(|m| m.into_string()) }
    })
}

/// `GET /console/runs/{id}/live`: a run's page below its title.
pub async fn run(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(s) = session(&state, &headers) else {
        return problem(StatusCode::UNAUTHORIZED, "Not logged in", "Log in to the console first.");
    };
    let st = state.clone();
    stream(&state, move || {
        let (st, s, id) = (st.clone(), s.clone(), id.clone());
        async move { pages::run_detail(&st, &s, &id).await.ok().map(|m| m.into_string()) }
    })
}

/// `GET /console/approvals/live`: the approvals waiting.
pub async fn approvals(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(s) = session(&state, &headers) else {
        return problem(StatusCode::UNAUTHORIZED, "Not logged in", "Log in to the console first.");
    };
    let st = state.clone();
    stream(&state, move || {
        let (st, s) = (st.clone(), s.clone());
        async move { pages::approvals_list(&st, &s).await.ok().map(|m| m.into_string()) }
    })
}

struct Live<F> {
    render: F,
    last: Option<String>,
    wake: Option<tokio::sync::broadcast::Receiver<String>>,
    stopping: tokio::sync::watch::Receiver<bool>,
    first: bool,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// The stream of a part `render` draws (`None`: it cannot be drawn now;
/// nothing is sent).
fn stream<F, Fut>(state: &AppState, render: F) -> Response
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<String>> + Send + 'static,
{
    let Ok(permit) = state.console.streams.clone().try_acquire_owned() else {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "Too many live pages", "This agent keeps too many live pages open; reload this one later.");
    };
    let live = Live { render, last: None, wake: Some(state.supervisor.subscribe()), stopping: state.console.stopping.clone(), first: true, _permit: permit };
    let events = futures_util::stream::unfold(live, |mut s| async move {
        loop {
            if *s.stopping.borrow() {
                return None;
            }
            if !s.first {
                let woken = async {
                    match s.wake.as_mut() {
                        Some(rx) => match rx.recv().await {
                            Ok(_) | Err(RecvError::Lagged(_)) => true,
                            Err(RecvError::Closed) => false,
                        },
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    alive = woken => if !alive { s.wake = None },
                    _ = tokio::time::sleep(TICK) => {}
                    _ = s.stopping.changed() => {}
                }
                if *s.stopping.borrow() {
                    return None;
                }
            }
            s.first = false;
            if let Some(html) = (s.render)().await
                && s.last.as_ref() != Some(&html)
            {
                s.last = Some(html.clone());
                return Some((Ok::<_, Infallible>(Event::default().event("update").data(html)), s));
            }
        }
    });
    super::secured(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}
