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

    /// Whether this is failover record `f` (its set identifier and role,
    /// pointing at its target, tied to its health check).
    pub fn is_failover(&self, f: &FailoverRecord) -> bool {
        self.set_identifier.as_deref() == Some(f.set_identifier.as_str())
            && self.failover.as_deref() == Some(f.role.as_str())
            && self.health_check == f.health_check
            && self.values.iter().any(|v| same_host(v, &f.target))
    }
}

/// A failover CNAME a runbook asks for (`route53.upsert-failover`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailoverRecord {
    /// Primary (serves while healthy) or secondary.
    pub role: FailoverRole,
    /// The set identifier of this side.
    pub set_identifier: String,
    /// The host name it points at.
    pub target: String,
    /// The health check it is tied to (a primary needs one to fail over).
    pub health_check: Option<String>,
    /// TTL in seconds.
    pub ttl: u32,
}

impl FailoverRecord {
    /// The record set it is, as record `name`.
    pub fn record_set(&self, name: &str) -> RecordSet {
        RecordSet {
            name: fqdn(name),
            record_type: "CNAME".into(),
            ttl: Some(self.ttl),
            set_identifier: Some(self.set_identifier.clone()),
            weight: None,
            values: vec![self.target.clone()],
            failover: Some(self.role.as_str().into()),
            health_check: self.health_check.clone(),
        }
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

/// `names` fully qualified (see [`fqdn`]), each once, in their first order:
/// the names `route53.get-records-of` answers for, in its order.
pub fn distinct_names(names: &[String]) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    names.iter().map(|n| fqdn(n)).filter(|f| seen.insert(f.clone())).collect()
}

/// The most changes Route 53 takes in one change batch.
pub const MAX_BATCH: usize = 1000;

/// One change of a batch (`route53.change-records`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum RecordChange {
    /// Point the simple CNAME `name` at `target` (as `upsert-cname`).
    PointCname {
        /// The record.
        name: String,
        /// The host it points at.
        target: String,
    },
    /// Give the weighted records `name` these weights (as `set-weights`).
    SetWeights {
        /// The records' name.
        name: String,
        /// Their new weights.
        targets: Vec<WeightedTarget>,
    },
}

impl RecordChange {
    /// The record name it changes.
    pub fn name(&self) -> &str {
        match self {
            RecordChange::PointCname { name, .. } | RecordChange::SetWeights { name, .. } => name,
        }
    }

    /// The record sets it writes at most (one per weighted target).
    fn size(&self) -> usize {
        match self {
            RecordChange::PointCname { .. } => 1,
            RecordChange::SetWeights { targets, .. } => targets.len(),
        }
    }
}

/// Why `changes` cannot go to Route 53 as one change batch, if they cannot:
/// a name changed twice, or more than [`MAX_BATCH`] record sets.
pub fn batch_problem(changes: &[RecordChange]) -> Option<String> {
    let size: usize = changes.iter().map(RecordChange::size).sum();
    if size > MAX_BATCH {
        return Some(format!("{size} record sets in one batch; Route 53 takes at most {MAX_BATCH}. Nothing was changed; split them"));
    }
    let mut seen = std::collections::BTreeSet::new();
    changes
        .iter()
        .map(|c| fqdn(c.name()))
        .find(|f| !seen.insert(f.clone()))
        .map(|f| format!("{f} is changed twice in one batch; name each record once. Nothing was changed"))
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    #[test]
    fn a_batch_names_each_record_once_and_fits_route53() {
        let r = |n: &str| RecordChange::PointCname { name: n.to_string(), target: "t.example".to_string() };
        let w = |n: &str| RecordChange::SetWeights { name: n.to_string(), targets: vec![] };
        assert_eq!(batch_problem(&[r("a.example"), r("b.example"), w("app.example")]), None);
        let twice = batch_problem(&[r("a.example"), w("A.example.")]).unwrap_or_default();
        assert!(twice.contains("a.example. is changed twice"), "{twice}");
        let many: Vec<_> = (0..=MAX_BATCH).map(|i| r(&format!("r{i}.example"))).collect();
        assert!(batch_problem(&many).unwrap_or_default().contains("at most 1000"));
    }

    #[test]
    fn names_are_read_once_each_in_their_first_order() {
        let names: Vec<String> = ["b.example", "A.example.", "b.example.", "a.example"].map(String::from).to_vec();
        assert_eq!(distinct_names(&names), ["b.example.", "a.example."]);
    }
}
