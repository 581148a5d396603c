//! AWS clients per service and region, from the standard configuration
//! chain: credentials (environment, profiles, SSO, instance roles), region,
//! and endpoints (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`), so the
//! same binary talks to AWS or to the local emulators with no code change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_types::region::Region;

use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::arns::InstanceArns;
use crate::call_observer::CallTimer;
use crate::fence::{Fence, FencedHttpClient};
use crate::request_ids::RequestIds;
use crate::seen_sets::SeenSets;
use crate::zones::ZoneIds;

/// A client of SDK crate `$krate` for `$region`, from `$sdk`, with the
/// interceptors every drover client has (request ids in the logs, request
/// timings for the metrics), fenced by `$fencing` when given.
macro_rules! client {
    ($krate:ident, $sdk:expr, $region:expr, $fencing:expr) => {{
        let mut conf = $krate::config::Builder::from($sdk).region(Region::new($region.to_string())).interceptor(RequestIds).interceptor(CallTimer);
        if let Some(f) = $fencing {
            conf = conf.http_client(f.http.clone());
            if let Some(t) = &f.timeouts {
                conf = conf.timeout_config(t.clone());
            }
        }
        $krate::Client::from_conf(conf.build())
    }};
}

/// The clients of one capability call of a run, fenced by its lease
/// ([`Clients::fenced`]).
#[derive(Debug, Clone)]
struct Fencing {
    /// Checks the fence before each attempt, and drops an attempt in flight when it is lost.
    http: SharedHttpClient,
    /// Timeouts within the lease's time to live.
    timeouts: Option<TimeoutConfig>,
}

/// How long a request may take: an attempt 30 s, the operation with the
/// SDK's retries 120 s, a connection 5 s.
const ATTEMPT: Duration = Duration::from_secs(30);
const OPERATION: Duration = Duration::from_secs(120);
const CONNECT: Duration = Duration::from_secs(5);

/// The timeouts of a fenced call under a lease of `ttl` (renewed every
/// third of it, used for four fifths of it after a renewal): the whole
/// operation, the SDK's retries included, at most half of it (an attempt
/// too; a connection a quarter), so a call ends well within the usable
/// lease even when its renewals start failing as it is sent.
pub fn timeouts_within(ttl: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT.min(ttl / 4))
        .operation_attempt_timeout(ATTEMPT.min(ttl / 2))
        .operation_timeout(OPERATION.min(ttl / 2))
        .build()
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
    autoscaling: Mutex<HashMap<String, aws_sdk_autoscaling::Client>>,
    ecs: Mutex<HashMap<String, aws_sdk_ecs::Client>>,
    route53: aws_sdk_route53::Client,
    fencing: Option<Fencing>,
    /// The HTTP client fenced calls send through (made once).
    base_http: std::sync::OnceLock<Option<SharedHttpClient>>,
    /// What these clients found out, shared with the fenced clients made from them.
    found: Arc<Found>,
}

/// What a set of clients found out and keeps (one set of credentials).
#[derive(Debug, Default)]
struct Found {
    /// Hosted zone ids.
    zones: ZoneIds,
    /// RDS instance ARNs.
    arns: InstanceArns,
    /// Route 53 record sets as last read.
    sets: SeenSets,
}

