//! Amazon Route 53: read record sets, point a CNAME, shift weights (on the
//! records of whatever type holds the name: A, AAAA, alias or CNAME), UPSERT
//! failover records, read and update health checks, wait until a change is
//! INSYNC. Every change is a no-op when the records
//! already say what is asked, so a repeated attempt changes nothing.
//!
//! Emulator note (LocalStack): `GetChange` is INSYNC at once; on AWS it takes
//! seconds. The waiter handles both.

use std::time::Duration;

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover, RrType};

use crate::error::from_sdk;
use crate::once::{create_or_adopt, sdk_retries};
use crate::wait::poll;
use crate::{CapabilityError, Clients};

pub use drover_cloud::route53::{FailoverRecord, FailoverRole, HealthCheck, RecordChange, RecordSet, WeightedTarget, fqdn};
use drover_cloud::route53::{batch_problem, distinct_names, same_host};

const REGION: &str = "global";

fn bad(op: &'static str, resource: &str, e: impl std::fmt::Display) -> CapabilityError {
    CapabilityError::new("route53", op, REGION, resource, "bad-request", e.to_string())
}

/// How a runbook names a hosted zone: by id, or by name, optionally only
/// the private or only the public zone of that name. A private and a public
/// zone may share a name (split-horizon DNS); a plain name must then not be
/// guessed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneRef {
    /// `Z0123456789ABC` or `/hostedzone/Z0123456789ABC`.
    Id(String),
    /// `NAME`, `private:NAME` or `public:NAME`.
    Name {
        /// The zone's name (as written).
        name: String,
        /// Only the private (true) or only the public (false) zone.
        private: Option<bool>,
    },
}

impl ZoneRef {
    /// Reads `zone` as a runbook passes it.
    pub fn parse(zone: &str) -> Result<ZoneRef, String> {
        let zone = zone.trim();
        let id_like = |id: &str| !id.is_empty() && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if let Some(id) = zone.strip_prefix("/hostedzone/") {
            return if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()) {
                Ok(ZoneRef::Id(id.to_string()))
            } else {
                Err(format!("'{zone}' is not a hosted zone id (/hostedzone/ followed by letters and digits)"))
            };
        }
        let (private, name) = match zone.split_once(':') {
            Some(("private", n)) => (Some(true), n),
            Some(("public", n)) => (Some(false), n),
            Some((q, _)) => return Err(format!("'{zone}' has the qualifier '{q}:'; write private:NAME, public:NAME, NAME or a zone id")),
            None if zone.starts_with('Z') && id_like(zone) => return Ok(ZoneRef::Id(zone.to_string())),
            None => (None, zone),
        };
        if name.trim_end_matches('.').is_empty() {
            return Err(format!("'{zone}' names no zone; write NAME, private:NAME, public:NAME or a zone id"));
        }
        Ok(ZoneRef::Name { name: name.to_string(), private })
    }
}

fn kind(private: bool) -> &'static str {
    if private { "private" } else { "public" }
}

/// The one zone among `found` (id, private) named `want` that `zone`
/// (`private` as parsed from it) can mean; none, or more than one, is an
/// error that says how to choose.
fn choose(zone: &str, want: &str, private: Option<bool>, found: &[(String, bool)]) -> Result<String, CapabilityError> {
    let fits: Vec<&(String, bool)> = found.iter().filter(|(_, p)| private.is_none_or(|want_private| *p == want_private)).collect();
    let list = |zs: &[&(String, bool)]| zs.iter().map(|(id, p)| format!("{id} ({})", kind(*p))).collect::<Vec<_>>().join(", ");
    match fits.as_slice() {
        [(id, _)] => Ok(id.clone()),
        [] => {
            let what = private.map(|p| format!("{} ", kind(p))).unwrap_or_default();
            let others = if found.is_empty() { String::new() } else { format!(" (there is: {})", list(&found.iter().collect::<Vec<_>>())) };
            Err(CapabilityError::new(
                "route53",
                "ListHostedZonesByName",
                REGION,
                zone,
                "NoSuchHostedZone",
                format!("no {what}hosted zone named {want}{others}"),
            ))
        }
        many => {
            let how = if private.is_none() && many.iter().any(|(_, p)| *p) && many.iter().any(|(_, p)| !*p) {
                format!("name the one to change as private:{want} or public:{want}, or by its id")
            } else {
                "name the one to change by its id".to_string()
            };
            Err(CapabilityError::new(
                "route53",
                "ListHostedZonesByName",
                REGION,
                zone,
                "AmbiguousHostedZone",
                format!(
                    "{} hosted zones are named {want}: {}; nothing was changed; {how} (and grant that form: zone/private:NAME, zone/ID)",
                    many.len(),
                    list(many)
                ),
            ))
        }
    }
}

/// The id of the hosted zone `zone` names (see [`ZoneRef`]): an id is
/// checked to exist; a name must name exactly one zone (of the kind a
/// `private:`/`public:` qualifier asks for), else nothing is changed. An id
/// these clients found a moment ago is taken without asking again (see
/// [`crate::zones`]).
pub async fn zone_id(c: &Clients, zone: &str) -> Result<String, CapabilityError> {
    if let Some(id) = c.zones().get(zone) {
        return Ok(id);
    }
    let id = look_up_zone(c, zone).await?;
    c.zones().put(zone, &id);
    Ok(id)
}

/// Runs `op` with the id of zone `zone`. When the id was one kept from an
/// earlier lookup and Route 53 answers `NoSuchHostedZone` (the zone was
/// deleted, maybe made again under its name), the id is forgotten, looked
/// up afresh and `op` made once more: Route 53 changed nothing for a zone it
/// does not have.
async fn in_zone<T, F, Fut>(c: &Clients, zone: &str, op: F) -> Result<T, CapabilityError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, CapabilityError>>,
{
    let (id, was_kept) = match c.zones().get(zone) {
        Some(id) => (id, true),
        None => (zone_id(c, zone).await?, false),
    };
    match op(id).await {
        Err(e) if was_kept && e.is("NoSuchHostedZone") => {
            c.zones().forget(zone);
            op(zone_id(c, zone).await?).await
        }
        other => other,
    }
}

