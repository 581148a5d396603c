//! The simulated cloud behind `drover test`: the runbook's capability calls
//! are answered by the in-memory model of `drover_sdk::testing` (the same one
//! runbook authors test against with `cargo test`) instead of AWS, and the
//! run's time is the simulation's: durable sleeps, retry backoffs and waits
//! move it forward instead of waiting.
//!
//! Everything else is the real agent: the journal, the policy gate, the
//! idempotency keys, replay, cleanups and undos.

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, TimeZone, Utc};
use drover_sdk::bindings::drover::runbook::types::Error as GuestError;
use drover_sdk::testing::{Cloud, Scenario};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::types;

/// A simulated cloud and its clock, shared by a run's capability calls and
/// its durable state.
pub struct Simulation {
    cloud: Mutex<Cloud>,
}

impl Simulation {
    /// The cloud `scenario` describes.
    pub fn new(scenario: &Scenario) -> Result<Arc<Simulation>, String> {
        Ok(Arc::new(Simulation { cloud: Mutex::new(Cloud::new(scenario)?) }))
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
    /// `attempt`, and hands its result over in the agent's own types.
    pub(crate) fn call<T, U>(
        &self,
        step: Option<(String, u32)>,
        f: impl FnOnce(&mut Cloud) -> Result<T, GuestError>,
    ) -> wasmtime::Result<Result<U, types::Error>>
    where
        T: Serialize,
        U: DeserializeOwned,
    {
        let mut c = self.cloud();
        c.set_caller(step);
        let out = f(&mut c);
        c.set_caller(None);
        drop(c);
        Ok(match out {
            Ok(v) => Ok(convert(v)?),
            Err(e) => Err(types::Error { code: e.code, message: e.message, retryable: e.retryable, resource: e.resource }),
        })
    }
}

/// The SDK's record types and the agent's are the same WIT records, both
/// with serde: one goes to the other through JSON.
pub(crate) fn convert<T: Serialize, U: DeserializeOwned>(v: T) -> wasmtime::Result<U> {
    serde_json::to_value(v)
        .and_then(serde_json::from_value)
        .map_err(|e| wasmtime::Error::msg(format!("the simulated cloud's answer does not fit the contract's types: {e}")))
}
