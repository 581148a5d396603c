//! A failover that says "succeeded" must mean traffic is on a promoted,
//! writable database. `regional-failover` through the real `drover` binary
//! against what the emulators alone never show: a replica that RDS refuses
//! to promote because it is busy (held in `backing-up` by the proxy, with
//! the first promotion refused or throttled), an
//! application whose weighted records are A records or changed after the
//! preflight (the proxy keeps Route 53's exact-match `DELETE`), a target that is no
//! read replica (a lag of -1 is covered by the runbook's simulated-cloud tests). Every claim is checked against the
//! cloud's state, read back from the emulators, never against what the
//! agent says it did.

use std::time::Duration;

use drover_aws::{Clients, route53};
use drover_chaos::Agent;
use drover_chaos::hypothesis::{Probe, check};
use drover_chaos::topology::Seeded;
use drover_e2e::{Proxied, args, rt, seeded};
use drover_test_artifacts as artifacts;
use serde_json::Value;

fn holds(c: &Clients, s: &Seeded, probes: &[Probe]) -> Vec<String> {
    rt().block_on(async {
        let mut broken = Vec::new();
        for p in probes {
            let k = check(c, s, *p).await;
            if !k.ok {
                broken.push(format!("{:?}: {}", k.probe, k.detail));
            }
        }
        broken
    })
}

fn assert_failed_over(c: &Clients, s: &Seeded, context: &str) {
    let broken = holds(c, s, &[Probe::ReplicaPromotedOnce, Probe::DbRecordOnReplica, Probe::AppWeightsOnDr]);
    assert!(broken.is_empty(), "{context}: the run said succeeded, the cloud says {broken:?}");
}

#[allow(dead_code)]
fn assert_untouched(c: &Clients, s: &Seeded, context: &str) {
    let broken = holds(c, s, &[Probe::DbRecordOnPrimary, Probe::AppWeightsOnPrimary, Probe::ReplicaNotPromoted]);
    assert!(broken.is_empty(), "{context}: {broken:?}");
}

fn run(agent: &Agent, id: &str, params: &[String]) -> Value {
    let mut a = args(artifacts::REGIONAL_FAILOVER, id, params);
    a.push("--json");
    agent.json(&a).unwrap().1
}

/// A failover of a fresh topology `id` through the fault proxy, started
/// with an approval gate and waiting at it: the moment a test changes the
/// world under the run (nothing has been changed yet).
fn awaiting_approval(id: &str) -> (Clients, Seeded, Proxied, tempfile::TempDir, Agent, std::process::Child) {
    let (c, s) = seeded(id);
    let p = Proxied::start();
    let (home, agent) = p.agent();
    let mut params = s.topology.params();
    params.push("approval=true".into());
    let mut a = args(artifacts::REGIONAL_FAILOVER, id, &params);
    a.push("--json");
    let child = agent.spawn(&a, "").unwrap();
    agent.wait_for_status(id, "waiting", Duration::from_secs(60)).unwrap();
    (c, s, p, home, agent, child)
}

