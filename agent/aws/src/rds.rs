//! Amazon RDS: describe, snapshot, cross-region copy, promote, wait.
//!
//! Emulator notes (moto's server, which serves RDS for the tests): instances
//! are `available` at once (AWS takes minutes; the waiters handle both), and
//! after `PromoteReadReplica` moto still reports the old replica source. So
//! a promotion is recorded with a `drover:promoted-by` tag, which is also an
//! audit trail on AWS, and a repeated attempt that finds the tag adopts it.
//! A second `CreateDBInstanceReadReplica` of an existing name makes moto
//! replace the instance (AWS refuses with `DBInstanceAlreadyExists`), so
//! replicas are looked up before they are created.

use std::time::Duration;

use aws_sdk_rds::types::Tag;

use crate::error::from_sdk;
use crate::wait::poll;
use crate::{CapabilityError, Clients, IDEMPOTENCY_TAG, RUN_TAG};

/// The tag a promotion leaves on the promoted instance.
pub const PROMOTED_TAG: &str = "drover:promoted-by";

/// An RDS DB instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbInstance {
    /// Identifier.
    pub identifier: String,
    /// ARN.
    pub arn: String,
    /// Region.
    pub region: String,
    /// Status (`available`, ...).
    pub status: String,
    /// Engine.
    pub engine: String,
    /// Engine version.
    pub engine_version: String,
    /// Endpoint address.
    pub endpoint: Option<String>,
    /// Endpoint port.
    pub port: Option<u16>,
    /// Replica source (ARN or identifier), for a read replica.
    pub replica_source: Option<String>,
    /// Read replicas.
    pub replicas: Vec<String>,
}

/// An RDS DB snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbSnapshot {
    /// Identifier.
    pub identifier: String,
    /// ARN.
    pub arn: String,
    /// Region.
    pub region: String,
    /// Status.
    pub status: String,
    /// Source instance.
    pub instance: String,
    /// Engine of the data, e.g. `postgres`.
    pub engine: String,
    /// Its engine version.
    pub engine_version: String,
}

/// A DB snapshot and when the data in it was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The snapshot.
    pub snapshot: DbSnapshot,
    /// When the data was taken (seconds and nanoseconds since the Unix
    /// epoch): for a copy, when the original snapshot was; the age of this is
    /// the RPO a restore from it gives.
    pub taken: (i64, u32),
}

fn instance(region: &str, i: &aws_sdk_rds::types::DbInstance) -> DbInstance {
    DbInstance {
        identifier: i.db_instance_identifier().unwrap_or_default().to_string(),
        arn: i.db_instance_arn().unwrap_or_default().to_string(),
        region: region.to_string(),
        status: i.db_instance_status().unwrap_or_default().to_string(),
        engine: i.engine().unwrap_or_default().to_string(),
        engine_version: i.engine_version().unwrap_or_default().to_string(),
        endpoint: i.endpoint().and_then(|e| e.address()).map(str::to_string),
        port: i.endpoint().and_then(|e| e.port()).and_then(|p| u16::try_from(p).ok()),
        replica_source: i.read_replica_source_db_instance_identifier().map(str::to_string),
        replicas: i.read_replica_db_instance_identifiers().to_vec(),
    }
}

