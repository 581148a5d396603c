//! `dr-drill`: proves that a failover would work without failing over.
//!
//! In the DR region, against copies only (never the production records, the
//! primary or its replica):
//! 1. restores the newest copy of the primary's snapshot held in the DR
//!    region into a throwaway instance (its cleanup registered before it is
//!    requested), waits for it and checks it;
//! 2. launches an app instance from the newest AMI copy of the app's lineage
//!    (cleanup registered the same way) and waits until it runs;
//! 3. points a drill record (never a production name) at the restored
//!    database and reads it back;
//! 4. measures the RTO this demonstrates (start to "database and app would be
//!    serving") and the RPO (age of the data restored), against objectives;
//! 5. tears everything down, then proves it: nothing tagged with this run's
//!    id is left in either region and the drill record is gone.
//!
//! The result is the verdict with its numbers; a missed objective fails the
//! run (so a scheduled drill alerts). A drill that fails anywhere still
//! cleans up: the cleanups run whatever the ending, and are idempotent.

use std::time::Duration;

use drover_sdk::aws::{ec2, rds, route53};
use drover_sdk::{Action, Capability, Ctx, Describe, Error, Param, Retry, Runbook, export_runbook};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Params {
    primary_region: String,
    dr_region: String,
    db_instance: String,
    lineage: String,
    instance_type: String,
    drill_zone: String,
    drill_record: String,
    rto_seconds: u32,
    rpo_seconds: u32,
    timeout_seconds: u32,
}

/// What the drill starts from: the copies it found in the DR region.
#[derive(Serialize, Deserialize)]
struct Copies {
    snapshot: String,
    snapshot_taken_unix: i64,
    image: String,
    image_name: String,
}

#[derive(Serialize, Deserialize)]
struct Database {
    identifier: String,
    endpoint: String,
    engine: String,
    engine_version: String,
    checks: Vec<String>,
}

/// What a cleanup needs (the same payload for all three).
#[derive(Serialize, Deserialize)]
struct Leftover {
    region: String,
    name: String,
    zone: String,
}

#[derive(Serialize, Deserialize)]
struct Outcome {
    verdict: String,
    rto_seconds: f64,
    rto_objective_seconds: u32,
    rpo_seconds: i64,
    rpo_objective_seconds: u32,
    restored_from: String,
    database: Database,
    app_instance: String,
    left_behind: usize,
}

struct DrDrill;

/// A name for a throwaway resource of this run: `{base}-drill-{run hash}`,
/// the hash (16 hex digits, FNV-1a 64) over the whole run id. Unique per run
/// (scheduled drills' ids differ in any part, not only at their end), the
/// same on every attempt and replay of the run, and within RDS's limit of 63
/// characters (the base is shortened if it has to be).
pub(crate) fn drill_name(base: &str, run_id: &str) -> String {
    const SUFFIX: usize = "-drill-".len() + 16;
    let hash = run_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    let base: String = base.chars().take(63 - SUFFIX).collect();
    format!("{}-drill-{hash:016x}", base.trim_end_matches('-'))
}

/// Terminates every instance this run launched in `region`.
fn terminate_launched(region: &str) -> Result<(), Error> {
    for id in ec2::run_instances(region)? {
        ec2::terminate_instance(region, &id)?;
    }
    Ok(())
}

impl Runbook for DrDrill {
    type Params = Params;
    type Output = Outcome;

