//! Non-idempotent creates, sent so that a lost answer never makes a second
//! resource.
//!
//! `CreateSnapshot`, `CopySnapshot`, `CreateImage`, `CopyImage`,
//! `RestoreDBInstanceFromDBSnapshot` and a Route 53 `DELETE` are not
//! idempotent: when AWS executed the request but the answer was lost (a
//! timeout, a 5xx, a dropped connection), the SDK's own retry would send it
//! again and make a duplicate, or fail although the resource exists. So these
//! requests go out with the SDK's retries off ([`sdk_retries`], from the one list in `drover_cloud::resend`), and every
//! attempt goes through the same lookup-and-adopt path as a step retry
//! ([`create_or_adopt`]): look the resource up by its name or tag, adopt
//! what is there, and only then send the request again.

use std::future::Future;
use std::time::Duration;

use aws_config::retry::RetryConfig;

use crate::CapabilityError;

/// Attempts of one create (as many as the SDK would make for an idempotent call).
const ATTEMPTS: u32 = 5;

/// The retry configuration of a request of `operation` (`ec2.snapshot-volume`):
/// off for one that must go out once per attempt (`drover_cloud::resend`).
pub(crate) fn sdk_retries(operation: &str) -> RetryConfig {
    if drover_cloud::resend::sent_once(operation) { RetryConfig::disabled() } else { RetryConfig::standard() }
}

/// Looks the resource up (`lookup`) and adopts it; else sends the create
/// (`send`, with the SDK's retries off). After a failed send it looks again:
/// a request that took effect although its answer was lost is adopted, not
/// repeated. A retryable failure (throttling, 5xx, timeout) is sent again
/// after a backoff, up to [`ATTEMPTS`] times; the last error is returned.
pub(crate) async fn create_or_adopt<T, L, LF, S, SF>(mut lookup: L, mut send: S) -> Result<T, CapabilityError>
where
    L: FnMut() -> LF,
    LF: Future<Output = Result<Option<T>, CapabilityError>>,
    S: FnMut() -> SF,
    SF: Future<Output = Result<T, CapabilityError>>,
{
    if let Some(found) = lookup().await? {
        return Ok(found);
    }
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        let err = match send().await {
            Ok(made) => return Ok(made),
            Err(e) => e,
        };
        // The request may have taken effect: look before anything else.
        match lookup().await {
            Ok(Some(found)) => {
                tracing::info!(operation = err.operation, resource = %err.resource, error = %err, "the request took effect although its answer was lost; adopting what it made");
                return Ok(found);
            }
            Ok(None) => {}
            Err(lookup_err) => {
                tracing::warn!(operation = err.operation, resource = %err.resource, error = %lookup_err, "could not look up what a failed request may have made")
            }
        }
        if !err.retryable || attempt >= ATTEMPTS {
            return Err(err);
        }
        attempt += 1;
        let jitter = 1.0 - 0.2 * rand::random::<f64>();
        tokio::time::sleep(delay.mul_f64(jitter)).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn lost() -> CapabilityError {
        CapabilityError::new("ec2", "CreateSnapshot", "us-east-1", "snap", "ServiceUnavailable", "lost").retryable()
    }

    #[tokio::test]
    async fn a_create_whose_answer_was_lost_is_adopted_not_sent_again() {
        let (made, sent) = (Cell::new(false), Cell::new(0));
        let got = create_or_adopt(
            || async { Ok(made.get().then_some("snap-1")) },
            || async {
                sent.set(sent.get() + 1);
                made.set(true);
                Err(lost())
            },
        )
        .await;
        assert_eq!((got.unwrap(), sent.get()), ("snap-1", 1));
    }

    #[tokio::test]
    async fn what_exists_is_adopted_and_a_refusal_is_returned_at_once() {
        let sent = Cell::new(0);
        let got = create_or_adopt(|| async { Ok(Some(7)) }, || async { Err(lost()) }).await;
        assert_eq!(got.unwrap(), 7);
        let got: Result<u32, _> = create_or_adopt(
            || async { Ok(None) },
            || async {
                sent.set(sent.get() + 1);
                Err(CapabilityError::new("ec2", "CreateSnapshot", "us-east-1", "snap", "InvalidVolume.NotFound", "no volume"))
            },
        )
        .await;
        assert_eq!((got.unwrap_err().code.as_str(), sent.get()), ("InvalidVolume.NotFound", 1));
    }
}
