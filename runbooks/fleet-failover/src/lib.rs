//! `fleet-failover`: move a fleet of databases and their application from
//! the primary region to the DR region at once. Each database is a branch of
//! a parallel section (`Ctx::parallel`): ten promotions take the time of one.
//!
//! 1. Section `check` (every database at once, reads only, collect-all): the
//!    replica in the DR region exists, is available and replicates from its
//!    primary; its lag (CloudWatch `ReplicaLag`: the estimated RPO) is known,
//!    fresh and within `rpo_seconds` (the overrides `accept_replica_lag` and
//!    `accept_unknown_lag` work as in `regional-failover` and are named in
//!    the result). **One database failing its check refuses the whole
//!    failover, nothing changed**: a fleet half failed over because one
//!    replica lagged is worse than none.
//! 2. Beside them, in the same section (branch `dns`), `check-records`: every
//!    database's record exists, and the application's weighted records have
//!    a set for the DR region in every record type, all read in one request
//!    (`route53.get-records-of`: Route 53 answers 5 requests a second per
//!    account, which a record read per branch would spend).
//! 3. With `approval=true`, gate `failover` asks a person (every database and
//!    its lag in the question).
//! 4. Section `failover` (fail-fast): in each database's branch, `promote`
//!    (a busy replica is waited for, never taken for promoted), then
//!    `wait-promoted` (available **and** no longer replicating). A branch
//!    that fails stops the others at their next step; the run then fails
//!    naming which replicas were promoted and which not, with **no record
//!    moved** and the application's traffic where it was.
//! 5. `shift-traffic`: every database's record at its promoted instance and
//!    the application's weights to the DR region, in one Route 53 change
//!    batch (`route53.change-records`: applied whole or not at all, and
//!    propagated once). The weights are put back if verification fails.
//! 6. Section `verify` (collect-all): each promoted instance is available
//!    with no replication source (a stale read is read again, not taken for
//!    a failure), and branch `dns`'s `verify-records` reads every database
//!    record and the app's weights back. The result carries the measured
//!    RTO (start to traffic shifted) and each database's estimated RPO.
//!
//! Every step is idempotent and every branch has its own journal: a crash
//! anywhere, then `drover resume`, ends with one promotion per replica and
//! the records changed once.

use std::time::Duration;

use drover_sdk::aws::{rds, route53};
use drover_sdk::{Action, Branch, Capability, Ctx, Describe, Error, Join, Param, Readiness, Retry, Runbook, export_runbook};
use serde::{Deserialize, Serialize};

/// One database of the fleet.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Database {
    /// Its name in the fleet (the branch name): lowercase letters, digits, `-`.
    name: String,
    /// The primary instance, in the primary region.
    primary: String,
    /// Its cross-region read replica, in the DR region.
    replica: String,
    /// The CNAME its clients use.
    record: String,
}

#[derive(Deserialize)]
struct Params {
    primary_region: String,
    dr_region: String,
    databases: Vec<Database>,
    db_prefix: String,
    hosted_zone: String,
    app_record: String,
    rto_seconds: u32,
    rpo_seconds: u32,
    accept_replica_lag: bool,
    accept_unknown_lag: bool,
    max_lag_age_seconds: u32,
    #[serde(default)]
    approval: bool,
    #[serde(default)]
    approval_timeout_seconds: u32,
}

/// What a branch is asked to do.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Job {
    Check(Database),
    /// Every database's record exists and the app's weighted records have
    /// a DR set (branch `dns` of `check`).
    CheckRecords,
    Failover(Database),
    Verify(Database),
    /// Every database's record and the app's weights read back (branch
    /// `dns` of `verify`): (record, endpoint) pairs and the app's targets.
    VerifyRecords {
        records: Vec<(String, String)>,
        targets: Vec<(String, u8, String)>,
    },
}

/// The branch that checks (and verifies) the records, beside the
/// databases' branches; no database may take its name.
const DNS: &str = "dns";

/// A database's check, as its branch found it.
#[derive(Serialize, Deserialize)]
struct Checked {
    replica_arn: String,
    lag_seconds: Option<f64>,
    lag_reading_age_seconds: Option<u64>,
    warning: Option<String>,
}

