//! The capabilities against the real emulators (LocalStack for Route 53,
//! moto's server for RDS, Auto Scaling and ECS), reached through the
//! standard endpoint settings.
//! `scripts/test` starts the emulators and sets `AWS_ENDPOINT_URL*`; run
//! `scripts/emulators start` and `eval "$(scripts/emulators env)"` to run
//! these by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a test fails by panicking")]

use std::time::Duration;

use aws_sdk_rds::types::Tag;
use drover_aws::{Clients, rds, route53};

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

async fn clients() -> Clients {
    let ep = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    let rds_ep = std::env::var("AWS_ENDPOINT_URL_RDS").unwrap_or_default();
    assert!(
        ep.starts_with("http://127.0.0.1") && rds_ep.starts_with("http://127.0.0.1"),
        "these tests need the local emulators: run them through scripts/test, or `scripts/emulators start` \
         and `eval \"$(scripts/emulators env)\"` first (AWS_ENDPOINT_URL='{ep}', AWS_ENDPOINT_URL_RDS='{rds_ep}')"
    );
    Clients::load().await
}

/// A primary in us-east-1 and its cross-region read replica in us-west-2,
/// made with the plain SDK as an operator's infrastructure would be.
async fn primary_and_replica(c: &Clients) -> (String, String) {
    let primary = unique("orders-db");
    let replica = format!("{primary}-replica");
    c.rds("us-east-1")
        .create_db_instance()
        .db_instance_identifier(&primary)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("drover")
        .master_user_password("not-a-real-password")
        .tags(Tag::builder().key("app").value("orders").build())
        .send()
        .await
        .unwrap();
    let arn = rds::describe_instance(c, "us-east-1", &primary).await.unwrap().arn;
    c.rds("us-west-2").create_db_instance_read_replica().db_instance_identifier(&replica).source_db_instance_identifier(&arn).send().await.unwrap();
    (primary, replica)
}

#[tokio::test]
async fn endpoints_come_from_the_environment_and_errors_name_the_resource() {
    let c = clients().await;
    // moto answers RDS (LocalStack's community build has no RDS): this
    // proves AWS_ENDPOINT_URL_RDS is used.
    let err = rds::describe_instance(&c, "us-east-1", "no-such-db").await.unwrap_err();
    assert_eq!(err.code, "DBInstanceNotFound", "{err}");
    assert!(!err.retryable);
    let text = err.to_string();
    assert!(text.contains("rds DescribeDBInstances on no-such-db in us-east-1 failed"), "{text}");
    let err = route53::zone_id(&c, "nowhere.example.internal").await.unwrap_err();
    assert_eq!(err.code, "NoSuchHostedZone", "{err}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_clear_retryable_error() {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region("us-east-1")
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .load()
        .await;
    let c = Clients::from_config(conf);
    let err = rds::describe_instance(&c, "us-east-1", "orders-db").await.unwrap_err();
    assert_eq!(err.code, "unreachable", "{err}");
    assert!(err.retryable);
    assert!(err.message.contains("could not connect"), "{err}");
}

#[tokio::test]
async fn snapshot_copy_and_promotion_adopt_what_an_earlier_attempt_made() {
    let c = clients().await;
    let (primary, replica) = primary_and_replica(&c).await;

    let snap = format!("{primary}-final");
    let first = rds::create_snapshot(&c, "us-east-1", &primary, &snap, "key-1").await.unwrap();
    let again = rds::create_snapshot(&c, "us-east-1", &primary, &snap, "key-1").await.unwrap();
    assert_eq!(first.arn, again.arn);
    let err = rds::create_snapshot(&c, "us-east-1", &replica, &snap, "key-1").await;
    assert!(err.is_err(), "a snapshot of that name from another instance is not adopted");
    rds::wait_snapshot_available(&c, "us-east-1", &snap, Duration::from_secs(60)).await.unwrap();

    let copy = format!("{snap}-dr");
    let c1 = rds::copy_snapshot(&c, &first.arn, "us-west-2", &copy, None, "key-2").await.unwrap();
    let c2 = rds::copy_snapshot(&c, &first.arn, "us-west-2", &copy, None, "key-2").await.unwrap();
    assert_eq!(c1.arn, c2.arn);
    assert_eq!(rds::arn_region(&c1.arn), Some("us-west-2"));
    let copies = c.rds("us-west-2").describe_db_snapshots().db_snapshot_identifier(&copy).send().await.unwrap();
    assert_eq!(copies.db_snapshots().len(), 1);

    let before = rds::describe_instance(&c, "us-west-2", &replica).await.unwrap();
    assert!(before.replica_source.is_some());
    // A first attempt, the replica's ARN known from the describe above:
    // the intent tag and the promotion at once.
    let promoted = rds::promote_read_replica(&c, "us-west-2", &replica, "key-3", true).await.unwrap();
    let tags = c.rds("us-west-2").list_tags_for_resource().resource_name(&promoted.arn).send().await.unwrap();
    let marks: Vec<_> = tags.tag_list().iter().filter(|t| t.key() == Some(rds::PROMOTED_TAG)).collect();
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0].value(), Some("key-3"));
    // A second attempt (a crash after the promotion) adopts it.
    rds::promote_read_replica(&c, "us-west-2", &replica, "key-3", false).await.unwrap();
    let available = rds::wait_instance_available(&c, "us-west-2", &replica, Duration::from_secs(60)).await.unwrap();
    assert!(available.endpoint.is_some());
}

