//! Simulated Amazon EC2: instances, EBS snapshots and AMIs. As the real
//! capability does, a creation finds what an earlier attempt made by its
//! `Name` tag and adopts it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Cloud, Regional, Target, aws_error};
use crate::scenario::Ec2Seed;
use drover_cloud::CloudError;
use drover_cloud::ec2::{Image, Instance, Snapshot};

/// A simulated EC2 instance.
#[derive(Debug, Clone, Serialize)]
pub struct Ec2Instance {
    /// What `describe-instance` returns.
    pub instance: Instance,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

/// A simulated EBS snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct Ec2Snapshot {
    /// What the calls return.
    pub snapshot: Snapshot,
    /// Its tags (`Name`, `drover:lineage`).
    pub tags: BTreeMap<String, String>,
    /// When it is completed (ms).
    pub ready_at: i64,
}

/// A simulated AMI.
#[derive(Debug, Clone, Serialize)]
pub struct Ec2Image {
    /// What the calls return once it is available.
    pub image: Image,
    /// Its tags (`Name`, `drover:lineage`).
    pub tags: BTreeMap<String, String>,
    /// When it is available (ms).
    pub ready_at: i64,
    /// Creation time (ms), for ordering.
    pub created_ms: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Ec2 {
    pub(crate) instances: Regional<Ec2Instance>,
    pub(crate) snapshots: Regional<Ec2Snapshot>,
    pub(crate) images: Regional<Ec2Image>,
}

impl Ec2Image {
    fn view(&self, now: i64) -> Image {
        let mut i = self.image.clone();
        if now < self.ready_at {
            i.state = "pending".into();
        }
        i
    }
}

impl Ec2Snapshot {
    fn view(&self, now: i64) -> Snapshot {
        let mut s = self.snapshot.clone();
        if now < self.ready_at {
            s.state = "pending".into();
        }
        s
    }
}

fn iso(ms: i64) -> String {
    // Days since the epoch to a civil date (Howard Hinnant's algorithm).
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn named(name: &str, lineage: Option<&str>) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([("Name".to_string(), name.to_string())]);
    if let Some(l) = lineage {
        tags.insert("drover:lineage".into(), l.into());
    }
    tags
}

impl Ec2 {
    pub(crate) fn load(&mut self, seed: &Ec2Seed, now: i64) -> Result<(), String> {
        for i in &seed.instances {
            let instance =
                Instance { id: i.id.clone(), region: i.region.clone(), state: i.state.clone(), image_id: i.image_id.clone(), volumes: i.volumes.clone() };
            self.instances.entry(i.region.clone()).or_default().insert(i.id.clone(), Ec2Instance { instance, tags: BTreeMap::new() });
        }
        for i in &seed.images {
            let created = now - (i.age_seconds as i64) * 1000;
            let image = Image { id: i.id.clone(), region: i.region.clone(), name: i.name.clone(), state: "available".into(), created: iso(created) };
            let img = Ec2Image { image, tags: named(&i.name, i.lineage.as_deref()), ready_at: created, created_ms: created };
            self.images.entry(i.region.clone()).or_default().insert(i.id.clone(), img);
        }
        Ok(())
    }

    fn instance(&self, t: &Target, region: &str, id: &str) -> Result<&Ec2Instance, CloudError> {
        self.instances
            .get(region)
            .and_then(|m| m.get(id))
            .ok_or_else(|| aws_error(t, "InvalidInstanceID.NotFound", &format!("no instance {id} in {region}"), false))
    }

    fn image(&self, t: &Target, region: &str, id: &str) -> Result<&Ec2Image, CloudError> {
        self.images.get(region).and_then(|m| m.get(id)).ok_or_else(|| aws_error(t, "InvalidAMIID.NotFound", &format!("no image {id} in {region}"), false))
    }

    fn image_named(&self, region: &str, name: &str) -> Option<&Ec2Image> {
        self.images.get(region)?.values().find(|i| i.tags.get("Name").map(String::as_str) == Some(name))
    }

