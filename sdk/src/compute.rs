//! DR-region compute: an Auto Scaling group and an ECS service (each
//! optional, the same names in both regions, as infrastructure code usually
//! makes them) scaled in one region to the capacity another holds, before
//! traffic moves there, and back. What AWS ARC's Region switch does with its
//! EC2 Auto Scaling and ECS execution blocks.
//!
//! Call these inside steps: [`Compute::match_capacity`] in one (its output,
//! [`Scaled`], is what the undo puts back), [`Compute::wait`] in another
//! with a retry policy.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::aws::autoscaling::{self, RestoreCapacity};
use crate::aws::ecs::{self, RestoreCount};
use crate::{Capability, Describe, Error};

/// A runbook's compute, as its parameters name it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compute {
    /// The Auto Scaling group's name (none: no group).
    pub asg: Option<String>,
    /// The ECS cluster and service (none: no service).
    pub ecs: Option<(String, String)>,
    /// Least desired capacity to scale the group to, and what it is scaled
    /// to when the source region's cannot be read (the region is down).
    pub asg_floor: u32,
    /// The same for the service's desired count.
    pub ecs_floor: u32,
}

/// What a scaling did: the capacity each resource had before (what an undo
/// puts back) and the capacity asked for, with any warning.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scaled {
    /// The group's capacity before.
    pub asg_before: Option<RestoreCapacity>,
    /// Its desired capacity now.
    pub asg_desired: Option<u32>,
    /// The service's count before.
    pub ecs_before: Option<RestoreCount>,
    /// Its desired count now.
    pub ecs_desired: Option<u32>,
    /// What the run should know (a floor used because the source region did not answer).
    pub warnings: Vec<String>,
}

impl Scaled {
    /// Puts every capacity back as it was before (an undo).
    pub fn restore(&self) -> Result<(), Error> {
        if let Some(a) = &self.asg_before {
            a.apply()?;
        }
        if let Some(e) = &self.ecs_before {
            e.apply()?;
        }
        Ok(())
    }
}

/// Declares what the compute steps call, in the two regions given as
/// parameter placeholders (e.g. `"{primary_region}"`), on the resources the
/// parameters `asg_name`, `ecs_cluster` and `ecs_service` name (an empty
/// parameter declares nothing).
pub fn declare(describe: Describe, regions: [&str; 2]) -> Describe {
    describe
        .capability(
            Capability::new("autoscaling").operations(["describe-group", "set-capacity", "wait-in-service"]).regions(regions).resources(["asg/{asg_name}"]),
        )
        .capability(
            Capability::new("ecs")
                .operations(["describe-service", "set-desired-count", "wait-stable"])
                .regions(regions)
                .resources(["ecs-service/{ecs_cluster}/{ecs_service}"]),
        )
}

impl Compute {
    /// From parameters: empty names mean none.
    pub fn new(asg: &str, ecs_cluster: &str, ecs_service: &str, asg_floor: u32, ecs_floor: u32) -> Compute {
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let ecs = match (some(ecs_cluster), some(ecs_service)) {
            (Some(c), Some(s)) => Some((c, s)),
            _ => None,
        };
        Compute { asg: some(asg), ecs, asg_floor, ecs_floor }
    }

    /// Nothing to scale.
    pub fn is_empty(&self) -> bool {
        self.asg.is_none() && self.ecs.is_none()
    }