#[tokio::test]
async fn cname_and_weights_change_once_and_then_are_left_alone() {
    let c = clients().await;
    let zone = format!("{}.example.internal", unique("orders"));
    c.route53().create_hosted_zone().name(&zone).caller_reference(unique("ref")).send().await.unwrap();
    let db = format!("db.{zone}");
    let app = format!("app.{zone}");
    let t = Duration::from_secs(60);
    assert!(route53::upsert_cname(&c, &zone, &db, "primary.us-east-1.rds.example", 60, t).await.unwrap());
    assert!(route53::upsert_cname(&c, &zone, &db, "replica.us-west-2.rds.example", 60, t).await.unwrap());
    assert!(!route53::upsert_cname(&c, &zone, &db, "replica.us-west-2.rds.example.", 60, t).await.unwrap());
    let recs = route53::get_records(&c, &zone, &db).await.unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(route53::fqdn(&recs[0].values[0]), "replica.us-west-2.rds.example.");

    let w = |e: u8, w: u8| {
        vec![
            route53::WeightedTarget { set_identifier: "us-east-1".into(), weight: e, value: "app.us-east-1.example".into() },
            route53::WeightedTarget { set_identifier: "us-west-2".into(), weight: w, value: "app.us-west-2.example".into() },
        ]
    };
    assert!(route53::set_weights(&c, &zone, &app, &w(100, 0), 60, t).await.unwrap());
    assert!(route53::set_weights(&c, &zone, &app, &w(0, 100), 60, t).await.unwrap());
    assert!(!route53::set_weights(&c, &zone, &app, &w(0, 100), 60, t).await.unwrap());
    let recs = route53::get_records(&c, &zone, &app).await.unwrap();
    let weight = |set: &str| recs.iter().find(|r| r.set_identifier.as_deref() == Some(set)).unwrap().weight;
    assert_eq!((weight("us-east-1"), weight("us-west-2")), (Some(0), Some(100)));
}

#[tokio::test]
async fn a_read_replica_is_created_once_and_a_stranger_is_not_adopted() {
    let c = clients().await;
    let (primary, _replica) = primary_and_replica(&c).await;
    let source = rds::describe_instance(&c, "us-east-1", &primary).await.unwrap().arn;
    let name = format!("{primary}-second");
    let first = rds::create_read_replica(&c, &source, "us-west-2", &name, None, "key-r").await.unwrap();
    let again = rds::create_read_replica(&c, &source, "us-west-2", &name, None, "key-r").await.unwrap();
    assert_eq!(first.arn, again.arn);
    assert!(again.replica_source.is_some());
    // An instance of that name that replicates something else is refused, not adopted.
    let (other, _) = primary_and_replica(&c).await;
    let other_arn = rds::describe_instance(&c, "us-east-1", &other).await.unwrap().arn;
    let err = rds::create_read_replica(&c, &other_arn, "us-west-2", &name, None, "key-r").await.unwrap_err();
    assert_eq!(err.code, "DBInstanceAlreadyExists");
    assert!(err.message.contains("is not a replica of"), "{err}");
}

#[tokio::test]
async fn ec2_snapshots_images_and_instances_are_made_once_and_old_copies_pruned() {
    use drover_aws::ec2;
    let c = clients().await;
    let name = unique("app");
    let east = c.ec2("us-east-1");
    // An app instance and a data volume, as the operator's infrastructure has them.
    let run = east
        .run_instances()
        .image_id("ami-0a1b2c3d4e5f60001")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let inst = run.instances()[0].instance_id().unwrap().to_string();
    let vol = east.create_volume().availability_zone("us-east-1a").size(8).send().await.unwrap().volume_id().unwrap().to_string();

    let data = format!("{name}-data");
    let s1 = ec2::snapshot_volume(&c, "us-east-1", &vol, &data, Some(&name), "k1").await.unwrap();
    let s2 = ec2::snapshot_volume(&c, "us-east-1", &vol, &data, Some(&name), "k1").await.unwrap();
    assert_eq!(s1.id, s2.id);
    let copy = format!("{data}-dr");
    let c1 = ec2::copy_snapshot(&c, "us-east-1", &s1.id, "us-west-2", &copy, Some(&name), "k2").await.unwrap();
    let c2 = ec2::copy_snapshot(&c, "us-east-1", &s1.id, "us-west-2", &copy, Some(&name), "k2").await.unwrap();
    assert_eq!(c1.id, c2.id);
    let tagged = |key: &str, v: &str| aws_sdk_ec2::types::Filter::builder().name(format!("tag:{key}")).values(v).build();
    let west = c.ec2("us-west-2");
    let copies = west.describe_snapshots().filters(tagged(ec2::NAME_TAG, &copy)).send().await.unwrap();
    assert_eq!(copies.snapshots().len(), 1);

    let ami = format!("{name}-ami-1");
    let a1 = ec2::create_image(&c, "us-east-1", &inst, &ami, Some(&name), "k3").await.unwrap();
    let a2 = ec2::create_image(&c, "us-east-1", &inst, &ami, Some(&name), "k3").await.unwrap();
    assert_eq!(a1.id, a2.id);
    ec2::wait_image_available(&c, "us-east-1", &a1.id, Duration::from_secs(60)).await.unwrap();
    let d1 = ec2::copy_image(&c, "us-east-1", &a1.id, "us-west-2", &ami, Some(&name), "k4").await.unwrap();
    let d2 = ec2::copy_image(&c, "us-east-1", &a1.id, "us-west-2", &ami, Some(&name), "k4").await.unwrap();
    assert_eq!(d1.id, d2.id, "LocalStack ignores the client token: the tag lookup must catch the repeat");
    let amis = west.describe_images().filters(tagged(ec2::NAME_TAG, &ami)).send().await.unwrap();
    assert_eq!(amis.images().len(), 1);

    let app = format!("{name}-dr");
    let i1 = ec2::run_instance(&c, "us-west-2", &d1.id, "t3.micro", &app, "run-k5", "k5").await.unwrap();
    let i2 = ec2::run_instance(&c, "us-west-2", &d1.id, "t3.micro", &app, "run-k5", "k5").await.unwrap();
    assert_eq!(i1.id, i2.id);
    assert_eq!(ec2::describe_instance(&c, "us-west-2", &i1.id).await.unwrap().image_id, d1.id);

    // Retention: three copies of the lineage, keep the newest two.
    for n in 2..=3 {
        ec2::create_image(&c, "us-west-2", &i1.id, &format!("{name}-ami-{n}"), Some(&name), &format!("k6-{n}")).await.unwrap();
    }
    let removed = ec2::prune_images(&c, "us-west-2", &name, 2).await.unwrap();
    assert_eq!(removed, vec![d1.id.clone()]);
    let left = west.describe_images().filters(tagged(ec2::LINEAGE_TAG, &name)).send().await.unwrap();
    let mut names: Vec<&str> = left.images().iter().filter_map(|i| i.name()).collect();
    names.sort();
    assert_eq!(names, [format!("{name}-ami-2"), format!("{name}-ami-3")]);
}

