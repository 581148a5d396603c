//! Simulated Amazon Route 53: hosted zones, record sets (simple, weighted,
//! failover) and health checks. Changes are INSYNC at once; a change that
//! would leave things as they are changes nothing, as with the real
//! capability.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Cloud, Target, aws_error};
use crate::scenario::Route53Seed;
use drover_cloud::CloudError;
use drover_cloud::route53::{FailoverRecord, HealthCheck, RecordChange, RecordSet, WeightedTarget, batch_problem, distinct_names, fqdn, same_host};

const GLOBAL: &str = "global";

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Route53 {
    /// Zone name (no trailing dot; `private:NAME` for a private zone) → its
    /// record sets.
    pub(crate) zones: BTreeMap<String, Vec<RecordSet>>,
    /// Zone id → its key in `zones`.
    #[serde(skip)]
    ids: BTreeMap<String, String>,
    pub(crate) health_checks: BTreeMap<String, HealthCheck>,
    /// Health checks that turn unhealthy at a given simulated time (ms).
    #[serde(skip)]
    fails_at: BTreeMap<String, i64>,
}

fn zone_key(zone: &str) -> String {
    zone.trim_end_matches('.').to_ascii_lowercase()
}

impl Route53 {
    pub(crate) fn load(&mut self, seed: &Route53Seed, now: i64) -> Result<(), String> {
        for z in &seed.zones {
            let key = if z.private { format!("private:{}", zone_key(&z.name)) } else { zone_key(&z.name) };
            if let Some(id) = &z.id {
                self.ids.insert(id.clone(), key.clone());
            }
            self.zones.entry(key).or_default();
        }
        for r in &seed.records {
            let key = match self.key(&r.zone) {
                Ok(Some(key)) => key,
                Ok(None) => return Err(format!("route53 record {}: zone {} is not in the scenario", r.name, r.zone)),
                Err((_, e)) => return Err(format!("route53 record {}: {e}", r.name)),
            };
            let sets = self.zones.entry(key).or_default();
            sets.push(RecordSet {
                name: fqdn(&r.name),
                record_type: r.record_type.clone(),
                ttl: Some(r.ttl),
                set_identifier: r.set_identifier.clone(),
                weight: r.weight,
                values: r.values.clone(),
                failover: None,
                health_check: None,
            });
        }
        for h in &seed.health_checks {
            let check = HealthCheck {
                id: h.id.clone(),
                kind: h.kind.clone(),
                target: h.target.clone(),
                port: Some(443),
                path: Some("/health".into()),
                disabled: h.disabled,
                inverted: h.inverted,
                status: h.status.clone(),
                reports: vec![format!("us-east-1: {}", if h.status == "unhealthy" { "Failure: HTTP 503" } else { "Success: HTTP 200" })],
            };
            self.health_checks.insert(h.id.clone(), check);
            if let Some(after) = h.unhealthy_after_seconds {
                self.fails_at.insert(h.id.clone(), now + (after as i64) * 1000);
            }
        }
        Ok(())
    }

    /// The key of the zone `zone` names, as the agent resolves it: an id
    /// (`Z...`, `/hostedzone/...`), `private:NAME`, `public:NAME`, or a name
    /// only one zone has (two: `AmbiguousHostedZone`). None: no such zone.
    fn key(&self, zone: &str) -> Result<Option<String>, (&'static str, String)> {
        let zone = zone.trim();
        let by_id = |id: &str| self.ids.get(id).cloned();
        if let Some(id) = zone.strip_prefix("/hostedzone/") {
            return Ok(by_id(id));
        }
        if zone.starts_with('Z') && zone.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
            return Ok(by_id(zone));
        }
        let exists = |k: String| self.zones.contains_key(&k).then_some(k);
        match zone.split_once(':') {
            Some(("private", n)) => Ok(exists(format!("private:{}", zone_key(n)))),
            Some(("public", n)) => Ok(exists(zone_key(n))),
            Some((q, _)) => Err(("bad-request", format!("'{zone}' has the qualifier '{q}:'; write private:NAME, public:NAME, NAME or a zone id"))),
            None => match (exists(zone_key(zone)), exists(format!("private:{}", zone_key(zone)))) {
                (Some(_), Some(_)) => Err((
                    "AmbiguousHostedZone",
                    format!(
                        "2 hosted zones are named {}: a private and a public one; nothing was changed; name the one to change as private:{0} or public:{0}, or by its id",
                        fqdn(zone)
                    ),
                )),
                (public, private) => Ok(public.or(private)),
            },
        }
    }

    fn zone(&mut self, t: &Target, zone: &str) -> Result<&mut Vec<RecordSet>, CloudError> {
        let key = self.key(zone).map_err(|(code, e)| aws_error(t, code, &e, false))?;
        key.and_then(|k| self.zones.get_mut(&k)).ok_or_else(|| aws_error(t, "NoSuchHostedZone", &format!("no hosted zone {zone}"), false))
    }
}