    /// Scales `to_region`'s group and service to the desired capacity
    /// `from_region`'s hold now (at least the floors; the floor alone when
    /// `from_region` does not answer: a warning says so). Both sources are
    /// read before anything changes. The group's maximum is raised when it
    /// could not hold that capacity.
    pub fn match_capacity(&self, from_region: &str, to_region: &str) -> Result<Scaled, Error> {
        let mut warnings = Vec::new();
        let mut source = |what: String, read: Result<u32, Error>, floor: u32, param: &str| {
            source_or_floor(&what, read, floor, param, (from_region, to_region), &mut warnings)
        };
        let asg = match &self.asg {
            Some(name) => Some(source(
                format!("Auto Scaling group {name}"),
                autoscaling::describe_group(from_region, name).map(|g| g.desired_capacity),
                self.asg_floor,
                "asg_min_capacity",
            )?),
            None => None,
        };
        let ecs = match &self.ecs {
            Some((cluster, name)) => Some(source(
                format!("ECS service {cluster}/{name}"),
                ecs::describe_service(from_region, cluster, name).map(|s| s.desired_count),
                self.ecs_floor,
                "ecs_min_count",
            )?),
            None => None,
        };
        let mut out = self.scale(to_region, asg, ecs)?;
        warnings.append(&mut out.warnings);
        out.warnings = warnings;
        Ok(out)
    }

    /// Scales `region`'s group and service to these counts (a standby
    /// region back down after traffic left it).
    pub fn scale_to(&self, region: &str, asg_desired: u32, ecs_desired: u32) -> Result<Scaled, Error> {
        self.scale(region, Some(asg_desired), Some(ecs_desired))
    }

    /// Scales `region`'s group to `asg_desired` (its maximum raised, with a
    /// warning, when it could not hold it) and its service to `ecs_desired`,
    /// keeping what each had before.
    fn scale(&self, region: &str, asg_desired: Option<u32>, ecs_desired: Option<u32>) -> Result<Scaled, Error> {
        let mut out = Scaled::default();
        if let (Some(name), Some(desired)) = (&self.asg, asg_desired) {
            let group = autoscaling::describe_group(region, name)?;
            if group.max_size < desired {
                out.warnings
                    .push(format!("Auto Scaling group {name} in {region} had a maximum of {} below the {desired} needed: raised to {desired}", group.max_size));
            }
            out.asg_before = Some(RestoreCapacity::of(&group));
            autoscaling::set_capacity(region, name, autoscaling::capacity_for(&group, desired))?;
            out.asg_desired = Some(desired);
        }
        if let (Some((cluster, name)), Some(desired)) = (&self.ecs, ecs_desired) {
            let service = ecs::describe_service(region, cluster, name)?;
            out.ecs_before = Some(RestoreCount::of(&service));
            ecs::set_desired_count(region, cluster, name, desired)?;
            out.ecs_desired = Some(desired);
        }
        Ok(out)
    }

    /// Waits until `region`'s group holds its capacity in service and its
    /// service is steady.
    pub fn wait(&self, region: &str, timeout: Duration) -> Result<(), Error> {
        if let Some(name) = &self.asg {
            autoscaling::wait_in_service(region, name, timeout)?;
        }
        if let Some((cluster, name)) = &self.ecs {
            ecs::wait_stable(region, cluster, name, timeout)?;
        }
        Ok(())
    }
}

/// The desired capacity `what` holds in the source region (`read`), at
/// least `floor`; `floor` (with a warning) when the source region does not
/// answer; `capacity-unknown` when it does not and there is no floor
/// (`param` names the runbook's parameter that sets it).
fn source_or_floor(what: &str, read: Result<u32, Error>, floor: u32, param: &str, (from, to): (&str, &str), warnings: &mut Vec<String>) -> Result<u32, Error> {
    match read {
        Ok(d) => Ok(d.max(floor)),
        Err(e) if e.is_retryable() && floor > 0 => {
            warnings.push(format!("{what} in {from} did not answer: {to}'s is scaled to the floor of {floor}"));
            Ok(floor)
        }
        Err(e) if e.is_retryable() => Err(Error::new(
            "capacity-unknown",
            format!(
                "the desired capacity of {what} in {from} cannot be read (the region does not answer), and no floor is set: set the runbook's {param} \
                 to what {to} must hold"
            ),
        )),
        Err(e) => Err(e.context(format!("reading the desired capacity of {what} in {from}"))),
    }
}
