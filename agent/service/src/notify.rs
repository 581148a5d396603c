//! Notifications of results: `[[serve.notify]]` webhooks get a JSON POST
//! when a run waits for approval (the page an on-call person acts on), when
//! an operator controls a run this agent drives (pause, unpause, redrive),
//! and when a run ends. Signed like a generic trigger when the webhook has a
//! key (`X-Drover-Timestamp`, `X-Drover-Signature`), or with a bearer
//! token. Delivery is retried 3 times (1 s, then 2 s apart) with a 10 s
//! timeout each; a notification that still fails is logged and counted
//! (`drover_notifications_total{result="failed"}`), never retried across
//! restarts: the run itself is what is durable.

use std::time::Duration;

use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;

use crate::ServiceError;
use crate::metrics::Metrics;

/// `[[serve.notify]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Where to POST.
    pub url: String,
    /// Which events: `approval` (a run waits at a gate), `control` (an
    /// operator paused, unpaused or redrove a run), `ended` (a run ended).
    /// Default: all three.
    #[serde(default = "all_events")]
    pub events: Vec<String>,
    /// `Authorization: Bearer TOKEN` from this environment variable.
    pub bearer_env: Option<String>,
    /// HMAC-SHA256 signature with the key in this environment variable.
    pub hmac_sha256_env: Option<String>,
}

fn all_events() -> Vec<String> {
    vec!["approval".into(), "control".into(), "ended".into()]
}

impl NotifyConfig {
    /// Checks the URL and the events.
    pub fn validate(&self) -> Result<(), ServiceError> {
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return Err(ServiceError::Config(format!("notify url '{}' must be http:// or https://", self.url)));
        }
        if let Some(e) = self.events.iter().find(|e| !matches!(e.as_str(), "approval" | "control" | "ended")) {
            return Err(ServiceError::Config(format!("notify {}: event '{e}' is not approval, control or ended", self.url)));
        }
        if self.bearer_env.is_some() && self.hmac_sha256_env.is_some() {
            return Err(ServiceError::Config(format!("notify {}: set bearer_env or hmac_sha256_env, not both", self.url)));
        }
        Ok(())
    }
}

struct Target {
    config: NotifyConfig,
    bearer: Option<String>,
    key: Option<Vec<u8>>,
}

/// Sends notifications to every configured webhook.
pub struct Notifier {
    targets: Vec<Target>,
    client: reqwest::Client,
    metrics: std::sync::Arc<Metrics>,
}

fn env_secret(var: &str, url: &str) -> Result<String, ServiceError> {
    std::env::var(var).map_err(|_| ServiceError::Config(format!("notify {url}: environment variable {var} is not set")))
}

impl Notifier {
    /// The notifier of `configs`, reading their secrets from the environment.
    pub fn new(configs: &[NotifyConfig], metrics: std::sync::Arc<Metrics>) -> Result<Notifier, ServiceError> {
        let mut targets = Vec::new();
        for c in configs {
            c.validate()?;
            let bearer = c.bearer_env.as_deref().map(|v| env_secret(v, &c.url)).transpose()?;
            let key = c.hmac_sha256_env.as_deref().map(|v| env_secret(v, &c.url).map(String::into_bytes)).transpose()?;
            targets.push(Target { config: c.clone(), bearer, key });
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ServiceError::Config(format!("cannot build the notification client: {e}")))?;
        Ok(Notifier { targets, client, metrics })
    }

    /// Sends `body` (with `"event": event`) to every webhook that wants
    /// `kind`, in the background.
    pub fn send(&self, kind: &str, mut body: Value) {
        body["sent_at"] = Value::String(Utc::now().to_rfc3339());
        let payload = body.to_string().into_bytes();
        for t in self.targets.iter().filter(|t| t.config.events.iter().any(|e| e == kind)) {
            let mut req = self.client.post(&t.config.url).header("content-type", "application/json");
            if let Some(token) = &t.bearer {
                req = req.header("authorization", format!("Bearer {token}"));
            }
            if let Some(key) = &t.key {
                let ts = Utc::now().timestamp();
                req = req.header(crate::auth::TIMESTAMP_HEADER, ts.to_string()).header(crate::auth::SIGNATURE_HEADER, crate::auth::sign(key, ts, &payload));
            }
            let (req, url, metrics, payload) = (req, t.config.url.clone(), self.metrics.clone(), payload.clone());
            tokio::spawn(async move {
                for attempt in 1..=3u32 {
                    let Some(r) = req.try_clone() else { break };
                    match r.body(payload.clone()).send().await {
                        Ok(resp) if resp.status().is_success() => {
                            metrics.notification("sent");
                            return;
                        }
                        Ok(resp) => tracing::warn!(url = %url, status = resp.status().as_u16(), attempt, "notification refused"),
                        Err(e) => tracing::warn!(url = %url, error = %e, attempt, "notification failed"),
                    }
                    if attempt < 3 {
                        tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                    }
                }
                tracing::error!(url = %url, "notification not delivered after 3 attempts");
                metrics.notification("failed");
            });
        }
    }
}
