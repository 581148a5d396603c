//! The demo topology, seeded into the emulators (or any account the AWS
//! configuration points at): the setting of the reference drill.
//!
//! - us-east-1: RDS primary `orders-db`; EC2 app instance `orders-app`
//!   with a data volume;
//! - us-west-2: its cross-region read replica `orders-db-replica`, and the
//!   copies a nightly backup job would have left there: a snapshot of the
//!   primary (`orders-db-nightly-dr`) and an AMI of the app instance (lineage
//!   `orders-app`), which `dr-drill` restores and launches; a `ReplicaLag`
//!   reading of 2 s for the replica in CloudWatch; the health signals of
//!   the DR side of the app: a Route 53 health check on its target and a
//!   CloudWatch alarm on its 5xx count (state OK), which `dns-shift` gates on;
//! - Route 53 zone `orders.example.internal` with `db.` (CNAME to the
//!   primary's endpoint) and weighted `app.` records (us-east-1 at 100,
//!   us-west-2 at 0);
//! - in both regions, the app's compute under the same names: Auto Scaling
//!   group `orders-web` (from a launch configuration of the same name) and
//!   ECS service `api` in cluster `orders`; serving in us-east-1 (group
//!   min 1, max 6, desired 3; 4 tasks), standing by in us-west-2 (group
//!   min 0, max 6, desired 0; 0 tasks), which `regional-failover` scales up
//!   ([`Topology::compute_params`]).
//!
//! Seeding is repeatable: what a previous drill changed (a promoted replica,
//! shifted records) is put back, so the drill can run again. Names take an
//! optional suffix so that tests can seed topologies side by side.

use std::time::Duration;

use aws_sdk_rds::types::Tag;
use drover_aws::{CapabilityError, Clients, autoscaling, ec2, ecs, rds, route53};
use serde::Serialize;

/// Names and regions of a demo topology.
#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    /// Region of the primary.
    pub primary_region: String,
    /// The DR region.
    pub dr_region: String,
    /// Primary DB instance.
    pub db_instance: String,
    /// Cross-region read replica.
    pub replica: String,
    /// Hosted zone.
    pub hosted_zone: String,
    /// Database CNAME.
    pub db_record: String,
    /// Application weighted records.
    pub app_record: String,
    /// The app's Auto Scaling group (the same name in both regions).
    pub asg_name: String,
    /// The ECS cluster of [`Self::ecs_service`] (the same name in both regions).
    pub ecs_cluster: String,
    /// The app's ECS service (the same name in both regions).
    pub ecs_service: String,
}

/// The capacity (min, max, desired) of the app's Auto Scaling group and
/// the desired count of its ECS service, as seeded: serving in the primary
/// region, standing by in the DR region.
pub const PRIMARY_COMPUTE: ((u32, u32, u32), u32) = ((1, 6, 3), 4);
/// See [`PRIMARY_COMPUTE`].
pub const DR_COMPUTE: ((u32, u32, u32), u32) = ((0, 6, 0), 0);

impl Topology {
    /// The demo topology, with every name suffixed by `suffix` (empty: the
    /// names the reference runbooks default to).
    pub fn demo(suffix: &str) -> Self {
        let s = if suffix.is_empty() { String::new() } else { format!("-{suffix}") };
        let zone = format!("orders{s}.example.internal");
        Topology {
            primary_region: "us-east-1".into(),
            dr_region: "us-west-2".into(),
            db_instance: format!("orders-db{s}"),
            replica: format!("orders-db{s}-replica"),
            db_record: format!("db.{zone}"),
            app_record: format!("app.{zone}"),
            hosted_zone: zone,
            asg_name: format!("orders-web{s}"),
            ecs_cluster: format!("orders{s}"),
            ecs_service: format!("api{s}"),
        }
    }

