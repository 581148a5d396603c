//! `regional-failover`: move a database and its application from the primary
//! region to the DR region.
//!
//! 1. `preflight`: the replica in the DR region exists, is available and is
//!    a read replica of the primary (a standalone target is refused unless
//!    the operator says it already is the writer: `target_is_writer=true`);
//!    its lag (CloudWatch `ReplicaLag`, the data a promotion would lose: the
//!    estimated RPO) is known, fresh and within `rpo_seconds`. A lag over
//!    the RPO is refused unless the operator passes `accept_replica_lag=true`;
//!    a lag that is unknown (no reading, a reading older than
//!    `max_lag_age_seconds`, or `-1`: replication not running) is refused
//!    unless the operator passes `accept_unknown_lag=true`. Both overrides are
//!    recorded with the run's parameters and named in its result. The DNS
//!    records exist; the primary is reachable or not.
//! 2. With `asg_name` and/or `ecs_cluster`+`ecs_service` given,
//!    `scale-dr-compute` scales the DR region's Auto Scaling group and ECS
//!    service (same names in both regions) to the desired capacity the
//!    primary's hold now (at least `asg_min_capacity` / `ecs_min_count`,
//!    which are also what they get when the primary region does not answer;
//!    a group's maximum is raised when it could not hold it), undone if the
//!    failover fails; `wait-dr-compute`, after the promotion and before DNS
//!    moves, waits until the group's instances are in service and healthy
//!    and the service is steady.
//! 3. `promote` the replica (a busy replica is waited for, never taken for
//!    promoted) and `wait-promoted` until it is available **and no longer
//!    replicates**: "available" alone is not "promoted".
//! 4. `point-db-record`: the database CNAME points at the promoted instance.
//! 5. `shift-app-weights`: the application's weighted records send all
//!    traffic to the DR region, on the records of whatever type they are (A,
//!    AAAA, alias or CNAME) (undone if verification fails).
//! 6. `final-snapshot` (only when the primary answers): a last snapshot of
//!    the primary is requested once DNS has moved, and not waited for. Taken
//!    then, it holds the writes the primary took until its clients left it
//!    (those made after the promotion are in no other copy), and it adds
//!    nothing to the RTO. An unreachable primary (the region is down, or
//!    went down during the failover) skips it with a recorded warning.
//!    `copy-final-snapshot`: once it is available, copy it into the DR
//!    region. Traffic already runs in the DR region, so a copy that fails
//!    (the primary region went down meanwhile) is a recorded warning, not a
//!    failed failover that would send traffic back.
//! 7. `verify`: read everything back from the cloud: the DB record points at
//!    the promoted instance, which is available and has no replication
//!    source; every weighted record type of the app gives the DR region all
//!    the weight. The result carries the measured RTO (start to DNS
//!    shifted) against the objective, and the lag reading the RPO estimate
//!    rests on, with its age.
//!
//! Every step is idempotent: a crash anywhere, then `drover resume`, ends in
//! the same state with one snapshot copy, one promotion and one DNS change.
//!
//! `drover readiness` asks it, without changing anything, whether a failover
//! would succeed now: replica, lag, the age of the newest snapshot copy in the
//! DR region, the DNS records, the primary, and the DR compute (the group
//! and service exist; the group's maximum can hold the primary's capacity).

use std::time::Duration;

use drover_sdk::aws::rds::Lag;
use drover_sdk::aws::reads::{Answers, Reads, Ticket};
use drover_sdk::aws::{autoscaling, ecs, rds, route53};
use drover_sdk::compute::{Compute, Scaled};
use drover_sdk::{Action, Capability, Ctx, Describe, Error, OnFailure, Param, Readiness, Retry, Runbook, export_runbook};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Params {
    primary_region: String,
    dr_region: String,
    db_instance: String,
    replica: String,
    hosted_zone: String,
    db_record: String,
    app_record: String,
    rto_seconds: u32,
    rpo_seconds: u32,
    accept_replica_lag: bool,
    accept_unknown_lag: bool,
    max_lag_age_seconds: u32,
    target_is_writer: bool,
    max_copy_age_seconds: u32,
    #[serde(default)]
    approval: bool,
    #[serde(default)]
    approval_timeout_seconds: u32,
    #[serde(default)]
    operator_wait_seconds: u32,
    #[serde(default)]
    asg_name: String,
    #[serde(default)]
    ecs_cluster: String,
    #[serde(default)]
    ecs_service: String,
    #[serde(default)]
    asg_min_capacity: u32,
    #[serde(default)]
    ecs_min_count: u32,
}

