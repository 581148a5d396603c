//! Amazon EC2: EBS snapshots and their cross-region copies, AMIs and their
//! copies, instances launched from an AMI, retention pruning.
//!
//! Idempotency rests on tags, not client tokens: LocalStack ignores
//! `ClientToken` (two RunInstances with one token made two instances) and
//! `CreateSnapshot`/`CopySnapshot` take none. Everything drover creates is
//! tagged `drover:name` (the runbook's name for it), `drover:idempotency-key`
//! and, for retention, `drover:lineage`; every create looks its name up
//! first and adopts what it finds. Client tokens are passed too, for AWS.
//! Lookups always filter by tag: `DescribeSnapshots` on LocalStack returns
//! some 1,160 public snapshots otherwise.

use std::time::Duration;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

use crate::error::from_sdk;
use crate::once::{create_or_adopt, sdk_retries};
use crate::wait::poll;
use crate::{CapabilityError, Clients, IDEMPOTENCY_TAG, RUN_TAG};

pub use drover_cloud::ec2::{Image, Instance, Snapshot};

/// The tag holding the runbook's name for a resource.
pub const NAME_TAG: &str = "drover:name";
/// The tag grouping copies for retention (`prune_images`).
pub const LINEAGE_TAG: &str = "drover:lineage";

/// A request the SDK must not resend on its own: a creation whose retry is
/// decided by `create_or_adopt` (an SDK resend could make a second resource).
fn sent_once(operation: &str) -> aws_sdk_ec2::config::Builder {
    aws_sdk_ec2::Config::builder().retry_config(sdk_retries(operation))
}

fn tags(name: &str, idem: &str, lineage: Option<&str>) -> Vec<Tag> {
    let mut t = vec![Tag::builder().key(NAME_TAG).value(name).build(), Tag::builder().key(IDEMPOTENCY_TAG).value(idem).build()];
    if let Some(l) = lineage {
        t.push(Tag::builder().key(LINEAGE_TAG).value(l).build());
    }
    t
}

/// Whether an instance in `state` is gone or going (terminated, shutting down).
fn gone(state: &str) -> bool {
    matches!(state, "terminated" | "shutting-down")
}

fn spec(kind: ResourceType, tags: Vec<Tag>) -> TagSpecification {
    TagSpecification::builder().resource_type(kind).set_tags(Some(tags)).build()
}

fn by_tag(key: &str, value: &str) -> Filter {
    Filter::builder().name(format!("tag:{key}")).values(value).build()
}

fn snapshot(region: &str, s: &aws_sdk_ec2::types::Snapshot) -> Snapshot {
    Snapshot {
        id: s.snapshot_id().unwrap_or_default().to_string(),
        region: region.to_string(),
        state: s.state().map(|x| x.as_str().to_string()).unwrap_or_default(),
        volume_id: s.volume_id().unwrap_or_default().to_string(),
    }
}

fn image(region: &str, i: &aws_sdk_ec2::types::Image) -> Image {
    Image {
        id: i.image_id().unwrap_or_default().to_string(),
        region: region.to_string(),
        name: i.name().unwrap_or_default().to_string(),
        state: i.state().map(|x| x.as_str().to_string()).unwrap_or_default(),
        created: i.creation_date().unwrap_or_default().to_string(),
    }
}

fn instance(region: &str, i: &aws_sdk_ec2::types::Instance) -> Instance {
    Instance {
        id: i.instance_id().unwrap_or_default().to_string(),
        region: region.to_string(),
        state: i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default(),
        image_id: i.image_id().unwrap_or_default().to_string(),
        volumes: i.block_device_mappings().iter().filter_map(|m| m.ebs().and_then(|e| e.volume_id())).map(str::to_string).collect(),
    }
}

/// The kind of EC2 resource an id names, by its prefix: `instance`,
/// `image`, `volume`, `snapshot`; `None` for an id drover does not tag.
pub fn resource_kind(id: &str) -> Option<&'static str> {
    [("i-", "instance"), ("ami-", "image"), ("vol-", "volume"), ("snap-", "snapshot")].into_iter().find(|(p, _)| id.starts_with(p)).map(|(_, k)| k)
}

