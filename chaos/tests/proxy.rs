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

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// "The request took effect, the answer was lost", for every
/// non-idempotent create: the SDK must not resend it, and the capability
/// adopts what the one request made.
#[tokio::test]
async fn a_create_whose_answer_was_lost_is_made_once_and_adopted() {
    let (proxy, c) = through_proxy().await;
    let f = proxy.faults();
    let lose = |op: &str| f.add(rule(&format!("operation = \"{op}\"\nkind = \"lose-answer\"")));
    let name = unique("lost");
    let east = c.ec2("us-east-1");
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

    let id = lose("CreateSnapshot");
    let snap = ec2::snapshot_volume(&c, "us-east-1", &vol, &format!("{name}-data"), Some(&name), "k1").await.unwrap();
    f.remove(id);
    let id = lose("CopySnapshot");
    let copy = ec2::copy_snapshot(&c, "us-east-1", &snap.id, "us-west-2", &format!("{name}-data-dr"), Some(&name), "k2").await.unwrap();
    f.remove(id);
    let id = lose("CreateImage");
    let ami = ec2::create_image(&c, "us-east-1", &inst, &format!("{name}-ami"), Some(&name), "k3").await.unwrap();
    f.remove(id);
    let id = lose("CopyImage");
    let ami_copy = ec2::copy_image(&c, "us-east-1", &ami.id, "us-west-2", &format!("{name}-ami"), Some(&name), "k4").await.unwrap();
    f.remove(id);
    for op in ["CreateSnapshot", "CopySnapshot", "CreateImage", "CopyImage"] {
        assert_eq!(f.accepted_count("ec2", op), 1, "{op}: {:?}", f.accepted());
    }
    assert!([&snap.id, &copy.id, &ami.id, &ami_copy.id].iter().all(|id| !id.is_empty()));
    let west = c.ec2("us-west-2");
    let by_name = |n: String| aws_sdk_ec2::types::Filter::builder().name(format!("tag:{}", ec2::NAME_TAG)).values(n).build();
    assert_eq!(west.describe_snapshots().filters(by_name(format!("{name}-data-dr"))).send().await.unwrap().snapshots().len(), 1);
    assert_eq!(west.describe_images().filters(by_name(format!("{name}-ami"))).send().await.unwrap().images().len(), 1);

    // RDS: a restore whose answer was lost.
    let db = unique("lost-db");
    c.rds("us-west-2")
        .create_db_instance()
        .db_instance_identifier(&db)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("drover")
        .master_user_password("not-a-real-password")
        .send()
        .await
        .unwrap();
    let dbsnap = rds::create_snapshot(&c, "us-west-2", &db, &format!("{db}-snap"), "k5").await.unwrap();
    let id = lose("RestoreDBInstanceFromDBSnapshot");
    let restored = rds::restore_from_snapshot(&c, "us-west-2", &dbsnap.identifier, &format!("{db}-drill"), None, "run-lost", "k6").await.unwrap();
    f.remove(id);
    assert_eq!(restored.identifier, format!("{db}-drill"));
    assert_eq!(f.accepted_count("rds", "RestoreDBInstanceFromDBSnapshot"), 1, "{:?}", f.accepted());

    // Route 53: a DELETE whose answer was lost is not sent again (it would
    // fail on the record it already deleted).
    let zone = format!("{}.example.internal", unique("lost"));
    c.route53().create_hosted_zone().name(&zone).caller_reference(unique("ref")).send().await.unwrap();
    let record = format!("drill.{zone}");
    let t = Duration::from_secs(30);
    route53::upsert_cname(&c, &zone, &record, "target.example.internal", 60, t).await.unwrap();
    let before = f.accepted_count("route53", "ChangeResourceRecordSets");
    lose("ChangeResourceRecordSets");
    assert!(route53::delete_cname(&c, &zone, &record, t).await.unwrap());
    assert_eq!(f.accepted_count("route53", "ChangeResourceRecordSets") - before, 1, "{:?}", f.accepted());
    assert!(route53::get_records(&c, &zone, &record).await.unwrap().is_empty());
}

