//! RDS: DB instances and snapshots, replica lag, Aurora clusters and global
//! databases.

/// An RDS DB instance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DbInstance {
    /// Identifier.
    pub identifier: String,
    /// ARN.
    pub arn: String,
    /// Region.
    pub region: String,
    /// Status (`available`, ...).
    pub status: String,
    /// Engine.
    pub engine: String,
    /// Engine version.
    pub engine_version: String,
    /// Endpoint address.
    pub endpoint: Option<String>,
    /// Endpoint port.
    pub port: Option<u16>,
    /// Replica source (ARN or identifier), for a read replica.
    pub replica_source: Option<String>,
    /// Read replicas.
    pub replicas: Vec<String>,
}

/// An RDS DB snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DbSnapshot {
    /// Identifier.
    pub identifier: String,
    /// ARN.
    pub arn: String,
    /// Region.
    pub region: String,
    /// Status.
    pub status: String,
    /// Source instance.
    pub instance: String,
    /// Engine of the data, e.g. `postgres`.
    pub engine: String,
    /// Its engine version.
    pub engine_version: String,
}

/// A DB snapshot and when the data in it was taken.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotInfo {
    /// The snapshot.
    pub snapshot: DbSnapshot,
    /// When the data was taken (seconds and nanoseconds since the Unix
    /// epoch): for a copy, when the original snapshot was; the age of this is
    /// the RPO a restore from it gives.
    pub taken: (i64, u32),
}

/// A read replica's lag, as CloudWatch last reported it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LagReading {
    /// The lag in seconds (RDS reports -1 while replication is broken or
    /// stopped).
    pub seconds: f64,
    /// How old the reading is, in seconds.
    pub age_seconds: u64,
}

/// An Aurora global database.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GlobalCluster {
    /// Its identifier.
    pub identifier: String,
    /// Its ARN.
    pub arn: String,
    /// `available`, `failing-over`, `switching-over`, ...
    pub status: String,
    /// `aurora-postgresql`, `aurora-mysql`.
    pub engine: String,
    /// Its member clusters.
    pub members: Vec<GlobalMember>,
    /// The cluster a failover or switchover under way makes the writer
    /// (from its `FailoverState`), if one is under way.
    pub moving_to: Option<String>,
}

/// A cluster of a global database.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GlobalMember {
    /// The cluster's ARN.
    pub cluster_arn: String,
    /// Its region (from the ARN).
    pub region: String,
    /// Whether it is the writer.
    pub writer: bool,
}

impl GlobalCluster {
    /// The writer member, if there is one.
    pub fn writer(&self) -> Option<&GlobalMember> {
        self.members.iter().find(|m| m.writer)
    }

    /// Whether a failover or switchover is under way.
    pub fn moving(&self) -> bool {
        MOVING.contains(&self.status.as_str()) || self.moving_to.is_some()
    }
}

/// Global database statuses of a writer move under way.
pub const MOVING: &[&str] = &["failing-over", "switching-over"];

/// How to move the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum GlobalFailoverMode {
    /// Planned: no data lost.
    Switchover,
    /// Unplanned: the writer is down; unreplicated writes are lost.
    Failover,
}

impl GlobalFailoverMode {
    /// The API operation that does it.
    pub fn operation(self) -> &'static str {
        match self {
            GlobalFailoverMode::Switchover => "SwitchoverGlobalCluster",
            GlobalFailoverMode::Failover => "FailoverGlobalCluster",
        }
    }
}

/// An Aurora DB cluster in one region.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DbCluster {
    /// Its identifier.
    pub identifier: String,
    /// Its ARN.
    pub arn: String,
    /// The region it lives in.
    pub region: String,
    /// `available`, `failing-over`, ...
    pub status: String,
    /// `aurora-postgresql`, `aurora-mysql`.
    pub engine: String,
    /// The writer endpoint, once there is one.
    pub endpoint: Option<String>,
    /// The reader endpoint, once there is one.
    pub reader_endpoint: Option<String>,
    /// Its instances: (identifier, whether it is the writer).
    pub members: Vec<(String, bool)>,
    /// The global database it belongs to (ARN or identifier), if any.
    pub global_cluster: Option<String>,
}

/// What a promotion attempt finds when it looks at the replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromotionState {
    /// No replication source: the instance is standalone (promoted, or never
    /// a replica). Nothing to send.
    Standalone,
    /// Still a replica, in a transition, and tagged with this step's
    /// idempotency key: the promotion an earlier attempt of this step asked
    /// for is under way. Nothing to send; wait for it.
    OursUnderWay,
    /// Still a replica and `available`: a promotion can be requested.
    Promotable,
    /// Still a replica, but busy with something else (`backing-up`,
    /// `modifying`, `rebooting`, ...): RDS refuses a promotion now.
    Busy,
}

/// Decides what a promotion attempt of the step with idempotency key `idem`
/// does, from the instance as described and its `drover:promoted-by` tag.
/// Only a tag equal to `idem` counts: a tag left by another run, or by hand,
/// proves nothing about this one.
///
/// Used by the AWS backend and by the simulated cloud alike, so that the
/// simulation tests the rule the agent runs.
pub fn promotion_state(i: &DbInstance, promoted_by: Option<&str>, idem: &str) -> PromotionState {
    if i.replica_source.is_none() {
        return PromotionState::Standalone;
    }
    // The power test's switch: before the fix, a refusal of any kind was
    // taken for a promotion under way.
    let ours = promoted_by == Some(idem) || drover_replay::revert::reverted(drover_replay::revert::Fix::BusyPromotionRefused);
    match i.status.as_str() {
        "available" => PromotionState::Promotable,
        _ if ours => PromotionState::OursUnderWay,
        _ => PromotionState::Busy,
    }
}