/// Sets tags `tags` (key, value) on EC2 resource `id` in `region`. Tags
/// already so are left alone; returns whether anything was sent. Keys
/// starting with `aws:` or `drover:` are refused: AWS reserves the first,
/// and the second is how drover recognises what it made.
pub async fn tag(c: &Clients, region: &str, id: &str, tags: &[(String, String)]) -> Result<bool, CapabilityError> {
    if let Some((k, _)) = tags.iter().find(|(k, _)| k.starts_with("aws:") || k.starts_with("drover:")) {
        return Err(CapabilityError::new(
            "ec2",
            "CreateTags",
            region,
            id,
            "reserved-tag",
            format!("tag key '{k}' is reserved (aws: and drover: keys cannot be set by a runbook)"),
        ));
    }
    let now = c
        .ec2(region)
        .describe_tags()
        .filters(aws_sdk_ec2::types::Filter::builder().name("resource-id").values(id).build())
        .send()
        .await
        .map_err(|e| from_sdk("ec2", "DescribeTags", region, id, e))?;
    let has = |k: &str, v: &str| now.tags().iter().any(|t| t.key() == Some(k) && t.value() == Some(v));
    let missing: Vec<Tag> = tags.iter().filter(|(k, v)| !has(k, v)).map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
    if missing.is_empty() {
        return Ok(false);
    }
    c.ec2(region).create_tags().resources(id).set_tags(Some(missing)).send().await.map_err(|e| from_sdk("ec2", "CreateTags", region, id, e))?;
    Ok(true)
}

/// Describes instance `id`.
pub async fn describe_instance(c: &Clients, region: &str, id: &str) -> Result<Instance, CapabilityError> {
    let out = c.ec2(region).describe_instances().instance_ids(id).send().await.map_err(|e| from_sdk("ec2", "DescribeInstances", region, id, e))?;
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .map(|i| instance(region, i))
        .ok_or_else(|| CapabilityError::new("ec2", "DescribeInstances", region, id, "InvalidInstanceID.NotFound", format!("no instance {id} in {region}")))
}

/// EBS snapshot states that will never become `completed`.
const FAILED_SNAPSHOT: &[&str] = &["error"];
/// AMI states that will never become `available`.
const FAILED_IMAGE: &[&str] = &["failed", "error", "invalid"];

/// The snapshot tagged `name` to adopt: one that failed (`error`) is never
/// adopted (a new one is made under the same tag; the failed one is left for
/// the operator to inspect).
async fn snapshot_named(c: &Clients, region: &str, name: &str) -> Result<Option<Snapshot>, CapabilityError> {
    let out =
        c.ec2(region).describe_snapshots().filters(by_tag(NAME_TAG, name)).send().await.map_err(|e| from_sdk("ec2", "DescribeSnapshots", region, name, e))?;
    let (failed, usable): (Vec<Snapshot>, Vec<Snapshot>) =
        out.snapshots().iter().map(|s| snapshot(region, s)).partition(|s| FAILED_SNAPSHOT.contains(&s.state.as_str()));
    if !failed.is_empty() {
        tracing::warn!(snapshot = name, region, failed = ?failed.iter().map(|s| &s.id).collect::<Vec<_>>(), "ignoring failed snapshots of this name");
    }
    Ok(usable.into_iter().next())
}

/// Snapshots EBS volume `volume_id` as `name`; adopts the snapshot of that
/// name an earlier attempt made (not a failed one). The request goes out
/// once per attempt: a lost answer is looked up, not sent again.
pub async fn snapshot_volume(c: &Clients, region: &str, volume_id: &str, name: &str, lineage: Option<&str>, idem: &str) -> Result<Snapshot, CapabilityError> {
    let send = || async move {
        let out = c
            .ec2(region)
            .create_snapshot()
            .volume_id(volume_id)
            .description(format!("drover {name}"))
            .tag_specifications(spec(ResourceType::Snapshot, tags(name, idem, lineage)))
            .customize()
            .config_override(sent_once("ec2.snapshot-volume"))
            .send()
            .await
            .map_err(|e| from_sdk("ec2", "CreateSnapshot", region, name, e))?;
        Ok::<_, CapabilityError>(Snapshot {
            id: out.snapshot_id().unwrap_or_default().to_string(),
            region: region.to_string(),
            state: out.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
            volume_id: volume_id.to_string(),
        })
    };
    create_or_adopt(|| snapshot_named(c, region, name), send).await
}

