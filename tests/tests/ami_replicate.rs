//! `ami-replicate` against the real emulators: AMI and data snapshot copied
//! to the DR region, retention, and a crash in the middle.

use drover_aws::ec2;
use drover_chaos::killed_by_sigkill;
use drover_e2e::{agent, args, rt, seeded};
use drover_test_artifacts as artifacts;

fn in_lineage(c: &drover_aws::Clients, region: &str, lineage: &str) -> Vec<String> {
    rt().block_on(async {
        let f = aws_sdk_ec2::types::Filter::builder().name(format!("tag:{}", ec2::LINEAGE_TAG)).values(lineage).build();
        let out = c.ec2(region).describe_images().filters(f).send().await.unwrap();
        let mut names: Vec<String> = out.images().iter().filter_map(|i| i.name()).map(str::to_string).collect();
        names.sort();
        names
    })
}

#[test]
fn copies_reach_the_dr_region_once_and_only_the_newest_are_kept() {
    let (c, s) = seeded("ami");
    let (_d, agent) = agent();
    // A lineage of its own: the seeded nightly AMI (made in the same second,
    // as EC2 dates go) must not compete in this test's retention.
    let lineage = format!("{}-rep", s.topology.app_name());
    let params = vec![format!("instance_id={}", s.app_instance), format!("volume_id={}", s.data_volume), format!("lineage={lineage}"), "keep=2".to_string()];
    // Run 1 is killed right after its AMI was made, then resumed.
    let mut child = agent.spawn(&args(artifacts::AMI_REPLICATE, "rep-1", &params), "after-step:create-ami").unwrap();
    assert!(killed_by_sigkill(&child.wait().unwrap()));
    let (status, run) = agent.json(&["resume", "rep-1", "--json", "--quiet"]).unwrap();
    assert!(status.success(), "{run:#}");
    assert_eq!(agent.attempt_count("rep-1", "create-ami"), 1);
    let result = &run["result"];
    assert!(result["dr_ami"].as_str().unwrap().starts_with("ami-"));
    assert!(result["dr_data_snapshot"].as_str().unwrap().starts_with("snap-"));
    assert_eq!(in_lineage(&c, "us-west-2", &lineage), [format!("{lineage}-rep1")]);

    for id in ["rep-2", "rep-3"] {
        let mut a = args(artifacts::AMI_REPLICATE, id, &params);
        a.push("--json");
        let (status, run) = agent.json(&a).unwrap();
        assert!(status.success(), "{run:#}");
    }
    // Three runs, keep two: the older copies are gone from both regions.
    let kept = [format!("{lineage}-rep2"), format!("{lineage}-rep3")];
    assert_eq!(in_lineage(&c, "us-west-2", &lineage), kept);
    assert_eq!(in_lineage(&c, "us-east-1", &lineage), kept);
    // One data snapshot copy per run in the DR region.
    rt().block_on(async {
        let f = aws_sdk_ec2::types::Filter::builder().name(format!("tag:{}", ec2::NAME_TAG)).values(format!("{lineage}-rep3-data")).build();
        let copies = c.ec2("us-west-2").describe_snapshots().filters(f).send().await.unwrap();
        assert_eq!(copies.snapshots().len(), 1);
    });
}

#[test]
fn a_missing_instance_is_a_clear_error() {
    let (_c, s) = seeded("noapp");
    let (_d, agent) = agent();
    let params = vec!["instance_id=i-0000000000000dead".to_string(), format!("lineage={}", s.topology.app_name())];
    let mut a = args(artifacts::AMI_REPLICATE, "none", &params);
    a.push("--json");
    let (status, run) = agent.json(&a).unwrap();
    assert_eq!(status.code(), Some(1), "{run:#}");
    let msg = run["error"]["message"].as_str().unwrap();
    assert!(msg.contains("i-0000000000000dead"), "{msg}");
}
