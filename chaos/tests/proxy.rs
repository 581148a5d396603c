//! The fault proxy in front of the real emulators: requests pass through
//! unchanged when no fault is on; each injected fault reaches the AWS SDK
//! in the shape the service really uses (so the agent classifies it as it
//! would AWS's own); a region blackhole stops one region and not the other.
//! Needs the emulators (scripts/test starts them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_aws::{Clients, cloudwatch, ec2, rds, route53};
use drover_chaos::faults::{Faults, Rule};
use drover_chaos::proxy::{Proxy, Upstreams};

async fn through_proxy() -> (Proxy, Clients) {
    let upstreams = Upstreams::from_env().expect("these tests need the emulators: run them through scripts/test");
    let proxy = Proxy::start(upstreams, Arc::new(Faults::new(1))).await.unwrap();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(proxy.url()).load().await;
    (proxy, Clients::from_config(sdk))
}

fn rule(text: &str) -> Rule {
    toml::from_str(text).unwrap()
}

#[tokio::test]
async fn requests_pass_through_and_are_counted() {
    let (proxy, c) = through_proxy().await;
    let err = rds::describe_instance(&c, "us-east-1", "no-such-db-via-proxy").await.unwrap_err();
    assert_eq!(err.code, "DBInstanceNotFound", "moto answered through the proxy: {err}");
    route53::zone_id(&c, "no-such-zone.example.internal").await.unwrap_err();
    // Both reached the emulators, which answered: one refusal (no such DB), one 200 (an empty list).
    assert_eq!(proxy.faults().refused().get("rds:DescribeDBInstances"), Some(&1));
    assert_eq!(proxy.faults().accepted_count("route53", "ListHostedZonesByName"), 1);
    assert!(proxy.faults().injected().is_empty());
}

#[tokio::test]
async fn throttling_and_5xx_arrive_in_each_services_own_shape() {
    let (proxy, c) = through_proxy().await;
    let f = proxy.faults();
    let throttle = f.add(rule("kind = \"throttle\""));
    let e = rds::describe_instance(&c, "us-east-1", "x").await.unwrap_err();
    assert_eq!((e.code.as_str(), e.retryable), ("Throttling", true), "{e}");
    assert!(e.request_id.as_deref().is_some_and(|id| id.starts_with("chaos-")), "{e}");
    let e = ec2::describe_instance(&c, "us-east-1", "i-0123456789abcdef0").await.unwrap_err();
    assert_eq!((e.code.as_str(), e.retryable), ("RequestLimitExceeded", true), "{e}");
    let e = route53::get_records(&c, "orders.example.internal", "db.orders.example.internal").await.unwrap_err();
    assert_eq!((e.code.as_str(), e.retryable), ("Throttling", true), "{e}");
    let e = cloudwatch::describe_alarms(&c, "us-west-2", &["x".to_string()]).await.unwrap_err();
    assert_eq!((e.code.as_str(), e.retryable), ("ThrottlingException", true), "{e}");
    f.remove(throttle);
    f.add(rule("service = \"rds\"\nkind = \"server-error\""));
    let e = rds::describe_instance(&c, "us-east-1", "x").await.unwrap_err();
    assert_eq!((e.code.as_str(), e.retryable), ("ServiceUnavailable", true), "{e}");
    // The SDK retried each (3 attempts), and every attempt was counted.
    assert!(f.injected()["throttle"] >= 4 && f.injected()["server-error"] >= 1, "{:?}", f.injected());
}

#[tokio::test]
async fn a_blackholed_region_is_unreachable_and_the_other_answers() {
    let (proxy, c) = through_proxy().await;
    proxy.faults().add(rule("region = \"us-east-1\"\nkind = \"blackhole\""));
    let e = rds::describe_instance(&c, "us-east-1", "x").await.unwrap_err();
    assert_eq!((e.code.as_str(), e.retryable), ("unreachable", true), "{e}");
    let e = rds::describe_instance(&c, "us-west-2", "no-such-db").await.unwrap_err();
    assert_eq!(e.code, "DBInstanceNotFound", "{e}");
}

#[tokio::test]
async fn latency_is_added_to_matching_calls_only() {
    let (proxy, c) = through_proxy().await;
    proxy.faults().add(rule("service = \"rds\"\noperation = \"Describe*\"\nkind = \"latency\"\nms = 300\njitter_ms = 50"));
    let t = Instant::now();
    rds::describe_instance(&c, "us-east-1", "x").await.unwrap_err();
    assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());
    let t = Instant::now();
    route53::zone_id(&c, "no-such-zone.example.internal").await.unwrap_err();
    assert!(t.elapsed() < Duration::from_millis(300), "{:?}", t.elapsed());
}