/// [`zone_id`] asking Route 53.
async fn look_up_zone(c: &Clients, zone: &str) -> Result<String, CapabilityError> {
    let (name, private) = match ZoneRef::parse(zone).map_err(|e| bad("ListHostedZonesByName", zone, e))? {
        ZoneRef::Id(id) => {
            c.route53().get_hosted_zone().id(&id).send().await.map_err(|e| from_sdk("route53", "GetHostedZone", REGION, zone, e))?;
            return Ok(id);
        }
        ZoneRef::Name { name, private } => (name, private),
    };
    let want = fqdn(&name);
    let mut found: Vec<(String, bool)> = Vec::new();
    let mut next: Option<(String, Option<String>)> = None;
    // Zones come sorted by name: read pages while they may hold more of `want`.
    for _ in 0..20 {
        let (dns_name, zone_id) = next.take().unwrap_or_else(|| (want.clone(), None));
        let out = c
            .route53()
            .list_hosted_zones_by_name()
            .dns_name(&dns_name)
            .set_hosted_zone_id(zone_id)
            .send()
            .await
            .map_err(|e| from_sdk("route53", "ListHostedZonesByName", REGION, zone, e))?;
        let zones = out.hosted_zones();
        found.extend(
            zones
                .iter()
                .filter(|z| fqdn(z.name()) == want)
                .map(|z| (z.id().trim_start_matches("/hostedzone/").to_string(), z.config().is_some_and(|k| k.private_zone()))),
        );
        let more = out.is_truncated() && zones.last().is_some_and(|z| fqdn(z.name()) == want);
        match (more, out.next_dns_name()) {
            (true, Some(n)) => next = Some((n.to_string(), out.next_hosted_zone_id().map(str::to_string))),
            _ => break,
        }
    }
    choose(zone, &want, private, &found)
}

/// The record sets named `name` in zone `zone`.
pub async fn get_records(c: &Clients, zone: &str, name: &str) -> Result<Vec<RecordSet>, CapabilityError> {
    in_zone(c, zone, |id| async move { records_in(c, &id, name).await }).await
}

async fn records_in(c: &Clients, zone_id: &str, name: &str) -> Result<Vec<RecordSet>, CapabilityError> {
    Ok(raw_sets_in(c, zone_id, name).await?.iter().map(record_set).collect())
}

fn record_set(r: &ResourceRecordSet) -> RecordSet {
    RecordSet {
        name: fqdn(r.name()),
        record_type: r.r#type().as_str().to_string(),
        ttl: r.ttl().and_then(|t| u32::try_from(t).ok()),
        set_identifier: r.set_identifier().map(str::to_string),
        weight: r.weight().and_then(|w| u8::try_from(w).ok()),
        values: r.resource_records().iter().map(|v| v.value().to_string()).collect(),
        failover: r.failover().map(|f| f.as_str().to_string()),
        health_check: r.health_check_id().map(str::to_string),
    }
}

/// The record sets named `name` in zone `zone_id`, as Route 53 has them
/// (alias targets and all).
async fn raw_sets_in(c: &Clients, zone_id: &str, name: &str) -> Result<Vec<ResourceRecordSet>, CapabilityError> {
    let want = fqdn(name);
    let mut out = Vec::new();
    let mut start: Option<(String, Option<String>)> = Some((want.clone(), None));
    while let Some((start_name, start_id)) = start.take() {
        let page = c
            .route53()
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            .start_record_name(start_name)
            .set_start_record_identifier(start_id)
            .send()
            .await
            .map_err(|e| from_sdk("route53", "ListResourceRecordSets", REGION, name, e))?;
        let mut past = false;
        for r in page.resource_record_sets() {
            if fqdn(r.name()) != want {
                past = true;
                continue;
            }
            out.push(r.clone());
        }
        if page.is_truncated() && !past && page.next_record_name().is_some_and(|n| fqdn(n) == want) {
            start = Some((want.clone(), page.next_record_identifier().map(str::to_string)));
        }
    }
    c.seen_sets().put(zone_id, &want, out.clone());
    Ok(out)
}

/// The most pages (of 300 record sets) [`get_records_of`] reads listing a
/// zone before it reads name by name instead.
const LISTING_PAGES: usize = 4;

/// The record sets named any of `names` in zone `zone`, in the order of
/// `names`: one listing of the zone while it has at most
/// [`LISTING_PAGES`] pages, else one read per name.
pub async fn get_records_of(c: &Clients, zone: &str, names: &[String]) -> Result<Vec<RecordSet>, CapabilityError> {
    in_zone(c, zone, |id| async move { Ok(raw_sets_of(c, &id, names).await?.iter().map(record_set).collect()) }).await
}

