//! Round trips: the AWS requests a run says each step sent are the requests
//! the cloud saw (counted at the fault proxy, not by the agent), and a
//! step's independent reads go out together (the proxy holds them at once).

use drover_chaos::faults::{Fault, Rule};
use drover_e2e::{Proxied, args, assert_failed_over, seeded};
use drover_test_artifacts as artifacts;
use serde_json::Value;

fn requests_of(run: &Value, step: &str) -> u64 {
    let s = run["steps"].as_array().unwrap().iter().find(|s| s["key"] == step).unwrap_or_else(|| panic!("no step {step}: {run:#}"));
    s["requests"].as_u64().unwrap_or_else(|| panic!("step {step} has no request count: {s:#}"))
}

#[test]
fn each_steps_requests_are_what_the_cloud_saw_and_independent_reads_go_together() {
    let (c, s) = seeded("reqs");
    let p = Proxied::start();
    // Every request waits at the proxy, so that requests sent together are
    // held there at the same time (and requests sent one by one are not).
    p.proxy.faults().add(Rule {
        service: None,
        region: None,
        operation: None,
        kind: Fault::Latency,
        ms: 150,
        jitter_ms: 0,
        rate: 1.0,
        pass_first: 0,
        find: None,
        replace: None,
    });
    let (_home, agent) = p.agent();
    let params = s.topology.params();

    // Readiness: one step, every read of it sent at once.
    let mut ready_args = vec!["readiness", artifacts::REGIONAL_FAILOVER, "--json"];
    for p in &params {
        ready_args.extend(["-p", p.as_str()]);
    }
    let (_, ready) = agent.json(&ready_args).unwrap();
    assert!(ready["findings"].as_array().is_some_and(|f| !f.is_empty()), "{ready:#}");
    let most = p.proxy.in_flight().most();
    assert!(
        most >= 5,
        "readiness's six reads (replica, lag, snapshot copy, records, primary; the zone lookup first) went out together: at most {most} at once"
    );

    p.proxy.in_flight().reset();
    let before: u64 = p.proxy.faults().accepted().values().chain(p.proxy.faults().refused().values()).sum();
    let mut a = args(artifacts::REGIONAL_FAILOVER, "reqs", &params);
    a.push("--json");
    let (status, run) = agent.json(&a).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_failed_over(&c, &s);

    // The run's count is the cloud's count, step by step summed.
    let seen: u64 = p.proxy.faults().accepted().values().chain(p.proxy.faults().refused().values()).sum::<u64>() - before;
    let counted: u64 = run["steps"].as_array().unwrap().iter().map(|s| s["requests"].as_u64().unwrap()).sum();
    assert_eq!(counted, seen, "the agent counted {counted} requests, the proxy saw {seen}: {:?}\n{run:#}", p.proxy.faults().accepted());

    // The preflight's reads went together: the replica, the lag, the
    // primary and the zone's id at once, then the records (one listing of
    // both names). Its count says so too: five requests, not seven.
    assert!(p.proxy.in_flight().most() >= 4, "the preflight's reads were sent one by one (at most {} at once)", p.proxy.in_flight().most());
    assert_eq!(requests_of(&run, "preflight"), 5, "{run:#}");
    // A first attempt points the CNAME without reading it first; verify
    // reads the records and the instance together (two requests).
    assert_eq!(requests_of(&run, "point-db-record"), 1, "{run:#}");
    // A first attempt promotes with its intent tag at once, the replica not
    // described again (the preflight did): two requests.
    assert_eq!(requests_of(&run, "promote"), 2, "{run:#}");
    assert_eq!(requests_of(&run, "verify"), 2, "{run:#}");
    // A first attempt shifts the weights as a compare-and-swap of the sets
    // the preflight read (DELETE as read + CREATE reweighted), not read
    // again first: one request.
    assert_eq!(requests_of(&run, "shift-app-weights"), 1, "{run:#}");
    assert_eq!(p.proxy.exact_deletes().refused(), 0, "nothing changed the sets since the preflight");

    // `drover show` and the report say it.
    let shown = agent.output(&["show", "reqs"]);
    assert!(shown.status.success(), "{shown:?}");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("5 AWS requests") && shown.contains("1 AWS request"), "{shown}");
    let dir = tempfile::tempdir().unwrap();
    let written = agent.output(&["report", "reqs", "--out", dir.path().to_str().unwrap()]);
    assert!(written.status.success(), "{written:?}");
    let report = std::fs::read_to_string(dir.path().join("reqs.md")).unwrap();
    assert!(report.contains(&format!("**AWS requests**: {counted} ")), "{report}");
    assert!(report.contains("| AWS requests |"), "{report}");
}
