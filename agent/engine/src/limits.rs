//! The resource limits every run gets, and the error that stops a run which
//! exceeds one. The limits are enforced where they bite: memory by the
//! store's limiter, CPU by epoch interruption (`driver`), wall clock by a
//! deadline raced against the runbook (`driver`), stack depth by wasmtime,
//! step outputs and log bytes by the host (`durable`, `host`), concurrent
//! host calls by a semaphore shared by every run of the engine.

use std::time::Duration;

/// Per-run resource limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory per runbook instance, in bytes (`memory_mib`).
    pub memory_bytes: usize,
    /// CPU time the runbook's own code may use in a run (time inside host
    /// calls, such as durable sleeps or AWS calls, does not count)
    /// (`cpu_seconds_per_run`).
    pub cpu_time: Duration,
    /// CPU time of the runbook's own code within one step attempt
    /// (`cpu_seconds_per_step`).
    pub step_cpu_time: Duration,
    /// Wall-clock time of one step attempt, host calls included
    /// (`step_timeout_seconds`).
    pub step_timeout: Duration,
    /// Wall-clock time of a run from its creation, crashes and waits included
    /// (`run_timeout_seconds`). Undos and cleanups still run after it.
    pub run_timeout: Duration,
    /// WebAssembly stack, in bytes (`stack_kib`): deep recursion traps here.
    pub stack_bytes: usize,
    /// Largest step output, in bytes of JSON (`output_kib`).
    pub max_output_bytes: usize,
    /// Log bytes (messages and fields) a run may write (`log_kib`).
    pub max_log_bytes: usize,
    /// Capability calls (AWS) in flight at once, across every run of the
    /// agent (`concurrent_host_calls`); more wait their turn.
    pub max_host_calls: usize,
    /// Branches a run may start, all its parallel sections together
    /// (`max_branches`): a section asking for more is refused.
    pub max_branches: usize,
    /// Branches of one section driven at once (`concurrent_branches`); the
    /// others start as running ones end.
    pub concurrent_branches: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            cpu_time: Duration::from_secs(60),
            step_cpu_time: Duration::from_secs(30),
            step_timeout: Duration::from_secs(3600),
            run_timeout: Duration::from_secs(24 * 3600),
            stack_bytes: 1 << 20,
            max_output_bytes: 1 << 20,
            max_log_bytes: 4 << 20,
            max_host_calls: 32,
            max_branches: drover_replay::sections::DEFAULT_MAX_BRANCHES,
            concurrent_branches: 32,
        }
    }
}

/// A run went past one of its limits and was stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the runbook {what} (limit {name} = {value}); it was stopped. Fix the runbook, or raise {name} under [limits] in the agent's configuration")]
pub struct LimitExceeded {
    /// The limit's configuration name.
    pub name: &'static str,
    /// What the runbook did, e.g. "used more than its CPU budget of 300 ms".
    pub what: String,
    /// The limit's value, with its unit.
    pub value: String,
}

impl LimitExceeded {
    /// The CPU budget of the run.
    pub fn cpu_run(budget: Duration) -> Self {
        LimitExceeded { name: "cpu_seconds_per_run", what: format!("used more than its CPU budget of {} ms", budget.as_millis()), value: secs(budget) }
    }

    /// The CPU budget of one step.
    pub fn cpu_step(budget: Duration, step: Option<&str>) -> Self {
        LimitExceeded {
            name: "cpu_seconds_per_step",
            what: format!("used more than the CPU budget of {} ms in step '{}'", budget.as_millis(), step.unwrap_or("?")),
            value: secs(budget),
        }
    }

    /// The wall-clock time of one step.
    pub fn step_timeout(limit: Duration, step: &str) -> Self {
        LimitExceeded { name: "step_timeout_seconds", what: format!("spent more than {} in step '{step}'", human(limit)), value: secs(limit) }
    }

    /// The wall-clock time of the run.
    pub fn run_timeout(limit: Duration) -> Self {
        LimitExceeded { name: "run_timeout_seconds", what: format!("ran for more than {}", human(limit)), value: secs(limit) }
    }

    /// The output of one step.
    pub fn output(step: &str, bytes: usize, limit: usize) -> Self {
        LimitExceeded {
            name: "output_kib",
            what: format!("returned {bytes} bytes from step '{step}', more than the limit of {limit} bytes"),
            value: format!("{}", limit / 1024),
        }
    }

    /// The log bytes of the run.
    pub fn log_bytes(limit: usize) -> Self {
        LimitExceeded { name: "log_kib", what: format!("wrote more than {limit} bytes of log"), value: format!("{}", limit / 1024) }
    }
}

fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

fn human(d: Duration) -> String {
    if d.as_secs() >= 1 { format!("{} s", d.as_secs_f64()) } else { format!("{} ms", d.as_millis()) }
}

/// The step attempt a run is in, and since when: shared by the run's durable
/// state (which starts and stops it) and the driver (which enforces the step
/// limits against it while the runbook runs).
#[derive(Debug, Clone, Default)]
pub struct StepClock(std::sync::Arc<(std::sync::Mutex<ClockState>, tokio::sync::Notify)>);

#[derive(Debug, Default)]
struct ClockState {
    step: Option<(String, std::time::Instant)>,
    generation: u64,
}

impl StepClock {
    /// An attempt of step `key` starts now.
    pub fn start(&self, key: &str) {
        self.set(Some((key.to_string(), std::time::Instant::now())));
    }

    /// No step attempt is running.
    pub fn stop(&self) {
        self.set(None);
    }

    fn set(&self, step: Option<(String, std::time::Instant)>) {
        {
            let mut s = self.0.0.lock().unwrap_or_else(|p| p.into_inner());
            s.step = step;
            s.generation += 1;
        }
        self.0.1.notify_waiters();
    }

    /// The running attempt (step key, start) and a number that changes with
    /// every start and stop.
    pub fn current(&self) -> (Option<(String, std::time::Instant)>, u64) {
        let s = self.0.0.lock().unwrap_or_else(|p| p.into_inner());
        (s.step.clone(), s.generation)
    }

    /// Resolves at the next start or stop after this call (create it before
    /// reading [`current`](Self::current) so that no change is missed).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.0.1.notified()
    }
}