impl Clients {
    /// Loads the standard AWS configuration.
    pub async fn load() -> Self {
        // Bounded: a call to an unreachable region fails in seconds, not never.
        let timeouts = TimeoutConfig::builder().connect_timeout(CONNECT).operation_attempt_timeout(ATTEMPT).operation_timeout(OPERATION).build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
        // A failover must not sit out 20-second backoffs: 5 attempts, jittered
        // backoff from 200 ms up to 5 s (throttling and 5xx). Step retries come
        // on top. AWS_MAX_ATTEMPTS / AWS_RETRY_MODE, when set, win.
        if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() && std::env::var_os("AWS_RETRY_MODE").is_none() {
            loader = loader.retry_config(
                RetryConfig::standard().with_max_attempts(5).with_initial_backoff(Duration::from_millis(200)).with_max_backoff(Duration::from_secs(5)),
            );
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
            .credentials_provider(aws_sdk_rds::config::SharedCredentialsProvider::new(aws_sdk_rds::config::Credentials::new(
                "simulated",
                "simulated",
                None,
                None,
                "drover-test",
            )))
            .build();
        Self::from_config(sdk)
    }

    pub fn from_config(sdk: SdkConfig) -> Self {
        Self::with_fencing(sdk, None, Arc::default())
    }

    fn with_fencing(sdk: SdkConfig, fencing: Option<Fencing>, found: Arc<Found>) -> Self {
        // Route 53 is global; its API lives in us-east-1.
        Clients {
            route53: client!(aws_sdk_route53, &sdk, "us-east-1", fencing.as_ref()),
            rds: Mutex::default(),
            ec2: Mutex::default(),
            cloudwatch: Mutex::default(),
            sns: Mutex::default(),
            autoscaling: Mutex::default(),
            ecs: Mutex::default(),
            sdk,
            fencing,
            base_http: std::sync::OnceLock::new(),
            found,
        }
    }

    /// Clients for one capability call of a run, fenced by `fence` (the
    /// run's lease): every attempt, the SDK's retries included, is checked
    /// against it before it goes on the wire, and an attempt in flight is
    /// abandoned when it is lost (error code `fenced`). With the lease's
    /// `ttl`, the timeouts stay within it ([`timeouts_within`]). They share
    /// the configuration of these clients.
    pub fn fenced(&self, fence: Arc<dyn Fence>, ttl: Option<Duration>) -> Clients {
        let inner = self.base_http.get_or_init(|| self.sdk.http_client().or_else(default_http_client)).clone();
        let Some(inner) = inner else {
            // Cannot happen with the default HTTPS client compiled in; fail
            // closed rather than send unfenced.
            tracing::error!("no HTTP client to fence; the call's requests will fail");
            return Self::with_fencing(self.sdk.clone(), Some(Fencing { http: SharedHttpClient::new(Unavailable), timeouts: None }), self.found.clone());
        };
        let http = SharedHttpClient::new(FencedHttpClient { inner, fence });
        Self::with_fencing(self.sdk.clone(), Some(Fencing { http, timeouts: ttl.map(timeouts_within) }), self.found.clone())
    }

    /// The RDS client for `region`.
    pub fn rds(&self, region: &str) -> aws_sdk_rds::Client {
        per_region(&self.rds, region, || client!(aws_sdk_rds, &self.sdk, region, self.fencing.as_ref()))
    }

    /// The EC2 client for `region`.
    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        per_region(&self.ec2, region, || client!(aws_sdk_ec2, &self.sdk, region, self.fencing.as_ref()))
    }

    /// The CloudWatch client for `region`.
    pub fn cloudwatch(&self, region: &str) -> aws_sdk_cloudwatch::Client {
        per_region(&self.cloudwatch, region, || client!(aws_sdk_cloudwatch, &self.sdk, region, self.fencing.as_ref()))
    }

    /// The SNS client for `region` (the agent's own use: confirming the
    /// subscriptions of its incident triggers).
    pub fn sns(&self, region: &str) -> aws_sdk_sns::Client {
        per_region(&self.sns, region, || client!(aws_sdk_sns, &self.sdk, region, self.fencing.as_ref()))
    }

    /// The EC2 Auto Scaling client for `region`.
    pub fn autoscaling(&self, region: &str) -> aws_sdk_autoscaling::Client {
        per_region(&self.autoscaling, region, || client!(aws_sdk_autoscaling, &self.sdk, region, self.fencing.as_ref()))
    }

    /// The ECS client for `region`.
    pub fn ecs(&self, region: &str) -> aws_sdk_ecs::Client {
        per_region(&self.ecs, region, || client!(aws_sdk_ecs, &self.sdk, region, self.fencing.as_ref()))
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

    /// The hosted zone ids found by these clients (and the fenced ones made from them).
    pub(crate) fn zones(&self) -> &ZoneIds {
        &self.found.zones
    }

    /// The RDS instance ARNs seen by these clients (and the fenced ones made from them).
    pub(crate) fn instance_arns(&self) -> &InstanceArns {
        &self.found.arns
    }

    /// The Route 53 record sets these clients (and the fenced ones made from them) last read.
    pub(crate) fn seen_sets(&self) -> &SeenSets {
        &self.found.sets
    }
}

/// The SDK's default HTTPS client, which the clients use when the
/// configuration names none.
fn default_http_client() -> Option<SharedHttpClient> {
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
    use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
    let plugin = aws_smithy_runtime::client::defaults::default_http_client_plugin_v2(BehaviorVersion::latest())?;
    plugin.runtime_components(&RuntimeComponentsBuilder::new("drover-fenced")).http_client()
}

/// An HTTP client that sends nothing (see [`Clients::fenced`]).
#[derive(Debug)]
struct Unavailable;

impl aws_smithy_runtime_api::client::http::HttpClient for Unavailable {
    fn http_connector(
        &self,
        _settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(Unavailable)
    }
}

impl aws_smithy_runtime_api::client::http::HttpConnector for Unavailable {
    fn call(&self, _request: aws_smithy_runtime_api::client::orchestrator::HttpRequest) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        let why = crate::fence::Fenced("not sent: no HTTP client could be fenced for this call".into());
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::ready(Err(aws_smithy_runtime_api::client::result::ConnectorError::other(
            Box::new(why),
            None,
        )))
    }
}