fn target<'a>(operation: &'static str, api: &'static str, resource: &'a str) -> Target<'a> {
    Target { service: "route53", operation, api, region: GLOBAL, resource }
}

/// Replaces the record set `name`/`set_identifier` (or adds it); whether it changed.
fn upsert(sets: &mut Vec<RecordSet>, new: RecordSet) -> bool {
    match sets.iter_mut().find(|r| r.name == new.name && r.set_identifier == new.set_identifier && r.record_type == new.record_type) {
        Some(r) if *r == new => false,
        Some(r) => {
            *r = new;
            true
        }
        None => {
            sets.push(new);
            true
        }
    }
}

/// Points the simple CNAME `name` among `sets` at `value`, as Route 53
/// would UPSERT it (refused beside weighted CNAMEs or records of another
/// type); whether it changed anything.
fn point_cname(t: &Target, sets: &mut Vec<RecordSet>, name: &str, value: &str, ttl: u32) -> Result<bool, CloudError> {
    let want = fqdn(name);
    if sets.iter().any(|r| r.name == want && r.set_identifier.is_some()) {
        return Err(aws_error(
            t,
            "InvalidChangeBatch",
            &format!(
                "RRSet of type CNAME with DNS name {want} is not permitted because a conflicting RRSet of type CNAME with the same DNS name already exists"
            ),
            false,
        ));
    }
    if let Some(other) = sets.iter().find(|r| r.name == want && r.record_type != "CNAME") {
        return Err(aws_error(
            t,
            "InvalidChangeBatch",
            &format!(
                "RRSet of type CNAME with DNS name {want} is not permitted as it conflicts with other records ({}) with the same DNS name",
                other.record_type
            ),
            false,
        ));
    }
    if sets.iter().any(|r| r.name == want && r.record_type == "CNAME" && r.values.iter().any(|v| same_host(v, value))) {
        return Ok(false);
    }
    let new = RecordSet {
        name: want,
        record_type: "CNAME".into(),
        ttl: Some(ttl),
        set_identifier: None,
        weight: None,
        values: vec![value.to_string()],
        failover: None,
        health_check: None,
    };
    Ok(upsert(sets, new))
}

/// Gives the weighted records `name` among `sets` the weights of `targets`,
/// as Route 53 would in one batch; whether it changed anything.
fn apply_weights(t: &Target, sets: &mut Vec<RecordSet>, name: &str, targets: &[WeightedTarget], ttl: u32) -> Result<bool, CloudError> {
    let want = fqdn(name);
    if sets.iter().any(|r| r.name == want && r.set_identifier.is_none()) {
        return Err(aws_error(t, "InvalidChangeBatch", &format!("{want} has a simple record; weighted records cannot share its name"), false));
    }
    let mut changed = false;
    for w in targets {
        let mut found = false;
        for r in sets.iter_mut().filter(|r| r.name == want && r.set_identifier.as_deref() == Some(w.set_identifier.as_str())) {
            found = true;
            if r.weight != Some(w.weight) {
                r.weight = Some(w.weight);
                changed = true;
            }
            if r.record_type == "CNAME" && !w.value.is_empty() && !r.values.iter().any(|v| same_host(v, &w.value)) {
                r.values = vec![w.value.clone()];
                changed = true;
            }
        }
        if found {
            continue;
        }
        if let Some(other) = sets.iter().find(|r| r.name == want && r.record_type != "CNAME") {
            return Err(aws_error(
                t,
                "no-such-weighted-set",
                &format!(
                    "{want} has no weighted record '{}', and its records are of type {}: a CNAME cannot stand beside them",
                    w.set_identifier, other.record_type
                ),
                false,
            ));
        }
        let new = RecordSet {
            name: want.clone(),
            record_type: "CNAME".into(),
            ttl: Some(ttl),
            set_identifier: Some(w.set_identifier.clone()),
            weight: Some(w.weight),
            values: vec![w.value.clone()],
            failover: None,
            health_check: None,
        };
        changed |= upsert(sets, new);
    }
    Ok(changed)
}

