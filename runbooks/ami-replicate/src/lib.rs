//! `ami-replicate`: the scheduled job that keeps the DR region able to run
//! the application. It makes an AMI of the app instance (and a snapshot of
//! its data volume, if given), copies both to the DR region, and keeps only
//! the newest `keep` AMIs of the lineage in each region.
//!
//! Names come from the lineage and the run id, so every run makes its own
//! copies and a resumed run adopts what it had made.

use std::time::Duration;

use drover_sdk::aws::ec2;
use drover_sdk::{Capability, Ctx, Describe, Error, Param, Runbook, export_runbook};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Params {
    region: String,
    dr_region: String,
    instance_id: String,
    volume_id: String,
    lineage: String,
    keep: u32,
    timeout_seconds: u64,
}

#[derive(Serialize, Deserialize, Default)]
struct Outcome {
    ami: String,
    dr_ami: String,
    data_snapshot: Option<String>,
    dr_data_snapshot: Option<String>,
    pruned: Vec<String>,
}

struct AmiReplicate;

impl Runbook for AmiReplicate {
    type Params = Params;
    type Output = Outcome;

    fn describe() -> Describe {
        Describe::new("ami-replicate", env!("CARGO_PKG_VERSION"))
            .description(
                "Makes an AMI of the app instance and a snapshot of its data volume, copies both to the DR \
                 region, and keeps the newest `keep` AMIs of the lineage in each region.",
            )
            .param(Param::string("region", "Region of the app instance").default("us-east-1"))
            .param(Param::string("dr_region", "Region to copy to").default("us-west-2"))
            .param(Param::string("instance_id", "The app instance to image"))
            .param(Param::string("volume_id", "Data volume to snapshot (empty: none)").default(""))
            .param(Param::string("lineage", "Name shared by the copies, for retention").default("orders-app"))
            .param(Param::integer("keep", "How many AMIs of the lineage to keep in each region").default(3))
            .param(Param::integer("timeout_seconds", "Longest wait for an AMI").default(3600))
            .capability(
                Capability::new("ec2")
                    .operations(["describe-instance", "create-image", "wait-image-available", "copy-image", "snapshot-volume", "copy-snapshot", "prune-images"])
                    .regions(["{region}", "{dr_region}"])
                    .resources([
                        "instance/{instance_id}",
                        "volume/{volume_id}",
                        // The AMI and snapshot this run makes, by name, then by the ids AWS gives them.
                        "image/{lineage}-*",
                        "image/ami-*",
                        "snapshot/{lineage}-*",
                        "snapshot/snap-*",
                        "lineage/{lineage}",
                    ]),
            )
    }

    fn run(ctx: &Ctx, p: Params) -> Result<Outcome, Error> {
        if p.keep == 0 {
            return Err(Error::new("bad-params", "keep must be at least 1: pruning every copy would leave the DR region without an AMI"));
        }
        let wait = Duration::from_secs(p.timeout_seconds);
        let run: String = ctx.run_id().chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase();
        let name = format!("{}-{}", p.lineage, &run[run.len().saturating_sub(16)..]);
        let lineage = Some(p.lineage.as_str());

        ctx.step("check-instance", || {
            let i = ec2::describe_instance(&p.region, &p.instance_id)?;
            if i.state == "terminated" {
                return Err(Error::new("instance-terminated", format!("{} is terminated", p.instance_id)).with_resource(i.id));
            }
            Ok(i.id)
        })?;
        let ami: String = ctx.step("create-ami", || {
            let image = ec2::create_image(&p.region, &p.instance_id, &name, lineage)?;
            Ok(ec2::wait_image_available(&p.region, &image.id, wait)?.id)
        })?;
        let dr_ami: String = ctx.step("copy-ami", || {
            let copy = ec2::copy_image(&p.region, &ami, &p.dr_region, &name, lineage)?;
            Ok(ec2::wait_image_available(&p.dr_region, &copy.id, wait)?.id)
        })?;
        let (data_snapshot, dr_data_snapshot) = if p.volume_id.is_empty() {
            (None, None)
        } else {
            let snap: String = ctx.step("snapshot-data", || Ok(ec2::snapshot_volume(&p.region, &p.volume_id, &format!("{name}-data"), lineage)?.id))?;
            let copy: String = ctx.step("copy-data", || Ok(ec2::copy_snapshot(&p.region, &snap, &p.dr_region, &format!("{name}-data"), lineage)?.id))?;
            (Some(snap), Some(copy))
        };
        let pruned: Vec<String> = ctx.step("prune", || {
            let mut removed = ec2::prune_images(&p.dr_region, &p.lineage, p.keep)?;
            removed.extend(ec2::prune_images(&p.region, &p.lineage, p.keep)?);
            Ok(removed)
        })?;
        Ok(Outcome { ami, dr_ami, data_snapshot, dr_data_snapshot, pruned })
    }
}

export_runbook!(AmiReplicate);

#[cfg(test)]
mod tests;