/// A database failed over.
#[derive(Serialize, Deserialize)]
struct Moved {
    arn: String,
    endpoint: String,
}

#[derive(Serialize, Deserialize)]
struct Weights {
    targets: Vec<(String, u8, String)>,
}

#[derive(Serialize)]
struct DatabaseOutcome {
    name: String,
    promoted: String,
    endpoint: String,
    estimated_rpo_seconds: Option<f64>,
    lag_reading_age_seconds: Option<u64>,
}

#[derive(Serialize)]
struct Outcome {
    databases: Vec<DatabaseOutcome>,
    rto_seconds: f64,
    rto_objective_seconds: u32,
    rto_met: bool,
    rpo_objective_seconds: u32,
    warnings: Vec<String>,
}

struct FleetFailover;

/// The branches of a section: one per database, `job` making each one's input.
fn per_database(p: &Params, job: impl Fn(&Database) -> Job) -> Vec<(String, Job)> {
    p.databases.iter().map(|db| (db.name.clone(), job(db))).collect()
}

/// `check`: one database's preflight (reads only).
fn check(p: &Params, db: &Database) -> Result<Checked, Error> {
    let replica = rds::describe_instance(&p.dr_region, &db.replica)
        .map_err(|e| e.context(format!("the DR replica {} of {} in {} is not usable", db.replica, db.primary, p.dr_region)))?;
    if replica.status != "available" {
        return Err(Error::new("replica-not-available", format!("replica {} is '{}', not available", db.replica, replica.status)).with_resource(replica.arn));
    }
    match &replica.replica_source {
        None => {
            return Err(Error::new(
                "not-a-replica",
                format!(
                    "{} in {} is not a read replica (it has no replication source): promoting it would change nothing, and its record would move to \
                     an instance that may not hold {}'s data. Fix the fleet's list (--param databases)",
                    db.replica, p.dr_region, db.primary
                ),
            )
            .with_resource(replica.arn));
        }
        Some(src) if rds::name_of(src) != db.primary => {
            return Err(Error::new(
                "wrong-replica-source",
                format!("{} replicates from {src}, not from the primary {}: promoting it would serve another database's data", db.replica, db.primary),
            )
            .with_resource(replica.arn));
        }
        Some(_) => {}
    }
    let gate = rds::LagGate { rpo_seconds: p.rpo_seconds, accept_replica_lag: p.accept_replica_lag, accept_unknown_lag: p.accept_unknown_lag };
    let lag = rds::judge_lag(rds::replica_lag(&p.dr_region, &db.replica)?, &db.replica, p.max_lag_age_seconds);
    let admitted = gate.admit(lag, &db.replica, &replica.arn)?;
    let (lag_seconds, lag_reading_age_seconds) = (admitted.seconds, admitted.age_seconds);
    let warning = admitted.warning.map(|w| format!("{}: {w}", db.name));
    // The primary's region is usually why this runs: a primary that does not
    // answer is worth a warning, never a refusal.
    let warning = match rds::describe_instance(&p.primary_region, &db.primary) {
        Err(e) if e.is_retryable() || e.code() == "DBInstanceNotFound" => {
            let down = format!("{}: the primary {} does not answer ({})", db.name, db.primary, e.code());
            Some(warning.map_or(down.clone(), |w| format!("{w}; {down}")))
        }
        Err(e) => return Err(e),
        Ok(_) => warning,
    };
    Ok(Checked { replica_arn: replica.arn, lag_seconds, lag_reading_age_seconds, warning })
}

/// Every record the run reads or changes: the app's, then each database's.
fn record_names(p: &Params) -> Vec<String> {
    std::iter::once(p.app_record.clone()).chain(p.databases.iter().map(|db| db.record.clone())).collect()
}

use route53::named;

