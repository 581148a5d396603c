//! Logs and traces of the `drover` process.
//!
//! - Logs go to stderr, as text or JSON lines (`--log-format`), at the level
//!   `$DROVER_LOG` sets (default: info for `serve`, error for `simulate`, warn otherwise).
//! - Traces are exported with OpenTelemetry OTLP over HTTP when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is
//!   set (with the other standard `OTEL_*` settings: headers, timeout,
//!   `OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_PROTOCOL` http/protobuf or
//!   http/json). Spans: `run` (run id, runbook, version, origin) → `step`
//!   (key, attempt, idempotency key) → `aws` (service, operation, region,
//!   resource, request id). A run started by an incident trigger continues
//!   the trace of the request that triggered it (W3C `traceparent`).

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// What must be flushed before the process exits.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sets up logging (and tracing, when an OTLP endpoint is configured).
    /// An exporter that cannot be built is reported and tracing stays off:
    /// observability must never stop a failover.
    pub fn init(json_logs: bool, default_level: &str) -> Telemetry {
        let filter = EnvFilter::try_from_env("DROVER_LOG").unwrap_or_else(|_| default_level.into());
        let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        let fmt = if json_logs {
            fmt.json().with_current_span(true).with_span_list(false).with_filter(filter).boxed()
        } else {
            fmt.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).with_filter(filter).boxed()
        };
        let (otel, provider, problem) = match exporter() {
            Ok(Some(provider)) => {
                let tracer = provider.tracer("drover");
                // Spans of the agent and its AWS calls; the SDK's own per-attempt spans stay out.
                let filter = EnvFilter::try_from_env("DROVER_TRACE").unwrap_or_else(|_| "info,drover_aws=debug".into());
                (Some(tracing_opentelemetry::layer().with_tracer(tracer).with_filter(filter)), Some(provider), None)
            }
            Ok(None) => (None, None, None),
            Err(e) => (None, None, Some(e)),
        };
        tracing_subscriber::registry().with(fmt).with(otel).init();
        if let Some(e) = problem {
            tracing::error!(error = %e, "OpenTelemetry export is off: the OTLP exporter could not be built; check the OTEL_EXPORTER_OTLP_* settings");
        }
        Telemetry { provider }
    }

    /// The engine hook that continues a triggered run's trace.
    pub fn span_hook() -> drover_engine::SpanHook {
        Arc::new(|span: &tracing::Span, run: &drover_journal::RunRecord| {
            let Some(tp) = run.origin.as_ref().and_then(|o| o["traceparent"].as_str()) else { return };
            let carrier: HashMap<String, String> = HashMap::from([("traceparent".to_string(), tp.to_string())]);
            let cx = TraceContextPropagator::new().extract(&carrier);
            if let Err(e) = span.set_parent(cx) {
                tracing::debug!(error = %e, "the run's trace context was not applied");
            }
        })
    }

    /// Flushes the spans not yet exported (waits for the exporter).
    pub fn shutdown(self) {
        if let Some(p) = self.provider
            && let Err(e) = p.shutdown()
        {
            eprintln!("warning: OpenTelemetry spans may be lost: {e}");
        }
    }
}

fn exporter() -> Result<Option<SdkTracerProvider>, String> {
    let set = |k: &str| std::env::var(k).map(|v| !v.trim().is_empty()).unwrap_or(false);
    if !set("OTEL_EXPORTER_OTLP_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return Ok(None);
    }
    let protocol = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL")).unwrap_or_default();
    let protocol = match protocol.as_str() {
        "" | "http/protobuf" => Protocol::HttpBinary,
        "http/json" => Protocol::HttpJson,
        other => return Err(format!("OTEL_EXPORTER_OTLP_PROTOCOL '{other}' is not supported (http/protobuf or http/json)")),
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().with_protocol(protocol).build().map_err(|e| e.to_string())?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "drover".into())).build();
    Ok(Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build()))
}
