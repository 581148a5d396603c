//! Fencing on the wire: no request of a run goes out once its driver lost
//! the run, and none in flight is waited for.
//!
//! The engine checks the run's lease once per capability call, but a call
//! may send several requests, and the SDK resends one for up to its
//! operation timeout. So the clients of a mutating capability call
//! ([`crate::Clients::fenced`]) send through an HTTP connector that checks
//! the run's [`Fence`] before every attempt that goes on the wire (the SDK's
//! own retries included) and races every attempt in flight against the
//! fence's loss: a lost lease ends the call at once with the error code
//! `fenced`, and nothing more is sent.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// Whether the run's driver may still act (its lease).
pub trait Fence: Send + Sync + fmt::Debug {
    /// `Ok` while it may; else why not.
    fn check(&self) -> Result<(), String>;
    /// Resolves, with why, once it may no longer act.
    fn lost(&self) -> Pin<Box<dyn Future<Output = String> + Send + 'static>>;
}

/// Why an attempt was not sent, or was abandoned.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Fenced(pub String);

/// The reason, if `err` (or what caused it) is a [`Fenced`].
pub(crate) fn fenced_reason(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(f) = e.downcast_ref::<Fenced>() {
            return Some(f.0.clone());
        }
        cause = e.source();
    }
    None
}

/// An HTTP client whose every attempt is fenced.
#[derive(Debug)]
pub(crate) struct FencedHttpClient {
    pub inner: SharedHttpClient,
    pub fence: Arc<dyn Fence>,
}

impl HttpClient for FencedHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(FencedConnector { inner: self.inner.http_connector(settings, components), fence: self.fence.clone() })
    }
}

#[derive(Debug)]
struct FencedConnector {
    inner: SharedHttpConnector,
    fence: Arc<dyn Fence>,
}

impl HttpConnector for FencedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if let Err(why) = self.fence.check() {
            return HttpConnectorFuture::ready(Err(ConnectorError::other(Box::new(Fenced(format!("not sent: {why}"))), None)));
        }
        let sent = self.inner.call(request);
        let lost = self.fence.lost();
        HttpConnectorFuture::new(async move {
            tokio::select! {
                answer = sent => answer,
                why = lost => Err(ConnectorError::other(Box::new(Fenced(format!("abandoned in flight: {why}"))), None)),
            }
        })
    }
}
