//! Amazon RDS: describe, snapshot, cross-region copy, promote, wait.
//!
//! Emulator notes (moto's server, which serves RDS for the tests): instances
//! are `available` at once (AWS takes minutes; the waiters handle both).
//! moto 5.1 keeps a promoted replica's source field, which AWS drops; the
//! emulators script starts moto with that corrected
//! (`chaos/emulators/moto_server.py`), so that a test sees what AWS shows.
//! A promotion is announced with a `drover:promoted-by` tag carrying the
//! step's idempotency key (also an audit trail on AWS): a repeated attempt
//! of the same step adopts only its own promotion under way.
//! A second `CreateDBInstanceReadReplica` of an existing name makes moto
//! replace the instance (AWS refuses with `DBInstanceAlreadyExists`), so
//! replicas are looked up before they are created.

use std::time::Duration;

use aws_sdk_rds::types::Tag;

use crate::error::from_sdk;
use crate::once::{create_or_adopt, sdk_retries};
use crate::wait::poll;
use crate::{CapabilityError, Clients, IDEMPOTENCY_TAG, RUN_TAG};

pub use drover_cloud::rds::{DbInstance, DbSnapshot, LagReading, PromotionState, SnapshotInfo, promotion_state};

/// The tag a promotion leaves on the promoted instance.
pub const PROMOTED_TAG: &str = "drover:promoted-by";

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
    describe_tagged(c, region, id).await.map(|(i, _)| i)
}

/// Describes snapshot `id` in `region`.
pub async fn describe_snapshot(c: &Clients, region: &str, id: &str) -> Result<DbSnapshot, CapabilityError> {
    let out =
        c.rds(region).describe_db_snapshots().db_snapshot_identifier(id).send().await.map_err(|e| from_sdk("rds", "DescribeDBSnapshots", region, id, e))?;
    out.db_snapshots()
        .first()
        .map(|s| snapshot(region, s))
        .ok_or_else(|| CapabilityError::new("rds", "DescribeDBSnapshots", region, id, "DBSnapshotNotFound", format!("no DB snapshot {id} in {region}")))
}

/// Snapshot statuses that will never become `available`.
const FAILED_SNAPSHOT: &[&str] = &["failed"];
/// Instance statuses that will not become `available` by waiting.
const FAILED_INSTANCE: &[&str] = &["failed", "incompatible-restore", "incompatible-network", "incompatible-parameters", "inaccessible-encryption-credentials"];

/// `existing`, found under the name a create asked for, if it can be
/// adopted: a failed snapshot cannot. Its identifier is taken, so drover
/// refuses (a snapshot under another name would not be the one the runbook
/// names in its next calls) and says what to do.
fn usable_snapshot(existing: DbSnapshot, operation: &'static str) -> Result<DbSnapshot, CapabilityError> {
    if !FAILED_SNAPSHOT.contains(&existing.status.as_str()) {
        return Ok(existing);
    }
    let DbSnapshot { identifier: id, region, status, .. } = &existing;
    Err(CapabilityError::new(
        "rds",
        operation,
        region,
        id,
        "snapshot-failed",
        format!(
            "snapshot {id} in {region} exists but is '{status}' and cannot be used; delete it (aws rds delete-db-snapshot --db-snapshot-identifier {id} --region {region}) and run the step again"
        ),
    ))
}

