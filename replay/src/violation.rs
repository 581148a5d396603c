//! A journaled call that breaks a replay rule.

use std::fmt;

/// A call refused by a replay rule. Its text names the call, the value and
/// the rule, and says what to do. The agent traps the runbook with it (a
/// non-determinism stops the run resumable, the others fail it as a
/// `contract-violation`); the test harness fails the run or the test with the
/// same text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The runbook asked for something other than what the journal recorded.
    NonDeterminism {
        /// Journal position.
        seq: u64,
        /// What the journal holds there (see [`describe`]).
        recorded: String,
        /// What the runbook asked for (see [`describe`]).
        requested: String,
    },
    /// The run finished while the journal still held unreplayed entries.
    UnreplayedEntries {
        /// Calls made.
        consumed: u64,
        /// Entries in the journal.
        recorded: u64,
        /// The first entry not replayed (see [`describe`]).
        next: String,
    },
    /// The same step key was used twice in one run.
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// A step was begun inside another step's body.
    NestedStep {
        /// The running step.
        outer: String,
        /// The step asked for.
        inner: String,
    },
    /// `complete` or `fail` for a step that is not running.
    NotBegun {
        /// The key.
        key: String,
    },
    /// A malformed step, gate or cleanup key.
    BadKey {
        /// The key (cut to [`crate::MAX_KEY_LEN`] characters).
        key: String,
        /// Why it is refused.
        reason: String,
    },
    /// A step was begun while the agent runs the runbook's cleanups or undos.
    StepInFinalize {
        /// The key.
        key: String,
    },
    /// The same cleanup or undo key was registered twice.
    DuplicateAction {
        /// `cleanup` or `undo`.
        kind: &'static str,
        /// The key.
        key: String,
    },
    /// A call's arguments are out of range (a wait, a backoff, a size), or
    /// the call is not allowed where it was made.
    BadRequest(String),
}

impl Violation {
    /// The error code a run this violation ends is recorded with.
    pub fn code(&self) -> &'static str {
        if self.is_non_determinism() { "non-determinism" } else { "contract-violation" }
    }

    /// Whether the runbook's code (or inputs) changed since the journal was
    /// written: such a run is stopped, resumable once the code is fixed.
    pub fn is_non_determinism(&self) -> bool {
        matches!(self, Violation::NonDeterminism { .. } | Violation::UnreplayedEntries { .. })
    }

    /// `approval.request` for `gate` inside step `step`.
    pub fn approval_in_step(gate: &str, step: &str) -> Violation {
        Violation::BadRequest(format!("approval gate '{gate}' was requested inside step '{step}'; request approvals between steps"))
    }

    /// `approval.request` for `gate` while cleanups and undos run.
    pub fn approval_in_finalize(gate: &str) -> Violation {
        Violation::BadRequest(format!("approval gate '{gate}' was requested in finalize(); cleanups and undos run without approval"))
    }

    /// The second `approval.request` for `gate`.
    pub fn duplicate_gate(gate: &str) -> Violation {
        Violation::BadRequest(format!("approval gate '{gate}' was requested twice in this run; gate names are unique"))
    }

    /// A cleanup or undo registered while cleanups and undos run.
    pub fn register_in_finalize(kind: &str, key: &str) -> Violation {
        Violation::BadRequest(format!("{kind} '{key}' was registered inside finalize(); register actions in run()"))
    }
}

/// A journaled call as the non-determinism messages name it: `kind` is the
/// journal's entry kind (`step`, `now`, `sleep`, `random`, `register`,
/// `approval`, `end`), `key` its key.
pub fn describe(kind: &str, key: Option<&str>) -> String {
    match (kind, key) {
        ("step", Some(k)) => match crate::sections::parse_step_key(k) {
            Some(section) => format!("parallel section '{section}'"),
            None => format!("step '{k}'"),
        },
        ("approval", Some(g)) => format!("approval gate '{g}'"),
        ("register", Some(k)) => match crate::ActionKind::parse(k) {
            Some((action, key)) => format!("the registration of {} '{key}'", action.as_str()),
            None => format!("the registration '{k}'"),
        },
        (kind, _) => format!("a {kind} call"),
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::NonDeterminism { seq, recorded, requested } => write!(
                f,
                "non-determinism at journal position {seq}: the journal recorded {recorded}, but the runbook now asks for \
                 {requested}. The runbook's code or inputs changed since the run started"
            ),
            Violation::UnreplayedEntries { consumed, recorded, next } => write!(
                f,
                "non-determinism: the runbook finished after {consumed} journaled calls, but the journal recorded \
                 {recorded} (next: {next}). The runbook's code changed since the run started"
            ),
            Violation::DuplicateKey { key } => {
                write!(f, "step key '{key}' is used twice in this run; step keys must be unique (include a loop index or a region)")
            }
            Violation::NestedStep { outer, inner } => write!(f, "step '{inner}' was begun inside step '{outer}'; steps cannot nest"),
            Violation::NotBegun { key } => {
                write!(f, "step '{key}' was completed or failed without being begun (the SDK's step helper does this for you)")
            }
            Violation::BadKey { key, reason } => write!(f, "step key '{key}' is invalid: {reason}"),
            Violation::StepInFinalize { key } => {
                write!(f, "step '{key}' was begun inside finalize(); a cleanup or undo is itself a step and cannot begin others")
            }
            Violation::DuplicateAction { kind, key } => write!(f, "{kind} '{key}' is registered twice in this run; keys must be unique"),
            Violation::BadRequest(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Violation {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_named_as_the_author_wrote_them() {
        assert_eq!(describe("step", Some("promote")), "step 'promote'");
        assert_eq!(describe("approval", Some("go")), "approval gate 'go'");
        assert_eq!(describe("register", Some("undo:dns")), "the registration of undo 'dns'");
        assert_eq!(describe("sleep", None), "a sleep call");
    }

    #[test]
    fn only_a_changed_journal_order_is_non_determinism() {
        let nd = Violation::NonDeterminism { seq: 3, recorded: "step 'a'".into(), requested: "step 'b'".into() };
        assert_eq!(nd.code(), "non-determinism");
        assert!(nd.to_string().starts_with("non-determinism at journal position 3: the journal recorded step 'a', but the runbook now asks for step 'b'."));
        assert_eq!(Violation::DuplicateKey { key: "a".into() }.code(), "contract-violation");
    }
}