impl Cloud {
    /// `route53.get-records`, as the agent's capability behaves, on the simulated cloud.
    pub fn route53_get_records(&mut self, zone: &str, name: &str) -> Result<Vec<RecordSet>, CloudError> {
        self.call(target("get-records", "ListResourceRecordSets", name), |c, t| {
            let want = fqdn(name);
            Ok((c.route53.zone(t, zone)?.iter().filter(|r| r.name == want).cloned().collect(), false))
        })
    }

    /// `route53.upsert-cname`, as the agent's capability behaves, on the simulated cloud.
    pub fn route53_upsert_cname(&mut self, zone: &str, name: &str, value: &str, ttl: u32, timeout_seconds: u32) -> Result<(), CloudError> {
        let _ = timeout_seconds;
        self.call(target("upsert-cname", "ChangeResourceRecordSets", name), |c, t| Ok(((), point_cname(t, c.route53.zone(t, zone)?, name, value, ttl)?)))
    }

    /// `route53.get-records-of`, as the agent's capability behaves, on the simulated cloud.
    pub fn route53_get_records_of(&mut self, zone: &str, names: &[String]) -> Result<Vec<RecordSet>, CloudError> {
        let first = names.first().map(String::as_str).unwrap_or_default();
        self.call(target("get-records-of", "ListResourceRecordSets", first), |c, t| {
            let sets = c.route53.zone(t, zone)?;
            let wants = distinct_names(names);
            Ok((wants.iter().flat_map(|w| sets.iter().filter(move |r| r.name == *w)).cloned().collect(), false))
        })
    }

    /// `route53.change-records`, as the agent's capability behaves, on the
    /// simulated cloud: one change batch, applied whole or not at all.
    pub fn route53_change_records(&mut self, zone: &str, changes: &[RecordChange], ttl: u32, timeout_seconds: u32) -> Result<(), CloudError> {
        let _ = timeout_seconds;
        let first = changes.first().map(RecordChange::name).unwrap_or_default();
        self.call(target("change-records", "ChangeResourceRecordSets", first), |c, t| {
            if let Some(why) = batch_problem(changes) {
                return Err(aws_error(t, "bad-request", &why, false));
            }
            let sets = c.route53.zone(t, zone)?;
            let mut next = sets.clone();
            let mut changed = false;
            for change in changes {
                changed |= match change {
                    RecordChange::PointCname { name, target } => point_cname(t, &mut next, name, target, ttl)?,
                    RecordChange::SetWeights { name, targets } => apply_weights(t, &mut next, name, targets, ttl)?,
                };
            }
            *sets = next;
            Ok(((), changed))
        })
    }

    /// `route53.set-weights`, as the agent's capability behaves, on the
    /// simulated cloud: weights shift on the records of the type that is
    /// there (A, AAAA, alias, CNAME); a set identifier with no record becomes
    /// a weighted CNAME, which Route 53 refuses beside records of another type.
    pub fn route53_set_weights(&mut self, zone: &str, name: &str, targets: &[WeightedTarget], ttl: u32) -> Result<(), CloudError> {
        self.call(target("set-weights", "ChangeResourceRecordSets", name), |c, t| {
            // One change batch: whole or nothing.
            let sets = c.route53.zone(t, zone)?;
            let mut next = sets.clone();
            let changed = apply_weights(t, &mut next, name, targets, ttl)?;
            *sets = next;
            Ok(((), changed))
        })
    }

    /// `route53.delete-cname`, as the agent's capability behaves, on the simulated cloud.
    pub fn route53_delete_cname(&mut self, zone: &str, name: &str) -> Result<(), CloudError> {
        self.call(target("delete-cname", "ChangeResourceRecordSets", name), |c, t| {
            let want = fqdn(name);
            let key = c.route53.key(zone).map_err(|(code, e)| aws_error(t, code, &e, false))?;
            let Some(sets) = key.and_then(|k| c.route53.zones.get_mut(&k)) else {
                return Ok(((), false));
            };
            let before = sets.len();
            sets.retain(|r| !(r.name == want && r.record_type == "CNAME" && r.set_identifier.is_none()));
            Ok(((), sets.len() != before))
        })
    }

