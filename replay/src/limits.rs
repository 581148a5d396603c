//! The largest request a runbook may make of a journaled call. Each limit
//! keeps a guest value from overflowing the host's arithmetic or its journal.

use std::time::Duration;

use crate::Violation;

/// Most random bytes one call may ask for.
pub const MAX_RANDOM_BYTES: u32 = 4096;
/// Longest durable wait one call may ask for: a `clock.sleep`, or an
/// approval gate's timeout (366 days).
pub const MAX_WAIT: Duration = Duration::from_secs(366 * 24 * 3600);
/// Longest approval question, in bytes.
pub const MAX_APPROVAL_MESSAGE: usize = 16 * 1024;

/// Checks a `random.random-bytes` request.
pub fn check_random_len(len: u32) -> Result<(), Violation> {
    if len > MAX_RANDOM_BYTES {
        return Err(Violation::BadRequest(format!("random-bytes asked for {len} bytes; at most {MAX_RANDOM_BYTES} per call")));
    }
    Ok(())
}

/// Checks a wait `call` asked for against `limit`.
pub fn check_wait(wait: Duration, limit: Duration, call: &str) -> Result<(), Violation> {
    if wait > limit {
        return Err(wait_refused(wait, limit, call));
    }
    Ok(())
}

/// The refusal of a wait: past `limit`, or past what a timestamp can hold.
pub fn wait_refused(wait: Duration, limit: Duration, call: &str) -> Violation {
    Violation::BadRequest(format!(
        "{call} asked to wait {} ms; at most {} ms ({} days) per call",
        wait.as_millis(),
        limit.as_millis(),
        limit.as_secs() / 86_400
    ))
}

/// Checks the question of approval gate `call`.
pub fn check_approval_message(call: &str, len: usize) -> Result<(), Violation> {
    if len > MAX_APPROVAL_MESSAGE {
        return Err(Violation::BadRequest(format!("{call}: the message is {len} bytes; at most {MAX_APPROVAL_MESSAGE} bytes")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_past_a_limit_are_refused_naming_it() {
        assert!(check_random_len(MAX_RANDOM_BYTES).is_ok());
        assert_eq!(check_random_len(u32::MAX).unwrap_err().to_string(), "random-bytes asked for 4294967295 bytes; at most 4096 per call");
        assert!(check_wait(MAX_WAIT, MAX_WAIT, "clock.sleep").is_ok());
        for wait in [MAX_WAIT + Duration::from_millis(1), Duration::MAX] {
            let err = check_wait(wait, MAX_WAIT, "clock.sleep").unwrap_err().to_string();
            assert!(err.contains("at most 31622400000 ms (366 days)"), "{err}");
        }
        assert!(check_approval_message("approval gate 'g'", MAX_APPROVAL_MESSAGE).is_ok());
        assert!(
            check_approval_message("approval gate 'g'", MAX_APPROVAL_MESSAGE + 1)
                .unwrap_err()
                .to_string()
                .starts_with("approval gate 'g': the message is 16385 bytes")
        );
    }
}
