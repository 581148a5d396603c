//! Test-only switches that revert, one at a time, fixes of the "truthful
//! failover" issue, so that the deterministic simulation can prove it finds
//! each of them (its power test). They exist only with the `power-test`
//! feature, which nothing the agent ships enables; without it [`reverted`]
//! is a constant `false` and the compiler drops every reverted branch.

/// A fix that can be reverted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// A replica busy with something else is not taken for a promotion under
    /// way (`drover_cloud::rds::promotion_state`).
    BusyPromotionRefused,
    /// A create the service may already have executed is never resent blind
    /// by the SDK (`drover_cloud::resend::sdk_may_resend`).
    NoBlindResend,
    /// A non-determinism stop runs no undo (the engine's driver).
    NonDeterminismStops,
    /// An interrupted attempt counts against `max_attempts`
    /// ([`crate::interrupted`]).
    InterruptedAttemptCounts,
    /// The run's fence is read in the store last before every side effect,
    /// after every wait that precedes the request (the engine's
    /// `check_fence`). Found by the simulation with two agents.
    FenceReadBeforeSideEffect,
}

#[cfg(feature = "power-test")]
mod switch {
    use super::Fix;
    use std::sync::atomic::{AtomicU8, Ordering};

    static REVERTED: AtomicU8 = AtomicU8::new(0);

    fn bit(fix: Fix) -> u8 {
        1 << (fix as u8)
    }

    /// Whether `fix` is reverted in this process.
    pub fn reverted(fix: Fix) -> bool {
        REVERTED.load(Ordering::SeqCst) & bit(fix) != 0
    }

    /// Reverts `fix` (or restores it) for the whole process.
    pub fn set(fix: Fix, reverted: bool) {
        if reverted {
            REVERTED.fetch_or(bit(fix), Ordering::SeqCst);
        } else {
            REVERTED.fetch_and(!bit(fix), Ordering::SeqCst);
        }
    }
}

#[cfg(feature = "power-test")]
pub use switch::{reverted, set};

/// Whether `fix` is reverted: never, without the `power-test` feature.
#[cfg(not(feature = "power-test"))]
#[inline(always)]
pub const fn reverted(_fix: Fix) -> bool {
    false
}