/// [`get_records_of`] in zone `zone_id`, as Route 53 has the sets.
async fn raw_sets_of(c: &Clients, zone_id: &str, names: &[String]) -> Result<Vec<ResourceRecordSet>, CapabilityError> {
    let wants = distinct_names(names);
    let rank = |r: &ResourceRecordSet| wants.iter().position(|w| *w == fqdn(r.name())).unwrap_or(usize::MAX);
    if wants.len() > 1 {
        let what = wants.first().map(String::as_str).unwrap_or_default();
        let mut found = Vec::new();
        let mut start: Option<(String, Option<RrType>, Option<String>)> = None;
        for _ in 0..LISTING_PAGES {
            let mut req = c.route53().list_resource_record_sets().hosted_zone_id(zone_id);
            if let Some((name, kind, id)) = start.take() {
                req = req.start_record_name(name).set_start_record_type(kind).set_start_record_identifier(id);
            }
            let page = req.send().await.map_err(|e| from_sdk("route53", "ListResourceRecordSets", REGION, what, e))?;
            found.extend(page.resource_record_sets().iter().filter(|r| rank(r) != usize::MAX).cloned());
            match page.next_record_name() {
                Some(next) if page.is_truncated() => {
                    start = Some((next.to_string(), page.next_record_type().cloned(), page.next_record_identifier().map(str::to_string)));
                }
                _ => {
                    found.sort_by_key(|r| rank(r));
                    for want in &wants {
                        c.seen_sets().put(zone_id, want, found.iter().filter(|r| fqdn(r.name()) == *want).cloned().collect());
                    }
                    return Ok(found);
                }
            }
        }
        tracing::debug!(zone = zone_id, "the zone has more than {LISTING_PAGES} pages of records: reading them name by name");
    }
    let mut out = Vec::new();
    for want in &wants {
        out.extend(raw_sets_in(c, zone_id, want).await?);
    }
    Ok(out)
}

/// Makes every change of `changes` in zone `zone` in one change batch
/// (Route 53 applies it whole or not at all) and waits until INSYNC. What is
/// already so is left out; with nothing left nothing is sent. Returns how
/// many record sets it wrote.
pub async fn change_records(c: &Clients, zone: &str, changes: &[RecordChange], ttl: u32, timeout: Duration) -> Result<usize, CapabilityError> {
    change_records_with(c, zone, changes, ttl, timeout, true).await
}

/// [`change_records`] without reading the records first: a CNAME is
/// pointed with a plain `UPSERT` (one round trip instead of two), even when
/// it already points there (Route 53 makes a change of nothing); weights
/// whose sets these clients read a moment ago go out as a compare-and-swap
/// of those sets (see `seen_sets.rs`), and are read first otherwise (a
/// weighted set keeps its type, values and health check). For the first
/// attempt of a step, which no earlier attempt can have done already.
/// Returns how many record sets it wrote.
pub async fn change_records_unread(c: &Clients, zone: &str, changes: &[RecordChange], ttl: u32, timeout: Duration) -> Result<usize, CapabilityError> {
    change_records_with(c, zone, changes, ttl, timeout, false).await
}

async fn change_records_with(
    c: &Clients,
    zone: &str,
    changes: &[RecordChange],
    ttl: u32,
    timeout: Duration,
    read_first: bool,
) -> Result<usize, CapabilityError> {
    if let Some(why) = batch_problem(changes) {
        let first = changes.first().map(RecordChange::name).unwrap_or_default();
        return Err(bad("ChangeResourceRecordSets", first, why));
    }
    if changes.is_empty() {
        return Ok(0);
    }
    in_zone(c, zone, |id| async move { change_records_in(c, &id, changes, ttl, timeout, read_first).await }).await
}

/// The change batch of `changes` in zone `id`, sent. `read_first`: the
/// records are read first and what is already so is left out; otherwise
/// they are read only when a change needs them (weights), and weights whose
/// sets were read a moment ago go out as a compare-and-swap first
/// ([`swap_seen`]).
async fn change_records_in(c: &Clients, id: &str, changes: &[RecordChange], ttl: u32, timeout: Duration, read_first: bool) -> Result<usize, CapabilityError> {
    if !read_first && let Some(written) = swap_seen(c, id, changes, ttl, timeout).await? {
        return Ok(written);
    }
    let names: Vec<String> = changes.iter().map(|ch| ch.name().to_string()).collect();
    let needs_read = read_first || changes.iter().any(|ch| matches!(ch, RecordChange::SetWeights { .. }));
    let raw = if needs_read { raw_sets_of(c, id, &names).await? } else { Vec::new() };
    let mut batch = Vec::new();
    let mut said = Vec::new();
    for ch in changes {
        let want = fqdn(ch.name());
        let of_name: Vec<ResourceRecordSet> = raw.iter().filter(|r| fqdn(r.name()) == want).cloned().collect();
        match ch {
            RecordChange::PointCname { target, .. } => {
                if read_first && of_name.iter().map(record_set).any(|r| r.is_cname_to(target)) {
                    continue;
                }
                batch.push(change_of(ChangeAction::Upsert, cname(ch.name(), target, ttl, None)?)?);
            }
            RecordChange::SetWeights { name, targets } => {
                let sets = weight_upserts(name, &of_name, targets, ttl)?;
                if sets.is_empty() {
                    continue;
                }
                batch.extend(sets);
            }
        }
        said.push(ch);
    }
    let written = batch.len();
    if said.is_empty() {
        return Ok(0);
    }
    forget_seen(c, id, changes);
    change(c, id, changes_named(changes), batch, &comment(&said), timeout).await?;
    Ok(written)
}

/// The compare-and-swap of [`weight_swaps`], for changes with weights whose
/// sets these clients read a moment ago (the preflight's read): one round
/// trip, no read first. Sent once (the SDK's retries off: a `DELETE` resent
/// after it landed would be refused). `None`: not sent (a name not read) or
/// not applied for sure; the caller reads and `UPSERT`s, which is right
/// whatever happened: a swap whose answer was lost either landed (the read
/// shows it) or never will (its `DELETE`s no longer match once anything
/// changes the sets).
async fn swap_seen(c: &Clients, id: &str, changes: &[RecordChange], ttl: u32, timeout: Duration) -> Result<Option<usize>, CapabilityError> {
    if !changes.iter().any(|ch| matches!(ch, RecordChange::SetWeights { .. })) {
        return Ok(None);
    }
    let mut batch = Vec::new();
    let mut written = 0;
    for ch in changes {
        match ch {
            RecordChange::PointCname { name, target } => {
                batch.push(change_of(ChangeAction::Upsert, cname(name, target, ttl, None)?)?);
                written += 1;
            }
            RecordChange::SetWeights { name, targets } => {
                let Some(seen) = c.seen_sets().take(id, &fqdn(name)) else { return Ok(None) };
                let Ok(swaps) = weight_swaps(name, &seen, targets, ttl) else { return Ok(None) };
                written += swaps.iter().filter(|s| *s.action() != ChangeAction::Delete).count();
                batch.extend(swaps);
            }
        }
    }
    let what = changes_named(changes);
    let said: Vec<&RecordChange> = changes.iter().collect();
    match submit(c, id, what, batch, &comment(&said), true).await {
        Ok(Some(change_id)) => wait_in_sync(c, what, &change_id, timeout).await?,
        Ok(None) => {}
        Err(e) => {
            tracing::debug!(zone = id, record = what, error = %e, "the weights' compare-and-swap was not applied: reading the records");
            return Ok(None);
        }
    }
    Ok(Some(written))
}

