//! A step's retry policy: how many attempts, how long between them.

use std::time::Duration;

use crate::Violation;

/// Longest backoff a retry policy may ask for (one day).
pub const MAX_BACKOFF_MS: u64 = 24 * 3600 * 1000;

/// A step's retry policy, as the runbook passed it to `steps.begin` (or
/// `cleanup.defer` / `cleanup.compensate`). Journaled with each cleanup and
/// undo: the field names are part of the journal format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetrySpec {
    /// Attempts in all.
    pub max_attempts: u32,
    /// First backoff.
    pub initial_backoff_ms: u64,
    /// Backoff ceiling.
    pub max_backoff_ms: u64,
}

impl RetrySpec {
    /// The policy as the rules read it: at least one attempt.
    pub fn normalized(self) -> RetrySpec {
        RetrySpec { max_attempts: self.max_attempts.max(1), ..self }
    }

    /// Checks the policy `call` (e.g. `steps.begin 'promote'`) passed: a
    /// backoff above [`MAX_BACKOFF_MS`] is refused, naming the limit.
    pub fn check(&self, call: &str) -> Result<(), Violation> {
        for (name, ms) in [("initial-backoff-ms", self.initial_backoff_ms), ("max-backoff-ms", self.max_backoff_ms)] {
            if ms > MAX_BACKOFF_MS {
                return Err(Violation::BadRequest(format!("{call}: retry policy {name} is {ms}; at most {MAX_BACKOFF_MS} ms (one day) per backoff")));
            }
        }
        Ok(())
    }

    /// Whether attempt `attempt`, which failed (`retryable` or not), gets
    /// another: only a retryable failure, and only while attempts are left.
    pub fn retries(&self, attempt: u32, retryable: bool) -> bool {
        retryable && attempt < self.max_attempts
    }

    /// The backoff before attempt `next` (2 or more): exponential from the
    /// initial backoff, capped, shortened by up to 20% of jitter (`jitter`
    /// in 0..=1; the agent draws it so that many runs do not retry in
    /// lockstep, the test harness passes 0: the longest wait).
    pub fn backoff(&self, next: u32, jitter: f64) -> Duration {
        let exp = next.saturating_sub(2).min(32);
        let base = self.initial_backoff_ms.saturating_mul(1u64 << exp).min(self.max_backoff_ms.max(self.initial_backoff_ms));
        let jittered = base as f64 * (1.0 - 0.2 * jitter.clamp(0.0, 1.0));
        Duration::from_millis(jittered as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let r = RetrySpec { max_attempts: 10, initial_backoff_ms: 100, max_backoff_ms: 1000 };
        assert_eq!(r.backoff(2, 0.0), Duration::from_millis(100));
        assert_eq!(r.backoff(3, 0.0), Duration::from_millis(200));
        assert_eq!(r.backoff(4, 0.0), Duration::from_millis(400));
        assert_eq!(r.backoff(9, 0.0), Duration::from_millis(1000));
        assert_eq!(r.backoff(40, 0.0), Duration::from_millis(1000));
        assert_eq!(r.backoff(2, 1.0), Duration::from_millis(80));
    }

    #[test]
    fn extreme_retry_policies_neither_overflow_nor_pass() {
        let max = RetrySpec { max_attempts: u32::MAX, initial_backoff_ms: u64::MAX, max_backoff_ms: u64::MAX };
        assert_eq!(max.backoff(u32::MAX, 0.0), Duration::from_millis(u64::MAX));
        let err = max.check("steps.begin 'x'").unwrap_err().to_string();
        assert!(err.contains("steps.begin 'x': retry policy initial-backoff-ms is 18446744073709551615; at most 86400000 ms"), "{err}");
        let day = RetrySpec { max_attempts: 0, initial_backoff_ms: MAX_BACKOFF_MS, max_backoff_ms: MAX_BACKOFF_MS };
        assert!(day.check("x").is_ok());
        assert_eq!(day.backoff(0, 0.5), Duration::from_millis(MAX_BACKOFF_MS * 9 / 10));
    }

    #[test]
    fn only_a_retryable_failure_with_attempts_left_retries() {
        let r = RetrySpec { max_attempts: 0, initial_backoff_ms: 0, max_backoff_ms: 0 }.normalized();
        assert_eq!(r.max_attempts, 1);
        assert!(!r.retries(1, true));
        let r = RetrySpec { max_attempts: 3, ..r };
        assert!(r.retries(2, true));
        assert!(!r.retries(2, false));
        assert!(!r.retries(3, true));
    }
}
