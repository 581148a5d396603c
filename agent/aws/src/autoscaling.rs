//! EC2 Auto Scaling: describe a group, set its capacity, wait until it holds
//! that capacity in service.
//!
//! Setting a capacity is idempotent by nature (`UpdateAutoScalingGroup`
//! takes absolute sizes), so the SDK's own retries are fine; and what is
//! already so is not sent at all, so a repeated step changes nothing and
//! leaves no second entry in CloudTrail.
//!
//! Emulator notes (moto's server serves Auto Scaling for the tests):
//! instances are `InService` and `Healthy` as soon as the desired capacity
//! rises, and gone as soon as it falls (AWS takes minutes; the waiter
//! handles both).

use std::time::Duration;

use crate::error::from_sdk;
use crate::wait::poll;
use crate::{CapabilityError, Clients};

pub use drover_cloud::autoscaling::{Capacity, GroupInstance, ScalingGroup, capacity_change};

fn size(v: Option<i32>) -> u32 {
    v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
}

fn group(region: &str, g: &aws_sdk_autoscaling::types::AutoScalingGroup) -> ScalingGroup {
    ScalingGroup {
        name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
        arn: g.auto_scaling_group_arn().unwrap_or_default().to_string(),
        region: region.to_string(),
        min_size: size(g.min_size()),
        max_size: size(g.max_size()),
        desired_capacity: size(g.desired_capacity()),
        instances: g
            .instances()
            .iter()
            .map(|i| GroupInstance {
                id: i.instance_id().unwrap_or_default().to_string(),
                lifecycle_state: i.lifecycle_state().map(|s| s.as_str().to_string()).unwrap_or_default(),
                health_status: i.health_status().unwrap_or_default().to_string(),
                availability_zone: i.availability_zone().unwrap_or_default().to_string(),
            })
            .collect(),
    }
}

/// Describes group `name` in `region`; none is `group-not-found`.
pub async fn describe_group(c: &Clients, region: &str, name: &str) -> Result<ScalingGroup, CapabilityError> {
    let out = c
        .autoscaling(region)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(|e| from_sdk("autoscaling", "DescribeAutoScalingGroups", region, name, e))?;
    out.auto_scaling_groups().iter().find(|g| g.auto_scaling_group_name() == Some(name)).map(|g| group(region, g)).ok_or_else(|| {
        CapabilityError::new(
            "autoscaling",
            "DescribeAutoScalingGroups",
            region,
            name,
            "group-not-found",
            format!(
                "no Auto Scaling group '{name}' in {region}; check the group's name and region (aws autoscaling describe-auto-scaling-groups --region {region}) and the runbook's parameters"
            ),
        )
    })
}

/// Sets the capacity of group `name` in `region`: sizes not given stay as
/// they are; a desired capacity outside the bounds the group would end with
/// is refused (`invalid-capacity`, nothing sent); a capacity already so is
/// not sent. Returns the group after the change (its instances follow:
/// [`wait_in_service`]).
pub async fn set_capacity(c: &Clients, region: &str, name: &str, capacity: &Capacity) -> Result<ScalingGroup, CapabilityError> {
    const OP: &str = "UpdateAutoScalingGroup";
    let now = describe_group(c, region, name).await?;
    let invalid = |why: String| CapabilityError::new("autoscaling", OP, region, name, "invalid-capacity", format!("group '{name}' in {region}: {why}"));
    let ((min, max, desired), changed) = capacity_change(&now, capacity).map_err(invalid)?;
    if !changed {
        tracing::debug!(group = name, region, min, max, desired, "the group already has this capacity; nothing sent");
        return Ok(now);
    }
    let int = |v: u32| i32::try_from(v).map_err(|_| invalid(format!("{v} is larger than Auto Scaling takes")));
    c.autoscaling(region)
        .update_auto_scaling_group()
        .auto_scaling_group_name(name)
        .min_size(int(min)?)
        .max_size(int(max)?)
        .desired_capacity(int(desired)?)
        .send()
        .await
        .map_err(|e| from_sdk("autoscaling", OP, region, name, e))?;
    tracing::info!(group = name, region, min, max, desired, was = now.desired_capacity, "set the group's capacity");
    describe_group(c, region, name).await
}

/// Waits until group `name` in `region` holds at least its desired capacity
/// of instances `InService` and `Healthy`, polling with backoff for at most
/// `timeout` (then `timeout`, retryable). Returns the group.
pub async fn wait_in_service(c: &Clients, region: &str, name: &str, timeout: Duration) -> Result<ScalingGroup, CapabilityError> {
    let last = std::sync::Mutex::new(None::<(u32, u32, usize)>);
    let found = poll(timeout, || {
        let last = &last;
        async move {
            let g = describe_group(c, region, name).await?;
            *last.lock().unwrap_or_else(|p| p.into_inner()) = Some((g.in_service(), g.desired_capacity, g.instances.len()));
            Ok::<_, CapabilityError>(g.at_capacity().then_some(g))
        }
    })
    .await?;
    found.ok_or_else(|| {
        let seen = match *last.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((serving, desired, all)) => format!("{serving} of its desired {desired} instances in service ({all} in the group)"),
            None => "not been read".to_string(),
        };
        CapabilityError::new(
            "autoscaling",
            "DescribeAutoScalingGroups",
            region,
            name,
            "timeout",
            format!(
                "group '{name}' in {region} has {seen} after {} s; see its scaling activities (aws autoscaling describe-scaling-activities --auto-scaling-group-name {name} --region {region})",
                timeout.as_secs()
            ),
        )
        .retryable()
    })
}
