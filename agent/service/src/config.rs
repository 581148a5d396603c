//! `[serve]` in the agent's configuration: where the agent listens, the
//! runbooks it serves, the drills it runs on schedules and the incident
//! triggers it answers. `docs/drover.toml` has a complete, commented example.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;

use crate::ServiceError;

/// `[serve]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Address of the HTTP API and the trigger endpoints.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The environment variable holding the bearer token of the HTTP API
    /// (runs, approvals, cancel). Health and metrics need no token.
    pub api_token_env: String,
    /// Who holds the API token (e.g. "oncall-chatops"): the identity
    /// recorded for approvals and cancels made through the API. Default:
    /// `token:` and the first 8 hex digits of the token's SHA-256.
    pub api_token_name: Option<String>,
    /// How long a stopping agent (SIGTERM) waits for steps in flight.
    #[serde(default = "default_grace")]
    pub shutdown_grace_seconds: u64,
    /// The runbook components the agent serves.
    #[serde(default, rename = "runbook")]
    pub runbooks: Vec<RunbookEntry>,
    /// Drills on schedules.
    #[serde(default, rename = "drill")]
    pub drills: Vec<DrillConfig>,
    /// Incident triggers.
    #[serde(default, rename = "trigger")]
    pub triggers: Vec<TriggerConfig>,
    /// Webhooks told when a run waits for approval and when it ends.
    #[serde(default, rename = "notify")]
    pub notify: Vec<crate::notify::NotifyConfig>,
    /// How often the readiness of every served runbook is evaluated (a dry
    /// run that changes nothing; shown by the console's readiness page).
    /// 0 (the default): only when asked from the console.
    #[serde(default)]
    pub readiness_interval_seconds: u64,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7878))
}

fn default_grace() -> u64 {
    30
}

/// `[[serve.runbook]]`: a component; drills and triggers name it by the
/// name its `describe()` gives (the name its grants are under).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunbookEntry {
    /// The component (.wasm), relative to the configuration file; or an OCI
    /// reference (`REGISTRY/REPO@sha256:...`, or a tag, pinned to its digest
    /// when the agent starts).
    pub path: PathBuf,
}

/// `[[serve.drill]]`: a runbook run on a cron schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillConfig {
    /// Unique name; runs are named `drill-NAME-YYYYMMDDTHHMMSSZ`.
    pub name: String,
    /// The runbook's name.
    pub runbook: String,
    /// When, in UTC: `sec min hour day-of-month month day-of-week [year]`.
    pub cron: String,
    /// Parameters of every run.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    /// Approval gates are approved by the agent (recorded as such). Default
    /// true: a scheduled drill has nobody to ask.
    #[serde(default = "yes")]
    pub unattended: bool,
    /// The scope a run holds (see [`TriggerConfig::scope`]).
    pub scope: Option<String>,
}

fn yes() -> bool {
    true
}

/// Where an incident comes from: the payload shape a trigger accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerKind {
    /// Prometheus Alertmanager's webhook (`webhook_configs`).
    Alertmanager,
    /// A CloudWatch alarm notification delivered by an SNS HTTP(S)
    /// subscription (with its confirmation handshake).
    Sns,
    /// Any JSON: `{"labels": {...}}`.
    Generic,
}

/// `auth = { ... }` of a trigger: exactly one of the two.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `Authorization: Bearer TOKEN` (or HTTP Basic with TOKEN as the
    /// password, which is what an SNS subscription URL with credentials
    /// sends): the environment variable holding TOKEN.
    pub bearer_env: Option<String>,
    /// `X-Drover-Signature: sha256=HEX`, an HMAC-SHA256 of
    /// `TIMESTAMP.BODY` with `X-Drover-Timestamp: TIMESTAMP` (Unix seconds,
    /// within 5 minutes): the environment variable holding the key.
    pub hmac_sha256_env: Option<String>,
}