/// Takes snapshot `name` of instance `inst`; adopts an existing snapshot of
/// that name taken from that instance (a failed one is refused).
pub async fn create_snapshot(c: &Clients, region: &str, inst: &str, name: &str, idem: &str) -> Result<DbSnapshot, CapabilityError> {
    let sent = c.rds(region).create_db_snapshot().db_instance_identifier(inst).db_snapshot_identifier(name).tags(tag(IDEMPOTENCY_TAG, idem)).send().await;
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
            let existing = usable_snapshot(describe_snapshot(c, region, name).await?, "CreateDBSnapshot")?;
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
/// existing copy of that name (a failed one is refused). The call goes to the target region's client
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
            let existing = usable_snapshot(describe_snapshot(c, target_region, target).await?, "CopyDBSnapshot")?;
            tracing::info!(snapshot = target, region = target_region, "adopting the copy an earlier attempt made");
            Ok(existing)
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
    let mut req =
        c.rds(region).create_db_instance_read_replica().db_instance_identifier(id).source_db_instance_identifier(source_arn).tags(tag(IDEMPOTENCY_TAG, idem));
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

/// Instance `id` in `region` and its tags, from one `DescribeDBInstances`
/// (the answer carries the tag list: no second round trip).
async fn describe_tagged(c: &Clients, region: &str, id: &str) -> Result<(DbInstance, Vec<Tag>), CapabilityError> {
    let out =
        c.rds(region).describe_db_instances().db_instance_identifier(id).send().await.map_err(|e| from_sdk("rds", "DescribeDBInstances", region, id, e))?;
    let found = out
        .db_instances()
        .first()
        .map(|i| (instance(region, i), i.tag_list().to_vec()))
        .ok_or_else(|| CapabilityError::new("rds", "DescribeDBInstances", region, id, "DBInstanceNotFound", format!("no DB instance {id} in {region}")))?;
    c.instance_arns().put(region, id, &found.0.arn);
    Ok(found)
}

fn busy(region: &str, i: &DbInstance, why: &str) -> CapabilityError {
    CapabilityError::new(
        "rds",
        "PromoteReadReplica",
        region,
        &i.identifier,
        "replica-busy",
        format!(
            "replica {} in {region} is '{}' and still replicates from {}: RDS cannot promote it now{why}. Nothing was changed; \
             the step retries. If it stays busy, look at its RDS events and resume the run once it is available",
            i.identifier,
            i.status,
            i.replica_source.as_deref().unwrap_or("?"),
        ),
    )
    .retryable()
}

/// Promotes read replica `id` to a standalone instance, once per step:
/// - an instance that is already standalone is left as it is (whether it
///   was promoted or never a replica is for the runbook to judge: see
///   `regional-failover`'s preflight);
/// - a replica that is busy (backing-up, modifying, ...) is not promoted:
///   the error (`replica-busy`) is retryable, and nothing is sent;
/// - before the request, the replica is tagged `drover:promoted-by` with
///   the step's idempotency key, so a later attempt of the same step can
///   tell its own promotion under way (the tag, and a transition state)
///   from someone else's operation; a tag with any other value is ignored;
/// - a refusal (`InvalidDBInstanceState`) is re-described: adopted only if
///   the replica is then standalone or its own promotion is under way.
///
/// Whether the promotion finished (no replication source any more) is for
/// the caller to wait for: the instance returned may still be a replica in
/// transition.
///
/// `first_attempt`: the step's first attempt, which no earlier attempt of
/// the step can have promoted. When these clients have seen the replica's
/// ARN (the preflight described it), it sends the intent tag and the
/// promotion at once without describing the replica first (one round trip
/// instead of two; see [`promote_first`]).
pub async fn promote_read_replica(c: &Clients, region: &str, id: &str, idem: &str, first_attempt: bool) -> Result<DbInstance, CapabilityError> {
    if first_attempt && let Some(arn) = c.instance_arns().get(region, id) {
        match promote_first(c, region, id, idem, &arn).await {
            // Throttled, a 5xx, a timeout: no answer about the replica. Go on
            // at once as a later attempt would (describe it, adopt a promotion
            // of ours under way, else promote with the SDK's retries) instead
            // of waiting out the step's backoff. A busy replica is the step's
            // to wait for.
            Err(e) if e.retryable && !e.is("replica-busy") && !e.is("InvalidDBInstanceState") => {
                tracing::info!(instance = id, region, error = %e, "the first promotion got no answer about the replica; looking at it again");
            }
            other => return other,
        }
    }
    let (before, tags) = describe_tagged(c, region, id).await?;
    match promotion_state(&before, tag_value(&tags, PROMOTED_TAG), idem) {
        PromotionState::Standalone => return Ok(before),
        PromotionState::OursUnderWay => {
            tracing::info!(instance = id, region, status = %before.status, "the promotion this step asked for is under way; waiting for it, not asking again");
            return Ok(before);
        }
        PromotionState::Busy => return Err(busy(region, &before, "")),
        PromotionState::Promotable => {}
    }
    // The intent, sent with the promotion (one round trip, not two): if the
    // answer to the promotion is lost, the next attempt knows the request
    // may have gone through. Should the tag fail as well (both requests
    // lost), the next attempt sees a replica in transition without it:
    // "busy", retried until it is standalone, which is then adopted; never
    // taken for promoted before it is.
    let intent = async {
        c.rds(region)
            .add_tags_to_resource()
            .resource_name(&before.arn)
            .tags(tag(PROMOTED_TAG, idem))
            .send()
            .await
            .map_err(|e| from_sdk("rds", "AddTagsToResource", region, id, e))
    };
    let promotion = async { c.rds(region).promote_read_replica().db_instance_identifier(id).send().await };
    let (tagged, sent) = tokio::join!(intent, promotion);
    if let Err(e) = &tagged {
        tracing::warn!(instance = id, region, error = %e, "the promotion's intent tag was not written; a later attempt would take the promotion for someone else's until it ends");
    }
    match sent {
        Ok(out) => Ok(out.db_instance().map(|i| instance(region, i)).unwrap_or(before)),
        Err(e) => {
            let err = from_sdk("rds", "PromoteReadReplica", region, id, e);
            if !err.is("InvalidDBInstanceState") {
                return Err(err);
            }
            // Refused: either this step's promotion already runs (an
            // earlier request went through and its answer was lost), or the
            // replica is busy with something else. Look before adopting.
            let (now, tags) = describe_tagged(c, region, id).await?;
            match promotion_state(&now, tag_value(&tags, PROMOTED_TAG), idem) {
                PromotionState::Standalone | PromotionState::OursUnderWay => {
                    tracing::info!(instance = id, region, status = %now.status, "RDS refused a second promotion: the first is under way or done; adopting it");
                    Ok(now)
                }
                PromotionState::Promotable | PromotionState::Busy => Err(busy(region, &now, &format!(" ({})", err.message))),
            }
        }
    }
}

/// A step's first promotion request, the replica's ARN known: the intent
/// tag and the promotion at once, with nothing read first. Both go out
/// once (the SDK's retries off): an answer is the answer to the one request
/// this attempt sent, and no resent tag lands after it was taken off.
///
/// The tag says a promotion of this step may be under way, and the next
/// attempt trusts it; so whenever the promotion was certainly not applied
/// (refused, throttled, denied: any 4xx; or never sent), the tag is taken
/// off again before anything else (left on a replica busy with a backup, it
/// would make the next attempt take that backup for this step's promotion
/// and adopt it). Refused (`InvalidDBInstanceState`): a replica standalone
/// meanwhile (promoted by someone else) is taken as it is, as the
/// describe-first path takes it; any other is busy (retryable). A tag that
/// cannot be taken off fails the step for good, saying what to remove. A
/// failure that leaves the promotion open (a timeout, a dropped connection,
/// a 5xx) keeps the tag: the next attempt describes first and adopts the
/// promotion if it went through.
async fn promote_first(c: &Clients, region: &str, id: &str, idem: &str, arn: &str) -> Result<DbInstance, CapabilityError> {
    let once = || aws_sdk_rds::Config::builder().retry_config(aws_config::retry::RetryConfig::disabled());
    let intent = async {
        c.rds(region)
            .add_tags_to_resource()
            .resource_name(arn)
            .tags(tag(PROMOTED_TAG, idem))
            .customize()
            .config_override(once())
            .send()
            .await
            .map_err(|e| from_sdk("rds", "AddTagsToResource", region, id, e))
    };
    let promotion = async { c.rds(region).promote_read_replica().db_instance_identifier(id).customize().config_override(once()).send().await };
    let (tagged, sent) = tokio::join!(intent, promotion);
    if let Err(e) = &tagged {
        tracing::warn!(instance = id, region, error = %e, "the promotion's intent tag was not written; a later attempt would take the promotion for someone else's until it ends");
    }
    match sent {
        Ok(out) => match out.db_instance() {
            Some(i) => Ok(instance(region, i)),
            None => describe_instance(c, region, id).await,
        },
        Err(e) => {
            let not_applied = certainly_not_applied(&e);
            let err = from_sdk("rds", "PromoteReadReplica", region, id, e);
            if !not_applied {
                return Err(err);
            }
            let untag = c.rds(region).remove_tags_from_resource().resource_name(arn).tag_keys(PROMOTED_TAG).send().await;
            if let Err(e) = untag {
                let why = from_sdk("rds", "RemoveTagsFromResource", region, id, e);
                return Err(CapabilityError::new(
                    "rds",
                    "PromoteReadReplica",
                    region,
                    id,
                    "intent-tag-left",
                    format!(
                        "RDS refused the promotion of {id} in {region} ({}), and the intent tag {PROMOTED_TAG} written beside it could not be taken off ({}): \
                         a later attempt would take whatever the replica is doing for this step's promotion. Nothing was promoted. Remove the tag \
                         {PROMOTED_TAG} from {arn}, then retry the run",
                        err.message, why.message
                    ),
                ));
            }
            if !err.is("InvalidDBInstanceState") {
                return Err(err);
            }
            let now = describe_instance(c, region, id).await?;
            if now.replica_source.is_none() {
                tracing::info!(instance = id, region, status = %now.status, "RDS refused the promotion: the instance is standalone already (promoted by someone else); taking it as it is");
                return Ok(now);
            }
            Err(busy(region, &now, &format!(" ({})", err.message)))
        }
    }
}

/// Whether a request that failed with `e` was certainly not applied: it
/// was never built, or the service answered it with a client error (4xx:
/// refused, throttled, denied, invalid). A timeout, a connection lost while
/// the request was out, or a 5xx leaves it open.
fn certainly_not_applied<E>(e: &aws_sdk_rds::error::SdkError<E, aws_sdk_rds::config::http::HttpResponse>) -> bool {
    use aws_sdk_rds::error::SdkError;
    match e {
        SdkError::ConstructionFailure(_) => true,
        SdkError::ServiceError(s) => (400..500).contains(&s.raw().status().as_u16()),
        _ => false,
    }
}

/// Polls `describe` until what it returns has status `available`; a status
/// in `failed` ends the wait at once with an error: it will never be.
async fn wait_available<T, F, Fut>(
    operation: &'static str,
    region: &str,
    id: &str,
    timeout: Duration,
    describe: F,
    status: fn(&T) -> &str,
    failed: &[&str],
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
            if failed.contains(&status(&item)) {
                return Err(CapabilityError::new(
                    "rds",
                    operation,
                    region,
                    id,
                    "resource-failed",
                    format!("{id} in {region} is '{}' and will not become available by waiting; see its events (aws rds describe-events --source-identifier {id} --region {region}), remove it and run the step again", status(&item)),
                ));
            }
            Ok::<_, CapabilityError>((status(&item) == "available").then_some(item))
        }
    })
    .await?;
    found.ok_or_else(|| {
        let last = last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        CapabilityError::new("rds", operation, region, id, "timeout", format!("{id} is still '{last}' after {} s", timeout.as_secs())).retryable()
    })
}

