//! How runs, gates and scope locks are laid out as DynamoDB items, and how
//! they are read back.
//!
//! One table, keys `pk` (string) and `sk` (string), one global secondary
//! index `gsi1` on `g1pk`/`g1sk` (all attributes projected):
//!
//! | item | `pk` | `sk` | `g1pk` / `g1sk` |
//! |---|---|---|---|
//! | run | `run#ID` | `run` | `runs#active` or `runs#ended` / created-at `#` id |
//! | commit chunk | `run#ID` | `log#VERSION#PART` | — |
//! | approval gate | `run#ID` | `gate#NAME` | `gates#pending` or `gates#decided` / requested-at `#` id `#` gate |
//! | scope lock | `scope#SCOPE` | `scope` | — |
//!
//! Attribute names carry a prefix so that none is a DynamoDB reserved word.
//!
//! DynamoDB holds 400 KB an item. Commits are chunked (see [`crate::log`]);
//! the few free-text fields kept on a run or gate item (a run's result and
//! error, a gate's question, a decision's comment, a cancel request's
//! reason) are capped at [`FIELD_BYTES`] each, with a marker in the stored
//! value saying so and how long the original was (see [`capped_text`]).
//! The run's journal keeps a result and an error whole (in its `End` entry).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use drover_journal::{Approval, CancelRequest, Decision, ErrorRecord, JournalError, RunRecord, RunStatus, RunbookRef, rfc3339};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json as json_value};

/// The most bytes one free-text field of a run or gate item keeps.
pub const FIELD_BYTES: usize = 32 * 1024;

/// `text` as an item keeps it: whole up to [`FIELD_BYTES`], else its
/// beginning (cut on a character boundary) and a marker with its length.
pub fn capped_text(text: &str) -> String {
    if text.len() <= FIELD_BYTES {
        return text.to_string();
    }
    let mut cut = FIELD_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… [truncated by the run store: {} bytes in all, the first {cut} kept]", &text[..cut], text.len())
}

/// A run's result as its item keeps it: whole when its JSON text fits in
/// [`FIELD_BYTES`], else `{"truncated_by_run_store": {"original_bytes": N,
/// "json_prefix": "…"}}`.
pub fn capped_result(result: &Value) -> Value {
    let text = result.to_string();
    if text.len() <= FIELD_BYTES {
        return result.clone();
    }
    json_value!({"truncated_by_run_store": {"original_bytes": text.len(), "json_prefix": capped_text(&text)}})
}

/// A run's error as its item keeps it (each text capped).
pub fn capped_error(e: &ErrorRecord) -> ErrorRecord {
    ErrorRecord { code: capped_text(&e.code), message: capped_text(&e.message), retryable: e.retryable, resource: e.resource.as_deref().map(capped_text) }
}

/// A decision as its gate item keeps it (who and the comment capped).
pub fn capped_decision(d: &Decision) -> Decision {
    Decision { by: capped_text(&d.by), comment: capped_text(&d.comment), ..d.clone() }
}

/// A cancel request as its run item keeps it (who and why capped).
pub fn capped_cancel(c: &CancelRequest) -> CancelRequest {
    CancelRequest { by: capped_text(&c.by), reason: capped_text(&c.reason), at: c.at }
}

/// An item's key, for messages: `pk=… sk=…`.
pub fn describe_key(item: &Item) -> String {
    format!("pk={} sk={}", get_s(item, "pk").unwrap_or("?"), get_s(item, "sk").unwrap_or("?"))
}

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// The name of the secondary index listing runs and gates.
pub const INDEX: &str = "gsi1";
/// Unfinished runs, in the index.
pub const RUNS_ACTIVE: &str = "runs#active";
/// Ended runs, in the index.
pub const RUNS_ENDED: &str = "runs#ended";
/// Undecided gates, in the index.
pub const GATES_PENDING: &str = "gates#pending";
/// Decided gates, in the index.
pub const GATES_DECIDED: &str = "gates#decided";

/// The partition of run `id`: its run item, commit log and gates.
pub fn run_pk(id: &str) -> String {
    format!("run#{id}")
}

/// The key of run `id`'s run item.
pub fn run_key(id: &str) -> Item {
    key(run_pk(id), "run".into())
}

/// The key of gate `gate` of run `id`.
pub fn gate_key(id: &str, gate: &str) -> Item {
    key(run_pk(id), format!("gate#{gate}"))
}

/// The key of the lock on `scope`.
pub fn scope_key(scope: &str) -> Item {
    key(format!("scope#{scope}"), "scope".into())
}