/// `check-records`: every database's record exists; the app's weighted
/// records have a set for the DR region in every record type. Returns the
/// app's weights now (what the undo puts back).
fn check_records(p: &Params) -> Result<Vec<(String, u8, String)>, Error> {
    let all = route53::get_records_of(&p.hosted_zone, &record_names(p))?;
    let missing: Vec<String> = p.databases.iter().filter(|db| named(&all, &db.record).is_empty()).map(|db| format!("{} ({})", db.record, db.name)).collect();
    if !missing.is_empty() {
        return Err(Error::new(
            "record-not-found",
            format!("no record {} in zone {}; nothing was changed. Create each database's CNAME first", missing.join(", "), p.hosted_zone),
        ));
    }
    let sets = named(&all, &p.app_record);
    route53::movable_weights(&p.app_record, &sets, &p.dr_region, "nothing was changed")
}

/// `failover`: promote one database's replica and wait until it is promoted.
fn fail_over(ctx: &Ctx, p: &Params, db: &Database) -> Result<Moved, Error> {
    let wait = Duration::from_secs(u64::from(p.rto_seconds));
    let arn: String = ctx.step_with("promote", Retry::attempts(8).backoff(Duration::from_secs(2), Duration::from_secs(60)), || {
        Ok(rds::promote_read_replica(&p.dr_region, &db.replica)?.arn)
    })?;
    let endpoint: String = ctx.step_with("wait-promoted", Retry::attempts(20).backoff(Duration::from_secs(5), Duration::from_secs(30)), || {
        let i = rds::wait_promoted(&p.dr_region, &db.replica, wait)?;
        i.endpoint.ok_or_else(|| Error::retryable("no-endpoint", format!("{} has no endpoint yet", db.replica)))
    })?;
    Ok(Moved { arn, endpoint })
}

/// `verify`: read one promoted database back from the cloud.
fn verify(ctx: &Ctx, p: &Params, db: &Database) -> Result<(), Error> {
    ctx.step_with("verify", Retry::attempts(5).backoff(Duration::from_secs(2), Duration::from_secs(10)), || {
        let now = rds::describe_instance(&p.dr_region, &db.replica)?;
        if now.status != "available" {
            return Err(Error::retryable("verify-failed", format!("{} is '{}'", db.replica, now.status)).with_resource(now.arn));
        }
        // Retryable: `wait-promoted` saw the promotion finished, so a read
        // still showing a source may be stale (RDS reads are eventually
        // consistent); a replica that really still replicates fails the
        // run once the attempts are spent.
        if let Some(src) = &now.replica_source {
            return Err(Error::retryable(
                "verify-failed",
                format!("{} still replicates from {src}: it is not promoted, so {} points at a read-only replica", db.replica, db.record),
            )
            .with_resource(now.arn));
        }
        Ok(())
    })
}

/// `verify-records`: every database's record points at its promoted
/// instance and the app's weights are as shifted, read in one request.
fn verify_records(p: &Params, records: &[(String, String)], targets: &[(String, u8, String)]) -> Result<(), Error> {
    let all = route53::get_records_of(&p.hosted_zone, &record_names(p))?;
    let wrong: Vec<String> = records
        .iter()
        .filter(|(record, endpoint)| !named(&all, record).iter().any(|r| r.values.iter().any(|v| v.trim_end_matches('.') == endpoint.trim_end_matches('.'))))
        .map(|(record, endpoint)| format!("{record} does not point at {endpoint}"))
        .collect();
    if !wrong.is_empty() {
        return Err(Error::new("verify-failed", wrong.join("; ")));
    }
    route53::check_weights(&p.app_record, &named(&all, &p.app_record), &route53::weighted(targets)).map_err(|why| Error::new("verify-failed", why))
}

/// What each database's branch of `failover` left, for an operator reading
/// a failed run: which moved and which did not.
fn partial(p: &Params, outcomes: &drover_sdk::Outcomes) -> String {
    let mut moved = Vec::new();
    let mut not = Vec::new();
    for (db, o) in p.databases.iter().zip(&outcomes.0) {
        match &o.result {
            Ok(_) => moved.push(db.name.clone()),
            Err(e) => not.push(format!("{} ({}{})", db.name, if o.stopped { "stopped: " } else { "" }, e.message())),
        }
    }
    format!(
        "promoted: [{}]; not promoted: [{}]. No database record was repointed and the application's traffic was not moved \
         (a promoted replica takes writes only once its record points at it). Look at each database's branch (`drover show`), \
         fix the cause and run again: replicas already promoted are adopted, not promoted twice",
        moved.join(", "),
        not.join("; ")
    )
}

