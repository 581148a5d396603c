//! Amazon ECS: a service's desired and running tasks.

/// An ECS service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EcsService {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// Its cluster, as given.
    pub cluster: String,
    /// Its region.
    pub region: String,
    /// `ACTIVE`, `DRAINING` or `INACTIVE`.
    pub status: String,
    /// Tasks asked for.
    pub desired_count: u32,
    /// Tasks running.
    pub running_count: u32,
    /// Tasks starting.
    pub pending_count: u32,
    /// Deployments under way.
    pub deployments: u32,
    /// The primary deployment's rollout state, when reported.
    pub rollout_state: Option<String>,
}

/// Where a service stands for `wait-stable`: one rule for every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Steadiness {
    /// Running equals desired, nothing pending, one deployment.
    Steady,
    /// Still moving.
    Moving,
    /// It will not get there by waiting (why).
    Failed(String),
}

impl EcsService {
    /// Whether it is steady, moving or failed.
    pub fn steadiness(&self) -> Steadiness {
        if self.status != "ACTIVE" {
            return Steadiness::Failed(format!("service {} is {}, not ACTIVE", self.name, self.status));
        }
        if self.rollout_state.as_deref() == Some("FAILED") {
            return Steadiness::Failed(format!("the deployment of service {} failed (rollout state FAILED); see its events", self.name));
        }
        if self.running_count == self.desired_count && self.pending_count == 0 && self.deployments <= 1 { Steadiness::Steady } else { Steadiness::Moving }
    }

    /// `CLUSTER/SERVICE`: the resource a grant names.
    pub fn resource(cluster: &str, name: &str) -> String {
        format!("{}/{name}", cluster.rsplit('/').next().unwrap_or(cluster))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(status: &str, desired: u32, running: u32, pending: u32, deployments: u32, rollout: Option<&str>) -> EcsService {
        EcsService {
            name: "web".into(),
            arn: "arn".into(),
            cluster: "c".into(),
            region: "r".into(),
            status: status.into(),
            desired_count: desired,
            running_count: running,
            pending_count: pending,
            deployments,
            rollout_state: rollout.map(str::to_string),
        }
    }

    #[test]
    fn steady_moving_or_failed() {
        assert_eq!(svc("ACTIVE", 3, 3, 0, 1, Some("COMPLETED")).steadiness(), Steadiness::Steady);
        assert_eq!(svc("ACTIVE", 3, 1, 2, 1, None).steadiness(), Steadiness::Moving);
        assert_eq!(svc("ACTIVE", 3, 3, 0, 2, None).steadiness(), Steadiness::Moving);
        assert!(matches!(svc("ACTIVE", 3, 0, 0, 1, Some("FAILED")).steadiness(), Steadiness::Failed(_)));
        assert!(matches!(svc("DRAINING", 0, 0, 0, 1, None).steadiness(), Steadiness::Failed(_)));
        assert_eq!(EcsService::resource("arn:aws:ecs:us-west-2:1:cluster/dr", "web"), "dr/web");
    }
}