/// Forgets the sets read of every name `changes` changes (what was read is
/// stale once they are sent).
fn forget_seen(c: &Clients, id: &str, changes: &[RecordChange]) {
    for ch in changes {
        c.seen_sets().take(id, &fqdn(ch.name()));
    }
}

/// The name a change batch of `changes` is reported under: its first record's.
fn changes_named(changes: &[RecordChange]) -> &str {
    changes.first().map(RecordChange::name).unwrap_or_default()
}

/// The comment a change batch of `said` carries (Route 53 keeps at most 256
/// characters of it).
fn comment(said: &[&RecordChange]) -> String {
    let one = |ch: &RecordChange| match ch {
        RecordChange::PointCname { name, target } => format!("point {name} at {target}"),
        RecordChange::SetWeights { name, targets } => {
            format!("weights of {name}: {}", targets.iter().map(|t| format!("{}={}", t.set_identifier, t.weight)).collect::<Vec<_>>().join(", "))
        }
    };
    let first = said.first().map(|ch| one(ch)).unwrap_or_default();
    let comment = if said.len() <= 1 { format!("drover: {first}") } else { format!("drover: {} changes ({first}, ...)", said.len()) };
    comment.chars().take(256).collect()
}

async fn change(c: &Clients, zone_id: &str, name: &str, changes: Vec<Change>, comment: &str, timeout: Duration) -> Result<(), CapabilityError> {
    match submit(c, zone_id, name, changes, comment, false).await? {
        Some(change_id) => wait_in_sync(c, name, &change_id, timeout).await,
        None => Ok(()),
    }
}

/// Sends a change batch; returns its change id while it is `PENDING`, and
/// `None` when the answer already says `INSYNC` (nothing to wait for: no
/// `GetChange` round trip). `once`: with the SDK's retries off, for a
/// change that is not idempotent (a `DELETE`), whose caller looks the
/// records up after a failure instead.
async fn submit(c: &Clients, zone_id: &str, name: &str, changes: Vec<Change>, comment: &str, once: bool) -> Result<Option<String>, CapabilityError> {
    let batch = ChangeBatch::builder().set_changes(Some(changes)).comment(comment).build().map_err(|e| bad("ChangeResourceRecordSets", name, e))?;
    let mut req = c.route53().change_resource_record_sets().hosted_zone_id(zone_id).change_batch(batch).customize();
    if once {
        req = req.config_override(aws_sdk_route53::Config::builder().retry_config(sdk_retries("route53.delete-cname")));
    }
    let out = req.send().await.map_err(|e| from_sdk("route53", "ChangeResourceRecordSets", REGION, name, e))?;
    Ok(match out.change_info() {
        Some(i) if *i.status() == ChangeStatus::Insync => None,
        Some(i) => Some(i.id().to_string()),
        // No change info: ask for a change of no id, which fails with
        // Route 53's own error rather than passing for INSYNC.
        None => Some(String::new()),
    })
}

/// Waits until change `change_id` is INSYNC.
async fn wait_in_sync(c: &Clients, name: &str, change_id: &str, timeout: Duration) -> Result<(), CapabilityError> {
    let in_sync = poll(timeout, || async move {
        let out = c.route53().get_change().id(change_id).send().await.map_err(|e| from_sdk("route53", "GetChange", REGION, name, e))?;
        Ok::<_, CapabilityError>(out.change_info().is_some_and(|i| *i.status() == ChangeStatus::Insync).then_some(()))
    })
    .await?;
    in_sync.ok_or_else(|| {
        CapabilityError::new(
            "route53",
            "GetChange",
            REGION,
            name,
            "timeout",
            format!("change {change_id} for {name} is not INSYNC after {} s", timeout.as_secs()),
        )
        .retryable()
    })
}

fn cname(name: &str, value: &str, ttl: u32, weighted: Option<(&str, u8)>) -> Result<ResourceRecordSet, CapabilityError> {
    let rr = ResourceRecord::builder().value(value).build().map_err(|e| bad("ChangeResourceRecordSets", name, e))?;
    let mut b = ResourceRecordSet::builder().name(fqdn(name)).r#type(RrType::Cname).ttl(i64::from(ttl)).resource_records(rr);
    if let Some((set, weight)) = weighted {
        b = b.set_identifier(set).weight(i64::from(weight));
    }
    b.build().map_err(|e| bad("ChangeResourceRecordSets", name, e))
}

/// One change of a batch: `action` of record set `set`.
fn change_of(action: ChangeAction, set: ResourceRecordSet) -> Result<Change, CapabilityError> {
    let name = set.name().to_string();
    Change::builder().action(action).resource_record_set(set).build().map_err(|e| bad("ChangeResourceRecordSets", &name, e))
}

