//! Polling with exponential backoff, jitter and a deadline.

use std::future::Future;
use std::time::{Duration, Instant};

/// Calls `probe` until it returns `Some`, sleeping 0.5 s, 1 s, 2 s ... up to
/// 15 s between calls (with up to 20% jitter), for at most `timeout`.
/// `None` means the deadline passed.
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
        tokio::time::sleep(sleep).await;
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
}
