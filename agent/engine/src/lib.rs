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
//!   recording how it ended; `cancel`: how a cancel request reaches it.
//! - [`secrets`]: secret parameters and the mask over runbook output.
//! - [`failpoints`]: crash injection for tests and game-days.

mod artifacts;
mod bindings;
mod capabilities;
mod cancel;
mod driver;
pub mod durable;
mod error;
pub mod events;
pub mod failpoints;
mod host;
mod info;
mod loader;
pub mod plan;
mod sandbox;
pub mod secrets;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use bindings::{CONTRACT_PACKAGE, CONTRACT_VERSION};
pub use driver::{DryRun, RunRequest};
pub use error::EngineError;
pub use events::{Observer, RunEvent};
pub use info::{CapabilityInfo, ParamInfo, ParamType, RunbookInfo};
pub use loader::LoadedRunbook;
pub use plan::PlannedChange;

use artifacts::Artifacts;
use host::HostState;
use wasmtime::component::{HasSelf, Linker};

/// How often the epoch advances; the unit of the CPU budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Per-run resource limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory per runbook instance, in bytes.
    pub memory_bytes: usize,
    /// CPU time the runbook's own code may use in a run (time inside host
    /// calls, such as durable sleeps or AWS calls, does not count).
    pub cpu_time: Duration,
    /// Largest step output, in bytes of JSON.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory_bytes: 256 << 20, cpu_time: Duration::from_secs(60), max_output_bytes: 1 << 20 }
    }
}

/// The engine: a wasmtime engine with drover's imports linked, the compile
/// cache, and the limits every run gets.
pub struct Engine {
    wasm: wasmtime::Engine,
    linker: Linker<HostState>,
    artifacts: Artifacts,
    limits: Limits,
    ticker_stop: Arc<AtomicBool>,
    aws: capabilities::AwsCell,
}

impl Engine {
    /// An engine keeping components and compiled code under `home`.
    pub fn new(home: &Path, limits: Limits) -> Result<Self, EngineError> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(1 << 20);
        config.async_stack_size(4 << 20);
        let wasm = wasmtime::Engine::new(&config).map_err(|e| EngineError::Setup(format!("{e:#}")))?;
        let mut linker = Linker::new(&wasm);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| EngineError::Setup(format!("{e:#}")))?;
        bindings::Runbook::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| EngineError::Setup(format!("{e:#}")))?;
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
        Ok(Engine { wasm, linker, artifacts, limits, ticker_stop, aws: Default::default() })
    }

}

impl Drop for Engine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}
