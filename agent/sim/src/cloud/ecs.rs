//! Simulated Amazon ECS services: after a change of the desired count, the
//! tasks start (`pending`) or stop and the service settles at the new count
//! (running = desired, nothing pending), as a scaling of a service does on
//! AWS (no new deployment).

use serde::Serialize;

use super::{Cloud, Regional, Target, aws_error};
use crate::scenario::EcsSeed;
use drover_cloud::CloudError;
use drover_cloud::ecs::{EcsService, Steadiness};

/// A service as the simulated cloud keeps it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Service {
    service: EcsService,
    /// Running before the last change (what runs until it settles).
    running_before: u32,
    /// When the last change has settled (ms).
    settles_at: i64,
}

impl Service {
    fn view(&self, now: i64) -> EcsService {
        let mut s = self.service.clone();
        if now >= self.settles_at {
            s.running_count = s.desired_count;
            s.pending_count = 0;
        } else {
            s.running_count = self.running_before.min(s.desired_count);
            s.pending_count = s.desired_count.saturating_sub(s.running_count);
        }
        s
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Ecs {
    /// By region, then `CLUSTER/SERVICE`.
    pub(crate) services: Regional<Service>,
}

impl Ecs {
    pub(crate) fn load(&mut self, seed: &EcsSeed, now: i64) -> Result<(), String> {
        for s in &seed.services {
            let service = EcsService {
                name: s.name.clone(),
                arn: format!("arn:aws:ecs:{}:{}:service/{}/{}", s.region, super::ACCOUNT, s.cluster, s.name),
                cluster: s.cluster.clone(),
                region: s.region.clone(),
                status: "ACTIVE".into(),
                desired_count: s.desired,
                running_count: s.desired,
                pending_count: 0,
                deployments: 1,
                rollout_state: Some("COMPLETED".into()),
            };
            let key = EcsService::resource(&s.cluster, &s.name);
            self.services.entry(s.region.clone()).or_default().insert(key, Service { service, running_before: s.desired, settles_at: now });
        }
        Ok(())
    }
}

impl Cloud {
    fn ecs_service(&self, t: &Target, region: &str, cluster: &str, name: &str) -> Result<&Service, CloudError> {
        self.ecs
            .services
            .get(region)
            .and_then(|m| m.get(&EcsService::resource(cluster, name)))
            .ok_or_else(|| aws_error(t, "service-not-found", &format!("no ECS service {name} in cluster {cluster} in {region}"), false))
    }

    /// `ecs.describe-service`, as the agent's capability behaves, on the simulated cloud.
    pub fn ecs_describe_service(&mut self, region: &str, cluster: &str, name: &str) -> Result<EcsService, CloudError> {
        let resource = EcsService::resource(cluster, name);
        let t = Target { service: "ecs", operation: "describe-service", api: "DescribeServices", region, resource: &resource };
        self.call(t, |c, t| Ok((c.ecs_service(t, region, cluster, name)?.view(c.now_ms), false)))
    }

    /// `ecs.set-desired-count`: the tasks settle at the new count later.
    pub fn ecs_set_desired_count(&mut self, region: &str, cluster: &str, name: &str, desired: u32) -> Result<EcsService, CloudError> {
        let resource = EcsService::resource(cluster, name);
        let t = Target { service: "ecs", operation: "set-desired-count", api: "UpdateService", region, resource: &resource };
        self.call(t, |c, t| {
            let now = c.now_ms;
            let settles_at = c.ready_at();
            let current = c.ecs_service(t, region, cluster, name)?.view(now);
            if current.desired_count == desired {
                return Ok((current, false));
            }
            let Some(s) = c.ecs.services.get_mut(region).and_then(|m| m.get_mut(&EcsService::resource(cluster, name))) else {
                return Err(aws_error(t, "service-not-found", &format!("no ECS service {name} in cluster {cluster} in {region}"), false));
            };
            s.running_before = current.running_count;
            s.service.desired_count = desired;
            s.settles_at = settles_at;
            Ok((s.view(now), true))
        })
    }

    /// `ecs.wait-stable`: simulated time moves to when the service is steady.
    pub fn ecs_wait_stable(&mut self, region: &str, cluster: &str, name: &str, timeout_seconds: u32) -> Result<EcsService, CloudError> {
        let resource = EcsService::resource(cluster, name);
        let t = Target { service: "ecs", operation: "wait-stable", api: "DescribeServices", region, resource: &resource };
        self.call(t, |c, t| {
            let s = c.ecs_service(t, region, cluster, name)?;
            if let Steadiness::Failed(why) = s.view(i64::MAX).steadiness() {
                return Err(aws_error(t, "resource-failed", &why, false));
            }
            let at = s.settles_at;
            c.wait_until(t, at, timeout_seconds, &format!("ECS service {resource}'s steady state")).map_err(|e| CloudError { retryable: true, ..e })?;
            Ok((c.ecs_service(t, region, cluster, name)?.view(c.now_ms), false))
        })
    }
}
