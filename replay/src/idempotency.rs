//! The idempotency key of a step.

use sha2::{Digest, Sha256};

/// The idempotency key of step `key` in run `run_id`: stable across attempts
/// and crashes, different for every run and step; 32 hex digits.
///
/// It goes to AWS as the client token and the `drover:idempotency-key` tag,
/// and the engine computes it again on every attempt. It is frozen: another
/// function would give a step in flight a new key on its next attempt, and
/// AWS would make its resource a second time.
pub fn idempotency_key(run_id: &str, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"drover/idempotency/v1\0");
    h.update(run_id.as_bytes());
    h.update(b"\0");
    h.update(key.as_bytes());
    h.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_stable_distinct_and_frozen() {
        assert_eq!(idempotency_key("r1", "a"), idempotency_key("r1", "a"));
        assert_ne!(idempotency_key("r1", "a"), idempotency_key("r2", "a"));
        assert_ne!(idempotency_key("r1", "a"), idempotency_key("r1", "b"));
        // `printf 'drover/idempotency/v1\0r1\0a' | sha256sum | cut -c1-32`
        assert_eq!(idempotency_key("r1", "a"), "520b0048423a0c57c2659d69d6b9bdd2");
    }
}
