//! A scenario: the simulated cloud's starting state, the faults to inject,
//! and the run's parameters and approvals. Written in TOML, so the same file
//! serves `cargo test` ([`Scenario::from_toml`]) and
//! `drover test RUNBOOK.wasm --scenario FILE`.
//!
//! ```toml
//! [settings]
//! settle_seconds = 60          # how long a creation or promotion takes
//!
//! [params]                     # the run's parameters (defaults fill the rest)
//! rpo_seconds = 300
//!
//! [[rds.instance]]
//! region = "us-east-1"
//! identifier = "orders-db"
//!
//! [[rds.instance]]
//! region = "us-west-2"
//! identifier = "orders-db-replica"
//! replica_of = "us-east-1/orders-db"
//! lag_seconds = 4.0
//!
//! [[route53.zone]]
//! name = "orders.example.internal"
//!
//! [[route53.record]]
//! zone = "orders.example.internal"
//! name = "app.orders.example.internal"
//! set_identifier = "us-east-1"
//! weight = 100
//! values = ["app-use1.orders.example.internal"]
//!
//! [[autoscaling.group]]        # compute: instances settle like the rest
//! region = "us-west-2"
//! name = "orders-web"
//! max = 6                      # min and desired default to 0
//!
//! [[ecs.service]]
//! region = "us-west-2"
//! cluster = "orders"
//! name = "api"
//!
//! [[fault]]                    # throttle the first two promotions
//! call = "rds.promote-read-replica"
//! error = "Throttling"
//! times = 2
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

/// One record set for [`Scenario::records`]: type, set identifier, weight, values.
pub type RecordSpec<'a> = (&'a str, Option<&'a str>, Option<u8>, &'a [&'a str]);

/// Everything a simulated run starts from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Time and pace of the simulated cloud.
    #[serde(default)]
    pub settings: Settings,
    /// The run's parameters, as in `--param` (the runbook's defaults fill in
    /// the others).
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    /// RDS instances and snapshots.
    #[serde(default)]
    pub rds: RdsSeed,
    /// EC2 instances, snapshots and images.
    #[serde(default)]
    pub ec2: Ec2Seed,
    /// Route 53 zones, records and health checks.
    #[serde(default)]
    pub route53: Route53Seed,
    /// CloudWatch alarms.
    #[serde(default)]
    pub cloudwatch: CloudWatchSeed,
    /// Auto Scaling groups.
    #[serde(default)]
    pub autoscaling: AutoscalingSeed,
    /// ECS services.
    #[serde(default)]
    pub ecs: EcsSeed,
    /// Regions that do not answer at all: every call there fails with the
    /// retryable code `unreachable`.
    #[serde(default)]
    pub down_regions: Vec<String>,
    /// Scripted failures.
    #[serde(default, rename = "fault")]
    pub faults: Vec<Fault>,
    /// Decisions at approval gates (a gate not listed is approved).
    #[serde(default, rename = "approval")]
    pub approvals: Vec<ApprovalSeed>,
}

impl Scenario {
    /// Reads a scenario from TOML; the error says what is wrong and where.
    pub fn from_toml(text: &str) -> Result<Scenario, String> {
        toml::from_str(text).map_err(|e| format!("the scenario is not valid: {e}"))
    }

    /// An empty cloud: nothing exists, nothing fails.
    pub fn empty() -> Scenario {
        Scenario::default()
    }

    /// The run's parameters as NAME=VALUE pairs: the scenario's `[params]`,
    /// with `overrides` (the command line's `--param`) taking precedence.
    pub fn params_over(&self, overrides: &[(String, String)]) -> Vec<(String, String)> {
        let mut raw: Vec<(String, String)> = self
            .params
            .iter()
            .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == *k))
            .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
            .collect();
        raw.extend(overrides.iter().cloned());
        raw
    }
}

/// Time and pace of the simulated cloud.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Simulated time when the run starts, seconds since the Unix epoch.
    pub start_unix: i64,
    /// How long a creation, a promotion, a restore or a copy takes before it
    /// is available (waits move simulated time forward, they do not sleep).
    pub settle_seconds: u32,
    /// The run's id.
    pub run_id: String,
}

