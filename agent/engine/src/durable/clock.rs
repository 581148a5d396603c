//! The time a run keeps: the wall clock, or a simulation's (`drover test`,
//! and the deterministic simulation built on it), where a wait moves the
//! clock instead of sleeping.

use chrono::{DateTime, Utc};

/// A run's clock.
pub trait RunClock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
    /// Passes time to `at` at once and says so, if this clock can (a
    /// simulation's); the wall clock cannot: the caller waits.
    fn jump_to(&self, at: DateTime<Utc>) -> bool;
}

/// The wall clock.
pub struct WallClock;

impl RunClock for WallClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn jump_to(&self, _at: DateTime<Utc>) -> bool {
        false
    }
}

impl RunClock for crate::simulation::Simulation {
    fn now(&self) -> DateTime<Utc> {
        crate::simulation::Simulation::now(self)
    }

    fn jump_to(&self, at: DateTime<Utc>) -> bool {
        self.advance_to(at);
        true
    }
}
