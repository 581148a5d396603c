//! How a cancel request reaches a running run: `drover cancel` writes the
//! request to the journal; the driver's watcher sees it and raises this
//! signal; the run stops at its next step boundary, or at once if it is in a
//! durable sleep or a retry backoff.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use drover_journal::CancelRequest;
use tokio::sync::Notify;

/// A run's cancel signal.
#[derive(Default)]
pub struct CancelSignal {
    raised: AtomicBool,
    request: Mutex<Option<CancelRequest>>,
    notify: Notify,
}

impl CancelSignal {
    /// Raises the signal (once; later requests change nothing).
    pub fn raise(&self, request: CancelRequest) {
        let mut r = self.request.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(request);
            self.raised.store(true, Ordering::SeqCst);
            self.notify.notify_waiters();
        }
    }

    /// The request, if the signal is raised.
    pub fn request(&self) -> Option<CancelRequest> {
        if !self.raised.load(Ordering::SeqCst) {
            return None;
        }
        self.request.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Completes when the signal is raised.
    pub async fn raised(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.raised.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

/// A run's pause request as its driver's watcher last read it from the
/// journal (`drover pause` / `unpause` write it there).
pub struct PauseSignal {
    state: tokio::sync::watch::Sender<Option<CancelRequest>>,
}

impl Default for PauseSignal {
    fn default() -> Self {
        PauseSignal { state: tokio::sync::watch::channel(None).0 }
    }
}

impl PauseSignal {
    /// The request as read now (`None`: not paused).
    pub fn set(&self, request: Option<CancelRequest>) {
        self.state.send_if_modified(|now| {
            let changed = *now != request;
            *now = request;
            changed
        });
    }

    /// The pause request standing, if any.
    pub fn request(&self) -> Option<CancelRequest> {
        self.state.borrow().clone()
    }

    /// Completes when no pause request stands.
    pub async fn cleared(&self) {
        let mut rx = self.state.subscribe();
        let _ = rx.wait_for(Option::is_none).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn wakes_waiters_and_keeps_the_first_request() {
        let s = Arc::new(CancelSignal::default());
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.raised().await }
        });
        tokio::task::yield_now().await;
        let req = |r: &str| CancelRequest { by: "me".into(), reason: r.into(), at: chrono::Utc::now() };
        s.raise(req("first"));
        s.raise(req("second"));
        waiter.await.unwrap();
        assert_eq!(s.request().unwrap().reason, "first");
        s.raised().await;
    }
}
