//! Secret parameters, as the runbook sees them: a handle, never the value.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A handle on a secret parameter. It names the secret; it does not hold
/// it. Hand it to a capability that needs the secret (the agent resolves the
/// value inside the host); printing it shows `[secret NAME]`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    #[serde(rename = "$secret")]
    name: String,
}

impl Secret {
    /// The parameter this handle stands for: what a capability's
    /// `secret-ref` argument takes.
    pub fn reference(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[secret {}]", self.name)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_from_the_agents_handle_and_prints_no_value() {
        let s: Secret = serde_json::from_str(r#"{"$secret":"db_password"}"#).unwrap();
        assert_eq!(s.reference(), "db_password");
        assert_eq!(format!("{s} {s:?}"), "[secret db_password] [secret db_password]");
    }
}