/// `[[serve.trigger]]`: alerts that start a runbook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerConfig {
    /// Unique name; the endpoint is `POST /v1/triggers/NAME`.
    pub name: String,
    /// The payload it accepts.
    pub kind: TriggerKind,
    /// How a request proves it comes from the alert source.
    pub auth: AuthConfig,
    /// Labels every matching alert has (Alertmanager and generic: the
    /// alert's labels; SNS: `AlarmName`, `NewStateValue`, `Region`,
    /// `AWSAccountId` of the alarm). Empty: every alert matches.
    #[serde(default, rename = "match")]
    pub matchers: BTreeMap<String, String>,
    /// SNS only: the topic notifications must come from (its ARN).
    pub topic_arn: Option<String>,
    /// The runbook's name.
    pub runbook: String,
    /// Parameters of the run.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    /// Parameters taken from the first matching alert: parameter name to
    /// label name.
    #[serde(default)]
    pub params_from_labels: BTreeMap<String, String>,
    /// The scope a run holds, `{label}` replaced by the alert's label: while
    /// it runs, alerts for the same scope join it instead of starting a
    /// second run. Default: the trigger's name.
    pub scope: Option<String>,
    /// Approval gates are approved by the agent. Default false: an incident
    /// failover asks a person at each gate.
    #[serde(default)]
    pub unattended: bool,
    /// Anti-flapping: the least time, in seconds, between the starts of two
    /// runs this runbook's triggers start in one scope. Default 0 (none).
    #[serde(default)]
    pub min_interval_seconds: u64,
    /// Anti-flapping: after a run a trigger started has failed, start no
    /// other in its scope until an operator clears the hold (`drover
    /// unblock RUN`). Default true.
    #[serde(default = "yes")]
    pub hold_after_failure: bool,
}

impl TriggerConfig {
    /// The anti-flapping rules of the trigger.
    pub fn flapping(&self) -> crate::flapping::Rules {
        crate::flapping::Rules {
            min_interval: chrono::Duration::seconds(i64::try_from(self.min_interval_seconds).unwrap_or(i64::MAX / 1000)),
            hold_after_failure: self.hold_after_failure,
        }
    }

