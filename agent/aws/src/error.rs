//! What an AWS call failing looks like to a runbook: the AWS error code, the
//! message, the resource, the request id, and whether retrying may help.
//! Never the raw HTTP dump.

use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_types::request_id::RequestId;

/// A failed capability call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{service} {operation} on {resource} in {region} failed: {code}: {message}{}", request_id.as_ref().map(|r| format!(" (request id {r})")).unwrap_or_default())]
pub struct CapabilityError {
    /// `rds`, `route53`, ...
    pub service: &'static str,
    /// The API operation, e.g. `PromoteReadReplica`.
    pub operation: &'static str,
    /// The region (`global` for Route 53).
    pub region: String,
    /// The resource the call was about.
    pub resource: String,
    /// The AWS error code (`DBInstanceNotFound`, `Throttling`), or our own
    /// (`timeout`, `unreachable`, `unsupported-by-endpoint`, `not-found`).
    pub code: String,
    /// What AWS (or the agent) said.
    pub message: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// The AWS request id, for support cases and CloudTrail.
    pub request_id: Option<String>,
}

impl CapabilityError {
    /// An error the agent itself raises about a call.
    pub fn new(service: &'static str, operation: &'static str, region: &str, resource: &str, code: &str, message: impl Into<String>) -> Self {
        CapabilityError {
            service,
            operation,
            region: region.into(),
            resource: resource.into(),
            code: code.into(),
            message: message.into(),
            retryable: false,
            request_id: None,
        }
    }

    /// Marks it retryable.
    pub fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    /// Whether it is the AWS error `code`.
    pub fn is(&self, code: &str) -> bool {
        self.code == code
    }
}

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "PriorRequestNotComplete",
    "SlowDown",
];

/// Maps an SDK error of any AWS service to a [`CapabilityError`].
pub fn from_sdk<E, R>(service: &'static str, operation: &'static str, region: &str, resource: &str, err: SdkError<E, R>) -> CapabilityError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
    SdkError<E, R>: ProvideErrorMetadata + RequestId,
{
    let request_id = err.request_id().map(str::to_string);
    if let Some(why) = crate::fence::fenced_reason(&err) {
        let message = format!("{why}; this agent no longer holds the run (another driver may have taken it over), so it sends nothing more for it");
        return CapabilityError {
            service,
            operation,
            region: region.into(),
            resource: resource.into(),
            code: "fenced".into(),
            message,
            retryable: false,
            request_id,
        };
    }
    let (code, message, retryable) = match &err {
        SdkError::TimeoutError(_) => ("timeout".to_string(), "the request timed out".to_string(), true),
        SdkError::DispatchFailure(d) => {
            let what = if d.is_timeout() {
                "timed out connecting"
            } else if d.is_io() {
                "could not connect"
            } else {
                "could not send the request"
            };
            ("unreachable".to_string(), format!("{what} to the {service} endpoint for {region}; check the network, the region and AWS_ENDPOINT_URL"), true)
        }
        SdkError::ResponseError(_) => ("bad-response".to_string(), "the endpoint answered with something that is not an AWS response".to_string(), true),
        SdkError::ConstructionFailure(_) => (
            "bad-request".to_string(),
            format!("the request could not be built: {}", std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default()),
            false,
        ),
        _ => {
            let code = err.code().unwrap_or("unknown").to_string();
            let message = err.message().unwrap_or("no message").to_string();
            let retryable = THROTTLING.contains(&code.as_str()) || code.ends_with("InternalFailure") || code == "ServiceUnavailable" || code == "InternalError";
            (code, message, retryable)
        }
    };
    CapabilityError { service, operation, region: region.into(), resource: resource.into(), code, message, retryable, request_id }
}