    fn describe() -> Describe {
        Describe::new("dr-drill", env!("CARGO_PKG_VERSION"))
            .description(
                "A non-disruptive DR drill: restores the newest snapshot copy of the primary and launches the newest \
                 AMI copy in the DR region, checks them, points a drill record (never a production name) at the \
                 restored database, measures the RTO and RPO this demonstrates against the objectives, tears \
                 everything down and proves nothing tagged by the run is left. Defaults match the demo topology.",
            )
            .param(Param::string("primary_region", "Region of the primary (read only: its engine is compared)").default("us-east-1"))
            .param(Param::string("dr_region", "Region the drill restores into").default("us-west-2"))
            .param(Param::string("db_instance", "The primary DB instance whose snapshot copies are restored").default("orders-db"))
            .param(Param::string("lineage", "Lineage of the app's AMI copies").default("orders-app"))
            .param(Param::string("instance_type", "Instance type of the drill app instance").default("t3.micro"))
            .param(Param::string("drill_zone", "Hosted zone of the drill record").default("orders.example.internal"))
            .param(Param::string("drill_record", "The drill record (never a production name)").default("drill.orders.example.internal"))
            .param(Param::integer("rto_seconds", "Recovery time objective").default(900))
            .param(Param::integer("rpo_seconds", "Recovery point objective: the oldest data a restore may bring back").default(86400))
            .param(Param::integer("timeout_seconds", "Longest wait for any one resource").default(3600))
            .capability(
                Capability::new("rds")
                    .operations([
                        "describe-instance",
                        "latest-snapshot",
                        "restore-from-snapshot",
                        "wait-instance-available",
                        "delete-instance",
                        "run-instances",
                    ])
                    .regions(["{primary_region}", "{dr_region}"])
                    .resources(["db/{db_instance}", "db/{db_instance}-drill-*", "snapshot/{db_instance}*"]),
            )
            .capability(
                Capability::new("ec2")
                    .operations(["latest-image", "run-instance", "describe-instance", "terminate-instance", "run-instances"])
                    .regions(["{primary_region}", "{dr_region}"])
                    .resources(["lineage/{lineage}", "image/ami-*", "instance/{lineage}-drill-*", "instance/i-*"]),
            )
            .capability(
                Capability::new("route53")
                    .operations(["get-records", "upsert-cname", "delete-cname"])
                    .resources(["zone/{drill_zone}", "record/{drill_record}"]),
            )
    }