    /// The scope of a run for an alert with `labels`: each `{label}` of the
    /// template replaced, in one pass, by that label's value (a value is
    /// never read as a template, so a label holding `{app}` cannot move the
    /// alert into another scope); a `{name}` the alert has no label for stays.
    pub fn scope_for(&self, labels: &BTreeMap<String, String>) -> String {
        let template = self.scope.clone().unwrap_or_else(|| format!("trigger:{}", self.name));
        let mut out = String::with_capacity(template.len());
        let mut rest = template.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else { break };
            out.push_str(&rest[..open]);
            let placeholder = &rest[open..open + close + 1];
            match labels.get(&placeholder[1..placeholder.len() - 1]) {
                Some(v) => out.push_str(v),
                None => out.push_str(placeholder),
            }
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// A configuration value as the text `--param NAME=VALUE` would give.
pub fn param_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A drill's or trigger's `params` as `--param` pairs.
pub fn params_text(params: &BTreeMap<String, toml::Value>) -> Vec<(String, String)> {
    params.iter().map(|(k, v)| (k.clone(), param_text(v))).collect()
}

fn check_name(what: &str, name: &str) -> Result<(), ServiceError> {
    let ok = !name.is_empty() && name.len() <= 32 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok { Ok(()) } else { Err(ServiceError::Config(format!("{what} name '{name}' must be 1 to 32 of [A-Za-z0-9_-] (it is used in URLs and run ids)"))) }
}

impl ServeConfig {
    /// Checks what can be checked before the runbooks are loaded: names,
    /// schedules, authentication. Secrets are read from the environment
    /// later ([`crate::auth::Verifier::from_config`]).
    pub fn validate(&self) -> Result<(), ServiceError> {
        if self.api_token_env.trim().is_empty() {
            return Err(ServiceError::Config("[serve] api_token_env must name an environment variable".into()));
        }
        let mut names = std::collections::BTreeSet::new();
        for d in &self.drills {
            check_name("drill", &d.name)?;
            if !names.insert(format!("drill:{}", d.name)) {
                return Err(ServiceError::Config(format!("two drills are named '{}'", d.name)));
            }
            cron::Schedule::from_str(&d.cron).map_err(|e| {
                ServiceError::Config(format!(
                    "drill '{}': cron '{}' is not a schedule ({e}); write `sec min hour day-of-month month day-of-week`, e.g. \"0 0 3 * * Mon\"",
                    d.name, d.cron
                ))
            })?;
        }
        for n in &self.notify {
            n.validate()?;
        }
        for t in &self.triggers {
            check_name("trigger", &t.name)?;
            if !names.insert(format!("trigger:{}", t.name)) {
                return Err(ServiceError::Config(format!("two triggers are named '{}'", t.name)));
            }
            match (&t.auth.bearer_env, &t.auth.hmac_sha256_env) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err(ServiceError::Config(format!(
                        "trigger '{}': auth must set exactly one of bearer_env or hmac_sha256_env (unauthenticated triggers are refused)",
                        t.name
                    )));
                }
            }
            if t.kind == TriggerKind::Sns && t.topic_arn.is_none() {
                return Err(ServiceError::Config(format!(
                    "trigger '{}': an sns trigger needs topic_arn, so that notifications from other topics are refused",
                    t.name
                )));
            }
            if t.kind == TriggerKind::Alertmanager && t.auth.hmac_sha256_env.is_some() {
                return Err(ServiceError::Config(format!(
                    "trigger '{}': Alertmanager cannot sign requests; use bearer_env (http_config.authorization in Alertmanager)",
                    t.name
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServeConfig, String> {
        let c: ServeConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    const BASE: &str = "api_token_env = \"T\"\n";

    #[test]
    fn mistakes_are_named() {
        let e = parse(&format!("{BASE}[[drill]]\nname = \"n\"\nrunbook = \"r\"\ncron = \"every day\"\n")).unwrap_err();
        assert!(e.contains("drill 'n': cron 'every day' is not a schedule"), "{e}");
        let e = parse(&format!("{BASE}[[trigger]]\nname = \"t\"\nkind = \"generic\"\nrunbook = \"r\"\nauth = {{}}\n")).unwrap_err();
        assert!(e.contains("exactly one of bearer_env or hmac_sha256_env"), "{e}");
        let e = parse(&format!("{BASE}[[trigger]]\nname = \"t\"\nkind = \"sns\"\nrunbook = \"r\"\nauth = {{ bearer_env = \"X\" }}\n")).unwrap_err();
        assert!(e.contains("needs topic_arn"), "{e}");
        let e = parse(&format!("{BASE}[[trigger]]\nname = \"t t\"\nkind = \"generic\"\nrunbook = \"r\"\nauth = {{ bearer_env = \"X\" }}\n")).unwrap_err();
        assert!(e.contains("trigger name 't t'"), "{e}");
        let e = parse(&format!("{BASE}[[trigger]]\nname = \"t\"\nkind = \"pagerduty\"\nrunbook = \"r\"\nauth = {{ bearer_env = \"X\" }}\n")).unwrap_err();
        assert!(e.contains("unknown variant `pagerduty`"), "{e}");
    }

    #[test]
    fn scopes_take_labels() {
        let t: TriggerConfig =
            toml::from_str("name = \"t\"\nkind = \"generic\"\nrunbook = \"r\"\nauth = { bearer_env = \"X\" }\nscope = \"app:{app}/{region}\"\n").unwrap();
        let labels = BTreeMap::from([("app".to_string(), "orders".to_string()), ("region".to_string(), "us-east-1".to_string())]);
        assert_eq!(t.scope_for(&labels), "app:orders/us-east-1");
        // A label's value is taken as text, never as part of the template.
        let hostile = BTreeMap::from([("app".to_string(), "{region}".to_string()), ("region".to_string(), "us-east-1".to_string())]);
        assert_eq!(t.scope_for(&hostile), "app:{region}/us-east-1");
        assert_eq!(t.scope_for(&BTreeMap::new()), "app:{app}/{region}");
        let t = TriggerConfig { scope: None, ..t };
        assert_eq!(t.scope_for(&labels), "trigger:t");
    }
}