/// Copies snapshot `snapshot_id` from `source_region` into `target_region`
/// as `name`; adopts a copy of that name (not a failed one). The request
/// goes out once per attempt: a lost answer is looked up, not sent again.
pub async fn copy_snapshot(
    c: &Clients,
    source_region: &str,
    snapshot_id: &str,
    target_region: &str,
    name: &str,
    lineage: Option<&str>,
    idem: &str,
) -> Result<Snapshot, CapabilityError> {
    let send = || async move {
        let out = c
            .ec2(target_region)
            .copy_snapshot()
            .source_region(source_region)
            .source_snapshot_id(snapshot_id)
            .description(format!("drover {name}"))
            .tag_specifications(spec(ResourceType::Snapshot, tags(name, idem, lineage)))
            .customize()
            .config_override(sent_once("ec2.copy-snapshot"))
            .send()
            .await
            .map_err(|e| from_sdk("ec2", "CopySnapshot", target_region, name, e))?;
        let id = out.snapshot_id().unwrap_or_default().to_string();
        Ok::<_, CapabilityError>(Snapshot { id, region: target_region.to_string(), state: "pending".into(), volume_id: String::new() })
    };
    create_or_adopt(|| snapshot_named(c, target_region, name), send).await
}

/// The AMI name for drover's image `name` when `failed` earlier images of
/// that name failed: `name`, then `name-r1`, `name-r2`, ... A failed AMI
/// keeps its name, so a new one needs another; counting the failed ones
/// keeps the name the same across attempts of a step.
fn ami_name(name: &str, failed: usize) -> String {
    if failed == 0 { name.to_string() } else { format!("{name}-r{failed}") }
}

/// Whether `ami` is an AMI name drover gives its image `name` ([`ami_name`]).
fn is_ami_name_of(ami: &str, name: &str) -> bool {
    ami == name || ami.strip_prefix(name).and_then(|r| r.strip_prefix("-r")).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The image to adopt for drover's image `name` (tagged so, or, where an
/// endpoint dropped the tags of a copy, owned by this account under one of
/// its AMI names), and how many of them failed. Failed and deregistered
/// images are never adopted.
async fn image_named(c: &Clients, region: &str, name: &str) -> Result<(Option<Image>, usize), CapabilityError> {
    let tagged =
        c.ec2(region).describe_images().filters(by_tag(NAME_TAG, name)).send().await.map_err(|e| from_sdk("ec2", "DescribeImages", region, name, e))?;
    let by_name = c
        .ec2(region)
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name("name").values(name).values(format!("{name}-r*")).build())
        .send()
        .await
        .map_err(|e| from_sdk("ec2", "DescribeImages", region, name, e))?;
    let mut seen = std::collections::BTreeSet::new();
    let images: Vec<Image> = tagged
        .images()
        .iter()
        .chain(by_name.images().iter().filter(|i| is_ami_name_of(i.name().unwrap_or_default(), name)))
        .filter(|i| seen.insert(i.image_id().unwrap_or_default().to_string()))
        .map(|i| image(region, i))
        .filter(|i| i.state != "deregistered")
        .collect();
    let failed = images.iter().filter(|i| FAILED_IMAGE.contains(&i.state.as_str())).count();
    if failed > 0 {
        tracing::warn!(image = name, region, failed, "ignoring failed images of this name");
    }
    Ok((images.into_iter().find(|i| !FAILED_IMAGE.contains(&i.state.as_str())), failed))
}

/// Creates AMI `name` from instance `instance_id`; adopts the AMI of that
/// name (not a failed one: after one failed, a new one is made as
/// `name-r1`, ...). The request goes out once per attempt: a lost answer is
/// looked up, not sent again.
pub async fn create_image(c: &Clients, region: &str, instance_id: &str, name: &str, lineage: Option<&str>, idem: &str) -> Result<Image, CapabilityError> {
    let failed = &AtomicUsize::new(0);
    let lookup = || async move {
        let (found, f) = image_named(c, region, name).await?;
        failed.store(f, Relaxed);
        Ok::<_, CapabilityError>(found)
    };
    let send = || async move {
        let ami = ami_name(name, failed.load(Relaxed));
        let out = c
            .ec2(region)
            .create_image()
            .instance_id(instance_id)
            .name(&ami)
            .no_reboot(true)
            .tag_specifications(spec(ResourceType::Image, tags(name, idem, lineage)))
            .customize()
            .config_override(sent_once("ec2.create-image"))
            .send()
            .await
            .map_err(|e| from_sdk("ec2", "CreateImage", region, name, e))?;
        let id = out.image_id().unwrap_or_default().to_string();
        Ok::<_, CapabilityError>(Image { id, region: region.to_string(), name: ami, state: "pending".into(), created: String::new() })
    };
    create_or_adopt(lookup, send).await
}

