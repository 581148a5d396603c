//! Attempt accounting across crashes.

/// A step failed for good because a crash interrupted its last allowed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    /// `interrupted`.
    pub code: &'static str,
    /// What happened and what to do; the failure is not retryable.
    pub message: String,
}

/// The rule for a step (or a cleanup or undo) found in flight after a crash:
/// the interrupted attempt counts against the step's retry policy.
/// `attempts` is how many attempts were begun (the interrupted one
/// included), `max_attempts` what the policy allows. Returns the failure
/// once they are used up (the body is not run again: its side effect may
/// have happened), or `None` when it may run again.
pub fn interrupted(key: &str, attempts: u32, max_attempts: u32) -> Option<Interrupted> {
    let max = max_attempts.max(1);
    // The power test's switch: before the fix, an interrupted attempt was not counted.
    if crate::revert::reverted(crate::revert::Fix::InterruptedAttemptCounts) {
        return None;
    }
    (attempts >= max).then(|| Interrupted {
        code: "interrupted",
        message: format!(
            "step '{key}' was interrupted (the agent crashed or was stopped) during attempt {attempts}, and its retry \
             policy allows {max} attempt{s} in all: it was not run again, since what it does may or may not have \
             happened. Check whether it did (the resource it acts on; `drover show` lists its attempts, the audit log \
             its calls) before acting on it; if re-running it is safe (it is idempotent), give it more attempts",
            s = if max == 1 { "" } else { "s" }
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_attempt_counts() {
        let once = interrupted("promote", 1, 1).unwrap();
        assert_eq!(once.code, "interrupted");
        assert!(once.message.contains("during attempt 1, and its retry policy allows 1 attempt in all"), "{}", once.message);
        assert!(interrupted("promote", 1, 2).is_none());
        assert!(interrupted("promote", 2, 2).unwrap().message.contains("allows 2 attempts in all"));
        assert!(interrupted("promote", 1, 0).is_some(), "no attempts is one attempt");
    }
}