impl Default for Settings {
    fn default() -> Self {
        // 2026-01-01T00:00:00Z
        Settings { start_unix: 1_767_225_600, settle_seconds: 60, run_id: "test-run".into() }
    }
}

/// A scripted failure: calls that match fail with `error` instead of doing
/// anything.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// `service.operation` with the operation's WIT name, `*` as wildcard:
    /// `rds.promote-read-replica`, `route53.*`.
    pub call: String,
    /// Only calls in this region.
    #[serde(default)]
    pub region: Option<String>,
    /// Only calls naming this resource (`*` as wildcard).
    #[serde(default)]
    pub resource: Option<String>,
    /// The AWS error code (`Throttling`, `InternalFailure`,
    /// `InvalidDBInstanceState`...).
    pub error: String,
    /// The error message (a default one says it was injected).
    #[serde(default)]
    pub message: Option<String>,
    /// Whether retrying may help; by default, as AWS would say for the code
    /// (throttling and internal errors are retryable).
    #[serde(default)]
    pub retryable: Option<bool>,
    /// Let this many matching calls through before failing ("fail the third
    /// poll": `after = 2`).
    #[serde(default)]
    pub after: u32,
    /// How many matching calls fail; 0 means every one from then on.
    #[serde(default = "one")]
    pub times: u32,
    /// What the fault does: `fail` (the default: the request fails before
    /// it does anything), `lost-answer` (the request takes effect, then its
    /// answer is lost: the caller gets `error`, as after a timeout or a 5xx
    /// the service had already executed), `resend` (the request takes
    /// effect, its answer is lost, and the SDK sends it again blind, as it
    /// does for every request it retries; an operation drover sends once per
    /// attempt, `drover_cloud::resend::sent_once`, gets `error` instead) or
    /// `stale` (an RDS read answers with the resource as it was before its
    /// last change, as an eventually consistent read can; `error` unused).
    #[serde(default)]
    pub effect: FaultEffect,
}

/// What a [`Fault`] does to the calls it matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultEffect {
    /// The request fails before it does anything.
    #[default]
    Fail,
    /// The request takes effect; its answer is lost.
    LostAnswer,
    /// The request takes effect, its answer is lost, and the SDK resends it.
    Resend,
    /// Eventual consistency: a read (`rds.describe-*`, `rds.wait-*`) is
    /// answered by a part of the service that has not seen the resource's
    /// last change yet: the resource as it was before it (not found, if
    /// that change created it). A wait that reads a stale `available`
    /// returns at once. Other calls go through.
    Stale,
}

impl Fault {
    /// Calls `call` (`rds.promote-read-replica`, `route53.*`) fail once with
    /// AWS error `error`.
    pub fn new(call: &str, error: &str) -> Fault {
        Fault {
            call: call.into(),
            region: None,
            resource: None,
            error: error.into(),
            message: None,
            retryable: None,
            after: 0,
            times: 1,
            effect: FaultEffect::Fail,
        }
    }

    /// Fail `n` matching calls (0: every one).
    pub fn times(mut self, n: u32) -> Fault {
        self.times = n;
        self
    }

    /// Let `n` matching calls through first.
    pub fn after(mut self, n: u32) -> Fault {
        self.after = n;
        self
    }

    /// What the fault does (see [`FaultEffect`]).
    pub fn effect(mut self, effect: FaultEffect) -> Fault {
        self.effect = effect;
        self
    }

    /// Only calls naming `resource`.
    pub fn resource(mut self, resource: &str) -> Fault {
        self.resource = Some(resource.into());
        self
    }
}

impl Scenario {
    /// Adds a scripted failure.
    pub fn fault(mut self, fault: Fault) -> Scenario {
        self.faults.push(fault);
        self
    }

    /// Takes region `region` down: every call there fails (`unreachable`).
    pub fn region_down(mut self, region: &str) -> Scenario {
        self.down_regions.push(region.into());
        self
    }

    /// Decides approval gate `gate`: `approve`, `reject` or `timeout`.
    pub fn approval(mut self, gate: &str, decision: &str) -> Scenario {
        self.approvals.push(ApprovalSeed { gate: gate.into(), decision: decision.into(), by: None, comment: None });
        self
    }

