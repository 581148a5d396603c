//! How a step's failed attempts are retried.

use std::time::Duration;

use crate::bindings::drover::runbook::steps::RetryPolicy;

/// Retry policy of a step. Only errors marked retryable are retried; the
/// agent journals the attempt count and the next attempt's time, so a crash
/// during a backoff resumes the same schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Retry {
    /// One attempt, no retry.
    pub const fn none() -> Self {
        Retry { max_attempts: 1, initial_backoff: Duration::ZERO, max_backoff: Duration::ZERO }
    }

    /// Up to `n` attempts in all, with exponential backoff from 500 ms to 30 s.
    pub const fn attempts(n: u32) -> Self {
        Retry { max_attempts: if n == 0 { 1 } else { n }, initial_backoff: Duration::from_millis(500), max_backoff: Duration::from_secs(30) }
    }

    /// Sets the first backoff and the ceiling of the exponential backoff.
    pub const fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    pub(crate) fn to_wit(self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            initial_backoff_ms: self.initial_backoff.as_millis() as u64,
            max_backoff_ms: self.max_backoff.as_millis() as u64,
        }
    }
}

impl Default for Retry {
    /// Three attempts, 500 ms to 30 s backoff.
    fn default() -> Self {
        Retry::attempts(3)
    }
}
