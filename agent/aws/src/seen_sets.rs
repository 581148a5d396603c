//! Route 53 record sets as this agent last read them, by (zone id, name). A
//! first attempt at shifting weights sends them back as the `DELETE` half of
//! a compare-and-swap change batch (`DELETE` each set exactly as it was read,
//! `CREATE` it with its new weight): Route 53 applies a batch whole or not at
//! all, and refuses a `DELETE` that does not match the set it has in every
//! field, so the batch lands only if nothing changed since the read. One
//! round trip instead of two (no read before the change); refused, the
//! change reads the sets and `UPSERT`s as before. A set is taken out when
//! used (a change makes what was read stale), and the cache is bounded.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_route53::types::ResourceRecordSet;

/// The most names kept; past it the cache starts again empty (a miss costs
/// a read, never a wrong change).
const MOST: usize = 1024;

/// Record sets by (zone id, fully qualified name).
#[derive(Debug, Default)]
pub struct SeenSets {
    sets: Mutex<HashMap<(String, String), Vec<ResourceRecordSet>>>,
}

impl SeenSets {
    /// Keeps `sets` as the record sets named `name` (fully qualified) in
    /// zone `zone_id`, as just read (none: the name has no sets).
    pub fn put(&self, zone_id: &str, name: &str, sets: Vec<ResourceRecordSet>) {
        let mut all = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        if all.len() >= MOST {
            all.clear();
        }
        all.insert((zone_id.to_string(), name.to_string()), sets);
    }

    /// The sets last read for `name` in `zone_id`, taken out (a change made
    /// with them, or refused, leaves them stale).
    pub fn take(&self, zone_id: &str, name: &str) -> Option<Vec<ResourceRecordSet>> {
        self.sets.lock().unwrap_or_else(|p| p.into_inner()).remove(&(zone_id.to_string(), name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_route53::types::RrType;

    fn set(name: &str) -> ResourceRecordSet {
        ResourceRecordSet::builder().name(name).r#type(RrType::Cname).build().unwrap()
    }

    #[test]
    fn taken_once_by_zone_and_name() {
        let s = SeenSets::default();
        s.put("Z1", "app.example.", vec![set("app.example.")]);
        s.put("Z1", "empty.example.", Vec::new());
        assert_eq!(s.take("Z2", "app.example."), None, "another zone is another name");
        assert_eq!(s.take("Z1", "app.example.").map(|v| v.len()), Some(1));
        assert_eq!(s.take("Z1", "app.example."), None, "taken once");
        assert_eq!(s.take("Z1", "empty.example."), Some(Vec::new()), "a name read with no sets is kept as such");
    }

    #[test]
    fn bounded() {
        let s = SeenSets::default();
        for i in 0..MOST + 1 {
            s.put("Z1", &format!("n{i}."), Vec::new());
        }
        assert!(s.sets.lock().unwrap().len() <= MOST);
        assert!(s.take("Z1", &format!("n{MOST}.")).is_some(), "the newest is kept");
    }
}
