//! The driver's hold on its run: the lease (both stores' claims are leases)
//! is renewed in the background while the run is driven, and a driver that
//! cannot tell it still holds the lease does nothing more.
//!
//! Two checks stand before every side effect outside the store (a mutating
//! AWS call), made last, after every wait that precedes the request
//! ([`crate::durable::Durable::check_fence`], then the local one); the
//! local one is also made before the attempt's begin is committed
//! ([`crate::durable::Durable::before_side_effect`]):
//! - [`LeaseGuard::check`] ([`crate::durable::Durable::check_held`]), local
//!   and instant: the lease was lost, or has not
//!   been renewed within its time less a safety margin, measured on the
//!   boot-time clock ([`now`]), which keeps counting while the process is
//!   paused (SIGSTOP, a long GC) and while the machine is suspended (a
//!   frozen VM), so a driver waking from a pause knows at once that it may
//!   no longer act, even after waiting for the store or for a turn among
//!   the agent's AWS calls;
//! - [`drover_journal::Journal::check_lease`], a strongly consistent read of
//!   the run's fence in the store.
//!
//! Every write to the store is itself conditional on the fence. What no
//! check can close is the moment between the last check and the AWS request
//! leaving the process; AWS takes no fencing token. The step's idempotency
//! key (the same for the next driver) makes a request sent twice adopt what
//! the first one made.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drover_journal::{Journal, JournalError, Lease};

/// The part of its lease a driver gives up as a safety margin for clocks
/// (the store compares expiry times written by one agent's clock with
/// another's): a lease of 15 s is used for 12 s after each renewal.
const MARGIN_DIVISOR: u32 = 5;

/// A point on the boot-time clock (`CLOCK_BOOTTIME`): like `Instant`, but
/// it also counts the time the machine spent suspended, which a lease does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BootInstant(Duration);

impl std::ops::Add<Duration> for BootInstant {
    type Output = BootInstant;
    fn add(self, d: Duration) -> BootInstant {
        BootInstant(self.0 + d)
    }
}

impl std::ops::Sub<Duration> for BootInstant {
    type Output = BootInstant;
    fn sub(self, d: Duration) -> BootInstant {
        BootInstant(self.0.saturating_sub(d))
    }
}

/// Now, on the boot-time clock.
pub fn now() -> BootInstant {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we pass; CLOCK_BOOTTIME exists on Linux >= 2.6.39.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_BOOTTIME) failed");
    BootInstant(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[derive(Debug)]
struct State {
    lease: Lease,
    /// Until when this driver may act, if the lease expires at all.
    valid_until: Mutex<Option<BootInstant>>,
    lost: AtomicBool,
    /// Wakes [`LeaseGuard::lost`] when the keeper loses the lease.
    lost_now: tokio::sync::Notify,
    ttl: Option<Duration>,
}

/// The local view of a lease, shared by the driver and its keeper.
#[derive(Debug, Clone)]
pub struct LeaseGuard(Arc<State>);

impl LeaseGuard {
    /// A guard for `lease`, claimed at `claimed_at`, lasting `ttl` (none: it
    /// lasts as long as the process).
    pub fn new(lease: Lease, claimed_at: BootInstant, ttl: Option<Duration>) -> Self {
        LeaseGuard(Arc::new(State {
            lease,
            valid_until: Mutex::new(ttl.map(|t| claimed_at + usable(t))),
            lost: AtomicBool::new(false),
            lost_now: tokio::sync::Notify::new(),
            ttl,
        }))
    }

    /// How long the lease lasts unless renewed (`None`: as long as the process).
    pub fn ttl(&self) -> Option<Duration> {
        self.0.ttl
    }

    /// Resolves once this driver may no longer act: the lease was lost, or
    /// ran out without a renewal (the reason [`LeaseGuard::check`] gives).
    pub async fn lost(&self) -> JournalError {
        loop {
            let lost_now = self.0.lost_now.notified();
            tokio::pin!(lost_now);
            lost_now.as_mut().enable();
            if let Err(e) = self.check() {
                return e;
            }
            let until = *self.0.valid_until.lock().unwrap_or_else(|p| p.into_inner());
            match until {
                // Renewals move it: look again when it would have run out.
                Some(until) => {
                    let left = until.0.saturating_sub(now().0) + Duration::from_millis(1);
                    tokio::select! {
                        _ = lost_now => {}
                        _ = tokio::time::sleep(left) => {}
                    }
                }
                None => lost_now.await,
            }
        }
    }

    /// `Ok` while this driver may act on the run.
    pub fn check(&self) -> Result<(), JournalError> {
        let (run_id, fence) = (self.0.lease.run_id.clone(), self.0.lease.fence);
        if self.0.lost.load(Ordering::Acquire) {
            return Err(JournalError::LeaseLost { run_id, fence });
        }
        match *self.0.valid_until.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(until) if now() >= until => Err(JournalError::LeaseExpired { run_id, fence }),
            _ => Ok(()),
        }
    }

    fn renewed(&self, sent_at: BootInstant, ttl: Duration) {
        *self.0.valid_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(sent_at + usable(ttl));
    }

    fn lose(&self) {
        self.0.lost.store(true, Ordering::Release);
        self.0.lost_now.notify_waiters();
    }
}

