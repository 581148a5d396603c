//! AWS clients per service and region, from the standard configuration
//! chain: credentials (environment, profiles, SSO, instance roles), region,
//! and endpoints (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`), so the
//! same binary talks to AWS or to the local emulators with no code change.

use std::collections::HashMap;
use std::sync::Mutex;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_types::region::Region;

use crate::call_observer::CallTimer;
use crate::request_ids::RequestIds;

/// A client of SDK crate `$krate` for `$region`, from `$sdk`, with the
/// interceptors every drover client has (request ids in the logs, request
/// timings for the metrics).
macro_rules! client {
    ($krate:ident, $sdk:expr, $region:expr) => {
        $krate::Client::from_conf(
            $krate::config::Builder::from($sdk)
                .region(Region::new($region.to_string()))
                .interceptor(RequestIds)
                .interceptor(CallTimer)
                .build(),
        )
    };
}

/// The client for `region` in `map`, made by `make` the first time.
fn per_region<C: Clone>(map: &Mutex<HashMap<String, C>>, region: &str, make: impl FnOnce() -> C) -> C {
    map.lock().unwrap_or_else(|p| p.into_inner()).entry(region.to_string()).or_insert_with(make).clone()
}

/// Shared configuration and one client per (service, region).
pub struct Clients {
    sdk: SdkConfig,
    rds: Mutex<HashMap<String, aws_sdk_rds::Client>>,
    ec2: Mutex<HashMap<String, aws_sdk_ec2::Client>>,
    cloudwatch: Mutex<HashMap<String, aws_sdk_cloudwatch::Client>>,
    sns: Mutex<HashMap<String, aws_sdk_sns::Client>>,
    route53: aws_sdk_route53::Client,
}

impl Clients {
    /// Loads the standard AWS configuration.
    pub async fn load() -> Self {
        // Bounded: a call to an unreachable region fails in seconds, not never.
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(30))
            .operation_timeout(Duration::from_secs(120))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
        // A failover must not sit out 20-second backoffs: 5 attempts, jittered
        // backoff from 200 ms up to 5 s (throttling and 5xx). Step retries come
        // on top. AWS_MAX_ATTEMPTS / AWS_RETRY_MODE, when set, win.
        if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() && std::env::var_os("AWS_RETRY_MODE").is_none() {
            loader = loader.retry_config(RetryConfig::standard().with_max_attempts(5).with_initial_backoff(Duration::from_millis(200)).with_max_backoff(Duration::from_secs(5)));
        }
        let sdk = loader.load().await;
        Self::from_config(sdk)
    }

    /// Clients from an explicit configuration.
    /// Clients that reach nothing (every endpoint is 127.0.0.1:9, static
    /// dummy credentials): for `drover test`, where a call that reached for
    /// AWS would be a bug, and must fail, not touch an account.
    pub fn unreachable() -> Self {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(aws_sdk_rds::config::SharedCredentialsProvider::new(aws_sdk_rds::config::Credentials::new("simulated", "simulated", None, None, "drover-test")))
            .build();
        Self::from_config(sdk)
    }

    pub fn from_config(sdk: SdkConfig) -> Self {
        // Route 53 is global; its API lives in us-east-1.
        Clients {
            route53: client!(aws_sdk_route53, &sdk, "us-east-1"),
            rds: Mutex::default(),
            ec2: Mutex::default(),
            cloudwatch: Mutex::default(),
            sns: Mutex::default(),
            sdk,
        }
    }

    /// The RDS client for `region`.
    pub fn rds(&self, region: &str) -> aws_sdk_rds::Client {
        per_region(&self.rds, region, || client!(aws_sdk_rds, &self.sdk, region))
    }

    /// The EC2 client for `region`.
    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        per_region(&self.ec2, region, || client!(aws_sdk_ec2, &self.sdk, region))
    }

    /// The CloudWatch client for `region`.
    pub fn cloudwatch(&self, region: &str) -> aws_sdk_cloudwatch::Client {
        per_region(&self.cloudwatch, region, || client!(aws_sdk_cloudwatch, &self.sdk, region))
    }

    /// The SNS client for `region` (the agent's own use: confirming the
    /// subscriptions of its incident triggers).
    pub fn sns(&self, region: &str) -> aws_sdk_sns::Client {
        per_region(&self.sns, region, || client!(aws_sdk_sns, &self.sdk, region))
    }

    /// The endpoint URL configured for `service` (`rds`, `ec2`, ...) in place
    /// of AWS's (`AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL` or the
    /// profile's `endpoint_url`), if any: an emulator, a VPC endpoint.
    pub fn endpoint_override(&self, service: &str) -> Option<String> {
        let var = format!("AWS_ENDPOINT_URL_{}", service.to_uppercase().replace('-', "_"));
        std::env::var(var).ok().filter(|v| !v.is_empty()).or_else(|| self.sdk.endpoint_url().map(str::to_string))
    }

    /// The Route 53 client.
    pub fn route53(&self) -> &aws_sdk_route53::Client {
        &self.route53
    }
}
