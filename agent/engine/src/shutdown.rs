//! Stopping an agent without losing a step: once raised, runs stop at their
//! next step boundary or wait (steps in flight finish and are journaled),
//! record no outcome, and stay resumable by the next agent to start.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// The engine-wide shutdown signal (see [`crate::Engine::shutdown`]).
#[derive(Default)]
pub struct Shutdown {
    raised: AtomicBool,
    notify: Notify,
}

impl Shutdown {
    /// Raises the signal (for good).
    pub fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether it is raised.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// Completes when the signal is raised.
    pub async fn raised(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_raised() {
                return;
            }
            notified.await;
        }
    }
}
