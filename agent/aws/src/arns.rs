//! RDS instance ARNs this agent has seen in its own describes. An ARN is
//! made of the partition, account, region and identifier only, so the ARN
//! seen for (region, identifier) stays that instance's ARN for these
//! credentials (an instance deleted and made again under its name gets the
//! same one). A promotion's first attempt takes the replica's ARN from here
//! (the preflight described it a moment ago) for its intent tag instead of
//! describing the replica again: one round trip instead of two.

use std::collections::HashMap;
use std::sync::Mutex;

/// Instance ARNs by (region, identifier).
#[derive(Debug, Default)]
pub struct InstanceArns {
    arns: Mutex<HashMap<(String, String), String>>,
}

impl InstanceArns {
    /// The ARN seen for instance `id` in `region`, if any.
    pub fn get(&self, region: &str, id: &str) -> Option<String> {
        self.arns.lock().unwrap_or_else(|p| p.into_inner()).get(&(region.to_string(), id.to_string())).cloned()
    }

    /// Keeps `arn` as the ARN of instance `id` in `region` (an empty one is not kept).
    pub fn put(&self, region: &str, id: &str, arn: &str) {
        if arn.is_empty() {
            return;
        }
        self.arns.lock().unwrap_or_else(|p| p.into_inner()).insert((region.to_string(), id.to_string()), arn.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_by_region_and_identifier() {
        let a = InstanceArns::default();
        assert_eq!(a.get("us-west-2", "db"), None);
        a.put("us-west-2", "db", "arn:aws:rds:us-west-2:000000000000:db:db");
        a.put("us-east-1", "other", "");
        assert_eq!(a.get("us-west-2", "db").as_deref(), Some("arn:aws:rds:us-west-2:000000000000:db:db"));
        assert_eq!(a.get("us-east-1", "db"), None, "another region is another instance");
        assert_eq!(a.get("us-east-1", "other"), None, "an empty ARN is not kept");
    }
}