/// Resources that failed (shown so by the proxy: the emulators cannot fail
/// one) are never adopted, and waiting on one ends at once.
#[tokio::test]
async fn failed_snapshots_and_images_are_not_adopted_and_not_waited_for() {
    let (proxy, c) = through_proxy().await;
    let f = proxy.faults();
    let name = unique("failed");
    let east = c.ec2("us-east-1");
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
    let wait = Duration::from_secs(20);

    // EBS: the snapshot of that name failed; the step makes a new one.
    let data = format!("{name}-data");
    let first = ec2::snapshot_volume(&c, "us-east-1", &vol, &data, Some(&name), "k1").await.unwrap();
    let failed =
        f.add(rule("operation = \"DescribeSnapshots\"\nkind = \"rewrite\"\nfind = \"<status>completed</status>\"\nreplace = \"<status>error</status>\""));
    let again = ec2::snapshot_volume(&c, "us-east-1", &vol, &data, Some(&name), "k1").await.unwrap();
    f.remove(failed);
    assert_ne!(again.id, first.id, "the failed snapshot was adopted");
    assert_eq!(f.accepted_count("ec2", "CreateSnapshot"), 2);

    // AMI: waiting on a failed one ends at once; a new one gets its own name.
    let ami = format!("{name}-ami");
    let first = ec2::create_image(&c, "us-east-1", &inst, &ami, Some(&name), "k2").await.unwrap();
    let failed = f.add(rule(
        "operation = \"DescribeImages\"\nkind = \"rewrite\"\nfind = \"<imageState>available</imageState>\"\nreplace = \"<imageState>failed</imageState>\"",
    ));
    let err = ec2::wait_image_available(&c, "us-east-1", &first.id, wait).await.unwrap_err();
    assert_eq!(err.code, "image-failed", "{err}");
    assert!(err.message.contains(&first.id) && err.message.contains("'failed'"), "{err}");
    let again = ec2::create_image(&c, "us-east-1", &inst, &ami, Some(&name), "k2").await.unwrap();
    f.remove(failed);
    assert_ne!(again.id, first.id, "the failed image was adopted");
    assert_eq!(again.name, format!("{ami}-r1"));
    assert_eq!(f.accepted_count("ec2", "CreateImage"), 2);

    // RDS: a failed snapshot of that name is refused, and not waited for.
    let db = unique("failed-db");
    c.rds("us-east-1")
        .create_db_instance()
        .db_instance_identifier(&db)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("drover")
        .master_user_password("not-a-real-password")
        .send()
        .await
        .unwrap();
    let snap = format!("{db}-snap");
    rds::create_snapshot(&c, "us-east-1", &db, &snap, "k3").await.unwrap();
    f.add(rule("operation = \"DescribeDBSnapshots\"\nkind = \"rewrite\"\nfind = \"<Status>available</Status>\"\nreplace = \"<Status>failed</Status>\""));
    let err = rds::create_snapshot(&c, "us-east-1", &db, &snap, "k3").await.unwrap_err();
    assert_eq!(err.code, "snapshot-failed", "{err}");
    assert!(err.message.contains("delete-db-snapshot"), "{err}");
    let err = rds::wait_snapshot_available(&c, "us-east-1", &snap, wait).await.unwrap_err();
    assert_eq!(err.code, "resource-failed", "{err}");
}

