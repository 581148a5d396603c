//! Deliveries a trigger has already received: a request replayed (a
//! captured signed request sent again inside its 5-minute window, a bearer
//! request sent twice) or a sender's own retry must not start a second run.
//!
//! Every request that would start runs is named by its deliveries
//! ([`delivery_keys`]): the HMAC signature (which binds the timestamp and
//! the body), and the source's identity of the delivery (SNS `MessageId`;
//! Alertmanager's `groupKey` with each alert's fingerprint, status and
//! `startsAt`; a generic sender's `X-Drover-Delivery` or `Idempotency-Key`
//! header, else the body's digest). A request any of whose keys was seen in
//! the last [`WINDOW_SECONDS`] is a duplicate: it gets 200 with
//! `"duplicate": true` and the runs the first delivery started (a non-2xx
//! answer would make Alertmanager and SNS retry it forever), and nothing
//! starts. A delivery answered with an error is forgotten, so the sender's
//! retry is served (a scope it did start is joined by the retry while its
//! run lasts).
//!
//! The cache is this agent's memory: bounded ([`CAPACITY`] entries, the
//! oldest evicted first), and lost on restart. Across agents and restarts,
//! the scope lock still joins a second alert for an outage whose run has
//! not ended.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::http::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::auth::{MAX_SKEW_SECONDS, SIGNATURE_HEADER};
use crate::config::{TriggerConfig, TriggerKind};

/// How long a delivery is remembered, in seconds: twice the skew an HMAC
/// timestamp may have, so a signed request is remembered for as long as its
/// timestamp is accepted, however early it arrived.
pub const WINDOW_SECONDS: i64 = 2 * MAX_SKEW_SECONDS;

/// The most deliveries remembered; past it the oldest are forgotten.
pub const CAPACITY: usize = 10_000;

/// The headers a generic sender may name its delivery with (lower case).
pub const DELIVERY_HEADERS: [&str; 2] = ["x-drover-delivery", "idempotency-key"];

/// What [`Seen::claim`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Not seen: the caller handles it, then calls [`Seen::finish`] or [`Seen::release`].
    New,
    /// Seen at `first_seen` (Unix seconds); `runs` is what that delivery
    /// started (None while it is still being handled).
    Duplicate { first_seen: i64, runs: Option<Value> },
}

struct Delivery {
    first_seen: i64,
    runs: Option<Value>,
}

#[derive(Default)]
struct Inner {
    by_key: HashMap<String, Delivery>,
    /// Keys in the order they were first seen.
    order: VecDeque<(i64, String)>,
}

/// Deliveries seen recently, shared by every trigger of the agent.
pub struct Seen {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl Default for Seen {
    fn default() -> Self {
        Seen::new()
    }
}

impl Seen {
    /// An empty cache of at most [`CAPACITY`] deliveries.
    pub fn new() -> Self {
        Seen::with_capacity(CAPACITY)
    }

