//! Polling with exponential backoff, jitter and a deadline.

use std::future::Future;
use std::time::{Duration, Instant};

/// Calls `probe` until it returns `Some`, sleeping 0.5 s, 1 s, 2 s ... up to
/// 15 s between calls (with up to 20% jitter), for at most `timeout`.
/// `None` means the deadline passed. The call's turn among the agent's AWS
/// calls (when the engine lent it, [`crate::turns::lend`]) is given back
/// while it sleeps.
pub async fn poll<T, E, F, Fut>(timeout: Duration, mut probe: F) -> Result<Option<T>, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
{
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(500);
    loop {
        if let Some(v) = probe().await? {
            return Ok(Some(v));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        let jitter = 1.0 - 0.2 * rand::random::<f64>();
        let sleep = delay.mul_f64(jitter).min(deadline - now);
        crate::turns::sleep_without_turn(sleep).await;
        delay = (delay * 2).min(Duration::from_secs(15));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_value_or_none_at_the_deadline() {
        let mut n = 0;
        let r: Result<Option<u32>, ()> = poll(Duration::from_secs(5), || {
            n += 1;
            let v = (n == 2).then_some(7);
            async move { Ok(v) }
        })
        .await;
        assert_eq!(r, Ok(Some(7)));
        let r: Result<Option<u32>, ()> = poll(Duration::from_millis(300), || async { Ok(None) }).await;
        assert_eq!(r, Ok(None));
    }

    /// A turn of a cap of one: `held` says whether this call holds it.
    struct OneTurn {
        held: std::sync::atomic::AtomicBool,
        log: std::sync::Mutex<Vec<&'static str>>,
    }

    impl crate::turns::Turn for OneTurn {
        fn give_back(&self) {
            self.held.store(false, std::sync::atomic::Ordering::SeqCst);
            self.log.lock().unwrap().push("give back");
        }
        fn take_again(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
            Box::pin(async move {
                self.held.store(true, std::sync::atomic::Ordering::SeqCst);
                self.log.lock().unwrap().push("take again");
            })
        }
    }

    #[tokio::test]
    async fn a_waiter_holds_its_turn_only_while_it_polls() {
        let turn = std::sync::Arc::new(OneTurn { held: true.into(), log: Default::default() });
        let mut polls = 0;
        let r: Result<Option<u32>, ()> = crate::turns::lend(
            turn.clone(),
            poll(Duration::from_secs(60), || {
                polls += 1;
                let held = turn.held.load(std::sync::atomic::Ordering::SeqCst);
                let n = polls;
                async move {
                    assert!(held, "poll {n} without the turn");
                    Ok((n == 3).then_some(n))
                }
            }),
        )
        .await;
        assert_eq!(r, Ok(Some(3)));
        assert_eq!(*turn.log.lock().unwrap(), ["give back", "take again", "give back", "take again"], "the turn is given back for each sleep");
    }
}