/// Copies AMI `image_id` from `source_region` into `target_region` as
/// `name`; adopts a copy of that name (not a failed one, as
/// [`create_image`]). The request goes out once per attempt.
pub async fn copy_image(
    c: &Clients,
    source_region: &str,
    image_id: &str,
    target_region: &str,
    name: &str,
    lineage: Option<&str>,
    idem: &str,
) -> Result<Image, CapabilityError> {
    let failed = &AtomicUsize::new(0);
    let lookup = || async move {
        let (found, f) = image_named(c, target_region, name).await?;
        failed.store(f, Relaxed);
        Ok::<_, CapabilityError>(found)
    };
    let send = || async move {
        let n = failed.load(Relaxed);
        let ami = ami_name(name, n);
        let out = c
            .ec2(target_region)
            .copy_image()
            .source_region(source_region)
            .source_image_id(image_id)
            .name(&ami)
            .client_token(if n == 0 { idem.to_string() } else { format!("{idem}-r{n}") })
            .tag_specifications(spec(ResourceType::Image, tags(name, idem, lineage)))
            .customize()
            .config_override(sent_once("ec2.copy-image"))
            .send()
            .await
            .map_err(|e| from_sdk("ec2", "CopyImage", target_region, name, e))?;
        let id = out.image_id().unwrap_or_default().to_string();
        Ok::<_, CapabilityError>(Image { id, region: target_region.to_string(), name: ami, state: "pending".into(), created: String::new() })
    };
    let copy = create_or_adopt(lookup, send).await?;
    // Some endpoints drop tag specifications on copies: tag explicitly (a
    // copy adopted by its AMI name included). Tagging is idempotent.
    c.ec2(target_region)
        .create_tags()
        .resources(&copy.id)
        .set_tags(Some(tags(name, idem, lineage)))
        .send()
        .await
        .map_err(|e| from_sdk("ec2", "CreateTags", target_region, &copy.id, e))?;
    Ok(copy)
}

/// Waits until image `id` is `available`. An image that failed (`failed`,
/// `error`, `invalid`) or was deregistered never will: that is an error at
/// once, naming the image, its state and the reason EC2 gives.
pub async fn wait_image_available(c: &Clients, region: &str, id: &str, timeout: Duration) -> Result<Image, CapabilityError> {
    let found = poll(timeout, || async move {
        let out = c.ec2(region).describe_images().image_ids(id).send().await.map_err(|e| from_sdk("ec2", "DescribeImages", region, id, e))?;
        let Some(raw) = out.images().first() else { return Ok(None) };
        let i = image(region, raw);
        if FAILED_IMAGE.contains(&i.state.as_str()) || i.state == "deregistered" {
            let reason = raw.state_reason().and_then(|r| r.message()).unwrap_or("EC2 gives no reason");
            return Err(CapabilityError::new(
                "ec2",
                "DescribeImages",
                region,
                id,
                "image-failed",
                format!("image {id} ({}) in {region} is '{}' and will never become available ({reason}); make a new one (drover makes a new copy when the step runs again) and deregister this one once its cause is understood", i.name, i.state),
            ));
        }
        Ok::<_, CapabilityError>((i.state == "available").then_some(i))
    })
    .await?;
    found.ok_or_else(|| {
        CapabilityError::new("ec2", "DescribeImages", region, id, "timeout", format!("image {id} is not available after {} s", timeout.as_secs())).retryable()
    })
}

