//! The replay rule itself: a run's journaled calls are read back by one
//! cursor, in call order, and each must be the call the journal recorded at
//! its position. A journaled call is named by the journal's kind (`step`,
//! `now`, `sleep`, `random`, `register`, `approval`, `end`) and its key.

use crate::{Violation, describe};

/// A journaled call: kind and key.
pub type CallName<'a> = (&'a str, Option<&'a str>);

/// Checks the call the runbook makes now (`requested`) against the entry
/// recorded at journal position `seq`: the same kind and key, or the run's
/// code or inputs changed (a non-determinism).
pub fn check_replayed(seq: u64, recorded: CallName<'_>, requested: CallName<'_>) -> Result<(), Violation> {
    if recorded == requested {
        return Ok(());
    }
    Err(Violation::NonDeterminism { seq, recorded: describe(recorded.0, recorded.1), requested: describe(requested.0, requested.1) })
}

/// Checks, when the runbook has returned after `consumed` journaled calls,
/// that it replayed all `recorded` entries (`next` is the first it did not).
pub fn check_finished(consumed: u64, recorded: u64, next: Option<CallName<'_>>) -> Result<(), Violation> {
    match next {
        None => Ok(()),
        Some((kind, key)) => Err(Violation::UnreplayedEntries { consumed, recorded, next: describe(kind, key) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_call_replays_and_another_is_named() {
        assert!(check_replayed(0, ("step", Some("a")), ("step", Some("a"))).is_ok());
        let e = check_replayed(4, ("step", Some("a")), ("sleep", None)).unwrap_err();
        assert!(e.to_string().starts_with("non-determinism at journal position 4: the journal recorded step 'a', but the runbook now asks for a sleep call"));
        assert!(check_finished(3, 3, None).is_ok());
        let e = check_finished(2, 3, Some(("approval", Some("go")))).unwrap_err();
        assert!(e.to_string().contains("finished after 2 journaled calls, but the journal recorded 3 (next: approval gate 'go')"), "{e}");
    }
}
