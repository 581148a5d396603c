//! A capability call's failure, as every backend reports it to a runbook.

use std::fmt;

/// What failed, in the shape of the contract's `error` record: a code the
/// runbook can match on (`DBInstanceNotFound`, `throttled`, `busy`), a
/// message that says what to do, whether retrying may help, and the
/// resource at fault.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CloudError {
    /// Machine-readable code.
    pub code: String,
    /// What failed and what to do.
    pub message: String,
    /// Whether the same call may succeed later.
    pub retryable: bool,
    /// The resource at fault.
    pub resource: Option<String>,
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for CloudError {}