    /// The runbook parameters (`--param` pairs) that aim `regional-failover` at it.
    pub fn params(&self) -> Vec<String> {
        vec![
            format!("primary_region={}", self.primary_region),
            format!("dr_region={}", self.dr_region),
            format!("db_instance={}", self.db_instance),
            format!("replica={}", self.replica),
            format!("hosted_zone={}", self.hosted_zone),
            format!("db_record={}", self.db_record),
            format!("app_record={}", self.app_record),
        ]
    }

    /// The parameters that aim `failback` at it, after `regional-failover`.
    pub fn failback_params(&self) -> Vec<String> {
        vec![
            format!("home_region={}", self.primary_region),
            format!("dr_region={}", self.dr_region),
            format!("current={}", self.replica),
            format!("home_instance={}-home", self.db_instance),
            format!("hosted_zone={}", self.hosted_zone),
            format!("db_record={}", self.db_record),
            format!("app_record={}", self.app_record),
        ]
    }

    /// The parameters that aim the compute steps of `regional-failover` and
    /// `failback` at it (added to [`Self::params`] or
    /// [`Self::failback_params`]).
    pub fn compute_params(&self) -> Vec<String> {
        vec![format!("asg_name={}", self.asg_name), format!("ecs_cluster={}", self.ecs_cluster), format!("ecs_service={}", self.ecs_service)]
    }

    /// The parameters that aim `dr-drill` at it.
    pub fn drill_params(&self) -> Vec<String> {
        vec![
            format!("primary_region={}", self.primary_region),
            format!("dr_region={}", self.dr_region),
            format!("db_instance={}", self.db_instance),
            format!("lineage={}", self.app_name()),
            format!("drill_zone={}", self.hosted_zone),
            format!("drill_record=drill.{}", self.hosted_zone),
        ]
    }

    /// The name tag of the app instance.
    pub fn app_name(&self) -> String {
        self.db_instance.replacen("orders-db", "orders-app", 1)
    }

    /// The app target of `region`.
    pub fn app_target(&self, region: &str) -> String {
        format!("app.{region}.{}", self.hosted_zone)
    }
}

/// What seeding made.
#[derive(Debug, Clone, Serialize)]
pub struct Seeded {
    /// The topology.
    pub topology: Topology,
    /// The primary's endpoint (what the DB record points at).
    pub primary_endpoint: String,
    /// The replica's ARN.
    pub replica_arn: String,
    /// The app instance (primary region).
    pub app_instance: String,
    /// Its data volume.
    pub data_volume: String,
    /// The Route 53 health check of the app's DR target.
    pub dr_health_check: String,
    /// The CloudWatch alarm (in the DR region) on the app's DR 5xx count.
    pub dr_alarm: String,
}

impl Seeded {
    /// The parameters that aim `dns-shift` at the app records, from the
    /// primary region to the DR region, gated on the DR health signals.
    pub fn shift_params(&self) -> Vec<String> {
        let t = &self.topology;
        vec![
            format!("hosted_zone={}", t.hosted_zone),
            format!("record={}", t.app_record),
            format!("from={}", t.primary_region),
            format!("to={}", t.dr_region),
            format!("health_check={}", self.dr_health_check),
            format!("alarms={}", self.dr_alarm),
            format!("alarm_region={}", t.dr_region),
        ]
    }
}