    fn with_capacity(capacity: usize) -> Self {
        Seen { inner: Mutex::new(Inner::default()), capacity: capacity.max(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims a delivery named by `keys` at `now` (Unix seconds): New (and
    /// remembered, as being handled) unless one of its keys was seen in
    /// the window.
    pub fn claim(&self, keys: &[String], now: i64) -> Claim {
        let mut inner = self.lock();
        inner.expire(now);
        if let Some(d) = keys.iter().find_map(|k| inner.by_key.get(k)) {
            return Claim::Duplicate { first_seen: d.first_seen, runs: d.runs.clone() };
        }
        for key in keys {
            while inner.by_key.len() >= self.capacity {
                let Some((_, oldest)) = inner.order.pop_front() else { break };
                if inner.by_key.remove(&oldest).is_some() {
                    tracing::warn!(capacity = self.capacity, "replay cache full: the oldest delivery is forgotten early");
                }
            }
            inner.by_key.insert(key.clone(), Delivery { first_seen: now, runs: None });
            inner.order.push_back((now, key.clone()));
        }
        Claim::New
    }

    /// Records what the delivery named by `keys` started, for its duplicates.
    pub fn finish(&self, keys: &[String], runs: &Value) {
        let mut inner = self.lock();
        for key in keys {
            if let Some(d) = inner.by_key.get_mut(key) {
                d.runs = Some(runs.clone());
            }
        }
    }

    /// Forgets the delivery named by `keys` (it started nothing: a retry
    /// must be served).
    pub fn release(&self, keys: &[String]) {
        let mut inner = self.lock();
        for key in keys {
            inner.by_key.remove(key);
        }
        inner.order.retain(|(_, k)| !keys.contains(k));
    }
}

impl Inner {
    fn expire(&mut self, now: i64) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_sub(*at) < WINDOW_SECONDS {
                break;
            }
            if let Some((at, key)) = self.order.pop_front()
                && self.by_key.get(&key).is_some_and(|d| d.first_seen == at)
            {
                self.by_key.remove(&key);
            }
        }
    }
}

fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// The keys naming a request to trigger `trigger` (see the module docs),
/// each prefixed with the trigger's name.
pub fn delivery_keys(trigger: &TriggerConfig, headers: &HeaderMap, body: &[u8]) -> Vec<String> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    let mut keys = Vec::new();
    if trigger.auth.hmac_sha256_env.is_some()
        && let Some(sig) = header(SIGNATURE_HEADER)
    {
        keys.push(format!("sig:{}", sig.to_ascii_lowercase()));
    }
    let parsed = || serde_json::from_slice::<Value>(body).ok();
    let source_id = match trigger.kind {
        TriggerKind::Sns => parsed().and_then(|v| v["MessageId"].as_str().map(|id| format!("sns:{id}"))),
        TriggerKind::Alertmanager => parsed().and_then(|v| {
            let group = v["groupKey"].as_str()?.to_string();
            let mut alerts: Vec<String> = v["alerts"]
                .as_array()?
                .iter()
                .map(|a| digest(&[a["fingerprint"].to_string().as_bytes(), a["status"].to_string().as_bytes(), a["startsAt"].to_string().as_bytes()]))
                .collect();
            alerts.sort();
            Some(format!("am:{}", digest(&[group.as_bytes(), alerts.join(",").as_bytes()])))
        }),
        TriggerKind::Generic => DELIVERY_HEADERS.iter().find_map(|h| header(h)).map(|id| format!("id:{id}")),
    };
    keys.push(source_id.unwrap_or_else(|| format!("body:{}", digest(&[body]))));
    keys.into_iter().map(|k| format!("{}/{k}", trigger.name)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_delivery_is_a_duplicate_for_its_window_then_forgotten() {
        let seen = Seen::new();
        let first = keys(&["t/sig:aa", "t/body:1"]);
        assert_eq!(seen.claim(&first, 1000), Claim::New);
        // While it is handled, and after: a duplicate, by any of its keys.
        assert_eq!(seen.claim(&first, 1001), Claim::Duplicate { first_seen: 1000, runs: None });
        seen.finish(&first, &json!([{"run_id": "r1"}]));
        assert_eq!(
            seen.claim(&keys(&["t/sig:bb", "t/body:1"]), 1000 + WINDOW_SECONDS - 1),
            Claim::Duplicate { first_seen: 1000, runs: Some(json!([{"run_id": "r1"}])) }
        );
        // Another delivery is new; the window over, the first is new again.
        assert_eq!(seen.claim(&keys(&["t/body:2"]), 1002), Claim::New);
        assert_eq!(seen.claim(&first, 1000 + WINDOW_SECONDS), Claim::New);
    }

    #[test]
    fn a_delivery_that_started_nothing_is_forgotten_and_the_cache_is_bounded() {
        let seen = Seen::new();
        let k = keys(&["t/body:1"]);
        assert_eq!(seen.claim(&k, 10), Claim::New);
        seen.release(&k);
        assert_eq!(seen.claim(&k, 11), Claim::New, "a retry of a failed delivery is served");

        let small = Seen::with_capacity(3);
        for i in 0..5 {
            assert_eq!(small.claim(&keys(&[&format!("k{i}")]), 100), Claim::New);
        }
        assert_eq!(small.lock().by_key.len(), 3);
        assert!(matches!(small.claim(&keys(&["k4"]), 100), Claim::Duplicate { .. }));
        assert_eq!(small.claim(&keys(&["k0"]), 100), Claim::New, "the oldest went first");
    }

    fn trigger(kind: &str, auth: &str) -> TriggerConfig {
        toml::from_str(&format!("name = \"t\"\nkind = \"{kind}\"\nrunbook = \"r\"\nauth = {{ {auth} = \"X\" }}\n")).unwrap()
    }

    #[test]
    fn deliveries_are_named_by_the_source() {
        let none = HeaderMap::new();
        // Alertmanager: the group and its alerts' fingerprints and start times;
        // a resend of the same notification is the same delivery.
        let am = trigger("alertmanager", "bearer_env");
        let body = |starts: &str, annotation: &str| {
            json!({"version": "4", "groupKey": "{}:{app=\"orders\"}", "alerts": [
                {"status": "firing", "fingerprint": "f1", "startsAt": starts, "labels": {}, "annotations": {"a": annotation}}]})
            .to_string()
        };
        let k1 = delivery_keys(&am, &none, body("2026-12-05T10:00:00Z", "x").as_bytes());
        assert_eq!(k1.len(), 1);
        assert!(k1[0].starts_with("t/am:"), "{k1:?}");
        assert_eq!(k1, delivery_keys(&am, &none, body("2026-12-05T10:00:00Z", "y").as_bytes()));
        assert_ne!(k1, delivery_keys(&am, &none, body("2026-12-05T11:00:00Z", "x").as_bytes()), "a new firing is a new delivery");
        // SNS: the MessageId.
        let sns = trigger("sns", "bearer_env");
        assert_eq!(delivery_keys(&sns, &none, br#"{"MessageId": "m-1", "Message": "{}"}"#), ["t/sns:m-1"]);
        // Generic: the sender's delivery header, else the body; signed: the signature too.
        let generic = trigger("generic", "hmac_sha256_env");
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, "sha256=ABCD".parse().unwrap());
        let k = delivery_keys(&generic, &h, b"{}");
        assert_eq!(k[0], "t/sig:sha256=abcd");
        assert!(k[1].starts_with("t/body:"), "{k:?}");
        h.insert("idempotency-key", "delivery-7".parse().unwrap());
        assert_eq!(delivery_keys(&generic, &h, b"{}")[1], "t/id:delivery-7");
        assert_ne!(delivery_keys(&generic, &none, b"{}"), delivery_keys(&generic, &none, b"{ }"));
    }
}
