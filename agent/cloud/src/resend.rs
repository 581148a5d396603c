//! Which requests the AWS SDK may send again on its own.
//!
//! The SDK retries a request after a throttle, a 5xx or a timeout. For most
//! operations that is harmless: a describe reads again, a promotion or a
//! Route 53 UPSERT of the same values changes nothing twice. A few creates
//! are not idempotent: when AWS executed the request but the answer was
//! lost, a resend makes a duplicate (an EBS snapshot, an AMI, a copy) or
//! fails although the resource exists (a restore, a Route 53 DELETE). Those
//! go out once per attempt, with the SDK's retries off, and every attempt
//! looks the resource up before sending (`drover-aws`'s `once` module).
//!
//! The AWS backend sets each request's retries from [`sent_once`]; the
//! simulated cloud resends a request blind (as the SDK would) only when
//! [`sent_once`] allows it. One rule for both, so the simulation tests it.

/// Operations (`service.operation`, the WIT names) that must go out once per
/// attempt.
pub const SENT_ONCE: &[&str] =
    &["ec2.snapshot-volume", "ec2.copy-snapshot", "ec2.create-image", "ec2.copy-image", "rds.restore-from-snapshot", "route53.delete-cname"];

/// Whether `operation` (`ec2.snapshot-volume`) must go out with the SDK's
/// own retries off.
pub fn sent_once(operation: &str) -> bool {
    // The power test's switch: before the fix, the SDK resent every request.
    if drover_replay::revert::reverted(drover_replay::revert::Fix::NoBlindResend) {
        return false;
    }
    SENT_ONCE.contains(&operation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_go_out_once_and_reads_may_be_resent() {
        assert!(sent_once("ec2.snapshot-volume"));
        assert!(sent_once("route53.delete-cname"));
        assert!(!sent_once("rds.describe-instance"));
        assert!(!sent_once("route53.set-weights"));
    }
}