/// Deletes DB instance `id` in `region` if it exists (a game-day uses it
/// to take the DR replica away).
pub async fn delete_if_present(c: &Clients, region: &str, id: &str) -> Result<(), CapabilityError> {
    match rds::describe_instance(c, region, id).await {
        Err(e) if e.is("DBInstanceNotFound") => return Ok(()),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    // moto answers HTTP 500 to deleting a cross-region replica yet deletes it
    // (a bug in its replica bookkeeping): check the outcome, not the answer.
    // Automated backups go with it: moto counts them against its snapshot
    // quota (1,000 per region), which long sweeps would otherwise reach.
    let _ = c.rds(region).delete_db_instance().db_instance_identifier(id).skip_final_snapshot(true).delete_automated_backups(true).send().await;
    match rds::describe_instance(c, region, id).await {
        Err(e) if e.is("DBInstanceNotFound") => Ok(()),
        Err(e) => Err(e),
        Ok(i) if i.status == "deleting" => Ok(()),
        Ok(i) => Err(CapabilityError::new("rds", "DeleteDBInstance", region, id, "still-there", format!("instance is '{}' after delete", i.status))),
    }
}

fn sdk_err<E: std::fmt::Display>(op: &'static str, region: &str, id: &str, e: E) -> CapabilityError {
    CapabilityError::new("rds", op, region, id, "seed-failed", e.to_string())
}

/// Creates primary `primary` in `primary_region` and its cross-region read
/// replica `replica` in `dr_region` afresh (deleting what a previous drill
/// left), and waits until both are available.
pub async fn seed_db_pair(
    c: &Clients,
    primary_region: &str,
    dr_region: &str,
    primary: &str,
    replica: &str,
) -> Result<(drover_aws::rds::DbInstance, drover_aws::rds::DbInstance), CapabilityError> {
    let wait = Duration::from_secs(1800);
    delete_if_present(c, dr_region, replica).await?;
    delete_if_present(c, primary_region, primary).await?;
    c.rds(primary_region)
        .create_db_instance()
        .db_instance_identifier(primary)
        .engine("postgres")
        .engine_version("16.3")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("orders")
        .master_user_password("seeded-demo-only")
        .tags(Tag::builder().key("app").value("orders").build())
        .send()
        .await
        .map_err(|e| sdk_err("CreateDBInstance", primary_region, primary, aws_sdk_rds::error::DisplayErrorContext(e)))?;
    let made = rds::wait_instance_available(c, primary_region, primary, wait).await?;
    c.rds(dr_region)
        .create_db_instance_read_replica()
        .db_instance_identifier(replica)
        .source_db_instance_identifier(&made.arn)
        .tags(Tag::builder().key("app").value("orders").build())
        .send()
        .await
        .map_err(|e| sdk_err("CreateDBInstanceReadReplica", dr_region, replica, aws_sdk_rds::error::DisplayErrorContext(e)))?;
    let copy = rds::wait_instance_available(c, dr_region, replica, wait).await?;
    Ok((made, copy))
}

/// Creates hosted zone `zone` unless it exists.
pub async fn ensure_zone(c: &Clients, zone: &str) -> Result<(), CapabilityError> {
    match route53::zone_id(c, zone).await {
        Ok(_) => Ok(()),
        Err(e) if !e.is("NoSuchHostedZone") => Err(e),
        Err(_) => c
            .route53()
            .create_hosted_zone()
            .name(zone)
            .caller_reference(format!("drover-demo-{zone}-{}", rand_suffix()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                CapabilityError::new("route53", "CreateHostedZone", "global", zone, "seed-failed", aws_sdk_route53::error::DisplayErrorContext(e).to_string())
            }),
    }
}

/// Seeds (or re-seeds) `t`.
pub async fn seed(c: &Clients, t: &Topology) -> Result<Seeded, CapabilityError> {
    // A previous drill may have promoted the replica, or failed back: start
    // the databases afresh.
    delete_if_present(c, &t.primary_region, &format!("{}-home", t.db_instance)).await?;
    let (primary, replica) = seed_db_pair(c, &t.primary_region, &t.dr_region, &t.db_instance, &t.replica).await?;
    ensure_zone(c, &t.hosted_zone).await?;
    let endpoint = primary.endpoint.clone().unwrap_or_default();
    let t60 = Duration::from_secs(60);
    route53::upsert_cname(c, &t.hosted_zone, &t.db_record, &endpoint, 60, t60).await?;
    let weights = [(t.primary_region.as_str(), 100u8), (t.dr_region.as_str(), 0u8)]
        .iter()
        .map(|(region, w)| route53::WeightedTarget { set_identifier: region.to_string(), weight: *w, value: t.app_target(region) })
        .collect::<Vec<_>>();
    route53::set_weights(c, &t.hosted_zone, &t.app_record, &weights, 60, t60).await?;
    let (app_instance, data_volume) = seed_app(c, t).await?;
    seed_backups(c, t, &app_instance).await?;
    publish_replica_lag(c, t, 2.0).await?;
    let (dr_health_check, dr_alarm) = seed_health_signals(c, t).await?;
    seed_compute(c, t, &t.primary_region, PRIMARY_COMPUTE).await?;
    seed_compute(c, t, &t.dr_region, DR_COMPUTE).await?;
    Ok(Seeded { topology: t.clone(), primary_endpoint: endpoint, replica_arn: replica.arn, app_instance, data_volume, dr_health_check, dr_alarm })
}

fn ec2_err<E: std::fmt::Display>(op: &'static str, region: &str, id: &str, e: E) -> CapabilityError {
    CapabilityError::new("ec2", op, region, id, "seed-failed", e.to_string())
}

/// The app instance and its data volume, found by their Name tag or made.
async fn seed_app(c: &Clients, t: &Topology) -> Result<(String, String), CapabilityError> {
    use aws_sdk_ec2::types::{Filter, InstanceType, ResourceType, Tag as Ec2Tag, TagSpecification, VolumeType};
    let region = &t.primary_region;
    let name = t.app_name();
    let ec2 = c.ec2(region);
    let named = |n: &str| Filter::builder().name("tag:Name").values(n).build();
    let tagged = |kind: ResourceType, n: &str| {
        TagSpecification::builder()
            .resource_type(kind)
            .tags(Ec2Tag::builder().key("Name").value(n).build())
            .tags(Ec2Tag::builder().key("app").value("orders").build())
            .build()
    };
    let found = ec2
        .describe_instances()
        .filters(named(&name))
        .send()
        .await
        .map_err(|e| ec2_err("DescribeInstances", region, &name, aws_sdk_ec2::error::DisplayErrorContext(e)))?;
    let live = found
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.state().and_then(|s| s.name()).is_some_and(|n| n.as_str() == "running" || n.as_str() == "pending"))
        .and_then(|i| i.instance_id().map(str::to_string));
    let instance = match live {
        Some(id) => id,
        None => ec2
            .run_instances()
            .image_id("ami-0a1b2c3d4e5f60001")
            .instance_type(InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .tag_specifications(tagged(ResourceType::Instance, &name))
            .send()
            .await
            .map_err(|e| ec2_err("RunInstances", region, &name, aws_sdk_ec2::error::DisplayErrorContext(e)))?
            .instances()
            .first()
            .and_then(|i| i.instance_id())
            .unwrap_or_default()
            .to_string(),
    };
    let vol_name = format!("{name}-data");
    let vols = ec2
        .describe_volumes()
        .filters(named(&vol_name))
        .send()
        .await
        .map_err(|e| ec2_err("DescribeVolumes", region, &vol_name, aws_sdk_ec2::error::DisplayErrorContext(e)))?;
    let volume = match vols.volumes().first().and_then(|v| v.volume_id()) {
        Some(id) => id.to_string(),
        None => ec2
            .create_volume()
            .availability_zone(format!("{region}a"))
            .size(20)
            .volume_type(VolumeType::Gp3)
            .tag_specifications(tagged(ResourceType::Volume, &vol_name))
            .send()
            .await
            .map_err(|e| ec2_err("CreateVolume", region, &vol_name, aws_sdk_ec2::error::DisplayErrorContext(e)))?
            .volume_id()
            .unwrap_or_default()
            .to_string(),
    };
    Ok((instance, volume))
}

/// The copies in the DR region a nightly backup job would have made: a fresh
/// snapshot of the primary copied there (made anew at each seeding, so the
/// data's age is the seeding's), and an AMI of the app instance copied there
/// under the app's lineage (adopted when it exists).
async fn seed_backups(c: &Clients, t: &Topology, app_instance: &str) -> Result<(), CapabilityError> {
    let snap = format!("{}-nightly", t.db_instance);
    let copy = format!("{snap}-dr");
    // Final snapshots (and their copies) of earlier failovers go too, so
    // that a game-day can count the one its run makes.
    let mut stale = Vec::new();
    for region in [&t.primary_region, &t.dr_region] {
        let found = c
            .rds(region)
            .describe_db_snapshots()
            .db_instance_identifier(&t.db_instance)
            .snapshot_type("manual")
            .send()
            .await
            .map_err(|e| drover_aws::from_sdk("rds", "DescribeDBSnapshots", region, &t.db_instance, e))?;
        let prefix = format!("{}-final-", t.db_instance);
        for id in found.db_snapshots().iter().filter_map(|s| s.db_snapshot_identifier()).filter(|id| id.starts_with(&prefix)) {
            stale.push((region, id.to_string()));
        }
    }
    for (region, id) in stale.iter().map(|(r, i)| (*r, i)).chain([(&t.primary_region, &snap), (&t.dr_region, &copy)]) {
        if let Err(e) = c.rds(region).delete_db_snapshot().db_snapshot_identifier(id).send().await {
            let e = drover_aws::from_sdk("rds", "DeleteDBSnapshot", region, id, e);
            if !e.is("DBSnapshotNotFound") {
                return Err(e);
            }
        }
    }
    let taken = rds::create_snapshot(c, &t.primary_region, &t.db_instance, &snap, "seed").await?;
    rds::copy_snapshot(c, &taken.arn, &t.dr_region, &copy, None, "seed").await?;
    let lineage = t.app_name();
    let image = ec2::create_image(c, &t.primary_region, app_instance, &format!("{lineage}-seed"), Some(&lineage), "seed").await?;
    ec2::copy_image(c, &t.primary_region, &image.id, &t.dr_region, &format!("{lineage}-seed"), Some(&lineage), "seed").await?;
    Ok(())
}

/// The health signals of the app's DR side: a Route 53 health check on its
/// target (found by target, or made) and a CloudWatch alarm on its load
/// balancer's 5xx count, put back to OK.
async fn seed_health_signals(c: &Clients, t: &Topology) -> Result<(String, String), CapabilityError> {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StateValue, Statistic};
    use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckType};
    let target = t.app_target(&t.dr_region);
    let r53 = |op: &'static str, e: String| CapabilityError::new("route53", op, "global", &target, "seed-failed", e);
    let listed =
        c.route53().list_health_checks().send().await.map_err(|e| r53("ListHealthChecks", aws_sdk_route53::error::DisplayErrorContext(e).to_string()))?;
    let found = listed
        .health_checks()
        .iter()
        .find(|h| h.health_check_config().and_then(|c| c.fully_qualified_domain_name()) == Some(target.as_str()))
        .map(|h| h.id().to_string());
    let health_check = match found {
        Some(id) => id,
        None => {
            let conf = HealthCheckConfig::builder()
                .r#type(HealthCheckType::Https)
                .fully_qualified_domain_name(&target)
                .port(443)
                .resource_path("/health")
                .build()
                .map_err(|e| r53("CreateHealthCheck", e.to_string()))?;
            let made = c
                .route53()
                .create_health_check()
                .caller_reference(format!("drover-demo-{target}-{}", rand_suffix()))
                .health_check_config(conf)
                .send()
                .await
                .map_err(|e| r53("CreateHealthCheck", aws_sdk_route53::error::DisplayErrorContext(e).to_string()))?;
            made.health_check().map(|h| h.id().to_string()).unwrap_or_default()
        }
    };
    let alarm = format!("{}-{}-5xx", t.app_name(), t.dr_region);
    let cw = c.cloudwatch(&t.dr_region);
    let cw_err = |op: &'static str| {
        let (region, alarm) = (t.dr_region.clone(), alarm.clone());
        move |e: String| CapabilityError::new("cloudwatch", op, &region, &alarm, "seed-failed", e)
    };
    cw.put_metric_alarm()
        .alarm_name(&alarm)
        .alarm_description(format!("5xx answers of the app in {}: dns-shift's health gate", t.dr_region))
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_Target_5XX_Count")
        .dimensions(Dimension::builder().name("LoadBalancer").value(format!("app/{}-{}/demo", t.app_name(), t.dr_region)).build())
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(10.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .map_err(|e| cw_err("PutMetricAlarm")(aws_sdk_cloudwatch::error::DisplayErrorContext(e).to_string()))?;
    set_alarm(c, &t.dr_region, &alarm, StateValue::Ok, "seeded: the DR side of the app answers").await?;
    Ok((health_check, alarm))
}

