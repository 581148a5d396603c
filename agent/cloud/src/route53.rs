//! Route 53: record sets, weighted targets, health checks and failover
//! records.

/// One target of a weighted record set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WeightedTarget {
    /// Set identifier.
    pub set_identifier: String,
    /// Weight.
    pub weight: u8,
    /// Value (a host name for a CNAME).
    pub value: String,
}

/// A record set as read back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordSet {
    /// Name, fully qualified with a trailing dot.
    pub name: String,
    /// Type.
    pub record_type: String,
    /// TTL.
    pub ttl: Option<u32>,
    /// Set identifier.
    pub set_identifier: Option<String>,
    /// Weight.
    pub weight: Option<u8>,
    /// Values.
    pub values: Vec<String>,
    /// Failover role (`PRIMARY`, `SECONDARY`), for failover records.
    pub failover: Option<String>,
    /// The health check the record is tied to.
    pub health_check: Option<String>,
}

impl RecordSet {
    /// Whether this is the simple CNAME pointing at `target`: what
    /// [`upsert_cname`] would leave.
    pub fn is_cname_to(&self, target: &str) -> bool {
        self.record_type == "CNAME" && self.set_identifier.is_none() && self.values.iter().any(|v| same_host(v, target))
    }

    /// Whether this is the failover record `set_identifier` with `role`,
    /// pointing at `target`, tied to `health_check`: what
    /// [`upsert_failover`] would leave.
    pub fn is_failover(&self, role: FailoverRole, set_identifier: &str, target: &str, health_check: Option<&str>) -> bool {
        self.set_identifier.as_deref() == Some(set_identifier)
            && self.failover.as_deref() == Some(role.as_str())
            && self.health_check.as_deref() == health_check
            && self.values.iter().any(|v| same_host(v, target))
    }
}

/// `name` with exactly one trailing dot, lowercase.
pub fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_ascii_lowercase())
}

/// Whether host names `a` and `b` are the same (case and trailing dot aside).
pub fn same_host(a: &str, b: &str) -> bool {
    fqdn(a) == fqdn(b)
}

/// A health check as read back, with what its checkers last reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HealthCheck {
    /// Its id.
    pub id: String,
    /// `HTTP`, `HTTPS`, `TCP`, ...
    pub kind: String,
    /// The host name or IP address it checks.
    pub target: String,
    /// Port.
    pub port: Option<u16>,
    /// Path, for HTTP(S) checks.
    pub path: Option<String>,
    /// Disabled (Route 53 then considers it healthy).
    pub disabled: bool,
    /// Inverted (healthy when the target fails).
    pub inverted: bool,
    /// `healthy` when every checker reports success, `unhealthy` when one
    /// reports failure, `unknown` without reports.
    pub status: String,
    /// Each checker's last report: `REGION: STATUS`.
    pub reports: Vec<String>,
}

/// A failover record's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum FailoverRole {
    /// Serves while healthy.
    Primary,
    /// Serves when the primary is unhealthy.
    Secondary,
}

impl FailoverRole {
    /// `PRIMARY` or `SECONDARY`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailoverRole::Primary => "PRIMARY",
            FailoverRole::Secondary => "SECONDARY",
        }
    }
}
