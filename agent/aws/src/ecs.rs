//! Amazon ECS: describe a service, set its desired count, wait until it is
//! steady.
//!
//! Setting a desired count is idempotent by nature (`UpdateService` takes
//! an absolute count), so the SDK's own retries are fine; a count already
//! so is not sent at all.
//!
//! Emulator notes (moto's server serves ECS for the tests): moto 5.1 never
//! starts a new service's tasks (running stays 0, the rest pending); the
//! emulators script starts moto with services that settle at once, as AWS
//! settles them in a minute or two (`chaos/emulators/moto_server.py`).

use std::time::Duration;

use crate::error::from_sdk;
use crate::wait::poll;
use crate::{CapabilityError, Clients};

pub use drover_cloud::ecs::{EcsService, Steadiness};

fn count(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn service(region: &str, cluster: &str, s: &aws_sdk_ecs::types::Service) -> EcsService {
    let primary = s.deployments().iter().find(|d| d.status() == Some("PRIMARY"));
    EcsService {
        name: s.service_name().unwrap_or_default().to_string(),
        arn: s.service_arn().unwrap_or_default().to_string(),
        cluster: cluster.to_string(),
        region: region.to_string(),
        status: s.status().unwrap_or_default().to_string(),
        desired_count: count(s.desired_count()),
        running_count: count(s.running_count()),
        pending_count: count(s.pending_count()),
        deployments: u32::try_from(s.deployments().len()).unwrap_or(u32::MAX),
        rollout_state: primary.and_then(|d| d.rollout_state()).map(|r| r.as_str().to_string()),
    }
}

fn not_found(operation: &'static str, region: &str, cluster: &str, name: &str, why: &str) -> CapabilityError {
    CapabilityError::new(
        "ecs",
        operation,
        region,
        &EcsService::resource(cluster, name),
        "service-not-found",
        format!(
            "no ECS service '{name}' in cluster '{cluster}' in {region} ({why}); check the cluster, service and region (aws ecs list-services --cluster {cluster} --region {region}) and the runbook's parameters"
        ),
    )
}

/// Describes service `name` of `cluster` in `region`. None, one that is
/// `INACTIVE` (deleted), or no such cluster is `service-not-found`.
pub async fn describe_service(c: &Clients, region: &str, cluster: &str, name: &str) -> Result<EcsService, CapabilityError> {
    const OP: &str = "DescribeServices";
    let resource = EcsService::resource(cluster, name);
    let out = match c.ecs(region).describe_services().cluster(cluster).services(name).send().await {
        Ok(out) => out,
        Err(e) => {
            let err = from_sdk("ecs", OP, region, &resource, e);
            if err.is("ClusterNotFoundException") {
                return Err(CapabilityError { request_id: err.request_id, ..not_found(OP, region, cluster, name, "the cluster does not exist") });
            }
            return Err(err);
        }
    };
    if let Some(f) = out.failures().first() {
        let why = format!("ECS reports {}{}", f.reason().unwrap_or("a failure"), f.detail().map(|d| format!(": {d}")).unwrap_or_default());
        if f.reason() == Some("MISSING") {
            return Err(not_found(OP, region, cluster, name, &why));
        }
        if out.services().is_empty() {
            return Err(
                CapabilityError::new("ecs", OP, region, &resource, "describe-failed", format!("ECS could not describe service '{name}': {why}")).retryable()
            );
        }
    }
    let found = out.services().iter().find(|s| s.service_name() == Some(name) || s.service_arn() == Some(name)).or(out.services().first());
    match found {
        Some(s) if s.status() == Some("INACTIVE") => Err(not_found(OP, region, cluster, name, "it is INACTIVE: deleted")),
        Some(s) => Ok(service(region, cluster, s)),
        None => Err(not_found(OP, region, cluster, name, "ECS returned nothing for it")),
    }
}

/// Sets the desired count of service `name` of `cluster` in `region`; a
/// count already so is not sent. Returns the service after the change.
pub async fn set_desired_count(c: &Clients, region: &str, cluster: &str, name: &str, desired: u32) -> Result<EcsService, CapabilityError> {
    const OP: &str = "UpdateService";
    let resource = EcsService::resource(cluster, name);
    let now = describe_service(c, region, cluster, name).await?;
    if now.desired_count == desired {
        tracing::debug!(service = %resource, region, desired, "the service already has this desired count; nothing sent");
        return Ok(now);
    }
    let count = i32::try_from(desired)
        .map_err(|_| CapabilityError::new("ecs", OP, region, &resource, "invalid-count", format!("desired count {desired} is larger than ECS takes")))?;
    let out = c
        .ecs(region)
        .update_service()
        .cluster(cluster)
        .service(name)
        .desired_count(count)
        .send()
        .await
        .map_err(|e| from_sdk("ecs", OP, region, &resource, e))?;
    tracing::info!(service = %resource, region, desired, was = now.desired_count, "set the service's desired count");
    match out.service() {
        Some(s) => Ok(service(region, cluster, s)),
        None => describe_service(c, region, cluster, name).await,
    }
}

/// Waits until service `name` of `cluster` in `region` is steady (running
/// equals desired, none pending, one deployment), polling with backoff for
/// at most `timeout` (then `timeout`, retryable). A failed rollout or a
/// service no longer `ACTIVE` ends the wait at once (`resource-failed`).
pub async fn wait_stable(c: &Clients, region: &str, cluster: &str, name: &str, timeout: Duration) -> Result<EcsService, CapabilityError> {
    const OP: &str = "DescribeServices";
    let resource = EcsService::resource(cluster, name);
    let last = std::sync::Mutex::new(String::from("not read"));
    let found = poll(timeout, || {
        let (last, resource) = (&last, &resource);
        async move {
            let s = describe_service(c, region, cluster, name).await?;
            *last.lock().unwrap_or_else(|p| p.into_inner()) = format!(
                "running {} of {} desired, {} pending, {} deployments{}",
                s.running_count,
                s.desired_count,
                s.pending_count,
                s.deployments,
                s.rollout_state.as_deref().map(|r| format!(", rollout {r}")).unwrap_or_default()
            );
            match s.steadiness() {
                Steadiness::Steady => Ok(Some(s)),
                Steadiness::Moving => Ok(None),
                Steadiness::Failed(why) => Err(CapabilityError::new(
                    "ecs",
                    OP,
                    region,
                    resource,
                    "resource-failed",
                    format!(
                        "{why}: it will not become steady by waiting; see its events (aws ecs describe-services --cluster {cluster} --services {name} --region {region})"
                    ),
                )),
            }
        }
    })
    .await?;
    found.ok_or_else(|| {
        let seen = last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        CapabilityError::new(
            "ecs",
            OP,
            region,
            &resource,
            "timeout",
            format!(
                "service '{name}' of cluster '{cluster}' in {region} is not steady after {} s ({seen}); see its events (aws ecs describe-services --cluster {cluster} --services {name} --region {region})",
                timeout.as_secs()
            ),
        )
        .retryable()
    })
}