    /// Removes RDS instance `identifier` from `region` (a replica that was
    /// never made, a primary that is gone).
    pub fn without_rds_instance(mut self, region: &str, identifier: &str) -> Scenario {
        self.rds.instances.retain(|i| !(i.region == region && i.identifier == identifier));
        self
    }

    /// Sets the replica lag of RDS instance `identifier` (`None`: no reading).
    pub fn lag(mut self, identifier: &str, seconds: Option<f64>) -> Scenario {
        for i in self.rds.instances.iter_mut().filter(|i| i.identifier == identifier) {
            i.lag_seconds = seconds;
        }
        self
    }

    /// Makes the newest lag reading of RDS instance `identifier` `age_seconds` old.
    pub fn lag_age(mut self, identifier: &str, age_seconds: u64) -> Scenario {
        for i in self.rds.instances.iter_mut().filter(|i| i.identifier == identifier) {
            i.lag_age_seconds = age_seconds;
        }
        self
    }

    /// Makes RDS instance `identifier` busy in `status` (`backing-up`,
    /// `modifying`) for `seconds` (`None`: for good).
    pub fn busy(mut self, identifier: &str, status: &str, seconds: Option<u64>) -> Scenario {
        for i in self.rds.instances.iter_mut().filter(|i| i.identifier == identifier) {
            i.status = status.to_string();
            i.busy_seconds = seconds;
        }
        self
    }

    /// Makes RDS instance `identifier` turn busy in `status` for `seconds`
    /// once `calls` calls have named it (it is `available` until then).
    pub fn busy_later(mut self, identifier: &str, status: &str, seconds: u64, calls: u32) -> Scenario {
        for i in self.rds.instances.iter_mut().filter(|i| i.identifier == identifier) {
            i.status = status.to_string();
            i.busy_seconds = Some(seconds);
            i.busy_after_calls = Some(calls);
        }
        self
    }

    /// Makes RDS instance `identifier` standalone (not a read replica).
    pub fn standalone(mut self, identifier: &str) -> Scenario {
        for i in self.rds.instances.iter_mut().filter(|i| i.identifier == identifier) {
            i.replica_of = None;
        }
        self
    }

    /// Replaces the record sets named `name` with `records` (type, set
    /// identifier, weight, values) in zone `zone`.
    pub fn records(mut self, zone: &str, name: &str, records: &[RecordSpec<'_>]) -> Scenario {
        let fq = |n: &str| n.trim_end_matches('.').to_ascii_lowercase();
        self.route53.records.retain(|r| !(fq(&r.zone) == fq(zone) && fq(&r.name) == fq(name)));
        for (kind, set, weight, values) in records {
            self.route53.records.push(RecordSeed {
                zone: zone.to_string(),
                name: name.to_string(),
                record_type: kind.to_string(),
                ttl: 60,
                set_identifier: set.map(str::to_string),
                weight: *weight,
                values: values.iter().map(|v| v.to_string()).collect(),
            });
        }
        self
    }
}

fn one() -> u32 {
    1
}

/// A decision at an approval gate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSeed {
    /// The gate: a runbook's, or `failed:KEY:N` where step KEY waits for
    /// an operator after its attempt N failed for good.
    pub gate: String,
    /// `approve`, `reject`, `skip` or `timeout` (nobody decides). At a
    /// failure gate, `approve` retries the step; a failure gate nobody
    /// decides lets the failure stand.
    pub decision: String,
    /// Who decided.
    #[serde(default)]
    pub by: Option<String>,
    /// Their comment.
    #[serde(default)]
    pub comment: Option<String>,
}

/// RDS resources.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RdsSeed {
    /// DB instances.
    #[serde(default, rename = "instance")]
    pub instances: Vec<RdsInstanceSeed>,
    /// DB snapshots.
    #[serde(default, rename = "snapshot")]
    pub snapshots: Vec<RdsSnapshotSeed>,
    /// Aurora clusters.
    #[serde(default, rename = "cluster")]
    pub clusters: Vec<RdsClusterSeed>,
    /// Aurora global databases.
    #[serde(default, rename = "global_cluster")]
    pub global_clusters: Vec<GlobalClusterSeed>,
}

