//! `POST /v1/triggers/{name}`: an incident starts a runbook.
//!
//! In order: the trigger must exist (404); the request must authenticate
//! (401, nothing runs); the payload must be what the trigger accepts (400);
//! firing alerts matching the trigger's labels each ask for a run of its
//! runbook in their scope; a scope already held by an unfinished run is
//! joined, so two alerts for one outage start one failover. The answer (202)
//! names each run and whether it was joined. A scope held by the
//! anti-flapping rules (`flapping.rs`) starts nothing: the answer names the
//! run that holds it, until when, and what to do. A delivery received before (a
//! replay, or the sender's retry) starts nothing: 200 with `"duplicate":
//! true` and the runs the first one started (see `replay.rs`).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};

use crate::ServiceError;
use crate::alerts::{self, Alert};
use crate::api::{AppState, error, unauthorized};
use crate::auth::Verifier;
use crate::config::{TriggerConfig, TriggerKind, params_text};
use crate::replay::{self, Claim, Seen};
use crate::supervisor::{Admission, Start};

/// Confirms an SNS subscription: `(topic ARN, token)`. Done with the SNS
/// API (`ConfirmSubscription`), never by fetching a URL from the request.
pub type SnsConfirm = Arc<dyn Fn(String, String) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// A configured trigger with its secret.
pub struct Trigger {
    pub config: TriggerConfig,
    verifier: Verifier,
}

/// Every trigger, by name.
pub struct Triggers {
    by_name: BTreeMap<String, Trigger>,
    sns_confirm: Option<SnsConfirm>,
    seen: Seen,
}

impl Triggers {
    /// The triggers of `configs`, reading their secrets from the environment.
    pub fn new(configs: &[TriggerConfig], sns_confirm: Option<SnsConfirm>) -> Result<Self, ServiceError> {
        let mut by_name = BTreeMap::new();
        for c in configs {
            let verifier = Verifier::from_config(&c.auth, &format!("trigger '{}'", c.name))?;
            by_name.insert(c.name.clone(), Trigger { config: c.clone(), verifier });
        }
        Ok(Triggers { by_name, sns_confirm, seen: Seen::new() })
    }
}

/// The alerts a request carries, or the answer it gets right away.
enum Parsed {
    Alerts(Vec<Alert>),
    Answered(Response),
}

