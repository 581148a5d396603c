//! Amazon SNS, for the agent's own use (never a runbook's): confirming the
//! HTTP(S) subscription through which CloudWatch alarms reach an incident
//! trigger. The confirmation goes through the SNS API with the agent's
//! credentials (`ConfirmSubscription`, in the topic's region), never by
//! fetching the `SubscribeURL` a request carries.

use crate::error::from_sdk;
use crate::{CapabilityError, Clients};

/// The region of an SNS topic ARN (`arn:aws:sns:REGION:ACCOUNT:NAME`).
pub fn topic_region(topic_arn: &str) -> Option<&str> {
    let mut parts = topic_arn.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("arn"), Some(_), Some("sns"), Some(region)) if !region.is_empty() => Some(region),
        _ => None,
    }
}

/// Confirms the subscription `token` was sent for, on `topic_arn`; returns
/// the subscription's ARN.
pub async fn confirm_subscription(c: &Clients, topic_arn: &str, token: &str) -> Result<String, CapabilityError> {
    let region = topic_region(topic_arn).unwrap_or("us-east-1");
    let out = c
        .sns(region)
        .confirm_subscription()
        .topic_arn(topic_arn)
        .token(token)
        .send()
        .await
        .map_err(|e| from_sdk("sns", "ConfirmSubscription", region, topic_arn, e))?;
    Ok(out.subscription_arn().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_of_topic_arns() {
        assert_eq!(topic_region("arn:aws:sns:us-west-2:000000000000:orders-alarms"), Some("us-west-2"));
        assert_eq!(topic_region("arn:aws-cn:sns:cn-north-1:1:t"), Some("cn-north-1"));
        assert_eq!(topic_region("arn:aws:sqs:us-west-2:1:q"), None);
        assert_eq!(topic_region("orders-alarms"), None);
    }
}
