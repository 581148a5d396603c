//! Simulated EC2 Auto Scaling groups: instances a capacity change adds are
//! `Pending` until they settle, then `InService` and `Healthy`; instances a
//! capacity change removes are `Terminating` until they are gone, as AWS
//! documents a group's instance lifecycle.

use serde::Serialize;

use super::{Cloud, Regional, Target, aws_error};
use crate::scenario::AutoscalingSeed;
use drover_cloud::CloudError;
use drover_cloud::autoscaling::{Capacity, GroupInstance, ScalingGroup, capacity_change};

/// One instance and when it is in service (or gone, when terminating).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Member {
    id: String,
    az: String,
    /// In service from then (ms).
    ready_at: i64,
    /// Terminating, gone from then (ms).
    gone_at: Option<i64>,
}

/// A group as the simulated cloud keeps it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Group {
    name: String,
    arn: String,
    region: String,
    min: u32,
    max: u32,
    desired: u32,
    members: Vec<Member>,
}

impl Group {
    fn view(&self, now: i64) -> ScalingGroup {
        let instances = self
            .members
            .iter()
            .filter(|m| m.gone_at.is_none_or(|g| g > now))
            .map(|m| GroupInstance {
                id: m.id.clone(),
                lifecycle_state: match (m.gone_at, m.ready_at <= now) {
                    (Some(_), _) => "Terminating",
                    (None, true) => "InService",
                    (None, false) => "Pending",
                }
                .into(),
                health_status: "Healthy".into(),
                availability_zone: m.az.clone(),
            })
            .collect();
        ScalingGroup {
            name: self.name.clone(),
            arn: self.arn.clone(),
            region: self.region.clone(),
            min_size: self.min,
            max_size: self.max,
            desired_capacity: self.desired,
            instances,
        }
    }

    /// When the group holds its desired capacity in service.
    fn at_capacity_at(&self) -> i64 {
        let mut ready: Vec<i64> = self.members.iter().filter(|m| m.gone_at.is_none()).map(|m| m.ready_at).collect();
        ready.sort_unstable();
        match self.desired {
            0 => i64::MIN,
            n => ready.get(n as usize - 1).copied().unwrap_or(i64::MAX),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Autoscaling {
    pub(crate) groups: Regional<Group>,
}

impl Autoscaling {
    pub(crate) fn load(&mut self, seed: &AutoscalingSeed, now: i64) -> Result<(), String> {
        for g in &seed.groups {
            if g.desired < g.min || g.desired > g.max {
                return Err(format!("autoscaling group {}: desired {} must lie within min {} and max {}", g.name, g.desired, g.min, g.max));
            }
            let members = (0..g.desired)
                .map(|i| Member { id: format!("i-{:017x}", 0xa5_0000 + u64::from(i)), az: format!("{}a", g.region), ready_at: now, gone_at: None })
                .collect();
            let group = Group {
                name: g.name.clone(),
                arn: format!("arn:aws:autoscaling:{}:{}:autoScalingGroup:sim:autoScalingGroupName/{}", g.region, super::ACCOUNT, g.name),
                region: g.region.clone(),
                min: g.min,
                max: g.max,
                desired: g.desired,
                members,
            };
            self.groups.entry(g.region.clone()).or_default().insert(g.name.clone(), group);
        }
        Ok(())
    }
}

impl Cloud {
    fn group(&self, t: &Target, region: &str, name: &str) -> Result<&Group, CloudError> {
        self.autoscaling
            .groups
            .get(region)
            .and_then(|m| m.get(name))
            .ok_or_else(|| aws_error(t, "group-not-found", &format!("no Auto Scaling group named {name} in {region}"), false))
    }

    /// `autoscaling.describe-group`, as the agent's capability behaves, on the simulated cloud.
    pub fn autoscaling_describe_group(&mut self, region: &str, name: &str) -> Result<ScalingGroup, CloudError> {
        let t = Target { service: "autoscaling", operation: "describe-group", api: "DescribeAutoScalingGroups", region, resource: name };
        self.call(t, |c, t| Ok((c.group(t, region, name)?.view(c.now_ms), false)))
    }

    /// `autoscaling.set-capacity`: new instances settle, removed ones terminate.
    pub fn autoscaling_set_capacity(&mut self, region: &str, name: &str, capacity: &Capacity) -> Result<ScalingGroup, CloudError> {
        let t = Target { service: "autoscaling", operation: "set-capacity", api: "UpdateAutoScalingGroup", region, resource: name };
        self.call(t, |c, t| {
            let now = c.now_ms;
            let ready_at = c.ready_at();
            let current = c.group(t, region, name)?.view(now);
            let ((min, max, desired), changed) = capacity_change(&current, capacity).map_err(|why| aws_error(t, "invalid-capacity", &why, false))?;
            if !changed {
                return Ok((current, false));
            }
            let mut fresh = Vec::new();
            let live = c.group(t, region, name)?.members.iter().filter(|m| m.gone_at.is_none()).count() as u32;
            for _ in live..desired {
                fresh.push(Member { id: c.fresh_id("i"), az: format!("{region}a"), ready_at, gone_at: None });
            }
            let Some(g) = c.autoscaling.groups.get_mut(region).and_then(|m| m.get_mut(name)) else {
                return Err(aws_error(t, "group-not-found", &format!("no Auto Scaling group named {name} in {region}"), false));
            };
            (g.min, g.max, g.desired) = (min, max, desired);
            g.members.extend(fresh);
            // Scale-in: the newest instances terminate first.
            let mut excess = live.saturating_sub(desired);
            for m in g.members.iter_mut().rev().filter(|m| m.gone_at.is_none()) {
                if excess == 0 {
                    break;
                }
                m.gone_at = Some(ready_at);
                excess -= 1;
            }
            Ok((g.view(now), true))
        })
    }

    /// `autoscaling.wait-in-service`: simulated time moves to when the group
    /// holds its desired capacity in service.
    pub fn autoscaling_wait_in_service(&mut self, region: &str, name: &str, timeout_seconds: u32) -> Result<ScalingGroup, CloudError> {
        let t = Target { service: "autoscaling", operation: "wait-in-service", api: "DescribeAutoScalingGroups", region, resource: name };
        self.call(t, |c, t| {
            let at = c.group(t, region, name)?.at_capacity_at();
            c.wait_until(t, at, timeout_seconds, &format!("Auto Scaling group {name}'s desired capacity")).map_err(|e| CloudError { retryable: true, ..e })?;
            Ok((c.group(t, region, name)?.view(c.now_ms), false))
        })
    }
}
