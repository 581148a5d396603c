//! Latency and outcome of every AWS request (each attempt, retries
//! included), for the agent's metrics: an SDK interceptor on every client
//! reports to the observer the process installed with [`observe_calls`],
//! and counts the request for the capability call that sent it
//! ([`counted`]: a step's requests, shown with the step).

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_rds::config::interceptors::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef};
use aws_sdk_rds::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_rds::error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

/// Told of each AWS request: service, operation, HTTP status (`None` when no
/// response came: connection refused, timeout) and how long it took.
pub type CallObserver = Arc<dyn Fn(&str, &str, Option<u16>, Duration) + Send + Sync>;

static OBSERVER: OnceLock<CallObserver> = OnceLock::new();

tokio::task_local! {
    /// Where the requests of the capability call being made are counted.
    static REQUESTS: Arc<AtomicU32>;
}

/// Runs `f`, adding to `counter` every AWS request it puts on the wire (each
/// attempt, the SDK's retries and a waiter's polls included).
pub async fn counted<F: Future>(counter: Option<Arc<AtomicU32>>, f: F) -> F::Output {
    match counter {
        Some(c) => REQUESTS.scope(c, f).await,
        None => f.await,
    }
}

/// Installs the process's observer of AWS requests (the first one wins).
pub fn observe_calls(observer: CallObserver) {
    let _ = OBSERVER.set(observer);
}

#[derive(Debug, Clone, Copy)]
struct AttemptStart(Instant);

impl Storable for AttemptStart {
    type Storer = StoreReplace<Self>;
}

/// Times each attempt and reports it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CallTimer;

impl Intercept for CallTimer {
    fn name(&self) -> &'static str {
        "drover-call-timer"
    }

    fn read_before_transmit(&self, _context: &BeforeTransmitInterceptorContextRef<'_>, _rc: &RuntimeComponents, cfg: &mut ConfigBag) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(AttemptStart(Instant::now()));
        let _ = REQUESTS.try_with(|c| c.fetch_add(1, Ordering::Relaxed));
        Ok(())
    }

    fn read_after_attempt(&self, context: &FinalizerInterceptorContextRef<'_>, _rc: &RuntimeComponents, cfg: &mut ConfigBag) -> Result<(), BoxError> {
        let (Some(observer), Some(start)) = (OBSERVER.get(), cfg.load::<AttemptStart>()) else { return Ok(()) };
        let (service, operation) = cfg.load::<Metadata>().map(|m| (m.service().to_string(), m.name().to_string())).unwrap_or_default();
        let status = context.response().map(|r| r.status().as_u16());
        observer(&service, &operation, status, start.0.elapsed());
        Ok(())
    }
}