impl Runbook for FleetFailover {
    type Params = Params;
    type Output = Outcome;

    fn describe() -> Describe {
        Describe::new("fleet-failover", env!("CARGO_PKG_VERSION"))
            .description(
                "Fails a fleet of databases and their application over to the DR region at once: every replica checked \
                 (lag gate, all or nothing), every replica promoted and its record repointed in parallel, the app's \
                 weighted records shifted, all verified.",
            )
            .param(Param::string("primary_region", "Region failing over from").default("us-east-1"))
            .param(Param::string("dr_region", "Region failing over to").default("us-west-2"))
            .param(Param::json(
                "databases",
                "The fleet: a list of {\"name\", \"primary\", \"replica\", \"record\"} (branch name, primary instance, its replica in the DR region, its CNAME)",
            )
            .default(serde_json::json!([{"name": "orders", "primary": "orders-db", "replica": "orders-db-replica", "record": "db.orders.example.internal"}])))
            .param(Param::string(
                "db_prefix",
                "What every primary's and replica's identifier starts with: the capability declared (db/PREFIX*), checked before anything runs",
            )
            .default("orders-db"))
            .param(Param::string("hosted_zone", "Route 53 hosted zone of every record").default("orders.example.internal"))
            .param(Param::string("app_record", "Weighted records of the application").default("app.orders.example.internal"))
            .param(Param::integer("rto_seconds", "Recovery time objective, in seconds").default(900))
            .param(Param::integer("rpo_seconds", "Most replica lag (seconds of writes lost) a promotion may accept").default(300))
            .param(Param::boolean("accept_replica_lag", "Promote even when a lag is over rpo_seconds (recorded)").default(false))
            .param(Param::boolean("accept_unknown_lag", "Promote even when a lag is unknown: no reading, a stale one, or -1 (recorded)").default(false))
            .param(Param::integer("max_lag_age_seconds", "Oldest ReplicaLag reading the lag gate trusts").default(180))
            .param(Param::boolean("approval", "Wait at gate `failover` for an operator's approval before changing anything").default(false))
            .param(Param::integer("approval_timeout_seconds", "With approval: fail the run (nothing changed) when nobody decides within this many seconds; 0 waits forever").default(1800))
            .capability(
                Capability::new("rds")
                    .operations(["describe-instance", "promote-read-replica", "wait-instance-available", "replica-lag"])
                    .regions(["{primary_region}", "{dr_region}"])
                    .resources(["db/{db_prefix}*"]),
            )
            .capability(
                Capability::new("route53")
                    .operations(["get-records-of", "change-records", "set-weights"])
                    .resources(["zone/{hosted_zone}", "record/*.{hosted_zone}"]),
            )
    }