pub async fn handle(State(state): State<Arc<AppState>>, Path(name): Path<String>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let metrics = state.supervisor.metrics().clone();
    let Some(trigger) = state.triggers.by_name.get(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no trigger named '{name}' is configured"));
    };
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if let Err(r) = trigger.verifier.check(header, &body, Utc::now().timestamp()) {
        tracing::warn!(trigger = %name, reason = %r, "trigger request refused: not authenticated");
        metrics.trigger(&name, "unauthorized");
        return unauthorized(format!("unauthorized: {r}; nothing was started"));
    }
    let parsed = match trigger.config.kind {
        TriggerKind::Alertmanager => alerts::alertmanager(&body).map(Parsed::Alerts),
        TriggerKind::Generic => alerts::generic(&body).map(Parsed::Alerts),
        TriggerKind::Sns => sns(&state, trigger, &headers, &body).await,
    };
    let found = match parsed {
        Ok(Parsed::Alerts(a)) => a,
        Ok(Parsed::Answered(r)) => return r,
        Err(m) => {
            tracing::warn!(trigger = %name, error = %m, "malformed trigger request");
            metrics.trigger(&name, "malformed");
            return error(StatusCode::BAD_REQUEST, format!("{m}; nothing was started"));
        }
    };
    let total = found.len();
    let matching: Vec<Alert> = found.into_iter().filter(|a| a.firing && a.matches(&trigger.config.matchers)).collect();
    if matching.is_empty() {
        metrics.trigger(&name, "ignored");
        return (StatusCode::OK, Json(json!({"runs": [], "ignored": total, "reason": "no firing alert matches the trigger"}))).into_response();
    }
    let deliveries = replay::delivery_keys(&trigger.config, &headers, &body);
    let now = Utc::now().timestamp();
    if let Claim::Duplicate { first_seen, runs } = state.triggers.seen.claim(&deliveries, now) {
        tracing::warn!(trigger = %name, first_seen, "duplicate trigger delivery ignored: nothing was started");
        metrics.trigger(&name, "duplicate");
        let reason = format!(
            "this delivery was already received {} s ago{}; nothing was started (a replay, or a retry of a delivery that was served)",
            now.saturating_sub(first_seen),
            if runs.is_none() { " and is still being handled" } else { "" }
        );
        return (StatusCode::OK, Json(json!({"duplicate": true, "runs": runs.unwrap_or_else(|| json!([])), "reason": reason}))).into_response();
    }
    let traceparent = header("traceparent").map(str::to_string);
    // One run per scope: the first matching alert of each scope gives the parameters.
    let mut by_scope: BTreeMap<String, Vec<Alert>> = BTreeMap::new();
    for a in matching {
        by_scope.entry(trigger.config.scope_for(&a.labels)).or_default().push(a);
    }
    let mut runs = Vec::new();
    let mut held = Vec::new();
    for (scope, alerts) in by_scope {
        match crate::flapping::check(state.supervisor.journal().as_ref(), &trigger.config.runbook, &scope, trigger.config.flapping(), Utc::now()).await {
            Ok(None) => {}
            Ok(Some(h)) => {
                tracing::warn!(trigger = %name, scope = %scope, held_by = %h.run_id, "trigger held (anti-flapping): {}", h.reason);
                metrics.trigger(&name, "held");
                held.push(json!({"scope": scope, "held_by": h.run_id, "until": h.until.as_ref().map(drover_journal::rfc3339), "reason": h.reason}));
                continue;
            }
            Err(e) => {
                tracing::error!(trigger = %name, scope = %scope, error = %e, "trigger could not read the run store");
                metrics.trigger(&name, "refused");
                state.triggers.seen.release(&deliveries);
                return error(StatusCode::SERVICE_UNAVAILABLE, format!("trigger '{name}' could not read the run store: {e}; nothing was started, retry"));
            }
        }
        match start(&state, trigger, &scope, &alerts, traceparent.clone()).await {
            Ok(admission) => {
                let joined = matches!(admission, Admission::Joined(_));
                metrics.trigger(&name, if joined { "joined" } else { "started" });
                runs.push(json!({"run_id": admission.run_id(), "joined": joined, "scope": scope}));
            }
            Err(e) => {
                tracing::error!(trigger = %name, scope = %scope, error = %e, "trigger could not start its runbook");
                metrics.trigger(&name, "refused");
                // The sender retries a failed delivery: serve the retry (the
                // scopes this one did start are joined while their runs last).
                state.triggers.seen.release(&deliveries);
                let status = if matches!(e, ServiceError::Engine(_)) { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::INTERNAL_SERVER_ERROR };
                return error(status, format!("trigger '{name}' could not start runbook '{}': {e}", trigger.config.runbook));
            }
        }
    }
    state.triggers.seen.finish(&deliveries, &json!(runs));
    if held.is_empty() {
        return (StatusCode::ACCEPTED, Json(json!({"runs": runs}))).into_response();
    }
    // Decided, not failed: a 2xx, so the sender does not retry into the hold.
    let status = if runs.is_empty() { StatusCode::OK } else { StatusCode::ACCEPTED };
    (status, Json(json!({"runs": runs, "held": held}))).into_response()
}