/// Points the simple CNAME `name` at `target`. Returns whether it changed
/// anything (a record already pointing there is left alone).
pub async fn upsert_cname(c: &Clients, zone: &str, name: &str, target: &str, ttl: u32, timeout: Duration) -> Result<bool, CapabilityError> {
    let change = [RecordChange::PointCname { name: name.to_string(), target: target.to_string() }];
    Ok(change_records(c, zone, &change, ttl, timeout).await? > 0)
}

/// One weighted record set to write: the set `set_identifier` of type
/// `record_type` at weight `weight`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightChange {
    /// The set identifier.
    pub set_identifier: String,
    /// The record type it has (or gets, for a new set: `CNAME`).
    pub record_type: String,
    /// The new weight.
    pub weight: u8,
    /// A new value, for a CNAME only (records of other types keep theirs).
    pub value: Option<String>,
    /// No set of that identifier exists yet: a weighted CNAME is created.
    pub create: bool,
}

/// What [`set_weights`] writes to give `targets` their weights, given the
/// record sets now at `name`. Weights are shifted on the records of the
/// type that is there: every weighted set with a target's identifier, of
/// each type present (A, AAAA, an alias, CNAME), keeps its type, values,
/// alias target, TTL and health check and gets the new weight. An identifier
/// with no record yet becomes a weighted CNAME to the target's value, unless
/// records of another type hold the name (Route 53 allows no CNAME beside
/// other records): that is refused, as is a target without a value. Sets
/// already at their weight (and, for a CNAME, value) are left out.
pub fn weight_changes(name: &str, current: &[RecordSet], targets: &[WeightedTarget]) -> Result<Vec<WeightChange>, CapabilityError> {
    let mut out = Vec::new();
    for t in targets {
        let sets: Vec<&RecordSet> = current.iter().filter(|r| r.set_identifier.as_deref() == Some(t.set_identifier.as_str())).collect();
        if sets.is_empty() {
            let others: Vec<&str> = current.iter().filter(|r| r.record_type != "CNAME").map(|r| r.record_type.as_str()).collect();
            if !others.is_empty() {
                return Err(CapabilityError::new(
                    "route53",
                    "ChangeResourceRecordSets",
                    REGION,
                    name,
                    "no-such-weighted-set",
                    format!(
                        "{name} has no weighted record with set identifier '{}', and its records are of type {}: a CNAME cannot stand beside them. \
                         Nothing was changed; create the weighted {} record for '{}' first, or name an existing set identifier",
                        t.set_identifier,
                        others.join(", "),
                        others[0],
                        t.set_identifier
                    ),
                ));
            }
            if t.value.trim().is_empty() {
                return Err(bad(
                    "ChangeResourceRecordSets",
                    name,
                    format!("no weighted record '{}' at {name} and no value to create it with", t.set_identifier),
                ));
            }
            out.push(WeightChange {
                set_identifier: t.set_identifier.clone(),
                record_type: "CNAME".into(),
                weight: t.weight,
                value: Some(t.value.clone()),
                create: true,
            });
            continue;
        }
        for r in sets {
            let new_value = new_value(r, t);
            if r.weight == Some(t.weight) && new_value.is_none() {
                continue;
            }
            out.push(WeightChange {
                set_identifier: t.set_identifier.clone(),
                record_type: r.record_type.clone(),
                weight: t.weight,
                value: new_value,
                create: false,
            });
        }
    }
    Ok(out)
}

/// The value weighted set `r` gets for target `t`: a CNAME pointing
/// elsewhere gets the target's; records of other types keep theirs (none).
fn new_value(r: &RecordSet, t: &WeightedTarget) -> Option<String> {
    (r.record_type == "CNAME" && !t.value.trim().is_empty() && !r.values.iter().any(|v| same_host(v, &t.value))).then(|| t.value.clone())
}

/// `current` (a set Route 53 has) with the weight (and, for a CNAME, the
/// value) of `w`; everything else as it is.
fn reweighted(name: &str, current: &ResourceRecordSet, w: &WeightChange) -> Result<ResourceRecordSet, CapabilityError> {
    let records = match &w.value {
        Some(v) => vec![ResourceRecord::builder().value(v).build().map_err(|e| bad("ChangeResourceRecordSets", name, e))?],
        None => current.resource_records().to_vec(),
    };
    ResourceRecordSet::builder()
        .name(current.name())
        .r#type(current.r#type().clone())
        .set_identifier(w.set_identifier.clone())
        .weight(i64::from(w.weight))
        .set_ttl(current.ttl())
        .set_resource_records((!records.is_empty()).then_some(records))
        .set_alias_target(current.alias_target().cloned())
        .set_health_check_id(current.health_check_id().map(str::to_string))
        .build()
        .map_err(|e| bad("ChangeResourceRecordSets", name, e))
}