#[tokio::test]
async fn a_restore_is_made_once_and_only_the_run_that_made_a_resource_deletes_it() {
    let c = clients().await;
    let (primary, _) = primary_and_replica(&c).await;
    let snap = rds::create_snapshot(&c, "us-east-1", &primary, &format!("{primary}-snap"), "k-snap").await.unwrap();
    let copy = rds::copy_snapshot(&c, &snap.arn, "us-west-2", &format!("{primary}-snap-dr"), None, "k-copy").await.unwrap();
    let newest = rds::latest_snapshot(&c, "us-west-2", &primary).await.unwrap().expect("the copy is found");
    assert_eq!(newest.snapshot.identifier, copy.identifier);
    assert!(newest.taken.0 > 1_700_000_000, "{newest:?}");
    assert_eq!(rds::latest_snapshot(&c, "us-west-2", "no-such-db").await.unwrap(), None);

    // Restored once; a repeat of the step adopts it; another step may not.
    let name = format!("{primary}-drill");
    let first = rds::restore_from_snapshot(&c, "us-west-2", &copy.identifier, &name, None, "run-a", "k-restore").await.unwrap();
    let again = rds::restore_from_snapshot(&c, "us-west-2", &copy.identifier, &name, None, "run-a", "k-restore").await.unwrap();
    assert_eq!(first.arn, again.arn);
    let err = rds::restore_from_snapshot(&c, "us-west-2", &copy.identifier, &name, None, "run-a", "k-other").await.unwrap_err();
    assert_eq!(err.code, "DBInstanceAlreadyExists", "{err}");
    assert_eq!(rds::run_instances(&c, "us-west-2", "run-a").await.unwrap(), std::slice::from_ref(&name));

    // Another run cannot delete it, and neither can anyone delete the primary.
    let err = rds::delete_instance(&c, "us-west-2", &name, "run-b").await.unwrap_err();
    assert_eq!(err.code, "not-created-by-this-run", "{err}");
    let err = rds::delete_instance(&c, "us-east-1", &primary, "run-a").await.unwrap_err();
    assert_eq!(err.code, "not-created-by-this-run", "{err}");
    rds::describe_instance(&c, "us-east-1", &primary).await.unwrap();
    rds::delete_instance(&c, "us-west-2", &name, "run-a").await.unwrap();
    rds::delete_instance(&c, "us-west-2", &name, "run-a").await.unwrap();
    assert!(rds::run_instances(&c, "us-west-2", "run-a").await.unwrap().is_empty());
}

