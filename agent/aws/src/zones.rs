//! Hosted zone ids, looked up once: every Route 53 record call names its
//! zone (by name, `private:NAME`, `public:NAME` or id) and needs its id, one
//! round trip (`ListHostedZonesByName` or `GetHostedZone`) that a failover's
//! every record step would otherwise repeat. The ids found are kept per set
//! of clients (one set of credentials: the cache is shared by the fenced
//! clients of every call, never across accounts) for [`TTL`], and forgotten
//! at once when a call with a kept id answers `NoSuchHostedZone` (a zone
//! deleted and made again under the same name): the call is then made again
//! with the id looked up afresh (see `route53::in_zone`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a zone id found is trusted without a new lookup (a zone created
/// meanwhile under the same name, making a plain name ambiguous, is seen
/// after at most this long).
pub const TTL: Duration = Duration::from_secs(300);

/// Zone ids by the zone as a runbook names it.
#[derive(Debug, Default)]
pub struct ZoneIds {
    ids: Mutex<HashMap<String, (String, Instant)>>,
}

impl ZoneIds {
    /// The id kept for `zone`, if found less than [`TTL`] ago.
    pub fn get(&self, zone: &str) -> Option<String> {
        let ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.get(zone).filter(|(_, at)| at.elapsed() < TTL).map(|(id, _)| id.clone())
    }

    /// Keeps `id` as the id of `zone`.
    pub fn put(&self, zone: &str, id: &str) {
        self.ids.lock().unwrap_or_else(|p| p.into_inner()).insert(zone.to_string(), (id.to_string(), Instant::now()));
    }

    /// Forgets the id of `zone` (its zone is gone).
    pub fn forget(&self, zone: &str) {
        self.ids.lock().unwrap_or_else(|p| p.into_inner()).remove(zone);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_until_forgotten() {
        let z = ZoneIds::default();
        assert_eq!(z.get("example.internal"), None);
        z.put("example.internal", "Z1");
        assert_eq!(z.get("example.internal").as_deref(), Some("Z1"));
        assert_eq!(z.get("private:example.internal"), None, "another way of naming is another lookup");
        z.forget("example.internal");
        assert_eq!(z.get("example.internal"), None);
    }
}
