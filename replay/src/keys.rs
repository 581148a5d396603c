//! Step keys: what a runbook may name a step, an approval gate or a cleanup,
//! and the step key a cleanup or undo runs under.

use crate::Violation;

/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 128;

/// Checks a key a runbook chose: 1 to 128 bytes of lowercase letters,
/// digits, `-`, `_`, `.` and `/`. A `:` is refused, which keeps the step keys
/// of cleanups and undos (`cleanup:KEY`, `undo:KEY`) and approvals
/// (`approval:GATE`) out of a runbook's reach.
pub fn check_key(key: &str) -> Result<(), Violation> {
    let bad = |reason: &str| Err(Violation::BadKey { key: key.chars().take(MAX_KEY_LEN).collect(), reason: reason.into() });
    if key.is_empty() {
        return bad("it is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return bad("it is longer than 128 bytes");
    }
    if !key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.' | '/')) {
        return bad("use lowercase letters, digits, '-', '_', '.' and '/'");
    }
    Ok(())
}

/// What a registered action is: a cleanup runs whatever the outcome, an undo
/// only if the run did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// `cleanup.defer`.
    Cleanup,
    /// `cleanup.compensate`.
    Undo,
}

impl ActionKind {
    /// `cleanup` or `undo`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Cleanup => "cleanup",
            ActionKind::Undo => "undo",
        }
    }

    /// The WIT call that registers it.
    pub fn wit_call(self) -> &'static str {
        match self {
            ActionKind::Cleanup => "cleanup.defer",
            ActionKind::Undo => "cleanup.compensate",
        }
    }

    /// The journaled step the action `key` runs under: `cleanup:KEY` or `undo:KEY`.
    pub fn step_key(self, key: &str) -> String {
        format!("{}:{key}", self.as_str())
    }

    /// The kind and key of an action's step key, if it is one.
    pub fn parse(step_key: &str) -> Option<(ActionKind, &str)> {
        match step_key.split_once(':')? {
            ("cleanup", key) => Some((ActionKind::Cleanup, key)),
            ("undo", key) => Some((ActionKind::Undo, key)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_lowercase_names_and_colons_are_reserved() {
        assert!(check_key("promote-replica").is_ok());
        assert!(check_key("copy/us-west-2.1_a").is_ok());
        assert!(check_key(&"a".repeat(128)).is_ok());
        for bad in ["", "Promote", "a b", "cleanup:c1", "approval:go"] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
        let long = check_key(&"a".repeat(300)).unwrap_err();
        assert_eq!(long.to_string(), format!("step key '{}' is invalid: it is longer than 128 bytes", "a".repeat(128)));
    }

    #[test]
    fn an_action_step_key_round_trips() {
        assert_eq!(ActionKind::Undo.step_key("u1"), "undo:u1");
        assert_eq!(ActionKind::parse("cleanup:c1"), Some((ActionKind::Cleanup, "c1")));
        assert_eq!(ActionKind::parse("undo:u1"), Some((ActionKind::Undo, "u1")));
        assert_eq!(ActionKind::parse("promote"), None);
        assert_eq!(ActionKind::parse("approval:go"), None);
    }
}