/// How long seeding waits for compute to settle (the emulators: at once).
const COMPUTE_WAIT: Duration = Duration::from_secs(900);

/// Seeds (or puts back: a failover scaled the DR side up) the app's compute
/// in `region`: the Auto Scaling group at `(min, max, desired)` and the ECS
/// service at `tasks`, made when missing, and waits until both hold it.
pub async fn seed_compute(c: &Clients, t: &Topology, region: &str, ((min, max, desired), tasks): ((u32, u32, u32), u32)) -> Result<(), CapabilityError> {
    seed_group(c, region, &t.asg_name, (min, max, desired)).await?;
    seed_service(c, region, &t.ecs_cluster, &t.ecs_service, tasks).await
}

/// The Auto Scaling group `name` in `region`, made from a launch
/// configuration of the same name (served by the Auto Scaling endpoint
/// itself, which the emulators route to moto; a launch template would be
/// EC2's, which LocalStack serves), or set to the capacity.
async fn seed_group(c: &Clients, region: &str, name: &str, (min, max, desired): (u32, u32, u32)) -> Result<(), CapabilityError> {
    use aws_sdk_autoscaling::types::Tag as AsgTag;
    match autoscaling::describe_group(c, region, name).await {
        Ok(_) => {
            autoscaling::set_capacity(c, region, name, &autoscaling::Capacity { min_size: Some(min), max_size: Some(max), desired }).await?;
        }
        Err(e) if e.is("group-not-found") => {
            let asg = c.autoscaling(region);
            let configs = asg
                .describe_launch_configurations()
                .launch_configuration_names(name)
                .send()
                .await
                .map_err(|e| drover_aws::from_sdk("autoscaling", "DescribeLaunchConfigurations", region, name, e))?;
            if configs.launch_configurations().is_empty() {
                asg.create_launch_configuration()
                    .launch_configuration_name(name)
                    .image_id("ami-0a1b2c3d4e5f60001")
                    .instance_type("t3.micro")
                    .send()
                    .await
                    .map_err(|e| drover_aws::from_sdk("autoscaling", "CreateLaunchConfiguration", region, name, e))?;
            }
            asg.create_auto_scaling_group()
                .auto_scaling_group_name(name)
                .launch_configuration_name(name)
                .min_size(min as i32)
                .max_size(max as i32)
                .desired_capacity(desired as i32)
                .availability_zones(format!("{region}a"))
                .tags(AsgTag::builder().key("app").value("orders").propagate_at_launch(true).build())
                .send()
                .await
                .map_err(|e| drover_aws::from_sdk("autoscaling", "CreateAutoScalingGroup", region, name, e))?;
        }
        Err(e) => return Err(e),
    }
    autoscaling::wait_in_service(c, region, name, COMPUTE_WAIT).await.map(|_| ())
}