/// Launches one instance `name` of `instance_type` from `image_id`; adopts a
/// live instance of that name.
pub async fn run_instance(
    c: &Clients,
    region: &str,
    image_id: &str,
    instance_type: &str,
    name: &str,
    run_id: &str,
    idem: &str,
) -> Result<Instance, CapabilityError> {
    let out =
        c.ec2(region).describe_instances().filters(by_tag(NAME_TAG, name)).send().await.map_err(|e| from_sdk("ec2", "DescribeInstances", region, name, e))?;
    let live = out.reservations().iter().flat_map(|r| r.instances()).map(|i| instance(region, i)).find(|i| !gone(&i.state));
    if let Some(i) = live {
        return Ok(i);
    }
    let out = c
        .ec2(region)
        .run_instances()
        .image_id(image_id)
        .instance_type(instance_type.into())
        .min_count(1)
        .max_count(1)
        .client_token(idem)
        .tag_specifications(spec(ResourceType::Instance, [tags(name, idem, None), vec![Tag::builder().key(RUN_TAG).value(run_id).build()]].concat()))
        .send()
        .await
        .map_err(|e| from_sdk("ec2", "RunInstances", region, name, e))?;
    out.instances()
        .first()
        .map(|i| instance(region, i))
        .ok_or_else(|| CapabilityError::new("ec2", "RunInstances", region, name, "bad-response", "no instance in the answer").retryable())
}

/// The images retention removes: of the `available` images, those beyond
/// the newest `keep` (by creation time, then name). Images in any other
/// state are neither counted nor removed: a pending copy may be the next
/// newest, and a failed one must not push an available one out.
fn beyond_keep(images: &[aws_sdk_ec2::types::Image], keep: u32) -> Vec<&aws_sdk_ec2::types::Image> {
    let mut available: Vec<&aws_sdk_ec2::types::Image> = images.iter().filter(|i| i.state().map(|s| s.as_str()) == Some("available")).collect();
    available.sort_by(|a, b| b.creation_date().unwrap_or_default().cmp(a.creation_date().unwrap_or_default()).then(b.name().cmp(&a.name())));
    available.into_iter().skip(usize::try_from(keep).unwrap_or(usize::MAX)).collect()
}

/// The images of `lineage` in `region`, in every state.
async fn lineage_images(c: &Clients, region: &str, lineage: &str) -> Result<aws_sdk_ec2::operation::describe_images::DescribeImagesOutput, CapabilityError> {
    c.ec2(region).describe_images().filters(by_tag(LINEAGE_TAG, lineage)).send().await.map_err(|e| from_sdk("ec2", "DescribeImages", region, lineage, e))
}

/// Deregisters the available images of `lineage` in `region` beyond the
/// newest `keep` (by creation time), and deletes their snapshots. Returns
/// the ids removed. Failed images are not counted and left in place (logged,
/// for the operator to look into); pending ones are not counted either.
pub async fn prune_images(c: &Clients, region: &str, lineage: &str, keep: u32) -> Result<Vec<String>, CapabilityError> {
    let out = lineage_images(c, region, lineage).await?;
    let failed: Vec<&str> =
        out.images().iter().filter(|i| i.state().is_some_and(|s| FAILED_IMAGE.contains(&s.as_str()))).filter_map(|i| i.image_id()).collect();
    if !failed.is_empty() {
        tracing::warn!(lineage, region, ?failed, "failed images of this lineage are not counted for retention and are left in place");
    }
    let mut removed = Vec::new();
    for old in beyond_keep(out.images(), keep) {
        let id = old.image_id().unwrap_or_default();
        c.ec2(region).deregister_image().image_id(id).send().await.map_err(|e| from_sdk("ec2", "DeregisterImage", region, id, e))?;
        for snap in old.block_device_mappings().iter().filter_map(|m| m.ebs().and_then(|e| e.snapshot_id())) {
            if let Err(e) = c.ec2(region).delete_snapshot().snapshot_id(snap).send().await {
                let err = from_sdk("ec2", "DeleteSnapshot", region, snap, e);
                if !err.code.contains("NotFound") {
                    return Err(err);
                }
            }
        }
        removed.push(id.to_string());
    }
    Ok(removed)
}

/// The newest available image of `lineage` in `region`, if any.
pub async fn latest_image(c: &Clients, region: &str, lineage: &str) -> Result<Option<Image>, CapabilityError> {
    let out = lineage_images(c, region, lineage).await?;
    let newest = out
        .images()
        .iter()
        .filter(|i| i.state().map(|s| s.as_str()) == Some("available"))
        .max_by(|a, b| a.creation_date().unwrap_or_default().cmp(b.creation_date().unwrap_or_default()).then(a.name().cmp(&b.name())));
    Ok(newest.map(|i| image(region, i)))
}