impl Params {
    /// The DR compute to scale with the failover, if any.
    fn compute(&self) -> Compute {
        Compute::new(&self.asg_name, &self.ecs_cluster, &self.ecs_service, self.asg_min_capacity, self.ecs_min_count)
    }
}

#[derive(Serialize, Deserialize)]
struct Preflight {
    started_ms: u128,
    replica_arn: String,
    replica_source: Option<String>,
    primary_arn: Option<String>,
    primary_unreachable: Option<String>,
    app_targets: Vec<(String, u8, String)>,
    /// The replica's lag when the failover began: the estimated RPO (none
    /// when it is unknown and the operator accepted that).
    replica_lag_seconds: Option<f64>,
    /// The age of the reading it comes from.
    lag_reading_age_seconds: Option<u64>,
    lag_warning: Option<String>,
    /// The target is standalone already and the operator said it is the
    /// writer: nothing to promote.
    already_writer: bool,
}

/// The final snapshot, as requested.
#[derive(Serialize, Deserialize)]
struct Final {
    snapshot: Option<String>,
    arn: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Copy {
    copy_arn: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Weights {
    targets: Vec<(String, u8, String)>,
}

#[derive(Serialize)]
struct Outcome {
    promoted: String,
    endpoint: String,
    snapshot_copy: Option<String>,
    rto_seconds: f64,
    rto_objective_seconds: u32,
    rto_met: bool,
    estimated_rpo_seconds: Option<f64>,
    /// How old the `ReplicaLag` reading behind `estimated_rpo_seconds` was
    /// when the failover began.
    lag_reading_age_seconds: Option<u64>,
    rpo_objective_seconds: u32,
    warnings: Vec<String>,
}

struct RegionalFailover;

/// What the replica's lag says about the data a promotion now would lose
/// (`drover_sdk`'s judgement: unknown is never "no lag").
fn lag(reading: Option<rds::LagReading>, replica: &str, max_age: u32) -> Lag {
    match reading {
        // The `power-test` feature reverts the refusal of -1, for the
        // simulation's power test only: a build with it is never shipped.
        Some(l) if l.seconds < 0.0 && cfg!(feature = "power-test") && l.age_seconds <= u64::from(max_age) => Lag::Known(l.seconds, l.age_seconds),
        reading => rds::judge_lag(reading, replica, max_age),
    }
}

impl Runbook for RegionalFailover {
    type Params = Params;
    type Output = Outcome;

    fn describe() -> Describe {
        let described = Describe::new("regional-failover", env!("CARGO_PKG_VERSION"))
            .description(
                "Fails a database and its application over to the DR region: promotion of the cross-region \
                 replica, the DB record pointed at it, the app's weighted records shifted to the DR region, then \
                 a final snapshot of the primary (when it answers) copied to the DR region, all verified. \
                 Defaults match the demo topology.",
            )
            .param(Param::string("primary_region", "Region failing over from").default("us-east-1"))
            .param(Param::string("dr_region", "Region failing over to").default("us-west-2"))
            .param(Param::string("db_instance", "Primary DB instance identifier").default("orders-db"))
            .param(Param::string("replica", "Cross-region read replica in the DR region").default("orders-db-replica"))
            .param(Param::string("hosted_zone", "Route 53 hosted zone").default("orders.example.internal"))
            .param(Param::string("db_record", "CNAME clients use for the database").default("db.orders.example.internal"))
            .param(Param::string("app_record", "Weighted records of the application").default("app.orders.example.internal"))
            .param(Param::integer("rto_seconds", "Recovery time objective, in seconds").default(900))
            .param(Param::integer("rpo_seconds", "Most replica lag (seconds of writes lost) a promotion may accept").default(300))
            .param(Param::boolean("accept_replica_lag", "Promote even when the lag is over rpo_seconds (recorded)").default(false))
            .param(Param::boolean("accept_unknown_lag", "Promote even when the lag is unknown: no ReplicaLag reading, a stale one, or -1 (replication not running) (recorded)").default(false))
            .param(Param::integer("max_lag_age_seconds", "Oldest ReplicaLag reading the lag gate trusts").default(180))
            .param(Param::boolean("target_is_writer", "The DR instance is standalone already and is the writer (promoted before this run): skip its promotion (recorded). Without it a target that is not a read replica is refused").default(false))
            .param(Param::integer("max_copy_age_seconds", "Readiness: oldest acceptable snapshot copy in the DR region").default(93600))
            .param(Param::boolean("approval", "Wait at gate `failover` for an operator's approval before changing anything (what the preflight found is in the question)").default(false))
            .param(Param::integer("approval_timeout_seconds", "With approval: fail the run (nothing changed) when nobody decides within this many seconds; 0 waits forever").default(1800))
            .param(
                Param::integer(
                    "operator_wait_seconds",
                    "When point-db-record or shift-app-weights fails for good (a missing grant, a wrong record), wait this many seconds for an \
                     operator instead of failing (and undoing) the failover: they fix the cause and retry the step (`drover redrive RUN`), \
                     skip point-db-record after moving the record by hand (`drover skip RUN point-db-record`; verify still checks where it \
                     points), or let the failure stand. 0 fails at once",
                )
                .default(0),
            )
            .param(Param::string("asg_name", "An Auto Scaling group of the same name in both regions: the DR one is scaled to the primary's desired capacity before DNS moves (undone if the failover fails); empty: none").default(""))
            .param(Param::string("ecs_cluster", "The ECS cluster of ecs_service, the same name in both regions").default(""))
            .param(Param::string("ecs_service", "An ECS service in both regions: the DR one is scaled to the primary's desired count before DNS moves; empty: none").default(""))
            .param(Param::integer("asg_min_capacity", "Least capacity for the DR group, and what it gets when the primary region does not answer").default(0))
            .param(Param::integer("ecs_min_count", "Least desired count for the DR service, and what it gets when the primary region does not answer").default(0))
            .capability(
                Capability::new("rds")
                    .operations([
                        "describe-instance",
                        "create-snapshot",
                        "copy-snapshot",
                        "wait-snapshot-available",
                        "promote-read-replica",
                        "wait-instance-available",
                        "replica-lag",
                        "latest-snapshot",
                    ])
                    .regions(["{primary_region}", "{dr_region}"])
                    .resources(["db/{db_instance}", "db/{replica}", "snapshot/{db_instance}-final-*"]),
            )
            .capability(
                Capability::new("route53")
                    .operations(["get-records-of", "upsert-cname", "set-weights"])
                    .resources(["zone/{hosted_zone}", "record/{db_record}", "record/{app_record}"]),
            );
        drover_sdk::compute::declare(described, ["{primary_region}", "{dr_region}"])
    }

    fn run(ctx: &Ctx, p: Params) -> Result<Outcome, Error> {
        let wait = Duration::from_secs(u64::from(p.rto_seconds));
        let pre: Preflight = ctx.step("preflight", || {
            // The RTO counts from here: the preflight's reads are part of
            // the outage's recovery time (a script's clock starts before its
            // reads too).
            let started_ms = ctx.unix_ms();
            // Every read at once: one round trip to both regions, not five.
            let mut reads = Reads::new();
            let replica = reads.describe_instance(&p.dr_region, &p.replica);
            let records = reads.get_records_of(&p.hosted_zone, &[p.db_record.clone(), p.app_record.clone()]);
            let replica_lag = reads.replica_lag(&p.dr_region, &p.replica);
            let primary = reads.describe_instance(&p.primary_region, &p.db_instance);
            let mut answers = reads.send();
            let replica = answers
                .take(replica)
                .map_err(|e| e.context(format!("the DR replica {} in {} is not usable", p.replica, p.dr_region)))?;
            if replica.status != "available" {
                return Err(Error::new("replica-not-available", format!("replica {} is '{}', not available; DNS left unchanged", p.replica, replica.status))
                    .with_resource(replica.arn));
            }
            let already_writer = match (&replica.replica_source, p.target_is_writer) {
                (None, false) => {
                    return Err(Error::new(
                        "not-a-replica",
                        format!(
                            "{} in {} is not a read replica (it has no replication source): promoting it would change nothing, and DNS would move to an \
                             instance that may not hold {}'s data. Nothing was changed. Point --param replica at the cross-region replica of {}, or, if {} \
                             already is the writer (promoted earlier), pass --param target_is_writer=true (recorded with the run)",
                            p.replica, p.dr_region, p.db_instance, p.db_instance, p.replica
                        ),
                    )
                    .with_resource(replica.arn));
                }
                (None, true) => true,
                (Some(src), true) => {
                    return Err(Error::new(
                        "not-the-writer",
                        format!("target_is_writer=true, but {} still replicates from {src}: it is not the writer. Nothing was changed; drop target_is_writer to promote it", p.replica),
                    )
                    .with_resource(replica.arn));
                }
                (Some(src), false) if rds::name_of(src) != p.db_instance => {
                    return Err(Error::new(
                        "wrong-replica-source",
                        format!("{} replicates from {src}, not from the primary {}: promoting it would serve another database's data. Nothing was changed", p.replica, p.db_instance),
                    )
                    .with_resource(replica.arn));
                }
                (Some(_), false) => false,
            };
            let records = answers.take(records)?;
            if route53::named(&records, &p.db_record).is_empty() {
                return Err(Error::new("record-not-found", format!("no record {} in zone {}; DNS left unchanged", p.db_record, p.hosted_zone)));
            }
            let app_sets = route53::named(&records, &p.app_record);
            let app = route53::movable_weights(&p.app_record, &app_sets, &p.dr_region, "DNS left unchanged")?;
            let (replica_lag_seconds, lag_reading_age_seconds, lag_warning) = if already_writer {
                let w = format!("{} is standalone and target_is_writer=true: no promotion, no lag gate (the data it holds is what it holds)", p.replica);
                (None, None, Some(w))
            } else {
                let gate = rds::LagGate { rpo_seconds: p.rpo_seconds, accept_replica_lag: p.accept_replica_lag, accept_unknown_lag: p.accept_unknown_lag };
                let a = gate.admit(lag(answers.take(replica_lag)?, &p.replica, p.max_lag_age_seconds), &p.replica, &replica.arn)?;
                (a.seconds, a.age_seconds, a.warning)
            };
            let (primary_arn, primary_unreachable) = match answers.take(primary) {
                Ok(i) => (Some(i.arn), None),
                Err(e) if e.is_retryable() || e.code() == "DBInstanceNotFound" => (None, Some(e.to_string())),
                Err(e) => return Err(e),
            };
            Ok(Preflight {
                started_ms,
                replica_arn: replica.arn,
                replica_source: replica.replica_source,
                primary_arn,
                primary_unreachable,
                app_targets: app,
                replica_lag_seconds,
                lag_reading_age_seconds,
                lag_warning,
                already_writer,
            })
        })?;
        let mut warnings = Vec::new();
        if let Some(w) = &pre.lag_warning {
            ctx.warn(w);
            warnings.push(w.clone());
        }
        if let Some(why) = &pre.primary_unreachable {
            ctx.warn(&format!("primary unreachable, skipping the final snapshot: {why}"));
            warnings.push(format!("final snapshot skipped: {why}"));
        }
        if p.approval {
            let lag = match (pre.replica_lag_seconds, pre.lag_reading_age_seconds) {
                (Some(l), Some(age)) => format!("replica lag {l:.0} s, read {age} s ago (RPO budget {} s)", p.rpo_seconds),
                _ => "replica lag unknown".to_string(),
            };
            let primary = if pre.primary_unreachable.is_some() { "the primary does not answer" } else { "the primary still answers" };
            let question = format!(
                "Fail over to {}: promote {} and point {} and {} at it? {lag}; {primary}. Nothing has been changed yet.",
                p.dr_region, p.replica, p.db_record, p.app_record
            );
            let ok = ctx.approval_within("failover", &question, Duration::from_secs(u64::from(p.approval_timeout_seconds)))?;
            ctx.info(&format!("failover approved by {}", ok.by));
        }

        // DR compute scaled up first, so that it starts while the database
        // is promoted; waited for before DNS moves. Undone (put back as it
        // was) if the failover fails.
        let compute = p.compute();
        if !compute.is_empty() {
            let scaled: Scaled = ctx.step("scale-dr-compute", || compute.match_capacity(&p.primary_region, &p.dr_region))?;
            ctx.compensate("restore-dr-compute", &scaled)?;
            for w in &scaled.warnings {
                ctx.warn(w);
                warnings.push(w.clone());
            }
        }

        if !pre.already_writer {
            // A busy replica (backing-up, modifying) refuses a promotion: the
            // step waits for it, a few minutes at most, and never takes it
            // for promoted.
            ctx.step_with("promote", Retry::attempts(8).backoff(Duration::from_secs(2), Duration::from_secs(60)), || {
                let i = rds::promote_read_replica(&p.dr_region, &p.replica)?;
                Ok(i.arn)
            })?;
        }
        // Promoted means available and no replication source any more.
        let endpoint: String = ctx.step_with("wait-promoted", Retry::attempts(20).backoff(Duration::from_secs(5), Duration::from_secs(30)), || {
            let i = rds::wait_promoted(&p.dr_region, &p.replica, wait)?;
            i.endpoint.ok_or_else(|| Error::retryable("no-endpoint", format!("{} has no endpoint yet", p.replica)))
        })?;

        if !compute.is_empty() {
            let timeout = Duration::from_secs(u64::from(p.rto_seconds));
            ctx.step_with("wait-dr-compute", Retry::attempts(5).backoff(Duration::from_secs(5), Duration::from_secs(30)), || {
                compute.wait(&p.dr_region, timeout)
            })?;
        }

        // A DNS change that fails for good (a missing grant, a record that
        // is not what it should be) may wait for an operator rather than
        // undo a promotion that has happened (operator_wait_seconds).
        let operator = Duration::from_secs(u64::from(p.operator_wait_seconds));
        // Skipped (the operator moved the record by hand): `false`. Verify
        // checks where the record points all the same.
        let moved: bool = ctx.step_with_operator("point-db-record", Retry::default(), &OnFailure::wait(operator).or_skip_with(false), || {
            route53::upsert_cname(&p.hosted_zone, &p.db_record, &endpoint, 60, wait)?;
            Ok(true)
        })?;
        if !moved {
            let w = format!("{} was not moved by drover: an operator skipped point-db-record (the run's events say who and why)", p.db_record);
            ctx.warn(&w);
            warnings.push(w);
        }

        let shifted: Weights = ctx.step_with_operator("shift-app-weights", Retry::default(), &OnFailure::wait(operator), || {
            let to: Vec<(String, u8, String)> =
                pre.app_targets.iter().map(|(set, _, v)| (set.clone(), if *set == p.dr_region { 100 } else { 0 }, v.clone())).collect();
            route53::set_weights(&p.hosted_zone, &p.app_record, &route53::weighted(&to), 60, wait)?;
            Ok(Weights { targets: to })
        })?;
        // If verification fails, send the traffic back where it was.
        ctx.compensate(
            "restore-app-weights",
            &route53::RestoreWeights {
                zone: p.hosted_zone.clone(),
                record: p.app_record.clone(),
                targets: pre.app_targets.clone(),
                timeout_seconds: wait.as_secs(),
            },
        )?;
        let shifted_ms = ctx.unix_ms();

        // Requested once DNS has moved, not before: it then holds the writes
        // the primary took until its clients left it (those made after the
        // promotion are in no other copy), and its round trip is not part of
        // the RTO. Not waited for here: AWS takes it while the run goes on.
        // Best effort: the primary's region may die while the failover runs
        // (that is why it runs); then the failover goes on without it.
        // Its errors are not retried (the SDK's own retries are inside the
        // call): a dead region must not hold the failover through step
        // retries. Two attempts all the same, so that one interrupted by a
        // crash runs again: the agent counts an interrupted attempt, and a
        // second request adopts the snapshot by name.
        let snapshot = ctx.step_with("final-snapshot", Retry::attempts(2), || {
            if pre.primary_arn.is_none() {
                return Ok(Final { snapshot: None, arn: None });
            }
            // Unique to this run and stable across its attempts: the step's idempotency key.
            let key = ctx.attempt().map(|a| a.idempotency_key).unwrap_or_default();
            let name = format!("{}-final-{}", p.db_instance, &key[..key.len().min(12)]);
            let snap = rds::create_snapshot(&p.primary_region, &p.db_instance, &name).map_err(|e| {
                let once = Error::new(e.code(), e.message());
                match e.resource() {
                    Some(r) => once.with_resource(r),
                    None => once,
                }
            })?;
            Ok(Final { snapshot: Some(name), arn: Some(snap.arn) })
        });
        let last = match snapshot {
            Ok(f) => f,
            Err(e) => {
                let w = format!("final snapshot skipped: the primary stopped answering during the failover ({})", e.message());
                ctx.warn(&w);
                warnings.push(w);
                Final { snapshot: None, arn: None }
            }
        };

        // Traffic runs in the DR region now: a copy that cannot be made is a
        // warning, never a reason to fail (and undo) the failover.
        let copy = match (&last.snapshot, &last.arn) {
            (Some(name), Some(arn)) => {
                let copied: Result<Copy, Error> = ctx.step("copy-final-snapshot", || {
                    rds::wait_snapshot_available(&p.primary_region, name, wait)?;
                    let copy = rds::copy_snapshot(arn, &p.dr_region, &format!("{name}-dr"), None)?;
                    Ok(Copy { copy_arn: Some(copy.arn) })
                });
                match copied {
                    Ok(c) => c,
                    Err(e) => {
                        let w = format!("the final snapshot {name} was not copied to {}: {}; it stays in {}", p.dr_region, e.message(), p.primary_region);
                        ctx.warn(&w);
                        warnings.push(w);
                        Copy { copy_arn: None }
                    }
                }
            }
            _ => Copy { copy_arn: None },
        };

        ctx.step("verify", || {
            // Read back from the cloud, the records and the instance at once.
            let mut reads = Reads::new();
            let records = reads.get_records_of(&p.hosted_zone, &[p.db_record.clone(), p.app_record.clone()]);
            let db_now = reads.describe_instance(&p.dr_region, &p.replica);
            let mut answers = reads.send();
            let records = answers.take(records)?;
            let db = route53::named(&records, &p.db_record);
            let points = db.iter().any(|r| r.values.iter().any(|v| v.trim_end_matches('.') == endpoint.trim_end_matches('.')));
            if !points {
                return Err(Error::new("verify-failed", format!("{} does not point at {endpoint}", p.db_record)));
            }
            let app = route53::named(&records, &p.app_record);
            route53::check_weights(&p.app_record, &app, &route53::weighted(&shifted.targets)).map_err(|why| Error::new("verify-failed", why))?;
            let db_now = answers.take(db_now)?;
            if db_now.status != "available" {
                return Err(Error::retryable("verify-failed", format!("{} is '{}'", p.replica, db_now.status)));
            }
            // Retryable: `wait-promoted` saw the promotion finished, so a
            // read that still shows a replica may be stale (RDS reads are
            // eventually consistent; found by the simulation). Failing at
            // once would put the traffic back on the region it left; the
            // next attempt reads again, and a replica that really still
            // replicates fails the run when the attempts are spent.
            if let Some(src) = &db_now.replica_source {
                return Err(Error::retryable(
                    "verify-failed",
                    format!("{} still replicates from {src}: it is not promoted, so the database record points at a read-only replica", p.replica),
                )
                .with_resource(db_now.arn));
            }
            Ok(())
        })?;

        // RTO as this runbook can see it: from its first step to DNS shifted.
        let rto = shifted_ms.saturating_sub(pre.started_ms) as f64 / 1000.0;
        Ok(Outcome {
            promoted: pre.replica_arn,
            endpoint,
            snapshot_copy: copy.copy_arn,
            rto_seconds: rto,
            rto_objective_seconds: p.rto_seconds,
            rto_met: rto <= f64::from(p.rto_seconds),
            estimated_rpo_seconds: pre.replica_lag_seconds,
            lag_reading_age_seconds: pre.lag_reading_age_seconds,
            rpo_objective_seconds: p.rpo_seconds,
            warnings,
        })
    }

    /// Would a failover succeed now? Every condition it depends on, checked
    /// with reads only.
    fn readiness(ctx: &Ctx, p: &Params) -> Option<Result<Readiness, Error>> {
        Some(ctx.step("readiness", || {
            let mut r = Readiness::new();
            let now = ctx.unix_seconds();
            // Every read at once: one round trip to both regions.
            let mut reads = Reads::new();
            let replica = reads.describe_instance(&p.dr_region, &p.replica);
            let replica_lag = reads.replica_lag(&p.dr_region, &p.replica);
            let copy = reads.latest_snapshot(&p.dr_region, &p.db_instance);
            let records = reads.get_records_of(&p.hosted_zone, &[p.db_record.clone(), p.app_record.clone()]);
            let primary = reads.describe_instance(&p.primary_region, &p.db_instance);
            let compute = ComputeReads::add(&mut reads, p);
            let mut answers = reads.send();
            let replica =
                r.check("the DR replica exists", &p.replica, "create the cross-region read replica, or pass --param replica=NAME", answers.take(replica));
            if let Some(replica) = replica {
                if replica.status == "available" {
                    r.ok("the DR replica is available", format!("{} is available", p.replica), replica.arn.clone());
                } else {
                    r.problem(
                        "the DR replica is available",
                        format!("{} is '{}'", p.replica, replica.status),
                        replica.arn.clone(),
                        "wait until it is available, or look at its RDS events",
                    );
                }
                match &replica.replica_source {
                    Some(src) if rds::name_of(src) == p.db_instance => {
                        r.ok("it replicates from the primary", format!("source {src}"), replica.arn.clone());
                    }
                    Some(src) => r.problem(
                        "it replicates from the primary",
                        format!("its source is {src}, not {}", p.db_instance),
                        replica.arn.clone(),
                        "point the runbook at the right replica (--param replica) or primary (--param db_instance)",
                    ),
                    None => r.problem(
                        "it replicates from the primary",
                        format!("{} is not a read replica (already promoted?)", p.replica),
                        replica.arn.clone(),
                        "if a failover already happened, run failback; otherwise create a new replica",
                    ),
                }
            }
            match answers.take(replica_lag).map(|r| lag(r, &p.replica, p.max_lag_age_seconds)) {
                Ok(Lag::Known(seconds, age)) if seconds <= f64::from(p.rpo_seconds) => {
                    r.ok(
                        "replica lag within the RPO budget",
                        format!("{seconds:.0} s behind (budget {} s), read {age} s ago", p.rpo_seconds),
                        p.replica.clone(),
                    );
                }
                Ok(Lag::Known(seconds, age)) => r.problem(
                    "replica lag within the RPO budget",
                    format!(
                        "{seconds:.0} s behind (read {age} s ago), over the budget of {} s: a failover now would lose up to {seconds:.0} s of writes",
                        p.rpo_seconds
                    ),
                    p.replica.clone(),
                    "find why replication is slow (write load, instance size, network); a failover now is refused unless accept_replica_lag=true",
                ),
                Ok(Lag::Unknown(why)) => r.problem(
                    "replica lag within the RPO budget",
                    why,
                    p.replica.clone(),
                    "check that the replica is replicating and that RDS metrics reach CloudWatch; a failover now is refused unless accept_unknown_lag=true",
                ),
                Err(e) => r.problem("replica lag within the RPO budget", e.message().to_string(), p.replica.clone(), "check CloudWatch access from the agent"),
            }
            match answers.take(copy) {
                Ok(Some(s)) if now - s.taken.seconds < i64::from(p.max_copy_age_seconds) => r.ok(
                    "a recent snapshot copy in the DR region",
                    format!("{} is {} s old (younger than {} s)", s.snapshot.identifier, now - s.taken.seconds, p.max_copy_age_seconds),
                    s.snapshot.arn,
                ),
                Ok(Some(s)) => r.problem(
                    "a recent snapshot copy in the DR region",
                    format!("the newest, {}, is {} s old (not younger than {} s)", s.snapshot.identifier, now - s.taken.seconds, p.max_copy_age_seconds),
                    s.snapshot.arn,
                    "check the job that copies snapshots to the DR region",
                ),
                Ok(None) => r.problem(
                    "a recent snapshot copy in the DR region",
                    format!("no snapshot of {} in {}", p.db_instance, p.dr_region),
                    p.db_instance.clone(),
                    "copy snapshots of the primary to the DR region (a nightly job)",
                ),
                Err(e) => {
                    r.problem("a recent snapshot copy in the DR region", e.message().to_string(), p.db_instance.clone(), "check RDS access in the DR region")
                }
            }
            let records = answers.take(records);
            match records.as_ref().map(|all| route53::named(all, &p.db_record)) {
                Ok(sets) if sets.iter().any(|s| s.record_type == "CNAME" && s.set_identifier.is_none()) => {
                    r.ok("the database record exists", format!("{} is a CNAME", p.db_record), p.db_record.clone());
                }
                Ok(_) => r.problem(
                    "the database record exists",
                    format!("no CNAME {} in {}", p.db_record, p.hosted_zone),
                    p.db_record.clone(),
                    "create the record, or pass --param db_record=NAME",
                ),
                Err(e) => {
                    r.problem("the database record exists", e.message().to_string(), p.hosted_zone.clone(), "check the hosted zone name (--param hosted_zone)")
                }
            }
            match records.as_ref().map(|all| route53::named(all, &p.app_record)) {
                Ok(sets) => {
                    let app = route53::weight_triples(&sets);
                    let missing: Vec<&str> =
                        [&p.primary_region, &p.dr_region].into_iter().filter(|reg| !app.iter().any(|(s, _, _)| s == *reg)).map(String::as_str).collect();
                    if missing.is_empty() {
                        r.ok(
                            "the app's weighted records exist",
                            format!("{} has sets for {} and {}", p.app_record, p.primary_region, p.dr_region),
                            p.app_record.clone(),
                        );
                    } else {
                        r.problem(
                            "the app's weighted records exist",
                            format!("{} has no weighted set for {}", p.app_record, missing.join(", ")),
                            p.app_record.clone(),
                            "create a weighted record per region, with the region as set identifier",
                        );
                    }
                }
                Err(e) => r.problem(
                    "the app's weighted records exist",
                    e.message().to_string(),
                    p.hosted_zone.clone(),
                    "check the hosted zone name (--param hosted_zone)",
                ),
            }
            match answers.take(primary) {
                Ok(i) => r.ok("the primary answers (a final snapshot is possible)", format!("{} is '{}'", p.db_instance, i.status), i.arn),
                Err(e) => r.ok(
                    "the primary answers (a final snapshot is possible)",
                    format!("it does not ({}): the failover would skip the final snapshot", e.code()),
                    p.db_instance.clone(),
                ),
            }
            compute.readiness(&mut r, &mut answers, p);
            Ok(r)
        }))
    }

    fn finalize(_ctx: &Ctx, action: Action) -> Result<(), Error> {
        match action.key() {
            "restore-app-weights" => action.payload::<route53::RestoreWeights>()?.apply(),
            "restore-dr-compute" => action.payload::<Scaled>()?.restore(),
            other => Err(Error::new("unknown-action", format!("regional-failover registered no action '{other}'"))),
        }
    }
}

/// The reads of the DR compute's readiness, sent with the others: the group
/// and the service in both regions.
struct ComputeReads {
    groups: Option<(String, Ticket<autoscaling::ScalingGroup>, Ticket<autoscaling::ScalingGroup>)>,
    services: Option<(String, String, Ticket<ecs::EcsService>, Ticket<ecs::EcsService>)>,
}

impl ComputeReads {
    fn add(reads: &mut Reads, p: &Params) -> Self {
        let compute = p.compute();
        ComputeReads {
            groups: compute.asg.map(|name| {
                let (dr, primary) = (reads.describe_group(&p.dr_region, &name), reads.describe_group(&p.primary_region, &name));
                (name, dr, primary)
            }),
            services: compute.ecs.map(|(cluster, name)| {
                let dr = reads.describe_service(&p.dr_region, &cluster, &name);
                let primary = reads.describe_service(&p.primary_region, &cluster, &name);
                (cluster, name, dr, primary)
            }),
        }
    }

    /// Readiness of the DR compute: the DR group and service exist, and the
    /// group's maximum can hold the primary's current capacity.
    fn readiness(self, r: &mut Readiness, answers: &mut Answers, p: &Params) {
        if let Some((name, dr, primary)) = self.groups {
            compute_group_readiness(r, &name, answers.take(dr), answers.take(primary), p);
        }
        if let Some((cluster, name, dr, primary)) = self.services {
            compute_service_readiness(r, &cluster, &name, answers.take(dr), answers.take(primary), p);
        }
    }
}

/// Readiness of the DR Auto Scaling group `name`, from its reads in both regions.
fn compute_group_readiness(
    r: &mut Readiness,
    name: &str,
    dr: Result<autoscaling::ScalingGroup, Error>,
    primary: Result<autoscaling::ScalingGroup, Error>,
    p: &Params,
) {
    let fix = format!("create the Auto Scaling group {name} in {}, or pass --param asg_name=NAME", p.dr_region);
    let dr = r.check("the DR Auto Scaling group exists", name, &fix, dr);
    match (dr, primary) {
        (Some(dr), Ok(primary)) => {
            let need = primary.desired_capacity.max(p.asg_min_capacity);
            if dr.max_size >= need {
                r.ok(
                    "the DR group can hold the primary's capacity",
                    format!("{name}: maximum {} in {}, the primary holds {} in {}", dr.max_size, p.dr_region, primary.desired_capacity, p.primary_region),
                    dr.arn,
                );
            } else {
                r.problem(
                    "the DR group can hold the primary's capacity",
                    format!("{name}: maximum {} in {}, below the {need} the primary holds", dr.max_size, p.dr_region),
                    dr.arn,
                    format!("raise the DR group's maximum size to at least {need} (a failover would raise it, and your infrastructure code may put it back)"),
                );
            }
        }
        (Some(dr), Err(e)) => r.problem(
            "the DR group can hold the primary's capacity",
            format!(
                "the primary's group cannot be read ({}); the failover would scale {name} in {} to asg_min_capacity={}",
                e.code(),
                p.dr_region,
                p.asg_min_capacity
            ),
            dr.arn,
            "check the group in the primary region, and set asg_min_capacity to what the DR region must hold",
        ),
        (None, _) => {}
    }
}

/// Readiness of the DR ECS service `cluster/name`, from its reads in both regions.
fn compute_service_readiness(
    r: &mut Readiness,
    cluster: &str,
    name: &str,
    dr: Result<ecs::EcsService, Error>,
    primary: Result<ecs::EcsService, Error>,
    p: &Params,
) {
    let fix = format!("create the ECS service {name} in cluster {cluster} in {}, or pass --param ecs_cluster/ecs_service", p.dr_region);
    if let Some(dr) = r.check("the DR ECS service exists", &format!("{cluster}/{name}"), &fix, dr) {
        match primary {
            Ok(primary) => r.ok(
                "the DR ECS service can be scaled to the primary's count",
                format!(
                    "{cluster}/{name}: {} task(s) in {}, the primary runs {} in {}",
                    dr.desired_count, p.dr_region, primary.desired_count, p.primary_region
                ),
                dr.arn,
            ),
            Err(e) => r.problem(
                "the DR ECS service can be scaled to the primary's count",
                format!("the primary's service cannot be read ({}); the failover would run ecs_min_count={} task(s)", e.code(), p.ecs_min_count),
                dr.arn,
                "check the service in the primary region, and set ecs_min_count to what the DR region must run",
            ),
        }
    }
}

export_runbook!(RegionalFailover);

#[cfg(test)]
mod tests;