fn snapshot(region: &str, s: &aws_sdk_rds::types::DbSnapshot) -> DbSnapshot {
    DbSnapshot {
        identifier: s.db_snapshot_identifier().unwrap_or_default().to_string(),
        arn: s.db_snapshot_arn().unwrap_or_default().to_string(),
        region: region.to_string(),
        status: s.status().unwrap_or_default().to_string(),
        instance: s.db_instance_identifier().unwrap_or_default().to_string(),
        engine: s.engine().unwrap_or_default().to_string(),
        engine_version: s.engine_version().unwrap_or_default().to_string(),
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// The region part of an RDS ARN (`arn:aws:rds:REGION:...`).
pub fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// The name part of an RDS ARN (`arn:aws:rds:...:KIND:NAME`), or `arn`
/// itself when it is a bare identifier.
pub fn arn_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// Describes instance `id` in `region`.
pub async fn describe_instance(c: &Clients, region: &str, id: &str) -> Result<DbInstance, CapabilityError> {
    let out = c
        .rds(region)
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .map_err(|e| from_sdk("rds", "DescribeDBInstances", region, id, e))?;
    out.db_instances()
        .first()
        .map(|i| instance(region, i))
        .ok_or_else(|| CapabilityError::new("rds", "DescribeDBInstances", region, id, "DBInstanceNotFound", format!("no DB instance {id} in {region}")))
}

/// Describes snapshot `id` in `region`.
pub async fn describe_snapshot(c: &Clients, region: &str, id: &str) -> Result<DbSnapshot, CapabilityError> {
    let out = c
        .rds(region)
        .describe_db_snapshots()
        .db_snapshot_identifier(id)
        .send()
        .await
        .map_err(|e| from_sdk("rds", "DescribeDBSnapshots", region, id, e))?;
    out.db_snapshots()
        .first()
        .map(|s| snapshot(region, s))
        .ok_or_else(|| CapabilityError::new("rds", "DescribeDBSnapshots", region, id, "DBSnapshotNotFound", format!("no DB snapshot {id} in {region}")))
}

/// Takes snapshot `name` of instance `inst`; adopts an existing snapshot of
/// that name taken from that instance.
pub async fn create_snapshot(c: &Clients, region: &str, inst: &str, name: &str, idem: &str) -> Result<DbSnapshot, CapabilityError> {
    let sent = c
        .rds(region)
        .create_db_snapshot()
        .db_instance_identifier(inst)
        .db_snapshot_identifier(name)
        .tags(tag(IDEMPOTENCY_TAG, idem))
        .send()
        .await;
    match sent {
        Ok(out) => out
            .db_snapshot()
            .map(|s| snapshot(region, s))
            .ok_or_else(|| CapabilityError::new("rds", "CreateDBSnapshot", region, name, "bad-response", "no snapshot in the answer").retryable()),
        Err(e) => {
            let err = from_sdk("rds", "CreateDBSnapshot", region, name, e);
            if !err.is("DBSnapshotAlreadyExists") {
                return Err(err);
            }
            let existing = describe_snapshot(c, region, name).await?;
            if existing.instance != inst {
                return Err(CapabilityError::new(
                    "rds",
                    "CreateDBSnapshot",
                    region,
                    name,
                    "DBSnapshotAlreadyExists",
                    format!("snapshot {name} exists but was taken from {}, not {inst}; choose another snapshot name", existing.instance),
                ));
            }
            tracing::info!(snapshot = name, region, "adopting the snapshot an earlier attempt made");
            Ok(existing)
        }
    }
}

/// Copies snapshot `source_arn` into `target_region` as `target`; adopts an
/// existing copy of that name. The call goes to the target region's client
/// with the source ARN (RDS needs no presigned URL between commercial regions).
pub async fn copy_snapshot(
    c: &Clients,
    source_arn: &str,
    target_region: &str,
    target: &str,
    kms_key: Option<&str>,
    idem: &str,
) -> Result<DbSnapshot, CapabilityError> {
    let mut req = c
        .rds(target_region)
        .copy_db_snapshot()
        .source_db_snapshot_identifier(source_arn)
        .target_db_snapshot_identifier(target)
        .tags(tag(IDEMPOTENCY_TAG, idem));
    if let Some(k) = kms_key {
        req = req.kms_key_id(k);
    }
    match req.send().await {
        Ok(out) => out
            .db_snapshot()
            .map(|s| snapshot(target_region, s))
            .ok_or_else(|| CapabilityError::new("rds", "CopyDBSnapshot", target_region, target, "bad-response", "no snapshot in the answer").retryable()),
        Err(e) => {
            let err = from_sdk("rds", "CopyDBSnapshot", target_region, target, e);
            if !err.is("DBSnapshotAlreadyExists") {
                return Err(err);
            }
            tracing::info!(snapshot = target, region = target_region, "adopting the copy an earlier attempt made");
            describe_snapshot(c, target_region, target).await
        }
    }
}

/// Creates read replica `id` in `region` of the instance `source_arn`
/// (cross-region: the call goes to the replica's region with the source
/// ARN); adopts an existing replica of that name of that source.
pub async fn create_read_replica(
    c: &Clients,
    source_arn: &str,
    region: &str,
    id: &str,
    instance_class: Option<&str>,
    idem: &str,
) -> Result<DbInstance, CapabilityError> {
    // Look first: moto answers a second create of the same name by replacing
    // the instance (AWS answers DBInstanceAlreadyExists), so the answer to the
    // create cannot be what tells a repeat from a stranger.
    match describe_instance(c, region, id).await {
        Ok(existing) => return adopt_replica(existing, source_arn, region, id),
        Err(e) if e.is("DBInstanceNotFound") => {}
        Err(e) => return Err(e),
    }
    let mut req = c
        .rds(region)
        .create_db_instance_read_replica()
        .db_instance_identifier(id)
        .source_db_instance_identifier(source_arn)
        .tags(tag(IDEMPOTENCY_TAG, idem));
    if let Some(class) = instance_class {
        req = req.db_instance_class(class);
    }
    match req.send().await {
        Ok(out) => out
            .db_instance()
            .map(|i| instance(region, i))
            .ok_or_else(|| CapabilityError::new("rds", "CreateDBInstanceReadReplica", region, id, "bad-response", "no instance in the answer").retryable()),
        Err(e) => {
            let err = from_sdk("rds", "CreateDBInstanceReadReplica", region, id, e);
            if !err.is("DBInstanceAlreadyExists") {
                return Err(err);
            }
            // Made meanwhile (a race with another attempt): same checks.
            adopt_replica(describe_instance(c, region, id).await?, source_arn, region, id)
        }
    }
}

/// Adopts `existing` as the replica an earlier attempt made, if it
/// replicates `source_arn`.
fn adopt_replica(existing: DbInstance, source_arn: &str, region: &str, id: &str) -> Result<DbInstance, CapabilityError> {
    let same_source = existing.replica_source.as_deref().is_some_and(|s| s == source_arn || arn_name(s) == arn_name(source_arn));
    if !same_source {
        return Err(CapabilityError::new(
            "rds",
            "CreateDBInstanceReadReplica",
            region,
            id,
            "DBInstanceAlreadyExists",
            format!("instance {id} exists but is not a replica of {source_arn}; choose another name or remove it"),
        ));
    }
    tracing::info!(instance = id, region, "adopting the replica an earlier attempt made");
    Ok(existing)
}

async fn promoted_by(c: &Clients, region: &str, inst: &DbInstance) -> Result<Option<String>, CapabilityError> {
    let tags = tags_of(c, region, &inst.arn, &inst.identifier).await?;
    Ok(tag_value(&tags, PROMOTED_TAG).map(str::to_string))
}

/// Promotes read replica `id` to a standalone instance. An instance that is
/// not a replica, or that an earlier attempt promoted, is left as it is.
pub async fn promote_read_replica(c: &Clients, region: &str, id: &str, idem: &str) -> Result<DbInstance, CapabilityError> {
    let before = describe_instance(c, region, id).await?;
    if before.replica_source.is_none() {
        return Ok(before);
    }
    if let Some(by) = promoted_by(c, region, &before).await? {
        tracing::info!(instance = id, region, promoted_by = %by, "already promoted by an earlier attempt");
        return Ok(before);
    }
    let sent = c.rds(region).promote_read_replica().db_instance_identifier(id).send().await;
    if let Err(e) = sent {
        let err = from_sdk("rds", "PromoteReadReplica", region, id, e);
        // A promotion already under way (an earlier attempt's request went
        // through, but its answer was lost): RDS refuses a second one.
        if !err.is("InvalidDBInstanceState") {
            return Err(err);
        }
        tracing::info!(instance = id, region, error = %err, "a promotion is already under way; adopting it");
    }
    // The tag lets a later attempt see the promotion where the endpoint
    // does not (moto keeps a promoted replica's source). The promotion is
    // done whether or not the tag lands: failing the step here would make
    // its retry promote again.
    let tagged = c.rds(region).add_tags_to_resource().resource_name(&before.arn).tags(tag(PROMOTED_TAG, idem)).send().await;
    if let Err(e) = tagged {
        tracing::warn!(instance = id, region, error = %from_sdk("rds", "AddTagsToResource", region, id, e), "promoted, but the promotion tag could not be written");
    }
    match describe_instance(c, region, id).await {
        Ok(now) => Ok(now),
        // Promoted: the describe is only to report the instance as it is now.
        Err(e) if e.retryable => {
            tracing::warn!(instance = id, region, error = %e, "promoted, but the instance could not be read back");
            Ok(before)
        }
        Err(e) => Err(e),
    }
}

/// Polls `describe` until what it returns has status `available`.
async fn wait_available<T, F, Fut>(
    operation: &'static str,
    region: &str,
    id: &str,
    timeout: Duration,
    describe: F,
    status: fn(&T) -> &str,
) -> Result<T, CapabilityError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, CapabilityError>>,
{
    let last = std::sync::Mutex::new(String::new());
    let found = poll(timeout, || {
        let (last, describe) = (&last, &describe);
        async move {
            let item = describe().await?;
            *last.lock().unwrap_or_else(|p| p.into_inner()) = status(&item).to_string();
            Ok::<_, CapabilityError>((status(&item) == "available").then_some(item))
        }
    })
    .await?;
    found.ok_or_else(|| {
        let last = last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        CapabilityError::new("rds", operation, region, id, "timeout", format!("{id} is still '{last}' after {} s", timeout.as_secs()))
            .retryable()
    })
}

/// Waits until instance `id` is `available`.
pub async fn wait_instance_available(c: &Clients, region: &str, id: &str, timeout: Duration) -> Result<DbInstance, CapabilityError> {
    wait_available("DescribeDBInstances", region, id, timeout, || describe_instance(c, region, id), |i: &DbInstance| &i.status).await
}

/// Waits until snapshot `id` is `available`.
pub async fn wait_snapshot_available(c: &Clients, region: &str, id: &str, timeout: Duration) -> Result<DbSnapshot, CapabilityError> {
    wait_available("DescribeDBSnapshots", region, id, timeout, || describe_snapshot(c, region, id), |s: &DbSnapshot| &s.status).await
}


/// The newest available snapshot of instance `inst` held in `region`, taken
/// there or copied there (automated snapshots included), by when its data
/// was taken.
pub async fn latest_snapshot(c: &Clients, region: &str, inst: &str) -> Result<Option<SnapshotInfo>, CapabilityError> {
    let mut marker: Option<String> = None;
    let mut best: Option<(aws_sdk_rds::primitives::DateTime, SnapshotInfo)> = None;
    loop {
        let page = c
            .rds(region)
            .describe_db_snapshots()
            .db_instance_identifier(inst)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| from_sdk("rds", "DescribeDBSnapshots", region, inst, e))?;
        for s in page.db_snapshots().iter().filter(|s| s.status() == Some("available")) {
            let Some(taken) = s.original_snapshot_create_time().or(s.snapshot_create_time()).copied() else { continue };
            if best.as_ref().is_none_or(|(t, _)| taken > *t) {
                best = Some((taken, SnapshotInfo { snapshot: snapshot(region, s), taken: (taken.secs(), taken.subsec_nanos()) }));
            }
        }
        match page.marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(best.map(|(_, info)| info))
}

async fn tags_of(c: &Clients, region: &str, arn: &str, id: &str) -> Result<Vec<Tag>, CapabilityError> {
    let out = c
        .rds(region)
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .map_err(|e| from_sdk("rds", "ListTagsForResource", region, id, e))?;
    Ok(out.tag_list().to_vec())
}

fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

/// Restores snapshot `snap` into a new instance `id` in `region`, tagged with
/// the run and the idempotency key; adopts the instance an earlier attempt
/// restored (same idempotency key), and refuses any other of that name.
pub async fn restore_from_snapshot(
    c: &Clients,
    region: &str,
    snap: &str,
    id: &str,
    instance_class: Option<&str>,
    run_id: &str,
    idem: &str,
) -> Result<DbInstance, CapabilityError> {
    const OP: &str = "RestoreDBInstanceFromDBSnapshot";
    match describe_instance(c, region, id).await {
        Ok(existing) => {
            let tags = tags_of(c, region, &existing.arn, id).await?;
            if tag_value(&tags, IDEMPOTENCY_TAG) == Some(idem) {
                tracing::info!(instance = id, region, "adopting the instance an earlier attempt restored");
                return Ok(existing);
            }
            return Err(CapabilityError::new(
                "rds",
                OP,
                region,
                id,
                "DBInstanceAlreadyExists",
                format!("instance {id} already exists in {region} and was not restored by this step; choose another name or remove it"),
            ));
        }
        Err(e) if e.is("DBInstanceNotFound") => {}
        Err(e) => return Err(e),
    }
    let mut req = c
        .rds(region)
        .restore_db_instance_from_db_snapshot()
        .db_instance_identifier(id)
        .db_snapshot_identifier(snap)
        .tags(tag(IDEMPOTENCY_TAG, idem))
        .tags(tag(RUN_TAG, run_id));
    if let Some(class) = instance_class {
        req = req.db_instance_class(class);
    }
    let out = req.send().await.map_err(|e| from_sdk("rds", OP, region, id, e))?;
    out.db_instance()
        .map(|i| instance(region, i))
        .ok_or_else(|| CapabilityError::new("rds", OP, region, id, "bad-response", "no instance in the answer").retryable())
}

/// Deletes instance `id` (no final snapshot), which must carry run `run_id`'s
/// tag: drover deletes only what the deleting run created. An instance that
/// is already gone (or going) counts as deleted.
pub async fn delete_instance(c: &Clients, region: &str, id: &str, run_id: &str) -> Result<(), CapabilityError> {
    const OP: &str = "DeleteDBInstance";
    let existing = match describe_instance(c, region, id).await {
        Ok(i) => i,
        Err(e) if e.is("DBInstanceNotFound") => return Ok(()),
        Err(e) => return Err(e),
    };
    if existing.status == "deleting" {
        return Ok(());
    }
    let tags = tags_of(c, region, &existing.arn, id).await?;
    if tag_value(&tags, RUN_TAG) != Some(run_id) {
        return Err(CapabilityError::new(
            "rds",
            OP,
            region,
            id,
            "not-created-by-this-run",
            format!("refusing to delete {id} in {region}: it does not carry the tag {RUN_TAG}={run_id}; drover deletes only instances the same run created"),
        ));
    }
    match c.rds(region).delete_db_instance().db_instance_identifier(id).skip_final_snapshot(true).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let err = from_sdk("rds", OP, region, id, e);
            if err.is("DBInstanceNotFound") { Ok(()) } else { Err(err) }
        }
    }
}

/// The instances in `region` tagged as created by run `run_id` (the ones
/// being deleted included: they are not gone yet).
pub async fn run_instances(c: &Clients, region: &str, run_id: &str) -> Result<Vec<String>, CapabilityError> {
    let mut marker: Option<String> = None;
    let mut found = Vec::new();
    loop {
        let page = c
            .rds(region)
            .describe_db_instances()
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| from_sdk("rds", "DescribeDBInstances", region, run_id, e))?;
        for i in page.db_instances() {
            if tag_value(i.tag_list(), RUN_TAG) == Some(run_id) {
                found.push(i.db_instance_identifier().unwrap_or_default().to_string());
            }
        }
        match page.marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(found)
}