async fn start(state: &AppState, trigger: &Trigger, scope: &str, alerts: &[Alert], traceparent: Option<String>) -> Result<Admission, ServiceError> {
    let c = &trigger.config;
    let first = &alerts[0];
    let mut params = params_text(&c.params);
    for (param, label) in &c.params_from_labels {
        let value = first
            .labels
            .get(label)
            .ok_or_else(|| ServiceError::Config(format!("trigger '{}': the alert has no label '{label}', which parameter '{param}' is taken from", c.name)))?;
        params.retain(|(k, _)| k != param);
        params.push((param.clone(), value.clone()));
    }
    let now = Utc::now();
    let run_id = format!("{}-{}-{:08x}", c.name, now.format("%Y%m%dT%H%M%SZ"), rand_u32());
    let origin = json!({
        "kind": "trigger",
        "name": c.name,
        "source": format!("{:?}", c.kind).to_lowercase(),
        "unattended": c.unattended,
        "alerts": alerts.iter().map(Alert::to_json).collect::<Vec<Value>>(),
        "traceparent": traceparent,
        "received_at": now,
    });
    state.supervisor.start(Start { runbook: c.runbook.clone(), params, run_id, origin, scope: Some(scope.to_string()) }).await
}

fn rand_u32() -> u32 {
    let id = uuid::Uuid::now_v7();
    let b = id.as_bytes();
    u32::from_be_bytes([b[12], b[13], b[14], b[15]])
}

/// An SNS delivery: the confirmation handshake, or a notification whose
/// message is a CloudWatch alarm.
async fn sns(state: &AppState, trigger: &Trigger, headers: &HeaderMap, body: &[u8]) -> Result<Parsed, alerts::Malformed> {
    let name = &trigger.config.name;
    let envelope: Value = serde_json::from_slice(body).map_err(|e| alerts::Malformed(format!("not an SNS message (JSON): {e}")))?;
    let kind = headers.get("x-amz-sns-message-type").and_then(|v| v.to_str().ok()).or_else(|| envelope["Type"].as_str()).unwrap_or("").to_string();
    let topic = envelope["TopicArn"].as_str().unwrap_or("");
    if Some(topic) != trigger.config.topic_arn.as_deref() {
        state.supervisor.metrics().trigger(name, "wrong-topic");
        tracing::warn!(trigger = %name, topic, "SNS message from another topic refused");
        return Ok(Parsed::Answered(error(StatusCode::FORBIDDEN, format!("topic '{topic}' is not this trigger's topic; nothing was started"))));
    }
    match kind.as_str() {
        "SubscriptionConfirmation" => {
            let token = envelope["Token"].as_str().ok_or_else(|| alerts::Malformed("SubscriptionConfirmation without Token".into()))?;
            let Some(confirm) = &state.triggers.sns_confirm else {
                return Ok(Parsed::Answered(error(StatusCode::SERVICE_UNAVAILABLE, "this agent cannot confirm SNS subscriptions")));
            };
            match confirm(topic.to_string(), token.to_string()).await {
                Ok(()) => {
                    tracing::info!(trigger = %name, topic, "SNS subscription confirmed");
                    state.supervisor.metrics().trigger(name, "confirmed");
                    Ok(Parsed::Answered((StatusCode::OK, Json(json!({"confirmed": true}))).into_response()))
                }
                Err(e) => {
                    tracing::error!(trigger = %name, topic, error = %e, "SNS subscription could not be confirmed");
                    Ok(Parsed::Answered(error(StatusCode::BAD_GATEWAY, format!("confirming the subscription to {topic} failed: {e}"))))
                }
            }
        }
        "UnsubscribeConfirmation" => Ok(Parsed::Answered((StatusCode::OK, Json(json!({"runs": []}))).into_response())),
        "Notification" => {
            let message = envelope["Message"].as_str().ok_or_else(|| alerts::Malformed("SNS Notification without Message".into()))?;
            Ok(Parsed::Alerts(vec![alerts::cloudwatch_alarm(message)?]))
        }
        other => Err(alerts::Malformed(format!("SNS message type '{other}' is not SubscriptionConfirmation, Notification or UnsubscribeConfirmation"))),
    }
}