/// An Aurora global database seen `failing-over` (the proxy rewrites moto's
/// answer: moto has no such state): a failover to the same target adopts it
/// and sends nothing; one to another cluster, or a detach, is refused.
#[tokio::test]
async fn a_global_failover_under_way_is_adopted_not_sent_again() {
    use drover_aws::aurora::{self, GlobalFailoverMode};
    let (proxy, c) = through_proxy().await;
    let f = proxy.faults();
    let (global, primary, secondary) = (unique("moving-global"), unique("moving-aurora"), unique("moving-aurora-dr"));
    c.rds("us-east-1").create_global_cluster().global_cluster_identifier(&global).engine("aurora-postgresql").engine_version("16.4").send().await.unwrap();
    let mut arns = Vec::new();
    for (region, id) in [("us-east-1", &primary), ("us-west-2", &secondary)] {
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
    let moving = format!(
        "<Status>failing-over</Status><FailoverState><Status>failing-over</Status><FromDbClusterArn>{primary_arn}</FromDbClusterArn><ToDbClusterArn>{secondary_arn}</ToDbClusterArn><IsDataLossAllowed>true</IsDataLossAllowed></FailoverState>"
    );
    f.add(Rule {
        find: Some("<Status>available</Status>".into()),
        replace: Some(moving),
        ..rule("operation = \"DescribeGlobalClusters\"\nkind = \"rewrite\"")
    });
    let g = aurora::describe_global_cluster(&c, "us-east-1", &global).await.unwrap();
    assert_eq!((g.status.as_str(), g.moving_to.as_deref()), ("failing-over", Some(secondary_arn.as_str())), "{g:?}");

    let (sent, _) = aurora::failover_global_cluster(&c, "us-east-1", &global, &secondary_arn, GlobalFailoverMode::Failover).await.unwrap();
    assert!(!sent);
    let err = aurora::failover_global_cluster(&c, "us-east-1", &global, &primary_arn, GlobalFailoverMode::Switchover).await.unwrap_err();
    assert_eq!(err.code, "move-in-progress", "{err}");
    let err = aurora::detach_from_global_cluster(&c, "us-east-1", &global, &secondary_arn, Duration::from_secs(1)).await.unwrap_err();
    assert_eq!(err.code, "move-in-progress", "{err}");
    let sent: u64 = ["FailoverGlobalCluster", "SwitchoverGlobalCluster", "RemoveFromGlobalCluster"]
        .iter()
        .map(|op| f.accepted_count("rds", op) + f.refused().get(&format!("rds:{op}")).copied().unwrap_or(0))
        .sum();
    assert_eq!(sent, 0, "accepted {:?}, refused {:?}", f.accepted(), f.refused());
}

/// A lease that holds for the first `allowed` attempts, then is lost (and
/// tells the ones in flight).
#[derive(Debug)]
struct FlippingLease {
    allowed: std::sync::atomic::AtomicI64,
    lost: tokio::sync::watch::Sender<bool>,
}

impl FlippingLease {
    fn new(allowed: i64) -> Arc<Self> {
        Arc::new(FlippingLease { allowed: allowed.into(), lost: tokio::sync::watch::channel(false).0 })
    }

    fn lose(&self) {
        self.allowed.store(0, std::sync::atomic::Ordering::SeqCst);
        self.lost.send_replace(true);
    }
}

impl drover_aws::fence::Fence for FlippingLease {
    fn check(&self) -> Result<(), String> {
        if self.allowed.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) > 0 { Ok(()) } else { Err("the lease on run r was lost (fence 3)".into()) }
    }

    fn lost(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send + 'static>> {
        let mut lost = self.lost.subscribe();
        Box::pin(async move {
            let _ = lost.wait_for(|l| *l).await;
            "the lease on run r was lost (fence 3)".to_string()
        })
    }
}

/// Fencing on the wire: after the lease is lost, no attempt goes out (not
/// the SDK's retry, not a call's next request), and one in flight ends at
/// once with `fenced`.
#[tokio::test]
async fn a_lost_lease_stops_every_attempt_on_the_wire() {
    let (proxy, c) = through_proxy().await;
    let f = proxy.faults();
    let zone = format!("{}.example.internal", unique("fenced"));
    c.route53().create_hosted_zone().name(&zone).caller_reference(unique("ref")).send().await.unwrap();
    let record = format!("db.{zone}");
    let t = Duration::from_secs(30);

    // The change's first attempt fails with a 5xx; the lease is lost before
    // the SDK's retry: the retry is not sent.
    f.add(rule("operation = \"ChangeResourceRecordSets\"\nkind = \"server-error\""));
    // Zone lookup, record read, the change's first attempt; then lost.
    let lease = FlippingLease::new(3);
    let fenced = c.fenced(lease.clone(), None);
    let err = route53::upsert_cname(&fenced, &zone, &record, "a.example.internal", 60, t).await.unwrap_err();
    assert_eq!((err.code.as_str(), err.retryable), ("fenced", false), "{err}");
    assert!(err.message.contains("not sent") && err.message.contains("lost"), "{err}");
    assert_eq!(f.injected().get("server-error"), Some(&1), "the SDK's retry went out: {:?}", f.injected());
    f.clear();

    // A request held in flight when the lease is lost: the call ends with
    // `fenced`, not when the request would.
    f.add(rule("operation = \"ChangeResourceRecordSets\"\nkind = \"hang\"\nms = 600000"));
    let lease = FlippingLease::new(100);
    let fenced = c.fenced(lease.clone(), None);
    let call = tokio::spawn(async move { route53::upsert_cname(&fenced, &zone, &record, "b.example.internal", 60, t).await });
    while !f.injected().contains_key("hang") {
        tokio::task::yield_now().await;
    }
    lease.lose();
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.code, "fenced", "{err}");
    assert!(err.message.contains("abandoned in flight"), "{err}");
}