/// Waits until instance `id` is `available`; one that failed (`failed`,
/// `incompatible-*`, `inaccessible-encryption-credentials`) is an error at once.
pub async fn wait_instance_available(c: &Clients, region: &str, id: &str, timeout: Duration) -> Result<DbInstance, CapabilityError> {
    wait_available("DescribeDBInstances", region, id, timeout, || describe_instance(c, region, id), |i: &DbInstance| &i.status, FAILED_INSTANCE).await
}

/// Waits until snapshot `id` is `available`; a `failed` one is an error at once.
pub async fn wait_snapshot_available(c: &Clients, region: &str, id: &str, timeout: Duration) -> Result<DbSnapshot, CapabilityError> {
    wait_available("DescribeDBSnapshots", region, id, timeout, || describe_snapshot(c, region, id), |s: &DbSnapshot| &s.status, FAILED_SNAPSHOT).await
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
    let out = c.rds(region).list_tags_for_resource().resource_name(arn).send().await.map_err(|e| from_sdk("rds", "ListTagsForResource", region, id, e))?;
    Ok(out.tag_list().to_vec())
}

fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

/// Restores snapshot `snap` into a new instance `id` in `region`, tagged with
/// the run and the idempotency key; adopts the instance an earlier attempt
/// restored (same idempotency key), and refuses any other of that name. The
/// request goes out once per attempt: a lost answer is looked up, not sent
/// again (a second restore would fail on the name, or make a duplicate).
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
    let lookup = || async move {
        let existing = match describe_instance(c, region, id).await {
            Ok(existing) => existing,
            Err(e) if e.is("DBInstanceNotFound") => return Ok(None),
            Err(e) => return Err(e),
        };
        let tags = tags_of(c, region, &existing.arn, id).await?;
        if tag_value(&tags, IDEMPOTENCY_TAG) == Some(idem) {
            tracing::info!(instance = id, region, "adopting the instance an earlier attempt restored");
            return Ok(Some(existing));
        }
        Err::<Option<DbInstance>, _>(CapabilityError::new(
            "rds",
            OP,
            region,
            id,
            "DBInstanceAlreadyExists",
            format!("instance {id} already exists in {region} and was not restored by this step; choose another name or remove it"),
        ))
    };
    // Not idempotent: sent once per attempt, a lost answer looked up.
    let send = || async move {
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
        let out = req
            .customize()
            .config_override(aws_sdk_rds::Config::builder().retry_config(sdk_retries("rds.restore-from-snapshot")))
            .send()
            .await
            .map_err(|e| from_sdk("rds", OP, region, id, e))?;
        out.db_instance()
            .map(|i| instance(region, i))
            .ok_or_else(|| CapabilityError::new("rds", OP, region, id, "bad-response", "no instance in the answer").retryable())
    };
    create_or_adopt(lookup, send).await
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

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(status: &str, source: Option<&str>) -> DbInstance {
        DbInstance {
            identifier: "orders-db-replica".into(),
            arn: "arn:aws:rds:us-west-2:1:db:orders-db-replica".into(),
            region: "us-west-2".into(),
            status: status.into(),
            engine: "postgres".into(),
            engine_version: "16".into(),
            endpoint: None,
            port: None,
            replica_source: source.map(str::to_string),
            replicas: vec![],
        }
    }

    #[test]
    fn a_busy_replica_is_never_taken_for_a_promotion() {
        let src = Some("arn:aws:rds:us-east-1:1:db:orders-db");
        for status in ["backing-up", "modifying", "rebooting", "storage-optimization"] {
            assert_eq!(promotion_state(&replica(status, src), None, "k1"), PromotionState::Busy, "{status}");
            // A tag from another run, or another step, proves nothing.
            assert_eq!(promotion_state(&replica(status, src), Some("k0"), "k1"), PromotionState::Busy, "{status}");
            // Only this step's own tag, on a replica in transition, is its promotion under way.
            assert_eq!(promotion_state(&replica(status, src), Some("k1"), "k1"), PromotionState::OursUnderWay, "{status}");
        }
        // Tagged by this step but still available and replicating: the
        // request did not take (yet); it is sent (again).
        assert_eq!(promotion_state(&replica("available", src), Some("k1"), "k1"), PromotionState::Promotable);
        assert_eq!(promotion_state(&replica("available", src), None, "k1"), PromotionState::Promotable);
        assert_eq!(promotion_state(&replica("available", None), None, "k1"), PromotionState::Standalone);
        assert_eq!(promotion_state(&replica("modifying", None), Some("k0"), "k1"), PromotionState::Standalone);
    }
}
