//! `ami-replicate` against the simulated demo topology: `cargo test` in
//! `runbooks/`.

use drover_sdk::testing::{Fault, Report, Scenario, TestRun};
use serde_json::Value;

use super::AmiReplicate;

const APP: &str = "i-0a11ce0000000app1";

fn demo() -> Scenario {
    Scenario::from_toml(include_str!("../../scenarios/demo.toml")).unwrap()
}

fn lineage(r: &Report, region: &str) -> Vec<String> {
    let images = &r.cloud.state()["ec2"]["images"][region];
    let mut names: Vec<String> = images
        .as_object()
        .unwrap()
        .values()
        .filter(|i| i["tags"]["drover:lineage"] == "orders-app")
        .map(|i| i["image"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn images_the_app_copies_it_and_keeps_the_newest() {
    let r = TestRun::new(&demo()).param("instance_id", APP).param("volume_id", "vol-0a11ce0000000data").param("keep", 1).run::<AmiReplicate>();
    assert!(r.succeeded(), "{r}");
    let out: Value = r.output();
    for call in ["ec2.create-image", "ec2.copy-image", "ec2.snapshot-volume", "ec2.copy-snapshot"] {
        assert_eq!(r.cloud.changes(call), 1, "{call}\n{r}");
    }
    // keep=1: last night's copy in the DR region is pruned, the new one stays.
    assert_eq!(out["pruned"], serde_json::json!(["ami-0a11ce000000000d1"]));
    assert_eq!(lineage(&r, "us-west-2"), ["orders-app-testrun"]);
    assert_eq!(lineage(&r, "us-east-1"), ["orders-app-testrun"]);
}

#[test]
fn a_throttled_copy_is_retried_and_copies_once() {
    let scenario = demo().fault(Fault::new("ec2.copy-image", "RequestLimitExceeded").times(2));
    let r = TestRun::new(&scenario).param("instance_id", APP).run::<AmiReplicate>();
    assert!(r.succeeded(), "{r}");
    assert_eq!(r.step("copy-ami").attempts, 3);
    assert_eq!(r.cloud.changes("ec2.copy-image"), 1);
}

#[test]
fn a_missing_instance_changes_nothing() {
    let r = TestRun::new(&demo()).param("instance_id", "i-0000000000000dead").run::<AmiReplicate>();
    assert_eq!(r.error().code(), "InvalidInstanceID.NotFound", "{r}");
    assert!(r.calls().iter().all(|c| !c.changed));
}

#[test]
fn a_crash_after_each_side_effect_replays_without_repeating_it() {
    for step in ["create-ami", "copy-ami", "snapshot-data", "copy-data", "prune"] {
        let r = TestRun::new(&demo()).param("instance_id", APP).param("volume_id", "vol-0a11ce0000000data").crash_before_complete(step).run::<AmiReplicate>();
        assert!(r.succeeded(), "crash in {step}: {r}");
        for call in ["ec2.create-image", "ec2.copy-image", "ec2.snapshot-volume", "ec2.copy-snapshot"] {
            assert_eq!(r.cloud.changes(call), 1, "crash in {step}: {call}\n{r}");
        }
    }
}

/// The parity check with the agent: `tests/tests/simulated.rs` runs the
/// compiled component in the real engine (`drover test`) on the same
/// scenario and compares with the same file.
#[test]
fn journals_what_the_agent_journals_under_the_same_faults() {
    let scenario = Scenario::from_toml(include_str!("../../scenarios/parity/ami-replicate.toml")).unwrap();
    TestRun::new(&scenario).run::<AmiReplicate>().assert_journal(include_str!("../../scenarios/parity/ami-replicate.journal.json"));
}
