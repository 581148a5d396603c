//! Every AWS response, logged with its request id: an SDK interceptor on
//! every client. The event lands inside the `aws` span of the capability
//! call that made the request (service, operation, region, resource), so a
//! trace of a run names the request id of each AWS call, successes
//! included, for CloudTrail and support cases. Retried attempts each log
//! their own response.

use aws_sdk_rds::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_rds::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_rds::error::BoxError;

/// The headers AWS services put the request id in.
const HEADERS: &[&str] = &["x-amzn-requestid", "x-amz-request-id", "x-amzn-request-id"];

/// Logs each response's HTTP status and request id.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RequestIds;

impl Intercept for RequestIds {
    fn name(&self) -> &'static str {
        "drover-request-ids"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        let request_id = HEADERS.iter().find_map(|h| response.headers().get(*h)).unwrap_or("");
        // On the capability call's `aws` span (when the SDK's own spans are
        // off, it is the current one), and as an event.
        tracing::Span::current().record("request_id", request_id);
        tracing::debug!(status = response.status().as_u16(), request_id, "aws response");
        Ok(())
    }
}
