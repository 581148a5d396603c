//! EC2: instances, EBS snapshots and AMIs.

/// An EC2 instance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Instance {
    /// Instance id.
    pub id: String,
    /// Region.
    pub region: String,
    /// State: `pending`, `running`, ...
    pub state: String,
    /// The AMI it was launched from.
    pub image_id: String,
    /// Attached EBS volumes.
    pub volumes: Vec<String>,
}

/// An EBS snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// Snapshot id.
    pub id: String,
    /// Region.
    pub region: String,
    /// State: `pending`, `completed`, `error`.
    pub state: String,
    /// The volume it was taken from.
    pub volume_id: String,
}

/// An AMI.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Image {
    /// Image id.
    pub id: String,
    /// Region.
    pub region: String,
    /// Its name.
    pub name: String,
    /// State: `pending`, `available`, ...
    pub state: String,
    /// Creation time (RFC 3339, as EC2 gives it).
    pub created: String,
}
