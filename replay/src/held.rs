//! A step held for an operator after it failed for good (`steps.fail-with`,
//! contract 0.1.3): the gate it waits at, what is journaled while it waits,
//! what a skip hands the runbook, and what each decision means.
//!
//! The held step's journal entry stays `running`, with its last error and a
//! `held` record as its output (a running step has no other output), so a
//! driver that resumes the run sees at once that the step waits for an
//! operator rather than an attempt in flight. The decision itself is an
//! approval decision on the gate [`failure_gate`]: the first one recorded
//! wins, in every store.

use serde::{Deserialize, Serialize};

/// The error code a skipped step fails with when its runbook declared no
/// output for a skip.
pub const SKIPPED: &str = "step-skipped";

/// The gate step `key` waits at after its attempt `attempt` failed for good:
/// `failed:KEY:N`. Runbook gate names cannot hold `:`, so it is never one of
/// theirs; the attempt number makes it new after each retry.
pub fn failure_gate(key: &str, attempt: u32) -> String {
    format!("failed:{key}:{attempt}")
}

/// The step key and attempt of a failure gate, or `None` for a runbook's gate.
pub fn parse_failure_gate(gate: &str) -> Option<(&str, u32)> {
    let (key, attempt) = gate.strip_prefix("failed:")?.rsplit_once(':')?;
    Some((key, attempt.parse().ok()?))
}

/// What a skipped step hands the runbook (the WIT `skip-outcome`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Skip {
    /// The step may not be skipped.
    Refused,
    /// The step completes with this output (JSON text).
    Output(String),
    /// The step fails with the error [`SKIPPED`].
    Error,
}

/// What a held step's entry records while it waits (its output, under the
/// key `held`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The gate it waits at ([`failure_gate`]).
    pub gate: String,
    /// What a skip hands the runbook.
    pub skip: Skip,
    /// When the failure stands if nobody decided (RFC 3339).
    pub deadline: String,
}

/// What an operator's decision on a held step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// A new attempt of the step, with the same idempotency key.
    Retry,
    /// The step is skipped: the runbook gets [`Skip`]'s outcome.
    Skip,
    /// The failure stands: the runbook gets the step's error.
    Fail,
}

/// The resolution of an approval verdict (`approved`, `skipped`, `rejected`,
/// `timed-out`) on a held step that allows `skip`. A skip of a step that
/// may not be skipped lets the failure stand (the agent refuses to record
/// one; this covers a store written by hand).
pub fn resolve(verdict: &str, skip: &Skip) -> Resolution {
    match verdict {
        "approved" => Resolution::Retry,
        "skipped" if *skip != Skip::Refused => Resolution::Skip,
        _ => Resolution::Fail,
    }
}

/// The error message of a step skipped by `by` for `reason`.
pub fn skipped_message(key: &str, by: &str, reason: &str) -> String {
    format!("step '{key}' was skipped by {by}: {reason}")
}

/// What the operator is asked at a held step's gate.
pub fn question(key: &str, attempt: u32, error: &str, skip: &Skip, run_id: &str) -> String {
    let skip = match skip {
        Skip::Refused => String::new(),
        Skip::Output(_) => format!(", skip it (`drover skip {run_id} {key} --reason ...`: the runbook goes on with the output it declared for a skip)"),
        Skip::Error => format!(", skip it (`drover skip {run_id} {key} --reason ...`: the runbook gets the error {SKIPPED} and handles it)"),
    };
    format!(
        "step '{key}' failed for good (attempt {attempt}): {error}. Fix the cause and retry it (`drover redrive {run_id}`, or approve this gate){skip}, \
         or let the failure stand (reject this gate, or `drover cancel {run_id}`: the run's undos run)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_gates_name_the_step_and_attempt() {
        assert_eq!(failure_gate("point-db-record", 2), "failed:point-db-record:2");
        assert_eq!(parse_failure_gate("failed:copy/eu-west-1:12"), Some(("copy/eu-west-1", 12)));
        assert_eq!(parse_failure_gate("promote"), None);
        assert_eq!(parse_failure_gate("failed:x"), None);
        assert_eq!(parse_failure_gate("failed:x:y"), None);
        // A runbook gate name cannot take the form.
        assert!(crate::check_key("failed:x:1").is_err());
    }

    #[test]
    fn decisions_resolve() {
        let out = Skip::Output("{}".into());
        assert_eq!(resolve("approved", &Skip::Refused), Resolution::Retry);
        assert_eq!(resolve("skipped", &out), Resolution::Skip);
        assert_eq!(resolve("skipped", &Skip::Error), Resolution::Skip);
        assert_eq!(resolve("skipped", &Skip::Refused), Resolution::Fail);
        assert_eq!(resolve("rejected", &out), Resolution::Fail);
        assert_eq!(resolve("timed-out", &out), Resolution::Fail);
    }
}
