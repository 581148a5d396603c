//! The simulated cloud behind `drover test`: the runbook's capability calls
//! are answered by `drover-sim` (the same model runbook authors test
//! against with `cargo test`) instead of AWS, and the run's time is the
//! simulation's: durable sleeps, retry backoffs and waits move it forward
//! instead of waiting.
//!
//! Everything else is the real agent: the journal, the policy gate, the
//! idempotency keys, replay, cleanups and undos.

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, TimeZone, Utc};
use drover_cloud::CloudError;
use drover_sim::{Cloud, Scenario};

/// A simulated cloud and its clock, shared by a run's capability calls and
/// its durable state.
pub struct Simulation {
    cloud: Mutex<Cloud>,
    seed: u64,
}

impl Simulation {
    /// The cloud `scenario` describes.
    pub fn new(scenario: &Scenario) -> Result<Arc<Simulation>, String> {
        // The run's randomness is seeded from the scenario's run id, so a
        // scenario replays the same way every time.
        let key = drover_replay::idempotency_key(&scenario.settings.run_id, "entropy");
        let seed = u64::from_str_radix(key.get(..16).unwrap_or("0"), 16).unwrap_or(0);
        Ok(Arc::new(Simulation { cloud: Mutex::new(Cloud::new(scenario)?), seed }))
    }

    /// The seed of the run's randomness.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The cloud, to read its calls and state.
    pub fn cloud(&self) -> MutexGuard<'_, Cloud> {
        self.cloud.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Simulated time now.
    pub fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.cloud().now_ms()).single().unwrap_or_else(Utc::now)
    }

    /// Moves simulated time to `at` (never back).
    pub fn advance_to(&self, at: DateTime<Utc>) {
        let mut c = self.cloud();
        let by = at.timestamp_millis() - c.now_ms();
        c.advance_ms(by);
    }

    /// Makes one capability call against the cloud, as step `step` attempt
    /// `attempt`.
    pub(crate) fn call<T>(&self, step: Option<(String, u32)>, f: impl FnOnce(&mut Cloud) -> Result<T, CloudError>) -> Result<T, CloudError> {
        let mut c = self.cloud();
        c.set_caller(step);
        let out = f(&mut c);
        c.set_caller(None);
        out
    }
}