/// A DB instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RdsInstanceSeed {
    /// Its region.
    pub region: String,
    /// Its identifier.
    pub identifier: String,
    /// `available` unless said otherwise.
    #[serde(default = "available")]
    pub status: String,
    /// The engine.
    #[serde(default = "postgres")]
    pub engine: String,
    /// The engine version.
    #[serde(default = "pg_version")]
    pub engine_version: String,
    /// `REGION/IDENTIFIER` of the instance this one replicates.
    #[serde(default)]
    pub replica_of: Option<String>,
    /// Its replica lag, in seconds (no reading when absent; `-1` is what
    /// CloudWatch reports when replication is not running).
    #[serde(default)]
    pub lag_seconds: Option<f64>,
    /// How old that reading is, in seconds (60 unless said otherwise).
    #[serde(default = "a_minute")]
    pub lag_age_seconds: u64,
    /// With a `status` other than `available`: the instance is busy in that
    /// status for this many seconds, then `available` (a backup, a
    /// modification). Without it, the status holds for good. RDS refuses to
    /// promote or snapshot an instance that is not `available`.
    #[serde(default)]
    pub busy_seconds: Option<u64>,
    /// With `busy_seconds`: the instance is `available` at first and turns
    /// busy from the call after this many calls naming it (an automated
    /// backup or a maintenance action that starts in the middle of a run).
    #[serde(default)]
    pub busy_after_calls: Option<u32>,
}

/// A DB snapshot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RdsSnapshotSeed {
    /// Its region.
    pub region: String,
    /// Its identifier.
    pub identifier: String,
    /// The instance it was taken of.
    pub instance: String,
    /// How long ago it was taken.
    #[serde(default)]
    pub age_seconds: u64,
    /// `available` unless said otherwise.
    #[serde(default = "available")]
    pub status: String,
}

/// An Aurora cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RdsClusterSeed {
    /// Its region.
    pub region: String,
    /// Its identifier.
    pub identifier: String,
    /// The global database it belongs to.
    #[serde(default)]
    pub global_cluster: Option<String>,
    /// Whether it is the global database's writer.
    #[serde(default)]
    pub writer: bool,
}

/// An Aurora global database; its members are the clusters naming it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalClusterSeed {
    /// Its identifier.
    pub identifier: String,
}

/// EC2 resources.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec2Seed {
    /// Instances.
    #[serde(default, rename = "instance")]
    pub instances: Vec<Ec2InstanceSeed>,
    /// AMIs.
    #[serde(default, rename = "image")]
    pub images: Vec<Ec2ImageSeed>,
}

/// An EC2 instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec2InstanceSeed {
    /// Its region.
    pub region: String,
    /// Its id (`i-...`).
    pub id: String,
    /// The AMI it runs.
    #[serde(default = "default_ami")]
    pub image_id: String,
    /// Its EBS volumes.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// `running` unless said otherwise.
    #[serde(default = "running")]
    pub state: String,
}

/// An AMI.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec2ImageSeed {
    /// Its region.
    pub region: String,
    /// Its id (`ami-...`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// The lineage it belongs to (`drover:lineage` tag).
    #[serde(default)]
    pub lineage: Option<String>,
    /// How long ago it was created.
    #[serde(default)]
    pub age_seconds: u64,
}

/// Route 53 resources.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route53Seed {
    /// Hosted zones.
    #[serde(default, rename = "zone")]
    pub zones: Vec<ZoneSeed>,
    /// Record sets.
    #[serde(default, rename = "record")]
    pub records: Vec<RecordSeed>,
    /// Health checks.
    #[serde(default, rename = "health_check")]
    pub health_checks: Vec<HealthCheckSeed>,
}

/// A hosted zone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneSeed {
    /// Its name (`orders.example.internal`).
    pub name: String,
    /// A private zone (tied to a VPC). A private and a public zone may share
    /// a name; records and calls then name one as `private:NAME` or
    /// `public:NAME` (or by `id`), and a plain name is refused as ambiguous.
    #[serde(default)]
    pub private: bool,
    /// Its id (`Z0123456789ABC`), for runbooks that name zones by id.
    pub id: Option<String>,
}