    fn snapshot_named(&self, region: &str, name: &str) -> Option<&Ec2Snapshot> {
        self.snapshots.get(region)?.values().find(|s| s.tags.get("Name").map(String::as_str) == Some(name))
    }

    fn lineage(&self, region: &str, lineage: &str) -> Vec<&Ec2Image> {
        let mut v: Vec<&Ec2Image> = self
            .images
            .get(region)
            .into_iter()
            .flat_map(|m| m.values())
            .filter(|i| i.tags.get("drover:lineage").map(String::as_str) == Some(lineage))
            .collect();
        // Newest first.
        v.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(b.image.name.cmp(&a.image.name)));
        v
    }
}

fn target<'a>(operation: &'static str, api: &'static str, region: &'a str, resource: &'a str) -> Target<'a> {
    Target { service: "ec2", operation, api, region, resource }
}

impl Cloud {
    /// `ec2.describe-instance`, as the agent's capability behaves, on the simulated cloud.
    pub fn ec2_describe_instance(&mut self, region: &str, id: &str) -> Result<Instance, CloudError> {
        self.call(target("describe-instance", "DescribeInstances", region, id), |c, t| Ok((c.ec2.instance(t, region, id)?.instance.clone(), false)))
    }

    /// `ec2.snapshot-volume`, as the agent's capability behaves, on the simulated cloud.
    pub fn ec2_snapshot_volume(&mut self, region: &str, volume: &str, name: &str, lineage: Option<&str>) -> Result<Snapshot, CloudError> {
        self.call(target("snapshot-volume", "CreateSnapshot", region, name), |c, _| {
            // A blind resend does not look: EC2 makes another.
            if !c.raw
                && let Some(s) = c.ec2.snapshot_named(region, name)
            {
                return Ok((s.view(c.now_ms), false));
            }
            let id = c.fresh_id("snap");
            let s = Ec2Snapshot {
                snapshot: Snapshot { id: id.clone(), region: region.into(), state: "completed".into(), volume_id: volume.into() },
                tags: named(name, lineage),
                ready_at: c.ready_at(),
            };
            let view = s.view(c.now_ms);
            c.ec2.snapshots.entry(region.into()).or_default().insert(id, s);
            Ok((view, true))
        })
    }

    /// `ec2.copy-snapshot`, as the agent's capability behaves, on the simulated cloud.
    pub fn ec2_copy_snapshot(
        &mut self,
        source_region: &str,
        snapshot_id: &str,
        target_region: &str,
        name: &str,
        lineage: Option<&str>,
    ) -> Result<Snapshot, CloudError> {
        self.call(target("copy-snapshot", "CopySnapshot", target_region, name), |c, t| {
            // A blind resend does not look: EC2 makes another.
            if !c.raw
                && let Some(s) = c.ec2.snapshot_named(target_region, name)
            {
                return Ok((s.view(c.now_ms), false));
            }
            let src = c
                .ec2
                .snapshots
                .get(source_region)
                .and_then(|m| m.get(snapshot_id))
                .ok_or_else(|| aws_error(t, "InvalidSnapshot.NotFound", &format!("no snapshot {snapshot_id} in {source_region}"), false))?;
            let volume = src.snapshot.volume_id.clone();
            let id = c.fresh_id("snap");
            let s = Ec2Snapshot {
                snapshot: Snapshot { id: id.clone(), region: target_region.into(), state: "completed".into(), volume_id: volume },
                tags: named(name, lineage),
                ready_at: c.ready_at(),
            };
            let view = s.view(c.now_ms);
            c.ec2.snapshots.entry(target_region.into()).or_default().insert(id, s);
            Ok((view, true))
        })
    }

    fn new_image(&mut self, region: &str, name: &str, lineage: Option<&str>) -> Image {
        let id = self.fresh_id("ami");
        let created = self.now_ms;
        let img = Ec2Image {
            image: Image { id: id.clone(), region: region.into(), name: name.into(), state: "available".into(), created: iso(created) },
            tags: named(name, lineage),
            ready_at: self.ready_at(),
            created_ms: created,
        };
        let view = img.view(self.now_ms);
        self.ec2.images.entry(region.into()).or_default().insert(id, img);
        view
    }