/// The sort key of chunk `part` of commit `version`.
pub fn log_sk(version: u64, part: u32) -> String {
    format!("log#{version:012}#{part:05}")
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// A string attribute.
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A value as a JSON string attribute.
pub fn json<T: Serialize>(v: &T) -> Result<AttributeValue, JournalError> {
    serde_json::to_string(v).map(s).map_err(|e| JournalError::Malformed(format!("a journal record does not encode as JSON: {e}")))
}

/// String attribute `name`, if present.
pub fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// Number attribute `name` (0 when absent).
pub fn get_n(item: &Item, name: &str) -> Result<u64, JournalError> {
    match item.get(name) {
        None => Ok(0),
        Some(v) => v.as_n().ok().and_then(|t| t.parse().ok()).ok_or_else(|| JournalError::Malformed(format!("attribute {name} is not a number: {v:?}"))),
    }
}

/// JSON string attribute `name`, decoded, if present.
pub fn get_json<T: for<'de> Deserialize<'de>>(item: &Item, name: &str) -> Result<Option<T>, JournalError> {
    get_s(item, name).map(|t| serde_json::from_str(t).map_err(|e| JournalError::Malformed(format!("attribute {name}: {e}")))).transpose()
}

/// Milliseconds since the epoch.
pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The parts of a run that never change after creation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunDoc {
    pub run_id: String,
    pub runbook: RunbookRef,
    pub params: Value,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub policy_override: Option<Value>,
    #[serde(default)]
    pub origin: Option<Value>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// The index partition of a run in `status`.
pub fn runs_partition(status: RunStatus) -> &'static str {
    if status.is_final() { RUNS_ENDED } else { RUNS_ACTIVE }
}

/// A new run's item: running, unclaimed, fence 0, no commit yet.
pub fn new_run_item(doc: &RunDoc) -> Result<Item, JournalError> {
    let mut item = run_key(&doc.run_id);
    item.insert("run_doc".into(), json(doc)?);
    item.insert("run_status".into(), s(RunStatus::Running.as_str()));
    item.insert("run_fence".into(), n(0));
    item.insert("log_version".into(), n(0));
    item.insert("g1pk".into(), s(RUNS_ACTIVE));
    item.insert("g1sk".into(), s(format!("{}#{}", rfc3339(&doc.created_at), doc.run_id)));
    Ok(item)
}

/// Decodes a run item.
pub fn run_from_item(item: &Item) -> Result<RunRecord, JournalError> {
    let doc: RunDoc = get_json(item, "run_doc")?.ok_or_else(|| JournalError::Malformed("run item without run_doc".into()))?;
    let status = get_s(item, "run_status").unwrap_or_default();
    let lease_ms = get_n(item, "lease_ms")?;
    Ok(RunRecord {
        run_id: doc.run_id,
        // A replacement build (`Op::SetRunbook`) overrides the one it was created with.
        runbook: get_json(item, "run_runbook")?.unwrap_or(doc.runbook),
        params: doc.params,
        status: RunStatus::parse(status).ok_or_else(|| JournalError::Malformed(format!("run status '{status}'")))?,
        created_at: doc.created_at,
        finished_at: get_json(item, "run_finished")?,
        result: get_json(item, "run_result")?,
        error: get_json(item, "run_error")?,
        owner: get_json(item, "run_owner")?,
        fence: get_n(item, "run_fence")?,
        lease_expires_at: (item.contains_key("run_owner") && lease_ms > 0).then(|| DateTime::from_timestamp_millis(lease_ms as i64)).flatten(),
        cancel: get_json(item, "cancel_req")?,
        pause: get_json(item, "pause_req")?,
        policy_override: doc.policy_override,
        origin: doc.origin,
        scope: doc.scope,
    })
}

/// A gate's item, undecided (its question capped).
pub fn gate_item(approval: &Approval) -> Result<Item, JournalError> {
    let mut item = gate_key(&approval.run_id, &approval.gate);
    item.insert("gate_doc".into(), json(&Approval { message: capped_text(&approval.message), ..approval.clone() })?);
    item.insert("g1pk".into(), s(GATES_PENDING));
    item.insert("g1sk".into(), s(format!("{}#{}#{}", rfc3339(&approval.requested_at), approval.run_id, approval.gate)));
    Ok(item)
}

/// Decodes a gate item.
pub fn gate_from_item(item: &Item) -> Result<Approval, JournalError> {
    let mut approval: Approval = get_json(item, "gate_doc")?.ok_or_else(|| JournalError::Malformed("gate item without gate_doc".into()))?;
    approval.decision = get_json(item, "gate_decision")?;
    Ok(approval)
}
