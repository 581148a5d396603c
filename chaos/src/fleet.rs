//! A fleet of databases, seeded into the emulators: the setting of
//! `fleet-failover` (its end-to-end tests and its benchmark).
//!
//! - N primaries `fleet-N-db` in us-east-1, each with its cross-region read
//!   replica `fleet-N-db-replica` in us-west-2 and a `ReplicaLag` reading of
//!   N seconds;
//! - Route 53 zone `fleet.example.internal` (suffixed) with a CNAME
//!   `db-N.fleet.example.internal` per database, pointing at its primary, and
//!   weighted `app.` records (us-east-1 at 100, us-west-2 at 0).
//!
//! Seeding is repeatable, as the demo topology's is.

use std::time::Duration;

use drover_aws::{CapabilityError, Clients, route53};
use serde::Serialize;
use serde_json::json;

use crate::topology::{delete_if_present, ensure_zone, publish_lag, seed_db_pair};

/// One database of the fleet.
#[derive(Debug, Clone, Serialize)]
pub struct FleetDb {
    /// Its name in the fleet (the branch name).
    pub name: String,
    /// Primary instance.
    pub primary: String,
    /// Its replica in the DR region.
    pub replica: String,
    /// Its CNAME.
    pub record: String,
}

/// Names and regions of a fleet.
#[derive(Debug, Clone, Serialize)]
pub struct Fleet {
    /// Region of the primaries.
    pub primary_region: String,
    /// The DR region.
    pub dr_region: String,
    /// Hosted zone.
    pub hosted_zone: String,
    /// Application weighted records.
    pub app_record: String,
    /// The databases.
    pub databases: Vec<FleetDb>,
}

impl Fleet {
    /// A fleet of `n` databases, every name suffixed by `suffix` (may be empty).
    pub fn new(n: usize, suffix: &str) -> Fleet {
        let s = if suffix.is_empty() { String::new() } else { format!("-{suffix}") };
        let zone = format!("fleet{s}.example.internal");
        let databases = (1..=n)
            .map(|i| FleetDb {
                name: format!("db{i}"),
                primary: format!("fleet{s}-{i}-db"),
                replica: format!("fleet{s}-{i}-db-replica"),
                record: format!("db-{i}.{zone}"),
            })
            .collect();
        Fleet { primary_region: "us-east-1".into(), dr_region: "us-west-2".into(), app_record: format!("app.{zone}"), hosted_zone: zone, databases }
    }

    /// The runbook parameters (`--param` pairs) that aim `fleet-failover` at it.
    pub fn params(&self) -> Vec<String> {
        vec![
            format!("primary_region={}", self.primary_region),
            format!("dr_region={}", self.dr_region),
            format!("hosted_zone={}", self.hosted_zone),
            format!("app_record={}", self.app_record),
            format!("databases={}", json!(self.databases)),
            format!("db_prefix={}", self.db_prefix()),
        ]
    }

    /// What every instance of the fleet starts with (`fleet-SUFFIX-`).
    pub fn db_prefix(&self) -> String {
        self.hosted_zone.trim_end_matches(".example.internal").to_string() + "-"
    }

    /// The app target of `region`.
    pub fn app_target(&self, region: &str) -> String {
        format!("app.{region}.{}", self.hosted_zone)
    }
}

/// Seeds (or re-seeds) `f`: the databases afresh, the records on the primaries.
pub async fn seed_fleet(c: &Clients, f: &Fleet) -> Result<(), CapabilityError> {
    ensure_zone(c, &f.hosted_zone).await?;
    let t60 = Duration::from_secs(60);
    for (i, db) in f.databases.iter().enumerate() {
        let (primary, _) = seed_db_pair(c, &f.primary_region, &f.dr_region, &db.primary, &db.replica).await?;
        route53::upsert_cname(c, &f.hosted_zone, &db.record, &primary.endpoint.unwrap_or_default(), 60, t60).await?;
        publish_lag(c, &f.dr_region, &db.replica, (i + 1) as f64).await?;
    }
    let weights = [(f.primary_region.as_str(), 100u8), (f.dr_region.as_str(), 0u8)]
        .iter()
        .map(|(region, w)| route53::WeightedTarget { set_identifier: region.to_string(), weight: *w, value: f.app_target(region) })
        .collect::<Vec<_>>();
    route53::set_weights(c, &f.hosted_zone, &f.app_record, &weights, 60, t60).await?;
    Ok(())
}

/// Deletes the fleet's instances (replicas first, then primaries; see
/// [`delete_if_present`]), so that a long sweep seeding a fleet per kill
/// stays within the emulator's snapshot quota.
pub async fn remove_fleet(c: &Clients, f: &Fleet) -> Result<(), CapabilityError> {
    for (region, id) in f.databases.iter().map(|db| (&f.dr_region, &db.replica)).chain(f.databases.iter().map(|db| (&f.primary_region, &db.primary))) {
        delete_if_present(c, region, id).await?;
    }
    Ok(())
}