/// The UPSERTs that give the weighted records `name` (`raw`: its sets as
/// Route 53 has them) the weights of `targets` (see [`weight_changes`]).
fn weight_upserts(name: &str, raw: &[ResourceRecordSet], targets: &[WeightedTarget], ttl: u32) -> Result<Vec<Change>, CapabilityError> {
    let current: Vec<RecordSet> = raw.iter().map(record_set).collect();
    let mut changes = Vec::new();
    for w in weight_changes(name, &current, targets)? {
        let set = if w.create {
            cname(name, w.value.as_deref().unwrap_or_default(), ttl, Some((&w.set_identifier, w.weight)))?
        } else {
            let existing = raw
                .iter()
                .find(|r| r.set_identifier() == Some(w.set_identifier.as_str()) && r.r#type().as_str() == w.record_type)
                .ok_or_else(|| bad("ChangeResourceRecordSets", name, format!("the {} set '{}' vanished while it was read", w.record_type, w.set_identifier)))?;
            reweighted(name, existing, &w)?
        };
        changes.push(change_of(ChangeAction::Upsert, set)?);
    }
    Ok(changes)
}

/// The compare-and-swap changes that give the weighted records `name` the
/// weights of `targets`, from its sets as read a moment ago (`seen`): every
/// targeted set is `DELETE`d exactly as read and `CREATE`d with its new
/// weight, one already at its weight too (its `DELETE` asserts that it still
/// is), and a target with no set gets a weighted CNAME `CREATE`d. Route 53
/// refuses the whole batch when any set differs from what was read, or when
/// a set to create exists by then. What [`weight_changes`] refuses is
/// refused.
fn weight_swaps(name: &str, seen: &[ResourceRecordSet], targets: &[WeightedTarget], ttl: u32) -> Result<Vec<Change>, CapabilityError> {
    let current: Vec<RecordSet> = seen.iter().map(record_set).collect();
    weight_changes(name, &current, targets)?;
    let mut out = Vec::new();
    for t in targets {
        let sets: Vec<&ResourceRecordSet> = seen.iter().filter(|r| r.set_identifier() == Some(t.set_identifier.as_str())).collect();
        if sets.is_empty() {
            out.push(change_of(ChangeAction::Create, cname(name, &t.value, ttl, Some((&t.set_identifier, t.weight)))?)?);
        }
        for r in sets {
            let w = WeightChange {
                set_identifier: t.set_identifier.clone(),
                record_type: r.r#type().as_str().to_string(),
                weight: t.weight,
                value: new_value(&record_set(r), t),
                create: false,
            };
            out.push(change_of(ChangeAction::Delete, r.clone())?);
            out.push(change_of(ChangeAction::Create, reweighted(name, r, &w)?)?);
        }
    }
    Ok(out)
}

/// Sets the weights of the weighted records `name`, of whatever type they
/// are (see [`weight_changes`]), in one change batch. Returns whether it
/// changed anything.
pub async fn set_weights(c: &Clients, zone: &str, name: &str, targets: &[WeightedTarget], ttl: u32, timeout: Duration) -> Result<bool, CapabilityError> {
    let change = [RecordChange::SetWeights { name: name.to_string(), targets: targets.to_vec() }];
    Ok(change_records(c, zone, &change, ttl, timeout).await? > 0)
}

/// Deletes the simple (not weighted) CNAME `name`, if there is one. Returns
/// whether it deleted anything.
pub async fn delete_cname(c: &Clients, zone: &str, name: &str, timeout: Duration) -> Result<bool, CapabilityError> {
    // No zone, no record: nothing to delete.
    match in_zone(c, zone, |id| async move { delete_cname_in(c, &id, name, timeout).await }).await {
        Err(e) if e.is("NoSuchHostedZone") => Ok(false),
        other => other,
    }
}

async fn delete_cname_in(c: &Clients, id: &str, name: &str, timeout: Duration) -> Result<bool, CapabilityError> {
    let simple_cname = |r: &RecordSet| r.record_type == "CNAME" && r.set_identifier.is_none();
    let current = records_in(c, id, name).await?;
    let Some(existing) = current.iter().find(|r| simple_cname(r)) else {
        return Ok(false);
    };
    let value = existing.values.first().cloned().unwrap_or_default();
    let set = cname(name, &value, existing.ttl.unwrap_or(60), None)?;
    let delete = change_of(ChangeAction::Delete, set)?;
    // A DELETE is not idempotent: resent after Route 53 applied it (its
    // answer lost), it fails on the missing record. So it goes out once per
    // attempt, and a failed attempt reads the records first: a record gone
    // is deleted (its change id went with the lost answer: no INSYNC wait),
    // as is one whose answer said INSYNC already.
    let (delete, comment) = (&delete, &format!("drover: delete {name}"));
    let gone = || async move { Ok::<Option<Option<String>>, CapabilityError>((!records_in(c, id, name).await?.iter().any(simple_cname)).then_some(None)) };
    let send = || async move { submit(c, id, name, vec![delete.clone()], comment, true).await };
    if let Some(change_id) = create_or_adopt(gone, send).await? {
        wait_in_sync(c, name, &change_id, timeout).await?;
    }
    Ok(true)
}

/// Reads health check `id` and its checkers' last reports.
pub async fn get_health_check(c: &Clients, id: &str) -> Result<HealthCheck, CapabilityError> {
    let out = c.route53().get_health_check().health_check_id(id).send().await.map_err(|e| from_sdk("route53", "GetHealthCheck", REGION, id, e))?;
    let hc = out
        .health_check()
        .ok_or_else(|| CapabilityError::new("route53", "GetHealthCheck", REGION, id, "NoSuchHealthCheck", format!("no health check {id}")))?;
    let conf = hc.health_check_config();
    let status =
        c.route53().get_health_check_status().health_check_id(id).send().await.map_err(|e| from_sdk("route53", "GetHealthCheckStatus", REGION, id, e))?;
    let reports: Vec<String> = status
        .health_check_observations()
        .iter()
        .map(|o| format!("{}: {}", o.region().map(|r| r.as_str()).unwrap_or("?"), o.status_report().and_then(|r| r.status()).unwrap_or("no report")))
        .collect();
    let failing = status.health_check_observations().iter().any(|o| o.status_report().and_then(|r| r.status()).is_some_and(|s| s.starts_with("Failure")));
    let summary = if reports.is_empty() {
        "unknown"
    } else if failing {
        "unhealthy"
    } else {
        "healthy"
    };
    Ok(HealthCheck {
        id: hc.id().to_string(),
        kind: conf.map(|c| c.r#type().as_str().to_string()).unwrap_or_default(),
        target: conf.and_then(|c| c.fully_qualified_domain_name().or(c.ip_address())).unwrap_or_default().to_string(),
        port: conf.and_then(|c| c.port()).and_then(|p| u16::try_from(p).ok()),
        path: conf.and_then(|c| c.resource_path()).map(str::to_string),
        disabled: conf.and_then(|c| c.disabled()).unwrap_or(false),
        inverted: conf.and_then(|c| c.inverted()).unwrap_or(false),
        status: summary.to_string(),
        reports,
    })
}

/// Disables or enables, inverts or not, health check `id`. Returns whether
/// it changed anything (a check already so is left alone), and the check as
/// it now is. Only the fields
/// that change are sent (LocalStack turns an explicit `Inverted=false` into
/// `true`), and the result is read back: an endpoint that did not apply the
/// update is an error, not a silent success.
pub async fn update_health_check(c: &Clients, id: &str, disabled: bool, inverted: bool) -> Result<(bool, HealthCheck), CapabilityError> {
    let now = get_health_check(c, id).await?;
    if now.disabled == disabled && now.inverted == inverted {
        return Ok((false, now));
    }
    c.route53()
        .update_health_check()
        .health_check_id(id)
        .set_disabled((now.disabled != disabled).then_some(disabled))
        .set_inverted((now.inverted != inverted).then_some(inverted))
        .send()
        .await
        .map_err(|e| from_sdk("route53", "UpdateHealthCheck", REGION, id, e))?;
    let after = get_health_check(c, id).await?;
    if after.disabled != disabled || after.inverted != inverted {
        return Err(CapabilityError::new(
            "route53",
            "UpdateHealthCheck",
            REGION,
            id,
            "update-not-applied",
            format!("asked for disabled={disabled} inverted={inverted}, the endpoint now says disabled={} inverted={}", after.disabled, after.inverted),
        ));
    }
    Ok((true, after))
}

/// UPSERTs the failover CNAME `name` (role, set identifier, target, health
/// check) and waits until INSYNC. Returns whether it changed anything (a
/// record already saying so is left alone).
pub async fn upsert_failover(c: &Clients, zone: &str, name: &str, f: &FailoverRecord, timeout: Duration) -> Result<bool, CapabilityError> {
    in_zone(c, zone, |id| async move { upsert_failover_in(c, &id, name, f, timeout).await }).await
}

async fn upsert_failover_in(c: &Clients, id: &str, name: &str, f: &FailoverRecord, timeout: Duration) -> Result<bool, CapabilityError> {
    let current = records_in(c, id, name).await?;
    if current.iter().any(|r| r.is_failover(f)) {
        return Ok(false);
    }
    let rr = ResourceRecord::builder().value(&f.target).build().map_err(|e| bad("ChangeResourceRecordSets", name, e))?;
    let set = ResourceRecordSet::builder()
        .name(fqdn(name))
        .r#type(RrType::Cname)
        .ttl(i64::from(f.ttl))
        .resource_records(rr)
        .set_identifier(&f.set_identifier)
        .failover(ResourceRecordSetFailover::from(f.role.as_str()))
        .set_health_check_id(f.health_check.clone())
        .build()
        .map_err(|e| bad("ChangeResourceRecordSets", name, e))?;
    let comment = format!("drover: {} failover record {name} ({}) at {}", f.role.as_str(), f.set_identifier, f.target);
    change(c, id, name, vec![change_of(ChangeAction::Upsert, set)?], &comment, timeout).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(kind: &str, id: &str, weight: u8, values: &[&str]) -> RecordSet {
        RecordSet {
            name: "app.example.internal.".into(),
            record_type: kind.into(),
            ttl: Some(60),
            set_identifier: Some(id.into()),
            weight: Some(weight),
            values: values.iter().map(|v| v.to_string()).collect(),
            failover: None,
            health_check: None,
        }
    }

    fn target(id: &str, weight: u8, value: &str) -> WeightedTarget {
        WeightedTarget { set_identifier: id.into(), weight, value: value.into() }
    }

    #[test]
    fn weights_shift_on_the_records_of_the_type_that_is_there() {
        // Weighted A records (and an AAAA twin): no CNAME is written beside them.
        let current = [set("A", "east", 100, &["10.0.0.1", "10.0.0.2"]), set("A", "west", 0, &["10.1.0.1"]), set("AAAA", "west", 0, &["fd00::1"])];
        let changes = weight_changes("app.example.internal", &current, &[target("east", 0, "10.0.0.1"), target("west", 100, "10.1.0.1")]).unwrap();
        let got: Vec<(&str, &str, u8, bool)> =
            changes.iter().map(|c| (c.set_identifier.as_str(), c.record_type.as_str(), c.weight, c.value.is_some() || c.create)).collect();
        assert_eq!(got, [("east", "A", 0, false), ("west", "A", 100, false), ("west", "AAAA", 100, false)]);
        // Alias records have no values: the target's value is not needed.
        let alias = [set("A", "east", 100, &[]), set("A", "west", 0, &[])];
        assert_eq!(weight_changes("app", &alias, &[target("west", 100, "")]).unwrap().len(), 1);
        // A set identifier that is not there is not invented as a CNAME beside A records.
        let err = weight_changes("app", &current, &[target("eu-west-1", 100, "app.eu.example.internal")]).unwrap_err();
        assert_eq!(err.code, "no-such-weighted-set");
        assert!(err.message.contains("type A"), "{err}");
    }

    #[test]
    fn cname_weights_keep_today_s_behaviour() {
        let current = [set("CNAME", "east", 100, &["app.east."]), set("CNAME", "west", 0, &["app.west."])];
        let same = weight_changes("app", &current, &[target("east", 100, "app.east"), target("west", 0, "app.west")]).unwrap();
        assert!(same.is_empty(), "nothing to change: {same:?}");
        let moved = weight_changes("app", &current, &[target("west", 100, "app.west-new")]).unwrap();
        assert_eq!(
            moved,
            [WeightChange { set_identifier: "west".into(), record_type: "CNAME".into(), weight: 100, value: Some("app.west-new".into()), create: false }]
        );
        let new = weight_changes("app", &current, &[target("eu", 0, "app.eu")]).unwrap();
        assert!(new[0].create);
    }

    fn raw(id: &str, weight: i64, value: &str, health_check: Option<&str>) -> ResourceRecordSet {
        ResourceRecordSet::builder()
            .name("app.example.internal.")
            .r#type(RrType::Cname)
            .set_identifier(id)
            .weight(weight)
            .ttl(300)
            .resource_records(ResourceRecord::builder().value(value).build().unwrap())
            .set_health_check_id(health_check.map(str::to_string))
            .build()
            .unwrap()
    }

    #[test]
    fn a_weights_swap_deletes_every_targeted_set_as_read_and_creates_it_reweighted() {
        let seen = [raw("east", 100, "app.east.", Some("hc-1")), raw("west", 0, "app.west.", None), raw("other", 5, "app.other.", None)];
        let swaps = weight_swaps("app.example.internal", &seen, &[target("east", 0, "app.east"), target("west", 100, "app.west")], 60).unwrap();
        // (action, set identifier, weight, TTL, health check) of each change.
        type Sent<'a> = (ChangeAction, Option<&'a str>, Option<i64>, Option<i64>, Option<&'a str>);
        let got: Vec<Sent> = swaps
            .iter()
            .map(|c| c.resource_record_set().map(|r| (c.action().clone(), r.set_identifier(), r.weight(), r.ttl(), r.health_check_id())))
            .map(Option::unwrap)
            .collect();
        assert_eq!(
            got,
            [
                // Each set exactly as read (its TTL and health check too: a DELETE must match in every field) ...
                (ChangeAction::Delete, Some("east"), Some(100), Some(300), Some("hc-1")),
                // ... and again with only its weight changed.
                (ChangeAction::Create, Some("east"), Some(0), Some(300), Some("hc-1")),
                (ChangeAction::Delete, Some("west"), Some(0), Some(300), None),
                (ChangeAction::Create, Some("west"), Some(100), Some(300), None),
            ],
            "the set no target names is left alone"
        );
        // A set already at its weight is in the batch all the same: its DELETE asserts it still is.
        let same = weight_swaps("app.example.internal", &seen, &[target("west", 0, "app.west")], 60).unwrap();
        assert_eq!(same.iter().map(|c| c.action().clone()).collect::<Vec<_>>(), [ChangeAction::Delete, ChangeAction::Create]);
        // A target with no set: a weighted CNAME created (refused by Route 53 if one appeared since).
        let new = weight_swaps("app.example.internal", &seen, &[target("eu", 10, "app.eu")], 60).unwrap();
        assert_eq!(new.iter().map(|c| c.action().clone()).collect::<Vec<_>>(), [ChangeAction::Create]);
        // What a read-and-UPSERT refuses is refused.
        assert!(weight_swaps("app.example.internal", &seen, &[target("eu", 10, "")], 60).is_err());
    }

    #[test]
    fn a_zone_is_named_by_id_by_name_or_by_kind_and_name() {
        let name = |n: &str, private: Option<bool>| ZoneRef::Name { name: n.into(), private };
        assert_eq!(ZoneRef::parse("Z0123ABC").unwrap(), ZoneRef::Id("Z0123ABC".into()));
        assert_eq!(ZoneRef::parse("/hostedzone/Z0123ABC").unwrap(), ZoneRef::Id("Z0123ABC".into()));
        assert_eq!(ZoneRef::parse("/hostedzone/0DF7C94Elx").unwrap(), ZoneRef::Id("0DF7C94Elx".into()));
        assert_eq!(ZoneRef::parse("orders.example.internal").unwrap(), name("orders.example.internal", None));
        assert_eq!(ZoneRef::parse("private:orders.example.internal.").unwrap(), name("orders.example.internal.", Some(true)));
        assert_eq!(ZoneRef::parse("public:orders.example.internal").unwrap(), name("orders.example.internal", Some(false)));
        assert_eq!(ZoneRef::parse("Zebra.example").unwrap(), name("Zebra.example", None), "a name with a dot is a name");
        for bad in ["", "private:", "public:.", "secret:orders.example.internal", "/hostedzone/", "/hostedzone/Z1/x"] {
            assert!(ZoneRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_name_two_zones_share_is_refused_naming_both() {
        let want = "orders.example.internal.";
        let both = [("ZPRIV1".to_string(), true), ("ZPUB1".to_string(), false)];
        let e = choose("orders.example.internal", want, None, &both).unwrap_err();
        assert_eq!(e.code, "AmbiguousHostedZone");
        assert!(!e.retryable);
        for part in ["ZPRIV1 (private)", "ZPUB1 (public)", "private:orders.example.internal.", "public:orders.example.internal.", "nothing was changed"] {
            assert!(e.message.contains(part), "{part}: {e}");
        }
        assert_eq!(choose("private:x", want, Some(true), &both).unwrap(), "ZPRIV1");
        assert_eq!(choose("public:x", want, Some(false), &both).unwrap(), "ZPUB1");
        // One zone of that name: the plain name is enough; the wrong kind is not found.
        assert_eq!(choose("x", want, None, &both[1..]).unwrap(), "ZPUB1");
        let e = choose("private:x", want, Some(true), &both[1..]).unwrap_err();
        assert_eq!(e.code, "NoSuchHostedZone");
        assert!(e.message.contains("no private hosted zone named orders.example.internal. (there is: ZPUB1 (public))"), "{e}");
        // Two private zones (two VPCs): only an id tells them apart.
        let two = [("ZA".to_string(), true), ("ZB".to_string(), true)];
        let e = choose("private:x", want, Some(true), &two).unwrap_err();
        assert!(e.message.contains("by its id") && !e.message.contains("public:"), "{e}");
        assert_eq!(choose("x", want, None, &[]).unwrap_err().code, "NoSuchHostedZone");
    }
}
