//! The WASI a runbook gets: linked so that ordinary language runtimes start,
//! granting nothing.
//!
//! No preopened directories, no environment, no arguments, no stdin, no
//! network (every socket address is denied, name lookup is off). stdout is
//! discarded; stderr is kept in a bounded buffer so that a panic message can
//! be reported. The WASI clocks are frozen at the run's creation time (a
//! monotonic clock that advances one microsecond per read), and WASI random is
//! a generator seeded from the run id: deterministic, so replay stays exact.
//! Runbooks that need time or randomness use the journaled `drover:runbook`
//! imports instead.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder};

/// Bytes of stderr kept per run (a panic message and some context).
pub const STDERR_CAPACITY: usize = 64 * 1024;

struct FrozenWallClock(Duration);

impl HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        self.0
    }
}

struct CountingMonotonicClock(std::sync::atomic::AtomicU64);

impl HostMonotonicClock for CountingMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000
    }

    fn now(&self) -> u64 {
        self.0.fetch_add(1_000, std::sync::atomic::Ordering::Relaxed)
    }
}

fn seeded(run_id: &str, purpose: &str) -> StdRng {
    let mut h = Sha256::new();
    h.update(b"drover/wasi-random/v1\0");
    h.update(purpose.as_bytes());
    h.update(b"\0");
    h.update(run_id.as_bytes());
    StdRng::from_seed(h.finalize().into())
}

/// A deny-all WASI context for run `run_id`, created at `created_unix`
/// (seconds). Returns it with the pipe that collects the guest's stderr.
pub fn wasi_for_run(run_id: &str, created_unix: i64) -> (WasiCtx, MemoryOutputPipe) {
    let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
    let mut b = WasiCtxBuilder::new();
    b.stderr(stderr.clone())
        .wall_clock(FrozenWallClock(Duration::from_secs(created_unix.max(0) as u64)))
        .monotonic_clock(CountingMonotonicClock(Default::default()))
        .secure_random(seeded(run_id, "secure"))
        .insecure_random(seeded(run_id, "insecure"))
        .insecure_random_seed(u128::from_le_bytes(seeded_bytes(run_id)))
        .allow_ip_name_lookup(false)
        .allow_tcp(false)
        .allow_udp(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    (b.build(), stderr)
}

fn seeded_bytes(run_id: &str) -> [u8; 16] {
    let d = Sha256::digest(format!("drover/wasi-seed/v1\0{run_id}").as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// The last `max` bytes of a guest's stderr, as text.
pub fn stderr_tail(pipe: &MemoryOutputPipe, max: usize) -> String {
    let bytes = pipe.contents();
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).trim().to_string()
}