    /// `ec2.create-image`, as the agent's capability behaves, on the simulated cloud.
    pub fn ec2_create_image(&mut self, region: &str, instance_id: &str, name: &str, lineage: Option<&str>) -> Result<Image, CloudError> {
        self.call(target("create-image", "CreateImage", region, name), |c, t| {
            // A blind resend does not look: EC2 makes another.
            if !c.raw
                && let Some(i) = c.ec2.image_named(region, name)
            {
                return Ok((i.view(c.now_ms), false));
            }
            c.ec2.instance(t, region, instance_id)?;
            Ok((c.new_image(region, name, lineage), true))
        })
    }

    /// `ec2.copy-image`, as the agent's capability behaves, on the simulated cloud.
    pub fn ec2_copy_image(&mut self, source_region: &str, image_id: &str, target_region: &str, name: &str, lineage: Option<&str>) -> Result<Image, CloudError> {
        self.call(target("copy-image", "CopyImage", target_region, name), |c, t| {
            // A blind resend does not look: EC2 makes another.
            if !c.raw
                && let Some(i) = c.ec2.image_named(target_region, name)
            {
                return Ok((i.view(c.now_ms), false));
            }
            let src = c.ec2.image(t, source_region, image_id)?;
            if c.now_ms < src.ready_at {
                return Err(aws_error(t, "InvalidAMIID.Unavailable", &format!("image {image_id} is still pending"), false));
            }
            Ok((c.new_image(target_region, name, lineage), true))
        })
    }

    /// `ec2.wait-image-available`, as the agent's capability behaves, on the simulated cloud.
    pub fn ec2_wait_image_available(&mut self, region: &str, image_id: &str, timeout_seconds: u32) -> Result<Image, CloudError> {
        self.call(target("wait-image-available", "DescribeImages", region, image_id), |c, t| {
            let ready_at = c.ec2.image(t, region, image_id)?.ready_at;
            c.wait_until(t, ready_at, timeout_seconds, image_id).map_err(|mut e| {
                e.retryable = true;
                e
            })?;
            Ok((c.ec2.image(t, region, image_id)?.view(c.now_ms), false))
        })
    }

    /// `ec2.run-instance`, as the agent's capability behaves, on the simulated cloud.
    pub fn ec2_run_instance(&mut self, region: &str, image_id: &str, name: &str, run_id: &str) -> Result<Instance, CloudError> {
        self.call(target("run-instance", "RunInstances", region, name), |c, t| {
            let live = c
                .ec2
                .instances
                .get(region)
                .into_iter()
                .flat_map(|m| m.values())
                .find(|i| i.tags.get("Name").map(String::as_str) == Some(name) && !matches!(i.instance.state.as_str(), "terminated" | "shutting-down"));
            if let Some(i) = live {
                return Ok((i.instance.clone(), false));
            }
            c.ec2.image(t, region, image_id)?;
            let id = c.fresh_id("i");
            let instance =
                Instance { id: id.clone(), region: region.into(), state: "running".into(), image_id: image_id.into(), volumes: vec![c.fresh_id("vol")] };
            let mut tags = named(name, None);
            tags.insert("drover:run".into(), run_id.into());
            c.ec2.instances.entry(region.into()).or_default().insert(id, Ec2Instance { instance: instance.clone(), tags });
            Ok((instance, true))
        })
    }

    /// `ec2.prune-images`, as the agent's capability behaves, on the simulated cloud.
    pub fn ec2_prune_images(&mut self, region: &str, lineage: &str, keep: u32) -> Result<Vec<String>, CloudError> {
        self.call(target("prune-images", "DeregisterImage", region, lineage), |c, _| {
            let old: Vec<String> = c.ec2.lineage(region, lineage).iter().skip(keep as usize).map(|i| i.image.id.clone()).collect();
            if let Some(m) = c.ec2.images.get_mut(region) {
                for id in &old {
                    m.remove(id);
                }
            }
            let changed = !old.is_empty();
            Ok((old, changed))
        })
    }

