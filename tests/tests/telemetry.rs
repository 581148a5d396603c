//! Traces arrive at a real OTLP/HTTP receiver (a server run by the test that
//! speaks the protocol, not a mock exporter): the real `drover` binary
//! exports `run` → `step` → `aws` spans with the attributes an SRE filters
//! on, and a run started by a trigger continues the caller's W3C trace.

use std::time::Duration;

use drover_chaos::Agent;
use drover_e2e::{Capture, Served, free_port, seeded};
use drover_test_artifacts as artifacts;
use serde_json::Value;

/// An OTLP/HTTP receiver: a server that answers every export with 200 and
/// keeps the OTLP/JSON export requests.
struct Receiver {
    capture: Capture,
}

impl Receiver {
    fn start() -> Receiver {
        Receiver { capture: Capture::start() }
    }

    /// Every span received: (span, its resource's service.name).
    fn spans(&self) -> Vec<(Value, String)> {
        let mut out = Vec::new();
        let exports = self.capture.received();
        for req in exports
            .iter()
            .filter(|r| r.request_line.starts_with("POST /v1/traces") && r.header("content-type").is_some_and(|c| c.starts_with("application/json")))
        {
            let req = req.json();
            for rs in req["resourceSpans"].as_array().into_iter().flatten() {
                let service = attr(&rs["resource"], "service.name").unwrap_or_default();
                for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                    for span in ss["spans"].as_array().into_iter().flatten() {
                        out.push((span.clone(), service.clone()));
                    }
                }
            }
        }
        out
    }
}

fn attr(v: &Value, key: &str) -> Option<String> {
    v["attributes"].as_array()?.iter().find(|a| a["key"] == key).and_then(|a| {
        let val = &a["value"];
        val["stringValue"]
            .as_str()
            .map(str::to_string)
            .or_else(|| val["intValue"].as_str().map(str::to_string))
            .or_else(|| val["intValue"].as_i64().map(|i| i.to_string()))
    })
}

fn otel_env(agent: Agent, receiver: &Receiver) -> Agent {
    agent
        .with_env("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{}", receiver.capture.addr))
        .with_env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .with_env("OTEL_SERVICE_NAME", "drover-test")
}

#[test]
fn a_triggered_run_continues_the_callers_trace_and_its_steps_are_children() {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let agent =
        otel_env(Agent::new(dir.path().join("home")), &receiver).with_env("T_API", "api-token-0123456789abcdef").with_env("T_GEN", "generic-token-0123456789");
    let cfg = dir.path().join("drover.toml");
    std::fs::write(
        &cfg,
        format!(
            "[serve]\napi_token_env = \"T_API\"\n[[serve.runbook]]\npath = \"{}\"\n[[serve.trigger]]\nname = \"gen\"\nkind = \"generic\"\nauth = {{ bearer_env = \"T_GEN\" }}\nrunbook = \"janitor\"\n",
            artifacts::JANITOR
        ),
    )
    .unwrap();
    let s = Served::start(&agent, &cfg, &format!("127.0.0.1:{}", free_port()), &dir.path().join("serve.log"));
    let (trace, parent) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let tp = format!("00-{trace}-{parent}-01");
    let (code, v) =
        s.call("POST", "/v1/triggers/gen", &[("authorization", "Bearer generic-token-0123456789"), ("traceparent", &tp)], br#"{"labels":{"app":"x"}}"#);
    assert_eq!(code, 202, "{v}");
    let id = v["runs"][0]["run_id"].as_str().unwrap().to_string();
    agent.wait_for_status(&id, "succeeded", Duration::from_secs(60)).unwrap();
    // SIGTERM flushes what the batch exporter holds.
    assert!(s.terminate().success());

    let spans = receiver.spans();
    let run = spans
        .iter()
        .find(|(sp, _)| sp["name"] == "run" && attr(sp, "run_id").as_deref() == Some(id.as_str()))
        .unwrap_or_else(|| panic!("no run span for {id} among {} spans", spans.len()));
    assert_eq!(run.1, "drover-test");
    assert_eq!(run.0["traceId"], trace, "the run continues the trigger's trace: {:#}", run.0);
    assert_eq!(run.0["parentSpanId"], parent);
    assert_eq!(attr(&run.0, "runbook").as_deref(), Some("janitor"));
    assert_eq!(attr(&run.0, "origin").as_deref(), Some("trigger"));
    let steps: Vec<String> =
        spans.iter().filter(|(sp, _)| sp["name"] == "step" && sp["parentSpanId"] == run.0["spanId"]).filter_map(|(sp, _)| attr(sp, "step")).collect();
    for key in ["s1", "s2", "s3", "cleanup:c1"] {
        assert!(steps.iter().any(|s| s == key), "step span {key} under the run span: {steps:?}");
    }
}

#[test]
fn aws_calls_are_spans_under_their_step_with_the_request_id() {
    let (_c, seeded) = seeded("otel");
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let agent = otel_env(Agent::new(dir.path().join("home")).with_env("DROVER_CONFIG", &drover_e2e::demo_config()), &receiver);
    let params = seeded.topology.params();
    let mut a = vec!["run", artifacts::REGIONAL_FAILOVER, "--dry-run", "--quiet", "--json"];
    params.iter().for_each(|p| a.extend(["-p", p.as_str()]));
    let (status, out) = agent.json(&a).unwrap();
    assert!(status.success(), "{out:#}");

    let spans = receiver.spans();
    let preflight = spans.iter().find(|(sp, _)| sp["name"] == "step" && attr(sp, "step").as_deref() == Some("preflight")).expect("a preflight step span");
    let calls: Vec<&Value> = spans.iter().map(|(sp, _)| sp).filter(|sp| sp["name"] == "aws" && sp["parentSpanId"] == preflight.0["spanId"]).collect();
    let describe = calls
        .iter()
        .find(|sp| attr(sp, "operation").as_deref() == Some("DescribeDBInstances") && attr(sp, "resource").as_deref() == Some(seeded.topology.replica.as_str()))
        .unwrap_or_else(|| panic!("the replica's describe under preflight: {calls:#?}"));
    assert_eq!(attr(describe, "service").as_deref(), Some("rds"));
    assert_eq!(attr(describe, "region").as_deref(), Some("us-west-2"));
    let rid = attr(describe, "request_id").unwrap_or_default();
    assert!(!rid.is_empty(), "the AWS request id is on the span: {describe:#}");
}