    fn run(ctx: &Ctx, p: Params) -> Result<Outcome, Error> {
        let wait = Duration::from_secs(u64::from(p.rto_seconds));
        let started_ms = ctx.unix_ms();
        if p.databases.is_empty() {
            return Err(Error::new("no-databases", "the fleet is empty: give --param databases a list of {name, primary, replica, record}"));
        }
        // What the runbook declared is what it touches: every instance under
        // db_prefix, every record in the zone.
        for db in &p.databases {
            if db.name == DNS {
                return Err(Error::new(
                    "bad-databases",
                    format!("a database may not be named '{DNS}': the records' own checks take that name. Nothing was changed"),
                ));
            }
            for id in [&db.primary, &db.replica] {
                if p.db_prefix.is_empty() || !id.starts_with(&p.db_prefix) {
                    return Err(Error::new(
                        "outside-declaration",
                        format!(
                            "{} of database '{}' does not start with db_prefix '{}': the runbook declares (and the operator grants) db/{}* only. \
                             Nothing was changed; pass --param db_prefix=PREFIX covering every instance",
                            id, db.name, p.db_prefix, p.db_prefix
                        ),
                    ));
                }
            }
            if !db.record.ends_with(&format!(".{}", p.hosted_zone)) {
                return Err(Error::new(
                    "outside-declaration",
                    format!("record {} of database '{}' is not in zone {}. Nothing was changed", db.record, db.name, p.hosted_zone),
                ));
            }
        }
        // 1. Every database, and the app's records, checked at once; one
        // refusal refuses them all.
        let mut jobs = per_database(&p, |db| Job::Check(db.clone()));
        jobs.push((DNS.to_string(), Job::CheckRecords));
        let checks = ctx.parallel("check", jobs, Join::CollectAll)?;
        if !checks.all_succeeded() {
            let refused: Vec<String> =
                checks.0.iter().filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {} ({})", o.name, e.message(), e.code()))).collect();
            return Err(Error::new(
                "fleet-check-failed",
                format!(
                    "{} of {} checks refused the failover (each database, and the app); nothing was changed: {}",
                    refused.len(),
                    checks.0.len(),
                    refused.join("; ")
                ),
            ));
        }
        let (dbs, app) = checks.0.split_at(p.databases.len());
        let checked: Vec<Checked> = dbs.iter().map(|o| o.output()).collect::<Result<_, _>>()?;
        let app: Vec<(String, u8, String)> = match app.first() {
            Some(o) => o.output()?,
            None => return Err(Error::new("internal", "the app's check did not report")),
        };
        let mut warnings: Vec<String> = checked.iter().filter_map(|c| c.warning.clone()).collect();
        for w in &warnings {
            ctx.warn(w);
        }
        if p.approval {
            let lags: Vec<String> = p
                .databases
                .iter()
                .zip(&checked)
                .map(|(db, c)| match c.lag_seconds {
                    Some(l) => format!("{} {l:.0} s", db.name),
                    None => format!("{} unknown", db.name),
                })
                .collect();
            let question = format!(
                "Fail {} databases over to {} and move {} there? Replica lag: {} (RPO budget {} s). Nothing has been changed yet.",
                p.databases.len(),
                p.dr_region,
                p.app_record,
                lags.join(", "),
                p.rpo_seconds
            );
            let ok = ctx.approval_within("failover", &question, Duration::from_secs(u64::from(p.approval_timeout_seconds)))?;
            ctx.info(&format!("failover approved by {}", ok.by));
        }

        // 2. Every database failed over at once; one failure stops the rest.
        let moved = ctx.parallel("failover", per_database(&p, |db| Job::Failover(db.clone())), Join::FailFast)?;
        if !moved.all_succeeded() {
            let first = moved.check().err().map(|e| e.code().to_string()).unwrap_or_else(|| "branch-failed".into());
            return Err(Error::new(first, partial(&p, &moved)));
        }
        let moved: Vec<Moved> = moved.0.iter().map(|o| o.output()).collect::<Result<_, _>>()?;

        // 3. Every database's record at its promoted instance and the
        // application's traffic to the DR region, in one atomic batch.
        let records: Vec<(String, String)> = p.databases.iter().zip(&moved).map(|(db, m)| (db.record.clone(), m.endpoint.clone())).collect();
        let shifted: Weights = ctx.step("shift-traffic", || {
            let to: Vec<(String, u8, String)> = app.iter().map(|(set, _, v)| (set.clone(), if *set == p.dr_region { 100 } else { 0 }, v.clone())).collect();
            let mut batch: Vec<route53::RecordChange> = records.iter().map(|(name, target)| route53::point_cname(name, target)).collect();
            batch.push(route53::set_weights_of(&p.app_record, route53::weighted(&to)));
            route53::change_records(&p.hosted_zone, &batch, 60, wait)?;
            Ok(Weights { targets: to })
        })?;
        ctx.compensate(
            "restore-app-weights",
            &route53::RestoreWeights { zone: p.hosted_zone.clone(), record: p.app_record.clone(), targets: app.clone(), timeout_seconds: wait.as_secs() },
        )?;
        let shifted_ms = ctx.unix_ms();

        // 4. Everything read back from the cloud.
        let mut jobs: Vec<(String, Job)> = per_database(&p, |db| Job::Verify(db.clone()));
        jobs.push((DNS.to_string(), Job::VerifyRecords { records, targets: shifted.targets.clone() }));
        ctx.parallel("verify", jobs, Join::CollectAll)?.check()?;

        let rto = shifted_ms.saturating_sub(started_ms) as f64 / 1000.0;
        warnings.sort();
        Ok(Outcome {
            databases: p
                .databases
                .iter()
                .zip(moved)
                .zip(checked)
                .map(|((db, m), c)| DatabaseOutcome {
                    name: db.name.clone(),
                    promoted: m.arn,
                    endpoint: m.endpoint,
                    estimated_rpo_seconds: c.lag_seconds,
                    lag_reading_age_seconds: c.lag_reading_age_seconds,
                })
                .collect(),
            rto_seconds: rto,
            rto_objective_seconds: p.rto_seconds,
            rto_met: rto <= f64::from(p.rto_seconds),
            rpo_objective_seconds: p.rpo_seconds,
            warnings,
        })
    }

