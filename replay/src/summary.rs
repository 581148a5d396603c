//! A run's journal in brief: what the agent and the test harness must agree
//! on for the same runbook, scenario and faults.

/// One step of a run's journal (actions included, as `undo:KEY` and
/// `cleanup:KEY`), as the parity files (`runbooks/scenarios/parity/`) hold it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepSummary {
    /// The step key.
    pub key: String,
    /// `ok`, `failed` or `unfinished` (see [`outcome`]).
    pub outcome: String,
    /// Attempts in all, across retries and crashes.
    pub attempts: u32,
    /// The step's idempotency key.
    pub idempotency_key: String,
}

/// A step's status in the agent's words (`succeeded`, `failed`, `running`)
/// or the harness's (`completed`, `failed`, `in-flight`), as one outcome.
pub fn outcome(status: &str) -> &'static str {
    match status {
        "succeeded" | "completed" => "ok",
        "failed" => "failed",
        _ => "unfinished",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_vocabularies_meet() {
        assert_eq!(outcome("succeeded"), outcome("completed"));
        assert_eq!(outcome("running"), outcome("in-flight"));
        assert_eq!(outcome("failed"), "failed");
    }
}
