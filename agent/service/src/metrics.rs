//! Prometheus metrics at `GET /metrics` (text exposition format): runs by
//! runbook and outcome, step durations, AWS call latencies and errors, and
//! the RTO of the last drill per runbook.

use std::sync::Mutex;
use std::time::Duration;

use drover_journal::RunRecord;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    runbook: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunbookLabel {
    runbook: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunbookStepLabels {
    runbook: String,
    step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsLabels {
    service: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsErrorLabels {
    service: String,
    operation: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    trigger: String,
    result: String,
}

/// The agent's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    runs: Family<RunLabels, Counter>,
    joined: Family<RunbookLabel, Counter>,
    steps: Family<StepLabels, Histogram>,
    step_requests: Family<RunbookStepLabels, Histogram>,
    aws_latency: Family<AwsLabels, Histogram>,
    aws_errors: Family<AwsErrorLabels, Counter>,
    drill_rto: Family<RunbookLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    triggers: Family<TriggerLabels, Counter>,
    notifications: Family<ResultLabel, Counter>,
    resumed: Family<RunbookLabel, Counter>,
    fenced_out: Family<RunbookLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics, registered under the `drover_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("drover");
        let runs = Family::<RunLabels, Counter>::default();
        registry.register("runs", "Runs that ended, by runbook and outcome", runs.clone());
        let joined = Family::<RunbookLabel, Counter>::default();
        registry.register("runs_joined", "Requests that joined a run already holding their scope", joined.clone());
        let steps = Family::<StepLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 18)));
        registry.register("step_duration_seconds", "Duration of step attempts, by step and outcome", steps.clone());
        let step_requests = Family::<RunbookStepLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(1.0, 2.0, 10)));
        registry.register(
            "step_aws_requests",
            "AWS requests a finished step sent over all its attempts (retries and polls included), by runbook and step",
            step_requests.clone(),
        );
        let aws_latency = Family::<AwsLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.002, 2.0, 16)));
        registry.register("aws_call_duration_seconds", "Latency of AWS API requests (each attempt), by service and operation", aws_latency.clone());
        let aws_errors = Family::<AwsErrorLabels, Counter>::default();
        registry.register("aws_call_errors", "AWS API requests that failed, by service, operation and HTTP status (or 'transport')", aws_errors.clone());
        let drill_rto = Family::<RunbookLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register("last_drill_rto_seconds", "RTO the last successful drill of each runbook measured", drill_rto.clone());
        let triggers = Family::<TriggerLabels, Counter>::default();
        registry.register("trigger_requests", "Incident trigger requests, by trigger and result", triggers.clone());
        let notifications = Family::<ResultLabel, Counter>::default();
        registry.register("notifications", "Webhook notifications, sent or failed (after 3 attempts)", notifications.clone());
        let resumed = Family::<RunbookLabel, Counter>::default();
        registry.register("runs_resumed", "Runs this agent took up from a driver that stopped, died or (shared store) let its lease run out", resumed.clone());
        let fenced_out = Family::<RunbookLabel, Counter>::default();
        registry.register("runs_fenced_out", "Runs this agent stopped driving because its lease was lost or ran out", fenced_out.clone());
        Metrics {
            registry: Mutex::new(registry),
            runs,
            joined,
            steps,
            step_requests,
            aws_latency,
            aws_errors,
            drill_rto,
            triggers,
            notifications,
            resumed,
            fenced_out,
        }
    }

    /// A run ended (or stopped with an error).
    pub fn run_ended(&self, run: &RunRecord) {
        self.runs.get_or_create(&RunLabels { runbook: run.runbook.name.clone(), outcome: run.status.to_string() }).inc();
        let drill = run.origin.as_ref().is_some_and(|o| o["kind"] == "drill");
        if drill
            && run.status == drover_journal::RunStatus::Succeeded
            && let Some(rto) = run.result.as_ref().and_then(rto_seconds)
        {
            self.drill_rto.get_or_create(&RunbookLabel { runbook: run.runbook.name.clone() }).set(rto);
        }
    }

    /// A request joined the run holding its scope.
    pub fn joined(&self, runbook: &str) {
        self.joined.get_or_create(&RunbookLabel { runbook: runbook.into() }).inc();
    }

    /// This agent took up a run another driver had left.
    pub fn resumed(&self, runbook: &str) {
        self.resumed.get_or_create(&RunbookLabel { runbook: runbook.into() }).inc();
    }

    /// This agent stopped driving a run it no longer holds.
    pub fn fenced_out(&self, runbook: &str) {
        self.fenced_out.get_or_create(&RunbookLabel { runbook: runbook.into() }).inc();
    }

    /// A step attempt finished.
    pub fn step_finished(&self, step: &str, status: &str, took: Duration) {
        self.steps.get_or_create(&StepLabels { step: step.into(), status: status.into() }).observe(took.as_secs_f64());
    }

    /// A step finished having sent `requests` AWS requests over its attempts.
    pub fn step_requests(&self, runbook: &str, step: &str, requests: u32) {
        self.step_requests.get_or_create(&RunbookStepLabels { runbook: runbook.into(), step: step.into() }).observe(f64::from(requests));
    }

    /// An AWS request finished: `status` is the HTTP status, or `None` when
    /// no response came (connection refused, timeout).
    pub fn aws_call(&self, service: &str, operation: &str, status: Option<u16>, took: Duration) {
        self.aws_latency.get_or_create(&AwsLabels { service: service.into(), operation: operation.into() }).observe(took.as_secs_f64());
        let failed = status.is_none_or(|s| s >= 400);
        if failed {
            let status = status.map(|s| s.to_string()).unwrap_or_else(|| "transport".into());
            self.aws_errors.get_or_create(&AwsErrorLabels { service: service.into(), operation: operation.into(), status }).inc();
        }
    }

    /// A trigger request was answered with `result` (started, joined,
    /// ignored, unauthorized, malformed, confirmed).
    pub fn trigger(&self, trigger: &str, result: &str) {
        self.triggers.get_or_create(&TriggerLabels { trigger: trigger.into(), result: result.into() }).inc();
    }

    /// A notification was sent, or failed for good.
    pub fn notification(&self, result: &str) {
        self.notifications.get_or_create(&ResultLabel { result: result.into() }).inc();
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// The RTO a runbook's result reports (`rto_seconds`, as `dr-drill` and
/// `regional-failover` report it).
fn rto_seconds(result: &serde_json::Value) -> Option<f64> {
    result["rto_seconds"].as_f64()
}