/// ECS service `name` of `cluster` in `region` (cluster, task definition
/// and service made when missing), at `tasks`.
async fn seed_service(c: &Clients, region: &str, cluster: &str, name: &str, tasks: u32) -> Result<(), CapabilityError> {
    use aws_sdk_ecs::types::{ContainerDefinition, Tag as EcsTag};
    let resource = drover_aws::ecs::EcsService::resource(cluster, name);
    let e = c.ecs(region);
    let found = e.describe_clusters().clusters(cluster).send().await.map_err(|err| drover_aws::from_sdk("ecs", "DescribeClusters", region, &resource, err))?;
    if !found.clusters().iter().any(|k| k.status() == Some("ACTIVE")) {
        e.create_cluster()
            .cluster_name(cluster)
            .tags(EcsTag::builder().key("app").value("orders").build())
            .send()
            .await
            .map_err(|err| drover_aws::from_sdk("ecs", "CreateCluster", region, &resource, err))?;
    }
    // The task definition's family is the service's name.
    if let Err(err) = e.describe_task_definition().task_definition(name).send().await {
        let err = drover_aws::from_sdk("ecs", "DescribeTaskDefinition", region, name, err);
        if !err.is("ClientException") {
            return Err(err);
        }
        let container = ContainerDefinition::builder().name("api").image("public.ecr.aws/nginx/nginx:latest").memory(128).essential(true).build();
        e.register_task_definition()
            .family(name)
            .container_definitions(container)
            .send()
            .await
            .map_err(|err| drover_aws::from_sdk("ecs", "RegisterTaskDefinition", region, &resource, err))?;
    }
    match ecs::describe_service(c, region, cluster, name).await {
        Ok(_) => {
            ecs::set_desired_count(c, region, cluster, name, tasks).await?;
        }
        Err(err) if err.is("service-not-found") => {
            e.create_service()
                .cluster(cluster)
                .service_name(name)
                .task_definition(name)
                .desired_count(tasks as i32)
                .tags(EcsTag::builder().key("app").value("orders").build())
                .send()
                .await
                .map_err(|err| drover_aws::from_sdk("ecs", "CreateService", region, &resource, err))?;
        }
        Err(err) => return Err(err),
    }
    ecs::wait_stable(c, region, cluster, name, COMPUTE_WAIT).await.map(|_| ())
}

