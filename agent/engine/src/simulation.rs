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
    crashes: Mutex<Crashes>,
    /// Raised when a driver pauses (see [`CrashPlan::pause_at`]).
    paused: tokio::sync::Notify,
    /// Raised to wake it.
    wake: tokio::sync::Notify,
}

/// Where a deterministic simulation crashes the agent: the crash points a
/// run passes are numbered from 0 across the whole schedule (restarts
/// included), in the order it passes them.
#[derive(Debug, Clone, Default)]
pub struct CrashPlan {
    /// Crash at these point numbers.
    pub at: Vec<u64>,
    /// A crash loop: crash at every pass of this point (`POINT:STEP`), up to
    /// this many times, as a process killed at the same place after every
    /// restart (an OOM in one step).
    pub repeat: Option<(String, u32)>,
    /// Pause the driver at this point number (a stalled VM, a long GC):
    /// another agent takes the run over meanwhile, then it wakes.
    pub pause_at: Option<u64>,
}

/// What passing a crash point comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Passed {
    /// Nothing: go on.
    Go,
    /// The agent crashes here (`POINT:STEP (point N)`).
    Crash(String),
    /// The driver pauses here until the simulation wakes it.
    Pause,
}

/// What is called when the agent crashes (the simulation freezes its
/// journal there, so that nothing after the crash is written).
pub type OnCrash = Box<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct Crashes {
    plan: CrashPlan,
    passed: u64,
    repeated: u32,
    /// The points passed, as `POINT:STEP`, in order.
    trail: Vec<String>,
    /// The retry policy's attempts of each step begun.
    steps: std::collections::BTreeMap<String, u32>,
    /// Set between a crash and the restart.
    down: bool,
    on_crash: Option<OnCrash>,
    /// Mutating capability calls that passed the gate.
    mutating: u64,
}

impl Simulation {
    /// The cloud `scenario` describes.
    pub fn new(scenario: &Scenario) -> Result<Arc<Simulation>, String> {
        // The run's randomness is seeded from the scenario's run id, so a
        // scenario replays the same way every time.
        let key = drover_replay::idempotency_key(&scenario.settings.run_id, "entropy");
        let seed = u64::from_str_radix(key.get(..16).unwrap_or("0"), 16).unwrap_or(0);
        Ok(Arc::new(Simulation {
            cloud: Mutex::new(Cloud::new(scenario)?),
            seed,
            crashes: Mutex::default(),
            paused: tokio::sync::Notify::new(),
            wake: tokio::sync::Notify::new(),
        }))
    }

    /// The cloud `scenario` describes, with the run's randomness seeded from
    /// `seed` and the agent crashing where `plan` says; `on_crash` is called
    /// at each crash.
    pub fn with_crashes(scenario: &Scenario, seed: u64, plan: CrashPlan, on_crash: OnCrash) -> Result<Arc<Simulation>, String> {
        let crashes = Crashes { plan, on_crash: Some(on_crash), ..Crashes::default() };
        Ok(Arc::new(Simulation {
            cloud: Mutex::new(Cloud::new(scenario)?),
            seed,
            crashes: Mutex::new(crashes),
            paused: tokio::sync::Notify::new(),
            wake: tokio::sync::Notify::new(),
        }))
    }

    fn crashes(&self) -> MutexGuard<'_, Crashes> {
        self.crashes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Passes crash point `point` in step `step` (`-` or empty outside one):
    /// what the schedule does there.
    pub fn crash_point(&self, point: &str, step: &str) -> Passed {
        let mut c = self.crashes();
        if c.down {
            // Crashed already: whatever still runs on the way out is gone.
            return Passed::Crash("after the crash".into());
        }
        let name = format!("{point}:{}", if step.is_empty() { "-" } else { step });
        let n = c.passed;
        c.passed += 1;
        c.trail.push(name.clone());
        if c.plan.pause_at == Some(n) {
            return Passed::Pause;
        }
        let repeat = match &c.plan.repeat {
            Some((at, times)) => *at == name && c.repeated < *times,
            None => false,
        };
        if repeat {
            c.repeated += 1;
        }
        if !(repeat || c.plan.at.contains(&n)) {
            return Passed::Go;
        }
        c.down = true;
        if let Some(f) = &c.on_crash {
            f();
        }
        Passed::Crash(format!("{name} (point {n})"))
    }

    /// Pauses the calling driver until [`Simulation::wake`].
    pub(crate) async fn pause(&self) {
        self.paused.notify_one();
        self.wake.notified().await;
    }

    /// Resolves when a driver has paused.
    pub async fn paused(&self) {
        self.paused.notified().await;
    }

    /// Wakes the paused driver.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Counts a mutating capability call that passed the gate.
    pub(crate) fn note_mutating_call(&self) {
        self.crashes().mutating += 1;
    }

    /// Mutating capability calls that passed the gate so far.
    pub fn mutating_calls(&self) -> u64 {
        self.crashes().mutating
    }

    /// Notes that step `key` began, allowed `max_attempts` attempts.
    pub(crate) fn note_step(&self, key: &str, max_attempts: u32) {
        self.crashes().steps.insert(key.to_string(), max_attempts.max(1));
    }

    /// The steps begun, with the attempts their retry policy allows.
    pub fn steps(&self) -> std::collections::BTreeMap<String, u32> {
        self.crashes().steps.clone()
    }

    /// Whether the agent is down (crashed and not restarted).
    pub fn crashed(&self) -> bool {
        self.crashes().down
    }

    /// The agent starts again after a crash.
    pub fn restart(&self) {
        self.crashes().down = false;
    }

    /// The crash points passed so far, in order, as `POINT:STEP`.
    pub fn trail(&self) -> Vec<String> {
        self.crashes().trail.clone()
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