/// The run's lease, as the AWS clients of its mutating calls check it
/// before every attempt on the wire (`drover_aws::fence`).
impl drover_aws::fence::Fence for LeaseGuard {
    fn check(&self) -> Result<(), String> {
        LeaseGuard::check(self).map_err(|e| e.to_string())
    }

    fn lost(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send + 'static>> {
        let guard = self.clone();
        Box::pin(async move { guard.lost().await.to_string() })
    }
}

fn usable(ttl: Duration) -> Duration {
    ttl - ttl / MARGIN_DIVISOR
}

/// Renews a lease every third of its time until dropped.
pub struct LeaseKeeper {
    guard: LeaseGuard,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl LeaseKeeper {
    /// Starts keeping `lease` (claimed at `claimed_at`) in `journal`; keeps
    /// nothing when the store's claims do not expire.
    pub fn start(journal: Arc<dyn Journal>, lease: Lease, claimed_at: BootInstant) -> Self {
        let ttl = journal.lease_ttl();
        let guard = LeaseGuard::new(lease.clone(), claimed_at, ttl);
        let task = ttl.map(|ttl| tokio::spawn(renew(journal, lease, ttl, guard.clone())));
        LeaseKeeper { guard, task }
    }

    /// The guard the driver checks.
    pub fn guard(&self) -> LeaseGuard {
        self.guard.clone()
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn renew(journal: Arc<dyn Journal>, lease: Lease, ttl: Duration, guard: LeaseGuard) {
    let every = ttl / 3;
    let mut next = tokio::time::Instant::now() + every;
    loop {
        tokio::time::sleep_until(next).await;
        let sent = now();
        let sent_tokio = tokio::time::Instant::now();
        match journal.renew(&lease).await {
            Ok(()) => {
                guard.renewed(sent, ttl);
                next = sent_tokio + every;
            }
            Err(e @ (JournalError::LeaseLost { .. } | JournalError::UnknownRun(_))) => {
                tracing::warn!(run_id = %lease.run_id, fence = lease.fence, error = %e, "lost the lease on the run: another agent drives it now; this driver stops");
                guard.lose();
                return;
            }
            Err(e) => {
                // The lease still runs out on time if this keeps failing.
                tracing::warn!(run_id = %lease.run_id, error = %e, "could not renew the lease; retrying");
                next = tokio::time::Instant::now() + (ttl / 10).max(Duration::from_millis(100));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease() -> Lease {
        Lease { run_id: "r".into(), fence: 3 }
    }

    #[test]
    fn a_lease_not_renewed_in_time_stops_the_driver() {
        let g = LeaseGuard::new(lease(), now() - Duration::from_secs(9), Some(Duration::from_secs(10)));
        assert!(matches!(g.check(), Err(JournalError::LeaseExpired { fence: 3, .. })), "8 s of a 10 s lease are usable");
        g.renewed(now(), Duration::from_secs(10));
        g.check().unwrap();
        g.lose();
        assert!(matches!(g.check(), Err(JournalError::LeaseLost { .. })));
    }

    #[tokio::test]
    async fn lost_resolves_when_the_lease_is_lost_or_runs_out() {
        let g = LeaseGuard::new(lease(), now(), None);
        let waiting = tokio::spawn({
            let g = g.clone();
            async move { g.lost().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        g.lose();
        assert!(matches!(waiting.await.unwrap(), JournalError::LeaseLost { fence: 3, .. }));
        let g = LeaseGuard::new(lease(), now() - Duration::from_secs(9), Some(Duration::from_secs(10)));
        assert!(matches!(g.lost().await, JournalError::LeaseExpired { .. }));
        assert_eq!(g.ttl(), Some(Duration::from_secs(10)));
    }

    #[test]
    fn a_lease_without_expiry_holds_until_lost() {
        let g = LeaseGuard::new(lease(), now() - Duration::from_secs(3600), None);
        g.check().unwrap();
        g.lose();
        assert!(g.check().is_err());
    }
}