    fn run(ctx: &Ctx, p: Params) -> Result<Outcome, Error> {
        if !p.drill_record.starts_with("drill.") && !p.drill_record.contains(".drill.") {
            return Err(Error::new(
                "not-a-drill-record",
                format!("drill_record '{}' does not look like a drill name (drill.NAME); a drill never writes production records", p.drill_record),
            ));
        }
        let run_id = ctx.run_id();
        let started = ctx.now();
        let started_unix = ctx.unix_seconds();
        let wait = Duration::from_secs(u64::from(p.timeout_seconds));
        let db_name = drill_name(&p.db_instance, &run_id);
        let app_name = drill_name(&p.lineage, &run_id);

        let copies: Copies = ctx.step("find-copies", || {
            let snap = rds::latest_snapshot(&p.dr_region, &p.db_instance)?.ok_or_else(|| {
                Error::new(
                    "no-snapshot-copy",
                    format!(
                        "no available snapshot of {} in {}: nothing to restore; copy one there (regional backups) before drilling",
                        p.db_instance, p.dr_region
                    ),
                )
                .with_resource(p.db_instance.clone())
            })?;
            let image = ec2::latest_image(&p.dr_region, &p.lineage)?.ok_or_else(|| {
                Error::new(
                    "no-image-copy",
                    format!("no available AMI of lineage {} in {}: nothing to launch; run ami-replicate before drilling", p.lineage, p.dr_region),
                )
                .with_resource(p.lineage.clone())
            })?;
            Ok(Copies { snapshot: snap.snapshot.identifier, snapshot_taken_unix: snap.taken.seconds, image: image.id, image_name: image.name })
        })?;

        let leftover = |name: &str| Leftover { region: p.dr_region.clone(), name: name.to_string(), zone: p.drill_zone.clone() };
        ctx.defer("drop-database", &leftover(&db_name))?;
        ctx.step("restore-database", || Ok(rds::restore_from_snapshot(&p.dr_region, &copies.snapshot, &db_name, None)?.identifier)).map(|_: String| ())?;

        let database: Database = ctx.step("check-database", || {
            let db = rds::wait_instance_available(&p.dr_region, &db_name, wait)?;
            let endpoint = db.endpoint.clone().ok_or_else(|| Error::retryable("no-endpoint", format!("{db_name} has no endpoint yet")))?;
            let mut checks = vec![format!("status {}", db.status), format!("engine {} {}", db.engine, db.engine_version)];
            match rds::describe_instance(&p.primary_region, &p.db_instance) {
                Ok(primary) if primary.engine != db.engine => {
                    return Err(
                        Error::new("engine-mismatch", format!("the restore runs {} but the primary runs {}", db.engine, primary.engine)).with_resource(db.arn)
                    );
                }
                Ok(primary) => checks.push(format!("engine matches the primary ({} {})", primary.engine, primary.engine_version)),
                Err(e) => checks.push(format!("primary not compared (it did not answer: {})", e.code())),
            }
            checks.push(format!("SQL probe skipped: {endpoint} is not reachable from the agent's sandbox (no SQL capability)"));
            Ok(Database { identifier: db.identifier, endpoint, engine: db.engine, engine_version: db.engine_version, checks })
        })?;

        ctx.defer("terminate-app", &leftover(&app_name))?;
        let app: String = ctx.step("launch-app", || Ok(ec2::run_instance(&p.dr_region, &copies.image, &p.instance_type, &app_name)?.id))?;
        let retry = Retry::attempts(30).backoff(Duration::from_millis(200), Duration::from_secs(10));
        ctx.step_with("app-running", retry, || {
            let i = ec2::describe_instance(&p.dr_region, &app)?;
            match i.state.as_str() {
                "running" => Ok(()),
                "pending" => Err(Error::retryable("not-running-yet", format!("{app} is pending"))),
                other => Err(Error::new("app-not-running", format!("{app} is '{other}'")).with_resource(app.clone())),
            }
        })?;
        // The database and the app would be serving now: the RTO this drill shows.
        let serving = ctx.now();
        let rto = serving.duration_since(started).unwrap_or_default().as_secs_f64();
        let rpo = started_unix - copies.snapshot_taken_unix;

        ctx.defer("remove-drill-record", &leftover(&p.drill_record))?;
        ctx.step("drill-record", || {
            route53::upsert_cname(&p.drill_zone, &p.drill_record, &database.endpoint, 60, wait)?;
            let sets = route53::get_records(&p.drill_zone, &p.drill_record)?;
            if !sets.iter().any(|r| r.values.iter().any(|v| v.trim_end_matches('.') == database.endpoint)) {
                return Err(Error::retryable("record-not-visible", format!("{} does not point at {} yet", p.drill_record, database.endpoint)));
            }
            Ok(())
        })?;

        ctx.step("teardown", || {
            route53::delete_cname(&p.drill_zone, &p.drill_record, wait)?;
            terminate_launched(&p.dr_region)?;
            rds::delete_instance(&p.dr_region, &db_name)
        })?;
        let left: Vec<String> = ctx.step("prove-clean", || {
            let mut left = Vec::new();
            for region in [&p.dr_region, &p.primary_region] {
                left.extend(rds::run_instances(region)?.into_iter().map(|i| format!("rds {i} in {region}")));
                left.extend(ec2::run_instances(region)?.into_iter().map(|i| format!("ec2 {i} in {region}")));
            }
            if !route53::get_records(&p.drill_zone, &p.drill_record)?.is_empty() {
                left.push(format!("record {}", p.drill_record));
            }
            Ok(left)
        })?;
        if !left.is_empty() {
            return Err(Error::new("drill-left-resources", format!("the drill left {} resource(s) behind: {}", left.len(), left.join(", "))));
        }

        let rto_met = rto <= f64::from(p.rto_seconds);
        let rpo_met = rpo <= i64::from(p.rpo_seconds);
        if !(rto_met && rpo_met) {
            return Err(Error::new(
                "objective-missed",
                format!(
                    "the drill missed its objectives: RTO {rto:.1} s (objective {} s){}, RPO {rpo} s (objective {} s){}; restored from {}",
                    p.rto_seconds,
                    if rto_met { "" } else { " MISSED" },
                    p.rpo_seconds,
                    if rpo_met { "" } else { " MISSED" },
                    copies.snapshot
                ),
            ));
        }
        Ok(Outcome {
            verdict: "pass".into(),
            rto_seconds: (rto * 1000.0).round() / 1000.0,
            rto_objective_seconds: p.rto_seconds,
            rpo_seconds: rpo,
            rpo_objective_seconds: p.rpo_seconds,
            restored_from: copies.snapshot,
            database,
            app_instance: format!("{app} ({})", copies.image_name),
            left_behind: 0,
        })
    }

    /// The safety net: whatever the ending, nothing this run made stays.
    /// Each is idempotent (gone already is fine) and acts only on what
    /// carries this run's tag.
    fn finalize(_ctx: &Ctx, action: Action) -> Result<(), Error> {
        let l: Leftover = action.payload()?;
        match action.key() {
            "drop-database" => rds::delete_instance(&l.region, &l.name),
            "terminate-app" => terminate_launched(&l.region),
            "remove-drill-record" => route53::delete_cname(&l.zone, &l.name, Duration::from_secs(600)),
            other => Err(Error::new("unknown-cleanup", format!("dr-drill has no cleanup '{other}'"))),
        }
    }
}

export_runbook!(DrDrill);

#[cfg(test)]
mod tests;
