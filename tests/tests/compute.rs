//! DR-region compute through the real binary against the emulators (moto
//! serves Auto Scaling and ECS): the demo topology has an Auto Scaling group
//! and an ECS service in each region, the DR ones at standby. A failover
//! scales the DR ones to the primary's capacity before the DNS moves (the
//! order read from the journal), a SIGKILL right after the scale-up and a
//! resume change nothing twice (counted at the proxy), and the failback
//! scales the DR ones back to standby; every claim is checked against the
//! cloud, not against what the agent says it did.

use drover_chaos::hypothesis::{Probe, check};
use drover_chaos::killed_by_sigkill;
use drover_e2e::{Proxied, assert_failed_over, rt, seeded};
use drover_test_artifacts as artifacts;
use serde_json::Value;

fn run_args<'a>(runbook: &'a str, id: &'a str, params: &'a [String]) -> Vec<&'a str> {
    let mut a = vec!["run", runbook, "--run-id", id, "--quiet", "--json"];
    for p in params {
        a.push("-p");
        a.push(p);
    }
    a
}

fn keys(run: &Value) -> Vec<String> {
    run["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_failover_scales_the_dr_compute_before_dns_once_across_a_crash_and_failback_scales_it_back() {
    let (c, s) = seeded("compute");
    let p = Proxied::start();
    let (_home, agent) = p.agent();
    let standby = rt().block_on(check(&c, &s, Probe::DrComputeAtStandby));
    assert!(standby.ok, "seeded at standby: {}", standby.detail);
    let mut params = s.topology.params();
    params.extend(s.topology.compute_params());

    // Readiness sees the DR compute: it exists and its maximum can hold the primary's capacity.
    let mut ready_args = vec!["readiness", artifacts::REGIONAL_FAILOVER, "--json"];
    for p in &params {
        ready_args.extend(["-p", p.as_str()]);
    }
    let (_, ready) = agent.json(&ready_args).unwrap();
    let finding = |check: &str| {
        ready["findings"].as_array().unwrap().iter().find(|f| f["check"] == check).cloned().unwrap_or_else(|| panic!("no finding '{check}': {ready:#}"))
    };
    assert_eq!(finding("the DR group can hold the primary's capacity")["ok"], true, "{ready:#}");
    assert_eq!(finding("the DR ECS service can be scaled to the primary's count")["ok"], true, "{ready:#}");

    // Killed right after the scale-up was journaled; resumed.
    let mut child = agent.spawn(&run_args(artifacts::REGIONAL_FAILOVER, "cf", &params), "after-step:scale-dr-compute").unwrap();
    let status = child.wait().unwrap();
    assert!(killed_by_sigkill(&status), "the failpoint kills the run: {status}");
    let (status, run) = agent.json(&["resume", "cf", "--json", "--quiet"]).unwrap();
    assert_eq!(status.code(), Some(0), "{run:#}");
    assert_eq!(run["status"], "succeeded", "{run:#}");

    // Scaled before the DNS moved, as the journal records the steps.
    let order = keys(&run);
    let at = |k: &str| order.iter().position(|s| s == k).unwrap_or_else(|| panic!("no step {k}: {order:?}"));
    assert!(at("scale-dr-compute") < at("wait-dr-compute") && at("wait-dr-compute") < at("point-db-record"), "{order:?}");
    assert!(at("wait-dr-compute") < at("shift-app-weights"), "{order:?}");
    assert_eq!(agent.attempt_count("cf", "scale-dr-compute"), 1, "the journaled step did not run again");

    // The cloud says so: the DR group and service hold the primary's
    // capacity; each was changed once, across both processes.
    let scaled = rt().block_on(check(&c, &s, Probe::DrComputeAtPrimaryCapacity));
    assert!(scaled.ok, "{}", scaled.detail);
    assert_failed_over(&c, &s);
    let faults = p.proxy.faults();
    assert_eq!(faults.accepted_count("autoscaling", "UpdateAutoScalingGroup"), 1, "{:?}", faults.accepted());
    assert_eq!(faults.accepted_count("ecs", "UpdateService"), 1, "{:?}", faults.accepted());

    // Failback: the home compute already holds the capacity; the DR's goes back to standby.
    let mut back = s.topology.failback_params();
    back.extend(s.topology.compute_params());
    let (status, run) = agent.json(&run_args(artifacts::FAILBACK, "fb", &back)).unwrap();
    assert_eq!(status.code(), Some(0), "{run:#}");
    let order = keys(&run);
    let at = |k: &str| order.iter().position(|s| s == k).unwrap_or_else(|| panic!("no step {k}: {order:?}"));
    assert!(at("wait-home-compute") < at("point-db-record") && at("verify") < at("scale-down-dr-compute"), "{order:?}");
    let down = rt().block_on(check(&c, &s, Probe::DrComputeAtStandby));
    assert!(down.ok, "after failback: {}", down.detail);
}
