//! What an incident trigger receives, as alerts: Alertmanager's webhook,
//! a CloudWatch alarm inside an SNS notification, or generic JSON. Each
//! becomes labels a trigger's `match` is checked against.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Its labels (all text).
    pub labels: BTreeMap<String, String>,
    /// Firing (true) or resolved (false). Only firing alerts start runs.
    pub firing: bool,
    /// The source's identity of the alert, when it gives one.
    pub fingerprint: Option<String>,
}

impl Alert {
    /// Whether every matcher's label has the matcher's value.
    pub fn matches(&self, matchers: &BTreeMap<String, String>) -> bool {
        matchers.iter().all(|(k, v)| self.labels.get(k) == Some(v))
    }

    /// The alert as recorded in a run's origin.
    pub fn to_json(&self) -> Value {
        json!({"labels": self.labels, "firing": self.firing, "fingerprint": self.fingerprint})
    }
}

/// Why a payload is not what the trigger accepts (400, nothing runs).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn text_labels(v: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
    v.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect()
}

#[derive(Deserialize)]
struct AmAlert {
    status: String,
    labels: serde_json::Map<String, Value>,
    fingerprint: Option<String>,
}

#[derive(Deserialize)]
struct AmWebhook {
    version: String,
    alerts: Vec<AmAlert>,
}

/// Alertmanager's webhook payload (version 4).
pub fn alertmanager(body: &[u8]) -> Result<Vec<Alert>, Malformed> {
    let hook: AmWebhook =
        serde_json::from_slice(body).map_err(|e| Malformed(format!("not an Alertmanager webhook payload (version 4: alerts with status and labels): {e}")))?;
    if hook.version != "4" {
        return Err(Malformed(format!("Alertmanager webhook version '{}' is not supported (4 is)", hook.version)));
    }
    Ok(hook.alerts.into_iter().map(|a| Alert { labels: text_labels(&a.labels), firing: a.status == "firing", fingerprint: a.fingerprint }).collect())
}

/// Generic JSON: `{"labels": {...}, "status": "firing"|"resolved"}`
/// (status optional: firing), or `{"alerts": [that, ...]}`.
pub fn generic(body: &[u8]) -> Result<Vec<Alert>, Malformed> {
    let v: Value = serde_json::from_slice(body).map_err(|e| Malformed(format!("the body is not JSON: {e}")))?;
    let one = |a: &Value| -> Result<Alert, Malformed> {
        let labels = a["labels"].as_object().ok_or_else(|| Malformed("an alert needs \"labels\": an object of label names to values".into()))?;
        let firing = match a.get("status").and_then(Value::as_str) {
            None | Some("firing") => true,
            Some("resolved") => false,
            Some(other) => return Err(Malformed(format!("status '{other}' is neither firing nor resolved"))),
        };
        Ok(Alert { labels: text_labels(labels), firing, fingerprint: a["id"].as_str().map(str::to_string) })
    };
    match v.get("alerts") {
        Some(Value::Array(list)) => list.iter().map(one).collect(),
        Some(_) => Err(Malformed("\"alerts\" must be a list".into())),
        None => Ok(vec![one(&v)?]),
    }
}

/// The CloudWatch alarm an SNS notification carries (its `Message`).
pub fn cloudwatch_alarm(message: &str) -> Result<Alert, Malformed> {
    let m: Value = serde_json::from_str(message).map_err(|e| Malformed(format!("the SNS message is not a CloudWatch alarm (JSON): {e}")))?;
    let name = m["AlarmName"].as_str().ok_or_else(|| Malformed("the SNS message has no AlarmName: not a CloudWatch alarm".into()))?;
    let mut labels = BTreeMap::new();
    labels.insert("AlarmName".to_string(), name.to_string());
    for key in ["NewStateValue", "OldStateValue", "Region", "AWSAccountId", "AlarmArn"] {
        if let Some(v) = m[key].as_str() {
            labels.insert(key.to_string(), v.to_string());
        }
    }
    let firing = m["NewStateValue"] == "ALARM";
    Ok(Alert { labels, firing, fingerprint: m["AlarmArn"].as_str().map(str::to_string) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alertmanager_payload() {
        let body = br#"{"version":"4","status":"firing","receiver":"drover","groupKey":"{}:{}",
            "alerts":[{"status":"firing","labels":{"alertname":"OrdersDown","app":"orders"},"annotations":{},"fingerprint":"abc"},
                      {"status":"resolved","labels":{"alertname":"OrdersDown","app":"cart"},"fingerprint":"def"}]}"#;
        let alerts = alertmanager(body).unwrap();
        assert_eq!(alerts.len(), 2);
        let m = BTreeMap::from([("alertname".to_string(), "OrdersDown".to_string())]);
        assert!(alerts[0].firing && alerts[0].matches(&m));
        assert!(!alerts[1].firing);
        assert!(!alerts[0].matches(&BTreeMap::from([("app".to_string(), "cart".to_string())])));
        assert!(alertmanager(br#"{"version":"3","alerts":[]}"#).unwrap_err().0.contains("version '3'"));
        assert!(alertmanager(b"not json").is_err());
    }

    #[test]
    fn generic_payload() {
        let a = generic(br#"{"labels":{"app":"orders","sev":1}}"#).unwrap();
        assert_eq!(a[0].labels["sev"], "1");
        assert!(a[0].firing);
        assert!(generic(br#"{"alerts":[{"labels":{}, "status":"resolved"}]}"#).unwrap()[0].labels.is_empty());
        assert!(generic(br#"{"labels":"x"}"#).unwrap_err().0.contains("needs \"labels\""));
        assert!(generic(br#"{"labels":{},"status":"maybe"}"#).is_err());
    }

    #[test]
    fn cloudwatch_alarm_message() {
        let a = cloudwatch_alarm(r#"{"AlarmName":"orders-5xx","NewStateValue":"ALARM","OldStateValue":"OK","Region":"US East (N. Virginia)"}"#).unwrap();
        assert!(a.firing);
        assert_eq!(a.labels["AlarmName"], "orders-5xx");
        assert!(!cloudwatch_alarm(r#"{"AlarmName":"x","NewStateValue":"OK"}"#).unwrap().firing);
        assert!(cloudwatch_alarm("{}").is_err());
    }
}