    /// `route53.get-health-check`, as the agent's capability behaves, on the simulated cloud.
    pub fn route53_get_health_check(&mut self, id: &str) -> Result<HealthCheck, CloudError> {
        if self.route53.fails_at.get(id).is_some_and(|at| *at <= self.now_ms) {
            self.route53.fails_at.remove(id);
            if let Some(h) = self.route53.health_checks.get_mut(id) {
                h.status = "unhealthy".into();
                h.reports = vec!["us-east-1: Failure: HTTP 503 (simulated incident)".into()];
            }
        }
        self.call(target("get-health-check", "GetHealthCheck", id), |c, t| {
            let h = c.route53.health_checks.get(id).ok_or_else(|| aws_error(t, "NoSuchHealthCheck", &format!("no health check {id}"), false))?;
            Ok((h.clone(), false))
        })
    }

    /// `route53.update-health-check`, as the agent's capability behaves, on the simulated cloud.
    pub fn route53_update_health_check(&mut self, id: &str, disabled: bool, inverted: bool) -> Result<HealthCheck, CloudError> {
        self.call(target("update-health-check", "UpdateHealthCheck", id), |c, t| {
            let h = c.route53.health_checks.get_mut(id).ok_or_else(|| aws_error(t, "NoSuchHealthCheck", &format!("no health check {id}"), false))?;
            let changed = h.disabled != disabled || h.inverted != inverted;
            h.disabled = disabled;
            h.inverted = inverted;
            Ok((h.clone(), changed))
        })
    }

    /// `route53.upsert-failover`, as the agent's capability behaves, on the simulated cloud.
    pub fn route53_upsert_failover(&mut self, zone: &str, name: &str, f: &FailoverRecord) -> Result<(), CloudError> {
        self.call(target("upsert-failover", "ChangeResourceRecordSets", name), |c, t| {
            if let Some(h) = &f.health_check
                && !c.route53.health_checks.contains_key(h)
            {
                return Err(aws_error(t, "NoSuchHealthCheck", &format!("no health check {h}"), false));
            }
            let sets = c.route53.zone(t, zone)?;
            Ok(((), upsert(sets, f.record_set(name))))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::Cloud;
    use crate::Scenario;

    /// As the agent does: a name a private and a public zone share is
    /// refused; a qualifier or an id reaches exactly one zone.
    #[test]
    fn a_private_and_a_public_zone_of_one_name_are_told_apart() {
        let scenario = Scenario::from_toml(
            r#"
            [[route53.zone]]
            name = "orders.example.internal"
            id = "ZPUBLIC1"
            [[route53.zone]]
            name = "orders.example.internal"
            private = true
            id = "ZPRIVATE1"
            [[route53.record]]
            zone = "private:orders.example.internal"
            name = "db.orders.example.internal"
            values = ["inside.example.internal"]
            "#,
        )
        .unwrap();
        let mut cloud = Cloud::new(&scenario).unwrap();
        let name = "db.orders.example.internal";
        let e = cloud.route53_upsert_cname("orders.example.internal", name, "x.example", 60, 30).unwrap_err();
        assert_eq!(e.code, "AmbiguousHostedZone", "{}", e.message);
        assert_eq!(cloud.route53_delete_cname("orders.example.internal", name).unwrap_err().code, "AmbiguousHostedZone");
        assert_eq!(cloud.route53_get_records("ZPRIVATE1", name).unwrap()[0].values, ["inside.example.internal"]);
        assert!(cloud.route53_get_records("public:orders.example.internal", name).unwrap().is_empty());
        cloud.route53_upsert_cname("/hostedzone/ZPUBLIC1", name, "outside.example.com", 60, 30).unwrap();
        assert_eq!(cloud.route53_get_records("public:orders.example.internal", name).unwrap()[0].values, ["outside.example.com"]);
        assert_eq!(cloud.route53_get_records("private:orders.example.internal", name).unwrap()[0].values, ["inside.example.internal"]);
        assert_eq!(cloud.route53_get_records("ZNOSUCH", name).unwrap_err().code, "NoSuchHostedZone");
        assert_eq!(cloud.route53_get_records("secret:orders.example.internal", name).unwrap_err().code, "bad-request");
    }
}