    /// Would a failover of the fleet succeed now? Every database's check at
    /// once (reads only), each a finding, and the app's records.
    fn readiness(ctx: &Ctx, p: &Params) -> Option<Result<Readiness, Error>> {
        let mut jobs = per_database(p, |db| Job::Check(db.clone()));
        jobs.push((DNS.to_string(), Job::CheckRecords));
        let checks = match ctx.parallel("check", jobs, Join::CollectAll) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let mut r = Readiness::new();
        for (db, o) in p.databases.iter().zip(&checks.0) {
            let what = format!("database '{}' can fail over", db.name);
            match o.output::<Checked>() {
                Ok(c) => {
                    let lag = c.lag_seconds.map(|l| format!("lag {l:.0} s")).unwrap_or_else(|| "lag unknown (accepted)".into());
                    r.ok(&what, format!("{} is an available replica of {}, {lag}", db.replica, db.primary), c.replica_arn);
                }
                Err(e) => r.problem(
                    &what,
                    format!("{} ({})", e.message(), e.code()),
                    db.replica.clone(),
                    "fix it, or take the database out of the fleet (--param databases): one database that cannot fail over refuses them all",
                ),
            }
        }
        let what = "every database's record exists, and the app's weighted records have a DR set";
        match checks.0.last().map(|o| o.output::<Vec<(String, u8, String)>>()) {
            Some(Ok(_)) => r.ok(what, format!("{} records found; {} has a set for {}", p.databases.len(), p.app_record, p.dr_region), p.app_record.clone()),
            Some(Err(e)) => r.problem(
                what,
                e.message().to_string(),
                p.app_record.clone(),
                "create each database's CNAME, and a weighted record of the app per region with the region as set identifier",
            ),
            None => r.problem(what, "not checked".to_string(), p.app_record.clone(), "report this as a bug of fleet-failover"),
        }
        Some(Ok(r))
    }

    fn branch(ctx: &Ctx, p: &Params, branch: Branch) -> Result<serde_json::Value, Error> {
        let out = match branch.input::<Job>()? {
            Job::Check(db) => serde_json::to_value(ctx.step("check", || check(p, &db))?),
            Job::Failover(db) => serde_json::to_value(fail_over(ctx, p, &db)?),
            Job::Verify(db) => serde_json::to_value(verify(ctx, p, &db)?),
            Job::CheckRecords => serde_json::to_value(ctx.step("check-records", || check_records(p))?),
            Job::VerifyRecords { records, targets } => {
                serde_json::to_value(ctx.step_with("verify-records", Retry::attempts(5).backoff(Duration::from_secs(2), Duration::from_secs(10)), || {
                    verify_records(p, &records, &targets)
                })?)
            }
        };
        out.map_err(|e| Error::new("output-not-serializable", format!("branch '{}': {e}", branch.name)))
    }

    fn finalize(_ctx: &Ctx, action: Action) -> Result<(), Error> {
        match action.key() {
            "restore-app-weights" => action.payload::<route53::RestoreWeights>()?.apply(),
            other => Err(Error::new("unknown-action", format!("fleet-failover registered no action '{other}'"))),
        }
    }
}

export_runbook!(FleetFailover);

#[cfg(test)]
mod tests;