/// Sets the state of alarm `name` in `region`, as an incident (or its end)
/// would: CloudWatch keeps it until the alarm is next evaluated.
pub async fn set_alarm(c: &Clients, region: &str, name: &str, state: aws_sdk_cloudwatch::types::StateValue, reason: &str) -> Result<(), CapabilityError> {
    c.cloudwatch(region)
        .set_alarm_state()
        .alarm_name(name)
        .state_value(state)
        .state_reason(reason)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| drover_aws::from_sdk("cloudwatch", "SetAlarmState", region, name, e))
}

/// Publishes a `ReplicaLag` reading of `seconds` for the replica, now, as
/// RDS does every minute (the emulators publish none of their own).
pub async fn publish_replica_lag(c: &Clients, t: &Topology, seconds: f64) -> Result<(), CapabilityError> {
    publish_lag(c, &t.dr_region, &t.replica, seconds).await
}

/// Publishes a `ReplicaLag` reading of `seconds` for `replica` in `region`.
pub async fn publish_lag(c: &Clients, region: &str, replica: &str, seconds: f64) -> Result<(), CapabilityError> {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    let datum = MetricDatum::builder()
        .metric_name("ReplicaLag")
        .dimensions(Dimension::builder().name("DBInstanceIdentifier").value(replica).build())
        .value(seconds)
        .unit(StandardUnit::Seconds)
        .timestamp(std::time::SystemTime::now().into())
        .build();
    c.cloudwatch(region)
        .put_metric_data()
        .namespace("AWS/RDS")
        .metric_data(datum)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| drover_aws::from_sdk("cloudwatch", "PutMetricData", region, replica, e))
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}
