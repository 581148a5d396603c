//! drover's durable runbook engine.
//!
//! Runbooks are WebAssembly components targeting the `drover:runbook` world
//! (`wit/runbook.wit`). The engine loads them ([`Engine::load`]: validation,
//! compile cache, `describe()`), and drives runs ([`Engine::start`],
//! [`Engine::resume`]): one wasmtime `Store` per run, with memory and CPU
//! limits, every journaled call checked and recorded through the
//! [`drover_journal::Journal`].
//!
//! Module map:
//! - [`durable`]: where a step gets journaled, and how a replay is checked.
//! - `host`: the host side of each WIT import (thin, over `durable`);
//!   `capabilities`: the host side of the AWS interfaces (over `drover-aws`).
//! - `sandbox`: the deny-all WASI a runbook gets.
//! - `artifacts`: component bytes by digest, and the compile cache.
//! - `loader`: validating a component and reading its description.
//! - `driver`: claiming a run, executing it, running its undos and cleanups,
//!   recording how it ended; `cancel`: how a cancel request reaches it;
//!   [`lease`]: keeping the claim on a run in a shared store, and the
//!   fencing check before every side effect.
//! - [`secrets`]: secret parameters and the mask over runbook output.
//! - [`policy`]: what a runbook declared, what the operator granted, and the
//!   check of every capability call; [`audit`]: the log of those decisions;
//!   `limits`: the resource limits and the error that stops a run.
//! - [`readiness`]: would a run succeed now (findings with fixes).
//! - [`failpoints`]: crash injection for tests and game-days.
//! - [`simulation`]: the simulated cloud and clock of `drover test`;
//!   [`simulate`]: the deterministic simulation over seeded schedules of
//!   crashes and faults (`drover simulate`).

mod artifacts;
pub mod audit;
pub(crate) mod backend;
mod bindings;
mod cancel;
mod capabilities;
mod convert;
mod driver;
pub mod durable;
mod error;
pub mod events;
pub mod failpoints;
mod host;
mod host_calls;
mod info;
pub mod lease;
mod limits;
mod loader;
pub mod plan;
pub mod policy;
pub mod readiness;
mod reads;
pub mod redrive;
mod sandbox;
pub mod secrets;
mod sections;
mod shutdown;
pub mod simulate;
pub mod simulation;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use bindings::{CONTRACT_PACKAGE, CONTRACT_VERSION};
pub use driver::{Admitted, DryRun, RunRequest};
/// The rules of a step held for an operator (gate names, skip outcomes).
pub use drover_replay::held;
pub use error::EngineError;
pub use events::{Observer, RunEvent};
pub use info::{CapabilityInfo, ParamInfo, ParamType, RunbookInfo};
pub use limits::{LimitExceeded, Limits};
pub use loader::{LoadedRunbook, check_header};
pub use plan::PlannedChange;
pub use policy::Policy;
pub use sections::entries_with_branches;

use artifacts::Artifacts;
use host::HostState;
use wasmtime::component::{HasSelf, Linker};

/// How often the epoch advances; the unit of the CPU budget.
/// Called with each run's `run` span before the run executes, with the run:
/// a tracing exporter sets the span's parent from the W3C trace context the
/// run was started with (`origin.traceparent`), so that an incident's trace
/// continues into the failover it triggered.
pub type SpanHook = Arc<dyn Fn(&tracing::Span, &drover_journal::RunRecord) + Send + Sync>;

pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The engine: a wasmtime engine with drover's imports linked, the compile
/// cache, and the limits every run gets.
pub struct Engine {
    wasm: wasmtime::Engine,
    linker: Linker<HostState>,
    artifacts: Artifacts,
    limits: Limits,
    ticker_stop: Arc<AtomicBool>,
    aws: capabilities::AwsCell,
    policy: Arc<Policy>,
    audit: Arc<audit::AuditLog>,
    host_calls: Arc<host_calls::HostCalls>,
    shutdown: Arc<shutdown::Shutdown>,
    span_hook: Option<SpanHook>,
    /// Under `drover test`: the simulated cloud every run calls instead of AWS.
    sim: Option<Arc<simulation::Simulation>>,
}

impl Engine {
    /// An engine keeping components and compiled code under `home`.
    pub fn new(home: &Path, limits: Limits) -> Result<Self, EngineError> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(limits.stack_bytes);
        // The fiber a runbook runs on holds its wasm stack plus the host's frames.
        config.async_stack_size(limits.stack_bytes + (3 << 20));
        let wasm = wasmtime::Engine::new(&config).map_err(|e| EngineError::Setup(format!("{e:#}")))?;
        let mut linker = Linker::new(&wasm);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| EngineError::Setup(format!("{e:#}")))?;
        bindings::Runbook::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s).map_err(|e| EngineError::Setup(format!("{e:#}")))?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        {
            let engine = wasm.clone();
            let stop = ticker_stop.clone();
            std::thread::Builder::new()
                .name("drover-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| EngineError::Setup(format!("cannot start the epoch thread: {e}")))?;
        }
        let artifacts = Artifacts::new(home, &wasm);
        let host_calls = host_calls::HostCalls::new(limits.max_host_calls);
        Ok(Engine {
            wasm,
            linker,
            artifacts,
            limits,
            ticker_stop,
            aws: Default::default(),
            policy: Default::default(),
            audit: Arc::new(audit::AuditLog::new(home.join("audit.jsonl"))),
            host_calls,
            shutdown: Default::default(),
            span_hook: None,
            sim: None,
        })
    }

    /// Sets the operator's grants (see [`policy`]); without them a runbook
    /// gets no capability at all.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// Sets the hook every run's span goes through (see [`SpanHook`]).
    pub fn with_span_hook(mut self, hook: SpanHook) -> Self {
        self.span_hook = Some(hook);
        self
    }

    /// The operator's grants.
    /// Runs every runbook against `sim` instead of AWS, on its time
    /// (`drover test`). AWS is never reached: the clients point nowhere.
    pub fn with_simulation(mut self, sim: Arc<simulation::Simulation>) -> Self {
        self.aws = Arc::new(tokio::sync::OnceCell::new_with(Some(Arc::new(drover_aws::Clients::unreachable()))));
        self.sim = Some(sim);
        self
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Stops every run this engine drives at its next step boundary or wait:
    /// steps in flight finish and are journaled, no outcome is recorded, and
    /// each run returns [`EngineError::Suspended`], resumable as it stands.
    pub fn shutdown(&self) {
        self.shutdown.raise();
    }

    /// The audit log of capability calls (`audit.jsonl` in the home).
    pub fn audit_path(&self) -> &Path {
        self.audit.path()
    }

    /// The audit log itself, for the operators' controls made in this
    /// process (one writer thread for all of them and the runs' calls).
    pub fn audit_log(&self) -> &Arc<audit::AuditLog> {
        &self.audit
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}