/// A record set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSeed {
    /// The zone it is in.
    pub zone: String,
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(default = "cname", rename = "type")]
    pub record_type: String,
    /// TTL in seconds.
    #[serde(default = "sixty")]
    pub ttl: u32,
    /// Set identifier (weighted and failover records).
    #[serde(default)]
    pub set_identifier: Option<String>,
    /// Weight (weighted records).
    #[serde(default)]
    pub weight: Option<u8>,
    /// Values.
    pub values: Vec<String>,
}

/// A health check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSeed {
    /// Its id.
    pub id: String,
    /// What it checks (`HTTPS`, `TCP`...).
    #[serde(default = "https")]
    pub kind: String,
    /// The host it checks.
    pub target: String,
    /// `healthy`, `unhealthy` or `unknown`.
    #[serde(default = "healthy")]
    pub status: String,
    /// Disabled.
    #[serde(default)]
    pub disabled: bool,
    /// Inverted.
    #[serde(default)]
    pub inverted: bool,
    /// The check turns unhealthy this many simulated seconds after the run
    /// starts.
    #[serde(default)]
    pub unhealthy_after_seconds: Option<u64>,
}

/// CloudWatch resources.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchSeed {
    /// Metric alarms.
    #[serde(default, rename = "alarm")]
    pub alarms: Vec<AlarmSeed>,
}

/// A metric alarm.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmSeed {
    /// Its region.
    pub region: String,
    /// Its name.
    pub name: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    #[serde(default = "ok")]
    pub state: String,
    /// Why it is in that state.
    #[serde(default)]
    pub reason: String,
    /// The alarm fires (goes to `ALARM`) this many simulated seconds after
    /// the run starts: an incident during a soak.
    #[serde(default)]
    pub alarm_after_seconds: Option<u64>,
}

fn available() -> String {
    "available".into()
}
fn running() -> String {
    "running".into()
}
fn postgres() -> String {
    "postgres".into()
}
fn pg_version() -> String {
    "16.3".into()
}
fn default_ami() -> String {
    "ami-00000000000000001".into()
}
fn cname() -> String {
    "CNAME".into()
}
fn a_minute() -> u64 {
    60
}

fn sixty() -> u32 {
    60
}
fn https() -> String {
    "HTTPS".into()
}
fn healthy() -> String {
    "healthy".into()
}
fn ok() -> String {
    "OK".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_from_the_command_line_win_over_the_scenarios() {
        let scenario = Scenario::from_toml("[params]\nsource_region = \"us-east-1\"\nmax_lag = 30\n").unwrap();
        let mut params = scenario.params_over(&[("source_region".into(), "eu-west-1".into()), ("extra".into(), "1".into())]);
        params.sort();
        let want: Vec<(String, String)> =
            [("extra", "1"), ("max_lag", "30"), ("source_region", "eu-west-1")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(params, want);
    }
}

/// `[[autoscaling.group]]` entries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscalingSeed {
    /// Auto Scaling groups (their instances start in service).
    #[serde(default, rename = "group")]
    pub groups: Vec<GroupSeed>,
}

/// An Auto Scaling group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSeed {
    /// Its region.
    pub region: String,
    /// Its name.
    pub name: String,
    /// Minimum size.
    #[serde(default)]
    pub min: u32,
    /// Maximum size.
    pub max: u32,
    /// Desired capacity (that many instances, in service).
    #[serde(default)]
    pub desired: u32,
}

/// `[[ecs.service]]` entries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsSeed {
    /// ECS services (steady at their desired count).
    #[serde(default, rename = "service")]
    pub services: Vec<EcsServiceSeed>,
}

/// An ECS service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsServiceSeed {
    /// Its region.
    pub region: String,
    /// Its cluster's name.
    pub cluster: String,
    /// Its name.
    pub name: String,
    /// Desired (and running) count.
    #[serde(default)]
    pub desired: u32,
}