#[test]
fn a_replica_busy_at_its_promotion_is_waited_for_never_taken_for_promoted() {
    let (c, s, p, _d, agent, child) = awaiting_approval("busy");
    // While the operator reads the question, a backup starts on the replica:
    // RDS shows it `backing-up` and refuses a promotion for the next seconds.
    p.proxy.states().hold(&s.topology.replica, "backing-up", Duration::from_secs(5));
    let out = agent.output(&["approve", "busy", "failover"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = child.wait_with_output().unwrap();
    let run: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(run["status"], "succeeded", "{run:#}\n{}", String::from_utf8_lossy(&out.stderr));
    // The promotion happened once the backup was over, once.
    assert_eq!(p.proxy.faults().accepted_count("rds", "PromoteReadReplica"), 1, "accepted: {:?}", p.proxy.faults().accepted());
    let promote = run["steps"].as_array().unwrap().iter().find(|s| s["key"] == "promote").unwrap();
    assert!(promote["attempts"].as_u64().unwrap() > 1, "the busy replica was waited for: {promote}");
    assert_failed_over(&c, &s, "busy");
}

/// A first promotion attempt sends its intent tag beside the promotion with
/// nothing described first. When RDS throttles that promotion while a backup
/// runs on the replica, the tag must come off again: left on, the next
/// attempt would take the backup for this step's promotion under way, adopt
/// it, and the failover would wait for a promotion nobody asked for.
#[test]
fn a_throttled_first_promotion_of_a_busy_replica_leaves_no_intent_tag() {
    use drover_chaos::faults::{Fault, Rule};
    let (c, s, p, _d, agent, child) = awaiting_approval("throttled");
    // Busy well past the step's second attempt (two seconds after the first).
    p.proxy.states().hold(&s.topology.replica, "backing-up", Duration::from_secs(8));
    let throttle = p.proxy.faults().add(Rule {
        service: Some("rds".into()),
        region: None,
        operation: Some("PromoteReadReplica".into()),
        kind: Fault::Throttle,
        ms: 0,
        jitter_ms: 0,
        rate: 1.0,
        pass_first: 0,
        find: None,
        replace: None,
    });
    let out = agent.output(&["approve", "throttled", "failover"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The first promotion is throttled once; the step's next attempt (two
    // seconds later) goes through the proxy as it is.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while p.proxy.faults().injected().get("throttle").copied().unwrap_or(0) == 0 {
        assert!(std::time::Instant::now() < deadline, "the promotion was never sent");
        std::thread::sleep(Duration::from_millis(5));
    }
    p.proxy.faults().remove(throttle);
    let out = child.wait_with_output().unwrap();
    let run: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(run["status"], "succeeded", "{run:#}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(p.proxy.faults().accepted_count("rds", "PromoteReadReplica"), 1, "accepted: {:?}", p.proxy.faults().accepted());
    assert_eq!(p.proxy.faults().accepted_count("rds", "RemoveTagsFromResource"), 1, "the intent tag was taken off: {:?}", p.proxy.faults().accepted());
    let promote = run["steps"].as_array().unwrap().iter().find(|s| s["key"] == "promote").unwrap();
    assert!(promote["attempts"].as_u64().unwrap() > 2, "the busy replica was waited for, not adopted: {promote}");
    assert_failed_over(&c, &s, "throttled");
}

/// The weights go out as a compare-and-swap of the sets the preflight read
/// (no read first). When someone changes a set between the preflight and
/// the shift (here an operator raises the DR set's TTL while the failover
/// waits for its approval), Route 53 refuses the swap whole (the fault proxy
/// keeps its exact-match rule for a `DELETE`, which the emulator does not);
/// the step then reads the sets and shifts the weights on what is there:
/// the operator's TTL is kept, not overwritten with the one read before.
#[test]
fn weights_changed_after_the_preflight_are_read_again_not_overwritten() {
    let (c, s, p, _d, agent, child) = awaiting_approval("swapped");
    let t = &s.topology;
    rt().block_on(async {
        use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
        let zone = route53::zone_id(&c, &t.hosted_zone).await.unwrap();
        let current = route53::get_records(&c, &t.hosted_zone, &t.app_record).await.unwrap();
        let dr = current.iter().find(|r| r.set_identifier.as_deref() == Some(t.dr_region.as_str())).unwrap();
        assert_ne!(dr.ttl, Some(120));
        let longer = ResourceRecordSet::builder()
            .name(&dr.name)
            .r#type(RrType::Cname)
            .ttl(120)
            .set_identifier(&t.dr_region)
            .weight(i64::from(dr.weight.unwrap()))
            .resource_records(ResourceRecord::builder().value(&dr.values[0]).build().unwrap())
            .build()
            .unwrap();
        let upsert = Change::builder().action(ChangeAction::Upsert).resource_record_set(longer).build().unwrap();
        c.route53()
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(ChangeBatch::builder().changes(upsert).build().unwrap())
            .send()
            .await
            .unwrap();
    });
    let out = agent.output(&["approve", "swapped", "failover"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = child.wait_with_output().unwrap();
    let run: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(run["status"], "succeeded", "{run:#}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(p.proxy.exact_deletes().refused(), 1, "the swap of what the preflight read was refused");
    let shift = run["steps"].as_array().unwrap().iter().find(|s| s["key"] == "shift-app-weights").unwrap();
    assert_eq!(shift["attempts"], 1, "the step read and shifted within its first attempt: {shift}");
    assert_eq!(shift["requests"], 3, "the refused swap, the read, the UPSERT: {shift}");
    let app = rt().block_on(route53::get_records(&c, &t.hosted_zone, &t.app_record)).unwrap();
    let dr = app.iter().find(|r| r.set_identifier.as_deref() == Some(t.dr_region.as_str())).unwrap();
    assert_eq!((dr.weight, dr.ttl), (Some(100), Some(120)), "the DR set has all the weight and keeps the operator's TTL: {app:?}");
    assert_failed_over(&c, &s, "swapped");
}

#[test]
fn a_target_that_is_not_a_replica_is_refused_and_dns_is_left_alone() {
    let (c, s) = seeded("standalone");
    let t = &s.topology;
    let standalone = format!("{}-standalone", t.db_instance);
    rt().block_on(async {
        c.rds(&t.dr_region)
            .create_db_instance()
            .db_instance_identifier(&standalone)
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("orders")
            .master_user_password("seeded-demo-only")
            .send()
            .await
            .unwrap();
    });
    let (_d, agent) = drover_e2e::agent();
    let mut params: Vec<String> = t.params().into_iter().filter(|p| !p.starts_with("replica=")).collect();
    params.push(format!("replica={standalone}"));
    let run = run(&agent, "standalone", &params);
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["error"]["code"], "not-a-replica", "{run:#}");
    assert!(run["error"]["message"].as_str().unwrap().contains("target_is_writer"), "{run:#}");
    let broken = holds(&c, &s, &[Probe::DbRecordOnPrimary, Probe::AppWeightsOnPrimary]);
    assert!(broken.is_empty(), "{broken:?}");
}

#[test]
fn weighted_a_records_are_shifted_as_a_records() {
    let (c, s) = seeded("arec");
    let t = &s.topology;
    // The application's weighted records are A records, not CNAMEs.
    rt().block_on(async {
        use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
        let zone = route53::zone_id(&c, &t.hosted_zone).await.unwrap();
        let current = route53::get_records(&c, &t.hosted_zone, &t.app_record).await.unwrap();
        let mut changes = Vec::new();
        for r in &current {
            let old = ResourceRecordSet::builder()
                .name(&r.name)
                .r#type(RrType::Cname)
                .ttl(i64::from(r.ttl.unwrap_or(60)))
                .set_identifier(r.set_identifier.clone().unwrap())
                .weight(i64::from(r.weight.unwrap()))
                .resource_records(ResourceRecord::builder().value(&r.values[0]).build().unwrap())
                .build()
                .unwrap();
            changes.push(Change::builder().action(ChangeAction::Delete).resource_record_set(old).build().unwrap());
        }
        for (set, weight, ip) in [(&t.primary_region, 100, "10.0.0.10"), (&t.dr_region, 0, "10.1.0.10")] {
            let a = ResourceRecordSet::builder()
                .name(route53::fqdn(&t.app_record))
                .r#type(RrType::A)
                .ttl(60)
                .set_identifier(set)
                .weight(weight)
                .resource_records(ResourceRecord::builder().value(ip).build().unwrap())
                .build()
                .unwrap();
            changes.push(Change::builder().action(ChangeAction::Create).resource_record_set(a).build().unwrap());
        }
        c.route53()
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(ChangeBatch::builder().set_changes(Some(changes)).build().unwrap())
            .send()
            .await
            .unwrap();
    });
    let (_d, agent) = drover_e2e::agent();
    let run = run(&agent, "arec", &t.params());
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let app = rt().block_on(route53::get_records(&c, &t.hosted_zone, &t.app_record)).unwrap();
    let mut seen: Vec<(String, String, Option<u8>)> =
        app.iter().map(|r| (r.record_type.clone(), r.set_identifier.clone().unwrap_or_default(), r.weight)).collect();
    seen.sort();
    assert_eq!(
        seen,
        [("A".to_string(), t.primary_region.clone(), Some(0)), ("A".to_string(), t.dr_region.clone(), Some(100))],
        "the A records shifted, no CNAME written beside them"
    );
    assert_failed_over(&c, &s, "A records");
}