    /// `ec2.latest-image`, as the agent's capability behaves, on the simulated cloud.
    pub fn ec2_latest_image(&mut self, region: &str, lineage: &str) -> Result<Option<Image>, CloudError> {
        self.call(target("latest-image", "DescribeImages", region, lineage), |c, _| {
            let now = c.now_ms;
            let newest = c.ec2.lineage(region, lineage).into_iter().find(|i| i.ready_at <= now).map(|i| i.view(now));
            Ok((newest, false))
        })
    }

    /// `ec2.terminate-instance`, as the agent's capability behaves, on the simulated cloud.
    pub fn ec2_terminate_instance(&mut self, region: &str, id: &str, run_id: &str) -> Result<(), CloudError> {
        self.call(target("terminate-instance", "TerminateInstances", region, id), |c, t| {
            let Some(i) = c.ec2.instances.get_mut(region).and_then(|m| m.get_mut(id)) else {
                return Ok(((), false));
            };
            if i.instance.state == "terminated" {
                return Ok(((), false));
            }
            if i.tags.get("drover:run").map(String::as_str) != Some(run_id) {
                return Err(aws_error(
                    t,
                    "not-created-by-this-run",
                    &format!("refusing to terminate {id} in {region}: it does not carry the tag drover:run={run_id}; drover terminates only instances the same run launched"),
                    false,
                ));
            }
            i.instance.state = "terminated".into();
            Ok(((), true))
        })
    }

    /// `ec2.run-instances`, as the agent's capability behaves, on the simulated cloud.
    pub fn ec2_run_instances(&mut self, region: &str, run_id: &str) -> Result<Vec<String>, CloudError> {
        self.call(target("run-instances", "DescribeInstances", region, "*"), |c, _| {
            let ids = c
                .ec2
                .instances
                .get(region)
                .into_iter()
                .flat_map(|m| m.values())
                .filter(|i| i.tags.get("drover:run").map(String::as_str) == Some(run_id) && i.instance.state != "terminated")
                .map(|i| i.instance.id.clone())
                .collect();
            Ok((ids, false))
        })
    }

    /// `ec2.tag`, as the agent's capability behaves, on the simulated cloud.
    pub fn ec2_tag(&mut self, region: &str, id: &str, tags: &[(String, String)]) -> Result<bool, CloudError> {
        self.call(target("tag", "CreateTags", region, id), |c, t| {
            if let Some((k, _)) = tags.iter().find(|(k, _)| k.starts_with("aws:") || k.starts_with("drover:")) {
                return Err(aws_error(t, "reserved-tag", &format!("tag key '{k}' is reserved (aws: and drover: keys cannot be set by a runbook)"), false));
            }
            let slot = if let Some(i) = c.ec2.instances.get_mut(region).and_then(|m| m.get_mut(id)) {
                &mut i.tags
            } else if let Some(i) = c.ec2.images.get_mut(region).and_then(|m| m.get_mut(id)) {
                &mut i.tags
            } else if let Some(s) = c.ec2.snapshots.get_mut(region).and_then(|m| m.get_mut(id)) {
                &mut s.tags
            } else {
                return Err(aws_error(t, "InvalidID", &format!("no EC2 resource {id} in {region}"), false));
            };
            let mut changed = false;
            for (k, v) in tags {
                if slot.get(k) != Some(v) {
                    slot.insert(k.clone(), v.clone());
                    changed = true;
                }
            }
            Ok((changed, changed))
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso_dates() {
        assert_eq!(super::iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::iso(1_767_225_600_000), "2026-01-01T00:00:00.000Z");
        assert_eq!(super::iso(1_709_210_096_000), "2024-02-29T12:34:56.000Z");
    }
}