/// Route 53 applies a change batch whole or not at all, and refuses a
/// `DELETE` that does not match the set it has in every field; the proxy
/// keeps that rule (LocalStack does not). The weights' compare-and-swap
/// rests on it: a swap of the sets as read goes out in one request, no read
/// first; a swap of sets changed since is refused whole, and the change
/// then reads the sets and `UPSERT`s on what is there.
#[tokio::test]
async fn a_delete_that_does_not_match_is_refused_whole_and_the_weights_swap_rests_on_it() {
    use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
    use route53::{RecordChange, WeightedTarget};
    let (proxy, c) = through_proxy().await;
    let zone = format!("{}.example.internal", unique("swap"));
    let made = c.route53().create_hosted_zone().name(&zone).caller_reference(unique("ref")).send().await.unwrap();
    let zone_id = made.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string();
    let app = format!("app.{zone}");
    let set = |id: &str, weight: i64, ttl: i64| {
        ResourceRecordSet::builder()
            .name(format!("{app}."))
            .r#type(RrType::Cname)
            .set_identifier(id)
            .weight(weight)
            .ttl(ttl)
            .resource_records(ResourceRecord::builder().value(format!("{id}.{zone}")).build().unwrap())
            .build()
            .unwrap()
    };
    let send = |changes: Vec<(ChangeAction, ResourceRecordSet)>| {
        let changes = changes.into_iter().map(|(a, s)| Change::builder().action(a).resource_record_set(s).build().unwrap()).collect();
        c.route53()
            .change_resource_record_sets()
            .hosted_zone_id(&zone_id)
            .change_batch(ChangeBatch::builder().set_changes(Some(changes)).build().unwrap())
            .send()
    };
    send(vec![(ChangeAction::Create, set("east", 100, 60)), (ChangeAction::Create, set("west", 0, 60))]).await.unwrap();
    let weights = || async {
        let mut w: Vec<(String, Option<u8>, Option<u32>)> =
            route53::get_records(&c, &zone, &app).await.unwrap().into_iter().map(|r| (r.set_identifier.unwrap_or_default(), r.weight, r.ttl)).collect();
        w.sort();
        w
    };

    // A DELETE with the wrong weight: the batch is refused whole.
    let err = send(vec![(ChangeAction::Delete, set("east", 50, 60)), (ChangeAction::Create, set("east", 0, 60))]).await.unwrap_err();
    assert!(format!("{err:?}").contains("InvalidChangeBatch"), "{err:?}");
    assert_eq!(proxy.exact_deletes().refused(), 1);
    assert_eq!(weights().await, [("east".into(), Some(100), Some(60)), ("west".into(), Some(0), Some(60))], "nothing in the batch was applied");

    // The swap of the sets as just read: one request, no read first.
    let shift = |east: u8, west: u8| {
        let targets = vec![
            WeightedTarget { set_identifier: "east".into(), weight: east, value: String::new() },
            WeightedTarget { set_identifier: "west".into(), weight: west, value: String::new() },
        ];
        [RecordChange::SetWeights { name: app.clone(), targets }]
    };
    route53::get_records_of(&c, &zone, std::slice::from_ref(&app)).await.unwrap();
    let (reads, changes) =
        (proxy.faults().accepted_count("route53", "ListResourceRecordSets"), proxy.faults().accepted_count("route53", "ChangeResourceRecordSets"));
    assert_eq!(route53::change_records_unread(&c, &zone, &shift(0, 100), 60, Duration::from_secs(30)).await.unwrap(), 2);
    assert_eq!(proxy.faults().accepted_count("route53", "ListResourceRecordSets"), reads, "no read before the swap");
    assert_eq!(proxy.faults().accepted_count("route53", "ChangeResourceRecordSets"), changes + 1);
    assert_eq!(proxy.exact_deletes().refused(), 1);
    assert_eq!(weights().await, [("east".into(), Some(0), Some(60)), ("west".into(), Some(100), Some(60))]);

    // Read, then changed by someone else (a longer TTL on west): the swap
    // is refused, the sets read again and the weights UPSERTed on them.
    route53::get_records_of(&c, &zone, std::slice::from_ref(&app)).await.unwrap();
    send(vec![(ChangeAction::Upsert, set("west", 100, 120))]).await.unwrap();
    assert_eq!(route53::change_records_unread(&c, &zone, &shift(100, 0), 60, Duration::from_secs(30)).await.unwrap(), 2);
    assert_eq!(proxy.exact_deletes().refused(), 2, "the swap of what was read was refused");
    assert_eq!(weights().await, [("east".into(), Some(100), Some(60)), ("west".into(), Some(0), Some(120))], "the other change is kept");
}