#[tokio::test]
async fn only_the_run_that_launched_an_instance_terminates_it() {
    use drover_aws::ec2;
    let c = clients().await;
    let run = unique("run");
    let image = ec2::latest_image(&c, "us-west-2", "no-such-lineage").await.unwrap();
    assert!(image.is_none());
    let name = unique("drill-app");
    let launched = ec2::run_instance(&c, "us-west-2", "ami-0a1b2c3d4e5f60001", "t3.micro", &name, &run, &unique("k")).await.unwrap();
    assert_eq!(ec2::run_instances(&c, "us-west-2", &run).await.unwrap(), std::slice::from_ref(&launched.id));
    let err = ec2::terminate_instance(&c, "us-west-2", &launched.id, "someone-else").await.unwrap_err();
    assert_eq!(err.code, "not-created-by-this-run", "{err}");
    ec2::terminate_instance(&c, "us-west-2", &launched.id, &run).await.unwrap();
    ec2::terminate_instance(&c, "us-west-2", &launched.id, &run).await.unwrap();
    assert!(ec2::run_instances(&c, "us-west-2", &run).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_cname_is_deleted_once_and_a_missing_zone_or_record_is_left_alone() {
    let c = clients().await;
    let zone = format!("{}.example.internal", unique("del"));
    c.route53().create_hosted_zone().name(&zone).caller_reference(unique("ref")).send().await.unwrap();
    let name = format!("drill.{zone}");
    let t = Duration::from_secs(30);
    route53::upsert_cname(&c, &zone, &name, "target.example.internal", 60, t).await.unwrap();
    assert!(route53::delete_cname(&c, &zone, &name, t).await.unwrap());
    assert!(route53::get_records(&c, &zone, &name).await.unwrap().is_empty());
    assert!(!route53::delete_cname(&c, &zone, &name, t).await.unwrap());
    assert!(!route53::delete_cname(&c, "no-such-zone.example.internal", &name, t).await.unwrap());
}

/// A fleet's records read together, and changed with the app's weights in
/// one change batch: every record in its order, a repeat changes nothing, a
/// name twice is refused before anything is sent.
#[tokio::test]
async fn a_fleet_of_records_is_read_together_and_changed_in_one_batch() {
    use route53::{RecordChange, WeightedTarget};
    let c = clients().await;
    let zone = format!("{}.example.internal", unique("batch"));
    c.route53().create_hosted_zone().name(&zone).caller_reference(unique("ref")).send().await.unwrap();
    let t = Duration::from_secs(30);
    let names: Vec<String> = (1..=3).map(|i| format!("db{i}.{zone}")).collect();
    for n in &names[..2] {
        route53::upsert_cname(&c, &zone, n, "old.example.internal", 60, t).await.unwrap();
    }
    let app = format!("app.{zone}");
    let w = |set: &str, weight: u8| WeightedTarget { set_identifier: set.into(), weight, value: format!("app.{set}.example.internal") };
    route53::set_weights(&c, &zone, &app, &[w("east", 100), w("west", 0)], 60, t).await.unwrap();
    // In the order asked for; a name with no record has none; a name twice is read once.
    let asked = vec![names[1].clone(), names[2].clone(), names[0].clone(), names[1].clone()];
    let sets = route53::get_records_of(&c, &zone, &asked).await.unwrap();
    let got: Vec<&str> = sets.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(got, [route53::fqdn(&names[1]), route53::fqdn(&names[0])], "{sets:?}");

    let mut batch: Vec<RecordChange> = names.iter().map(|n| RecordChange::PointCname { name: n.clone(), target: format!("new-{n}") }).collect();
    batch.push(RecordChange::SetWeights { name: app.clone(), targets: vec![w("east", 0), w("west", 100)] });
    assert_eq!(route53::change_records(&c, &zone, &batch, 60, t).await.unwrap(), 5, "3 records and 2 weighted sets");
    let sets = route53::get_records_of(&c, &zone, &[names.clone(), vec![app.clone()]].concat()).await.unwrap();
    for n in &names {
        assert!(sets.iter().any(|r| r.name == route53::fqdn(n) && r.is_cname_to(&format!("new-{n}"))), "{n}: {sets:?}");
    }
    let weight = |set: &str| sets.iter().find(|r| r.set_identifier.as_deref() == Some(set)).and_then(|r| r.weight);
    assert_eq!((weight("east"), weight("west")), (Some(0), Some(100)), "{sets:?}");
    assert_eq!(route53::change_records(&c, &zone, &batch, 60, t).await.unwrap(), 0, "a repeat changes nothing");

    let twice = vec![
        RecordChange::PointCname { name: names[0].clone(), target: "x.example.internal".into() },
        RecordChange::PointCname { name: names[0].to_uppercase(), target: "y.example.internal".into() },
    ];
    let err = route53::change_records(&c, &zone, &twice, 60, t).await.unwrap_err();
    assert_eq!(err.code, "bad-request", "{err}");
    assert!(err.message.contains("changed twice"), "{err}");
    assert!(route53::get_records(&c, &zone, &names[0]).await.unwrap()[0].is_cname_to(&format!("new-{}", names[0])), "nothing was sent");
}

/// A zone's id is looked up once (a failover's every record step would
/// repeat that round trip); a zone deleted and made again under its name
/// gets a new id, which the next call finds instead of failing on the old one.
#[tokio::test]
async fn a_zone_id_is_looked_up_once_and_again_when_its_zone_was_made_anew() {
    let c = clients().await;
    let zone = format!("{}.example.internal", unique("remade"));
    let make = || async {
        c.route53()
            .create_hosted_zone()
            .name(&zone)
            .caller_reference(unique("ref"))
            .send()
            .await
            .unwrap()
            .hosted_zone()
            .unwrap()
            .id()
            .trim_start_matches("/hostedzone/")
            .to_string()
    };
    let first = make().await;
    let name = format!("db.{zone}");
    let t = Duration::from_secs(30);
    assert!(route53::upsert_cname(&c, &zone, &name, "one.example.internal", 60, t).await.unwrap());
    assert_eq!(route53::zone_id(&c, &zone).await.unwrap(), first);

    // The zone goes (its record first: Route 53 deletes only empty zones) and comes back.
    assert!(route53::delete_cname(&c, &zone, &name, t).await.unwrap());
    c.route53().delete_hosted_zone().id(&first).send().await.unwrap();
    let second = make().await;
    assert_ne!(first, second);
    assert!(route53::upsert_cname(&c, &zone, &name, "two.example.internal", 60, t).await.unwrap(), "the change went to the zone made anew");
    assert_eq!(route53::zone_id(&c, &zone).await.unwrap(), second);
    let now = route53::get_records(&c, &format!("/hostedzone/{second}"), &name).await.unwrap();
    assert!(now.len() == 1 && now[0].is_cname_to("two.example.internal"), "{now:?}");
}

/// Split-horizon DNS: a private zone (tied to a VPC) and a public zone with
/// the same name. A plain name is refused, naming both; `private:NAME`,
/// `public:NAME` and the zone's id each reach exactly their zone.
#[tokio::test]
async fn a_private_and_a_public_zone_of_one_name_are_never_confused() {
    use aws_sdk_route53::types::{HostedZoneConfig, Vpc, VpcRegion};
    let c = clients().await;
    let zone = format!("{}.example.internal", unique("split"));
    let vpc = c.ec2("us-east-1").create_vpc().cidr_block("10.42.0.0/16").send().await.unwrap().vpc().unwrap().vpc_id().unwrap().to_string();
    let made = |private: bool| {
        let mut req = c.route53().create_hosted_zone().name(&zone).caller_reference(unique("ref"));
        if private {
            req = req
                // (LocalStack fails a zone config without a comment.)
                .hosted_zone_config(HostedZoneConfig::builder().private_zone(true).comment("drover test").build())
                .vpc(Vpc::builder().vpc_id(&vpc).vpc_region(VpcRegion::UsEast1).build());
        }
        async move { req.send().await.unwrap().hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string() }
    };
    let private_id = made(true).await;
    let public_id = made(false).await;
    let name = format!("db.{zone}");
    let t = Duration::from_secs(30);

    // By name alone: refused, naming both zones and how to choose; nothing written.
    let err = route53::upsert_cname(&c, &zone, &name, "wrong.example.internal", 60, t).await.unwrap_err();
    assert_eq!(err.code, "AmbiguousHostedZone", "{err}");
    assert!(!err.retryable);
    for part in [format!("{private_id} (private)"), format!("{public_id} (public)"), format!("private:{zone}.")] {
        assert!(err.message.contains(&part), "{part}: {err}");
    }
    assert_eq!(route53::get_records(&c, &zone, &name).await.unwrap_err().code, "AmbiguousHostedZone");
    assert_eq!(route53::delete_cname(&c, &zone, &name, t).await.unwrap_err().code, "AmbiguousHostedZone");
    for id in [&private_id, &public_id] {
        assert!(route53::get_records(&c, &format!("/hostedzone/{id}"), &name).await.unwrap().is_empty(), "nothing was written to {id}");
    }

    // Qualified: each change lands in its own zone.
    assert!(route53::upsert_cname(&c, &format!("private:{zone}"), &name, "inside.example.internal", 60, t).await.unwrap());
    assert!(route53::upsert_cname(&c, &format!("public:{zone}"), &name, "outside.example.com", 60, t).await.unwrap());
    let inside = route53::get_records(&c, &format!("/hostedzone/{private_id}"), &name).await.unwrap();
    assert!(inside.len() == 1 && inside[0].is_cname_to("inside.example.internal"), "{inside:?}");
    let outside = route53::get_records(&c, &format!("/hostedzone/{public_id}"), &name).await.unwrap();
    assert!(outside.len() == 1 && outside[0].is_cname_to("outside.example.com"), "{outside:?}");
    assert_eq!(route53::zone_id(&c, &format!("private:{zone}")).await.unwrap(), private_id);
    // By id: that zone, whatever its name.
    // (LocalStack's ids do not start with Z as AWS's do: the /hostedzone/ form names them.)
    assert!(route53::delete_cname(&c, &format!("/hostedzone/{public_id}"), &name, t).await.unwrap());
    assert!(route53::get_records(&c, &format!("public:{zone}"), &name).await.unwrap().is_empty());
    assert_eq!(route53::get_records(&c, &format!("private:{zone}"), &name).await.unwrap().len(), 1, "the private zone's record is untouched");
    let err = route53::zone_id(&c, "ZNOSUCHZONE0000").await.unwrap_err();
    assert_eq!(err.code, "NoSuchHostedZone", "{err}");
}

#[tokio::test]
async fn health_checks_are_read_and_updated_once_and_failover_records_upserted_once() {
    use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckType};
    let c = clients().await;
    let conf = HealthCheckConfig::builder()
        .r#type(HealthCheckType::Http)
        .fully_qualified_domain_name("app.us-west-2.example.internal")
        .port(80)
        .resource_path("/health")
        .build()
        .unwrap();
    let made = c.route53().create_health_check().caller_reference(unique("hc")).health_check_config(conf).send().await.unwrap();
    let id = made.health_check().unwrap().id().to_string();

    let hc = route53::get_health_check(&c, &id).await.unwrap();
    assert_eq!((hc.kind.as_str(), hc.target.as_str(), hc.port, hc.path.as_deref()), ("HTTP", "app.us-west-2.example.internal", Some(80), Some("/health")));
    assert!(!hc.disabled && !hc.inverted);
    assert!(hc.status == "healthy" || hc.status == "unknown", "{hc:?}");
    assert!(route53::update_health_check(&c, &id, true, false).await.unwrap().0);
    assert!(route53::get_health_check(&c, &id).await.unwrap().disabled);
    assert!(!route53::update_health_check(&c, &id, true, false).await.unwrap().0, "already disabled: no change");
    let err = route53::get_health_check(&c, "00000000-0000-0000-0000-000000000000").await.unwrap_err();
    assert!(err.code.contains("NoSuchHealthCheck"), "{err}");

    let zone = format!("{}.example.internal", unique("fo"));
    c.route53().create_hosted_zone().name(&zone).caller_reference(unique("ref")).send().await.unwrap();
    let name = format!("db.{zone}");
    let t = Duration::from_secs(30);
    use route53::FailoverRole::{Primary, Secondary};
    assert!(route53::upsert_failover(&c, &zone, &name, &failover(Primary, "primary", "a.example.internal", Some(&id)), t).await.unwrap());
    assert!(route53::upsert_failover(&c, &zone, &name, &failover(Secondary, "secondary", "b.example.internal", None), t).await.unwrap());
    assert!(
        !route53::upsert_failover(&c, &zone, &name, &failover(Primary, "primary", "a.example.internal", Some(&id)), t).await.unwrap(),
        "no change the second time"
    );
    let sets = route53::get_records(&c, &zone, &name).await.unwrap();
    let primary = sets.iter().find(|r| r.set_identifier.as_deref() == Some("primary")).unwrap();
    assert_eq!((primary.failover.as_deref(), primary.health_check.as_deref()), (Some("PRIMARY"), Some(id.as_str())));
    assert_eq!(sets.iter().find(|r| r.set_identifier.as_deref() == Some("secondary")).unwrap().failover.as_deref(), Some("SECONDARY"));
}

#[tokio::test]
async fn alarms_are_read_in_the_order_asked_and_an_unknown_one_is_an_error() {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
    use drover_aws::cloudwatch::{self, AlarmState};
    let c = clients().await;
    let region = "us-west-2";
    let (a, b) = (unique("alarm-a"), unique("alarm-b"));
    for name in [&a, &b] {
        c.cloudwatch(region)
            .put_metric_alarm()
            .alarm_name(name)
            .namespace("AWS/ApplicationELB")
            .metric_name("HTTPCode_Target_5XX_Count")
            .statistic(Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(10.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .unwrap();
    }
    c.cloudwatch(region).set_alarm_state().alarm_name(&a).state_value(StateValue::Alarm).state_reason("5xx over 10").send().await.unwrap();
    c.cloudwatch(region).set_alarm_state().alarm_name(&b).state_value(StateValue::Ok).state_reason("fine").send().await.unwrap();

    let got = cloudwatch::describe_alarms(&c, region, &[b.clone(), a.clone()]).await.unwrap();
    assert_eq!(got.iter().map(|x| (x.name.as_str(), x.state)).collect::<Vec<_>>(), [(b.as_str(), AlarmState::Ok), (a.as_str(), AlarmState::Alarm)]);
    assert_eq!(got[1].reason, "5xx over 10");
    assert!(got[1].arn.contains(&a), "{:?}", got[1]);

    let err = cloudwatch::describe_alarms(&c, region, &[a.clone(), "no-such-alarm".into()]).await.unwrap_err();
    assert_eq!((err.code.as_str(), err.resource.as_str()), ("alarm-not-found", "no-such-alarm"), "{err}");
    // Alarms live in a region: the same name elsewhere is not found.
    let err = cloudwatch::describe_alarms(&c, "us-east-1", std::slice::from_ref(&a)).await.unwrap_err();
    assert_eq!(err.code, "alarm-not-found", "{err}");
}

#[tokio::test]
async fn aurora_global_databases_are_described_failed_over_where_supported_and_detached() {
    use drover_aws::aurora::{self, GlobalFailoverMode};
    let c = clients().await;
    let (primary_region, dr_region) = ("us-east-1", "us-west-2");
    let (global, primary, secondary) = (unique("orders-global"), unique("orders-aurora"), unique("orders-aurora-dr"));
    // The global database first, then its writer cluster, then a secondary.
    c.rds(primary_region).create_global_cluster().global_cluster_identifier(&global).engine("aurora-postgresql").engine_version("16.4").send().await.unwrap();
    let mut arns = Vec::new();
    for (region, id) in [(primary_region, &primary), (dr_region, &secondary)] {
        let made = c
            .rds(region)
            .create_db_cluster()
            .db_cluster_identifier(id)
            .engine("aurora-postgresql")
            .engine_version("16.4")
            .master_username("orders")
            .master_user_password("seeded-demo-only")
            .global_cluster_identifier(&global)
            .send()
            .await
            .unwrap();
        arns.push(made.db_cluster().unwrap().db_cluster_arn().unwrap().to_string());
    }
    let (primary_arn, secondary_arn) = (arns[0].clone(), arns[1].clone());

    let k = aurora::describe_cluster(&c, dr_region, &secondary).await.unwrap();
    assert_eq!((k.arn.as_str(), k.region.as_str(), k.engine.as_str()), (secondary_arn.as_str(), dr_region, "aurora-postgresql"), "{k:?}");
    assert!(k.global_cluster.as_deref().is_some_and(|g| g.contains(&global)), "{k:?}");
    let err = aurora::describe_cluster(&c, dr_region, "no-such-cluster").await.unwrap_err();
    assert!(err.code.contains("DBClusterNotFound"), "{err}");

    let g = aurora::describe_global_cluster(&c, primary_region, &global).await.unwrap();
    assert_eq!(g.writer().map(|w| w.cluster_arn.as_str()), Some(primary_arn.as_str()), "{g:?}");
    assert!(g.members.iter().any(|m| m.cluster_arn == secondary_arn && !m.writer && m.region == dr_region), "{g:?}");
    let err = aurora::describe_global_cluster(&c, primary_region, "no-such-global").await.unwrap_err();
    assert!(err.code.contains("GlobalClusterNotFound"), "{err}");

    // Already the writer: nothing is sent, whatever the endpoint supports.
    let (sent, _) = aurora::failover_global_cluster(&c, primary_region, &global, &primary_arn, GlobalFailoverMode::Switchover).await.unwrap();
    assert!(!sent);
    // A cluster outside the global database is refused before anything is sent.
    let err = aurora::failover_global_cluster(&c, primary_region, &global, "arn:aws:rds:us-west-2:000000000000:cluster:other", GlobalFailoverMode::Failover)
        .await
        .unwrap_err();
    assert_eq!(err.code, "not-a-member", "{err}");
    // moto implements neither managed operation: a clear error, not retried forever.
    for mode in [GlobalFailoverMode::Failover, GlobalFailoverMode::Switchover] {
        let err = aurora::failover_global_cluster(&c, primary_region, &global, &secondary_arn, mode).await.unwrap_err();
        assert_eq!(err.code, "unsupported-by-endpoint", "{err}");
        assert!(!err.retryable && err.message.contains("detach"), "{err}");
    }
    // The manual recovery: moto acknowledges RemoveFromGlobalCluster for a
    // cluster of another region yet keeps it a member. The outcome is
    // checked, so that is an error, not a false success.
    let err = aurora::detach_from_global_cluster(&c, primary_region, &global, &secondary_arn, Duration::from_secs(1)).await.unwrap_err();
    assert_eq!(err.code, "still-a-member", "{err}");
    // A cluster that is not a member is left alone.
    let other = "arn:aws:rds:us-west-2:000000000000:cluster:not-a-member";
    assert!(!aurora::detach_from_global_cluster(&c, primary_region, &global, other, Duration::from_secs(1)).await.unwrap());
}

#[tokio::test]
async fn ec2_resources_are_tagged_once_and_reserved_keys_refused() {
    use aws_sdk_ec2::types::InstanceType;
    use drover_aws::ec2;
    let c = clients().await;
    let region = "us-west-2";
    let made =
        c.ec2(region).run_instances().image_id("ami-0a1b2c3d4e5f60001").instance_type(InstanceType::T3Micro).min_count(1).max_count(1).send().await.unwrap();
    let id = made.instances()[0].instance_id().unwrap().to_string();
    let tags = vec![("team".to_string(), "orders".to_string()), ("drill".to_string(), "weekly".to_string())];
    assert!(ec2::tag(&c, region, &id, &tags).await.unwrap());
    assert!(!ec2::tag(&c, region, &id, &tags).await.unwrap(), "already so: nothing sent");
    let now = c.ec2(region).describe_tags().filters(aws_sdk_ec2::types::Filter::builder().name("resource-id").values(&id).build()).send().await.unwrap();
    assert!(now.tags().iter().any(|t| t.key() == Some("team") && t.value() == Some("orders")));
    let err = ec2::tag(&c, region, &id, &[("drover:run".to_string(), "forged".to_string())]).await.unwrap_err();
    assert_eq!(err.code, "reserved-tag", "{err}");
    assert_eq!(ec2::resource_kind(&id), Some("instance"));
    assert_eq!(ec2::resource_kind("sg-123"), None);
}

/// How many requests of `operation` the clients of this process sent (each
/// attempt, retries included), from the crate's call observer.
fn sent(operation: &str) -> usize {
    use std::collections::HashMap;
    use std::sync::{Arc, LazyLock, Mutex, Once};
    static CALLS: LazyLock<Mutex<HashMap<String, usize>>> = LazyLock::new(Mutex::default);
    static OBSERVE: Once = Once::new();
    OBSERVE.call_once(|| {
        drover_aws::observe_calls(Arc::new(|_service: &str, op: &str, _status: Option<u16>, _took: Duration| {
            *CALLS.lock().unwrap().entry(op.to_string()).or_default() += 1;
        }))
    });
    CALLS.lock().unwrap().get(operation).copied().unwrap_or(0)
}

/// Clients for the compute tests: Auto Scaling and ECS must reach moto.
async fn compute_clients() -> Clients {
    for var in ["AWS_ENDPOINT_URL_AUTO_SCALING", "AWS_ENDPOINT_URL_ECS"] {
        let ep = std::env::var(var).unwrap_or_default();
        assert!(ep.starts_with("http://127.0.0.1"), "{var} must point at moto: `eval \"$(scripts/emulators env)\"` (it is '{ep}')");
    }
    clients().await
}

#[tokio::test]
async fn a_scaling_group_is_scaled_once_and_waited_for_and_bad_capacities_refused() {
    use drover_aws::autoscaling::{self, Capacity};
    let c = compute_clients().await;
    let region = "eu-west-1";
    let name = unique("web-asg");
    // The group as an operator's infrastructure would have it, standing by
    // empty (a launch configuration: moto serves it with the group, where a
    // launch template would be EC2's, which LocalStack serves).
    let asg = c.autoscaling(region);
    asg.create_launch_configuration().launch_configuration_name(&name).image_id("ami-0a1b2c3d4e5f60001").instance_type("t3.micro").send().await.unwrap();
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(&name)
        .launch_configuration_name(&name)
        .min_size(0)
        .max_size(4)
        .desired_capacity(0)
        .availability_zones(format!("{region}a"))
        .send()
        .await
        .unwrap();
    let before = autoscaling::describe_group(&c, region, &name).await.unwrap();
    assert_eq!((before.min_size, before.max_size, before.desired_capacity, before.in_service()), (0, 4, 0, 0), "{before:?}");
    assert!(before.arn.contains(&name) && before.region == region, "{before:?}");

    let updates = sent("UpdateAutoScalingGroup");
    let three = Capacity { min_size: None, max_size: None, desired: 3 };
    let set = autoscaling::set_capacity(&c, region, &name, &three).await.unwrap();
    assert_eq!((set.min_size, set.max_size, set.desired_capacity), (0, 4, 3));
    assert_eq!(sent("UpdateAutoScalingGroup"), updates + 1);
    let again = autoscaling::set_capacity(&c, region, &name, &three).await.unwrap();
    assert_eq!((again.min_size, again.max_size, again.desired_capacity), (0, 4, 3));
    assert_eq!(sent("UpdateAutoScalingGroup"), updates + 1, "already so: nothing sent");

    let ready = autoscaling::wait_in_service(&c, region, &name, Duration::from_secs(60)).await.unwrap();
    assert!(ready.at_capacity() && ready.in_service() >= 3, "{ready:?}");
    let i = &ready.instances[0];
    assert!(i.id.starts_with("i-") && i.lifecycle_state == "InService" && i.health_status == "Healthy" && i.availability_zone == format!("{region}a"), "{i:?}");

    // Outside the bounds: refused before anything is sent.
    let err = autoscaling::set_capacity(&c, region, &name, &Capacity { min_size: None, max_size: None, desired: 9 }).await.unwrap_err();
    assert_eq!(err.code, "invalid-capacity", "{err}");
    assert!(!err.retryable && err.message.contains("maximum 4"), "{err}");
    let err = autoscaling::set_capacity(&c, region, &name, &Capacity { min_size: Some(5), max_size: Some(2), desired: 3 }).await.unwrap_err();
    assert_eq!(err.code, "invalid-capacity", "{err}");
    assert_eq!(sent("UpdateAutoScalingGroup"), updates + 1, "nothing sent for a refused capacity");
    assert_eq!(autoscaling::describe_group(&c, region, &name).await.unwrap().desired_capacity, 3);
    // Bounds given with it move too.
    let wider = autoscaling::set_capacity(&c, region, &name, &Capacity { min_size: Some(1), max_size: Some(6), desired: 5 }).await.unwrap();
    assert_eq!((wider.min_size, wider.max_size, wider.desired_capacity), (1, 6, 5));

    let err = autoscaling::describe_group(&c, region, "no-such-group").await.unwrap_err();
    assert_eq!((err.code.as_str(), err.resource.as_str()), ("group-not-found", "no-such-group"), "{err}");
    assert!(!err.retryable && err.message.contains("'no-such-group' in eu-west-1"), "{err}");
    let err = autoscaling::set_capacity(&c, "us-east-1", &name, &three).await.unwrap_err();
    assert_eq!(err.code, "group-not-found", "groups live in a region: {err}");
}

#[tokio::test]
async fn an_ecs_service_is_scaled_once_and_waited_for_and_a_missing_one_named() {
    use drover_aws::ecs::{self, Steadiness};
    let c = compute_clients().await;
    let region = "eu-west-1";
    let cluster = unique("orders-cluster");
    let name = unique("web");
    let e = c.ecs(region);
    e.create_cluster().cluster_name(&cluster).send().await.unwrap();
    let container =
        aws_sdk_ecs::types::ContainerDefinition::builder().name("web").image("public.ecr.aws/nginx/nginx:latest").memory(128).essential(true).build();
    e.register_task_definition().family(&name).container_definitions(container).send().await.unwrap();
    e.create_service().cluster(&cluster).service_name(&name).task_definition(&name).desired_count(0).send().await.unwrap();

    let before = ecs::describe_service(&c, region, &cluster, &name).await.unwrap();
    assert_eq!((before.status.as_str(), before.desired_count, before.cluster.as_str()), ("ACTIVE", 0, cluster.as_str()), "{before:?}");
    assert!(before.arn.contains(&name), "{before:?}");

    let updates = sent("UpdateService");
    let set = ecs::set_desired_count(&c, region, &cluster, &name, 3).await.unwrap();
    assert_eq!(set.desired_count, 3);
    assert_eq!(sent("UpdateService"), updates + 1);
    let again = ecs::set_desired_count(&c, region, &cluster, &name, 3).await.unwrap();
    assert_eq!(again.desired_count, 3);
    assert_eq!(sent("UpdateService"), updates + 1, "already so: nothing sent");

    let steady = ecs::wait_stable(&c, region, &cluster, &name, Duration::from_secs(60)).await.unwrap();
    assert_eq!(steady.steadiness(), Steadiness::Steady, "{steady:?}");
    assert_eq!((steady.running_count, steady.pending_count, steady.deployments), (3, 0, 1), "{steady:?}");
    assert_eq!(steady.rollout_state.as_deref(), Some("COMPLETED"), "{steady:?}");

    let err = ecs::describe_service(&c, region, &cluster, "no-such-service").await.unwrap_err();
    assert_eq!(err.code, "service-not-found", "{err}");
    assert_eq!(err.resource, format!("{cluster}/no-such-service"));
    assert!(!err.retryable && err.message.contains("'no-such-service'"), "{err}");
    let err = ecs::set_desired_count(&c, region, "no-such-cluster", &name, 1).await.unwrap_err();
    assert_eq!(err.code, "service-not-found", "{err}");
    assert_eq!(sent("UpdateService"), updates + 1);
    // A deleted service lingers as INACTIVE: not found either.
    e.delete_service().cluster(&cluster).service(&name).force(true).send().await.unwrap();
    let err = ecs::wait_stable(&c, region, &cluster, &name, Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(err.code, "service-not-found", "{err}");
}

/// A failover record with a 60 s TTL.
fn failover(role: route53::FailoverRole, set_identifier: &str, target: &str, health_check: Option<&str>) -> route53::FailoverRecord {
    route53::FailoverRecord { role, set_identifier: set_identifier.into(), target: target.into(), health_check: health_check.map(str::to_string), ttl: 60 }
}
