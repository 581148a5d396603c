//! A journaled call that breaks a replay rule.

use std::fmt;

/// A call refused by a replay rule. Its text names the call, the value and
/// the rule, and says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A malformed step, gate or cleanup key.
    BadKey {
        /// The key (cut to [`crate::MAX_KEY_LEN`] characters).
        key: String,
        /// Why it is refused.
        reason: String,
    },
    /// A call's arguments are out of range (a wait, a backoff, a size).
    BadRequest(String),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::BadKey { key, reason } => write!(f, "step key '{key}' is invalid: {reason}"),
            Violation::BadRequest(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Violation {}