async fn instance_tags(c: &Clients, region: &str, id: &str) -> Result<Option<(Instance, Vec<Tag>)>, CapabilityError> {
    let sent = c.ec2(region).describe_instances().instance_ids(id).send().await;
    let out = match sent {
        Ok(out) => out,
        Err(e) => {
            let err = from_sdk("ec2", "DescribeInstances", region, id, e);
            return if err.code.contains("NotFound") { Ok(None) } else { Err(err) };
        }
    };
    Ok(out.reservations().iter().flat_map(|r| r.instances()).next().map(|i| (instance(region, i), i.tags().to_vec())))
}

/// Terminates instance `id`, which must carry run `run_id`'s tag: drover
/// terminates only what the same run launched. One already gone (or going)
/// counts as terminated.
pub async fn terminate_instance(c: &Clients, region: &str, id: &str, run_id: &str) -> Result<(), CapabilityError> {
    let Some((inst, tags)) = instance_tags(c, region, id).await? else { return Ok(()) };
    if gone(&inst.state) {
        return Ok(());
    }
    if !tags.iter().any(|t| t.key() == Some(RUN_TAG) && t.value() == Some(run_id)) {
        return Err(CapabilityError::new(
            "ec2",
            "TerminateInstances",
            region,
            id,
            "not-created-by-this-run",
            format!(
                "refusing to terminate {id} in {region}: it does not carry the tag {RUN_TAG}={run_id}; drover terminates only instances the same run launched"
            ),
        ));
    }
    c.ec2(region).terminate_instances().instance_ids(id).send().await.map_err(|e| from_sdk("ec2", "TerminateInstances", region, id, e))?;
    Ok(())
}

/// The instances in `region` launched by run `run_id` that are not terminated.
pub async fn run_instances(c: &Clients, region: &str, run_id: &str) -> Result<Vec<String>, CapabilityError> {
    let out = c
        .ec2(region)
        .describe_instances()
        .filters(by_tag(RUN_TAG, run_id))
        .send()
        .await
        .map_err(|e| from_sdk("ec2", "DescribeInstances", region, run_id, e))?;
    Ok(out.reservations().iter().flat_map(|r| r.instances()).map(|i| instance(region, i)).filter(|i| !gone(&i.state)).map(|i| i.id).collect())
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{Image as Ami, ImageState};

    use super::*;

    fn ami(id: &str, state: &str, created: &str) -> Ami {
        Ami::builder().image_id(id).state(ImageState::from(state)).creation_date(created).name(id).build()
    }

    #[test]
    fn retention_keeps_the_newest_available_images_whatever_failed_or_pending_ones_exist() {
        let images = [
            ami("ami-old", "available", "2026-01-01T00:00:00Z"),
            ami("ami-mid", "available", "2026-01-02T00:00:00Z"),
            ami("ami-failed-1", "failed", "2026-01-03T00:00:00Z"),
            ami("ami-failed-2", "failed", "2026-01-04T00:00:00Z"),
            ami("ami-pending", "pending", "2026-01-05T00:00:00Z"),
        ];
        let ids = |keep| beyond_keep(&images, keep).iter().filter_map(|i| i.image_id()).map(str::to_string).collect::<Vec<_>>();
        assert_eq!(ids(2), Vec::<String>::new(), "two available images, keep 2: nothing goes");
        assert_eq!(ids(1), ["ami-old"], "only an available one beyond the newest available");
        assert_eq!(ids(0), ["ami-mid", "ami-old"]);
    }

    #[test]
    fn a_new_image_after_failed_ones_gets_a_name_of_its_own_that_attempts_agree_on() {
        assert_eq!(ami_name("app-copy", 0), "app-copy");
        assert_eq!(ami_name("app-copy", 2), "app-copy-r2");
        assert!(is_ami_name_of("app-copy", "app-copy") && is_ami_name_of("app-copy-r2", "app-copy"));
        assert!(!is_ami_name_of("app-copy-restore", "app-copy") && !is_ami_name_of("app-copy-r", "app-copy") && !is_ami_name_of("app", "app-copy"));
    }
}
