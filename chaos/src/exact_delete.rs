//! A Route 53 rule the emulator does not keep: a `DELETE` in a change batch
//! must match the record set Route 53 has in every field (name, type, set
//! identifier, weight, TTL, values, alias target, health check, failover
//! role), or the whole batch is refused with `InvalidChangeBatch` and
//! nothing in it is applied. LocalStack 4.13.1 accepts a `DELETE` with the
//! wrong weight (and deletes the set), and one with the wrong TTL deletes
//! nothing. That rule is what makes `DELETE` + `CREATE` a compare-and-swap,
//! so the proxy keeps it: before it forwards a change batch with `DELETE`s it
//! lists the zone's record sets upstream and refuses the batch, worded as
//! Route 53 words it, when one does not match. Every refusal is counted.
//!
//! A batch that passes goes to the emulator with each `DELETE` + `CREATE`
//! of one set made an `UPSERT` of it ([`as_upserts`]): moto's Route 53,
//! which LocalStack serves, deletes a weighted set by its set identifier
//! alone (every set of that identifier in the zone goes).
//!
//! Names and domain-name values compare without case and trailing dot (as
//! DNS does); everything else exactly. The `DELETE`s are checked against the
//! sets as they are before the batch (a batch that creates a set and then
//! deletes it is not seen through).

use std::sync::atomic::{AtomicU64, Ordering};

use roxmltree::{Document, Node};

/// One record set, as a change batch or a listing writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSet {
    /// Fully qualified, lower case, with its trailing dot.
    pub name: String,
    /// `A`, `CNAME`, ...
    pub kind: String,
    /// The set identifier of a weighted, failover, latency... set.
    pub set_identifier: Option<String>,
    /// Its weight, as written.
    pub weight: Option<String>,
    /// Its TTL, as written.
    pub ttl: Option<String>,
    /// Its values, normalized and sorted.
    pub values: Vec<String>,
    /// Its alias target: hosted zone id, DNS name (normalized), evaluate target health.
    pub alias: Option<(String, String, String)>,
    /// Its health check.
    pub health_check: Option<String>,
    /// Its failover role.
    pub failover: Option<String>,
}

impl RecordSet {
    fn describe(&self) -> String {
        match &self.set_identifier {
            Some(id) => format!("[name='{}', type='{}', set-identifier='{id}']", self.name, self.kind),
            None => format!("[name='{}', type='{}']", self.name, self.kind),
        }
    }

    fn same_set(&self, other: &RecordSet) -> bool {
        self.name == other.name && self.kind == other.kind && self.set_identifier == other.set_identifier
    }
}

/// `name` as DNS compares it.
fn normal(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    if lower.ends_with('.') { lower } else { format!("{lower}.") }
}

fn child<'a, 'i>(n: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.tag_name().name() == tag)
}

fn text(n: Node<'_, '_>, tag: &str) -> Option<String> {
    child(n, tag).map(|c| c.text().unwrap_or_default().trim().to_string())
}

fn record_set(n: Node<'_, '_>) -> RecordSet {
    let kind = text(n, "Type").unwrap_or_default();
    let mut values: Vec<String> = child(n, "ResourceRecords")
        .map(|rs| {
            rs.children()
                .filter(|r| r.tag_name().name() == "ResourceRecord")
                .map(|r| {
                    let v = text(r, "Value").unwrap_or_default();
                    if matches!(kind.as_str(), "CNAME" | "NS" | "PTR") { normal(&v) } else { v }
                })
                .collect()
        })
        .unwrap_or_default();
    values.sort();
    RecordSet {
        name: normal(&text(n, "Name").unwrap_or_default()),
        set_identifier: text(n, "SetIdentifier"),
        weight: text(n, "Weight"),
        ttl: text(n, "TTL"),
        values,
        alias: child(n, "AliasTarget").map(|a| {
            (
                text(a, "HostedZoneId").unwrap_or_default(),
                normal(&text(a, "DNSName").unwrap_or_default()),
                text(a, "EvaluateTargetHealth").unwrap_or_default().to_ascii_lowercase(),
            )
        }),
        health_check: text(n, "HealthCheckId"),
        failover: text(n, "Failover"),
        kind,
    }
}

/// The record sets a `ChangeResourceRecordSets` request body deletes.
pub fn deletes(body: &[u8]) -> Result<Vec<RecordSet>, String> {
    let xml = std::str::from_utf8(body).map_err(|e| format!("the change batch is not UTF-8: {e}"))?;
    let doc = Document::parse(xml).map_err(|e| format!("the change batch is not XML: {e}"))?;
    Ok(doc
        .descendants()
        .filter(|n| n.tag_name().name() == "Change")
        .filter(|c| text(*c, "Action").as_deref() == Some("DELETE"))
        .filter_map(|c| child(c, "ResourceRecordSet").map(record_set))
        .collect())
}

/// A page of a `ListResourceRecordSets` answer: its sets, and where the
/// next page starts (name, type, identifier) when it is truncated.
pub type Page = (Vec<RecordSet>, Option<(String, String, Option<String>)>);

/// Reads a page of a `ListResourceRecordSets` answer.
pub fn listed(body: &[u8]) -> Result<Page, String> {
    let xml = std::str::from_utf8(body).map_err(|e| format!("the listing is not UTF-8: {e}"))?;
    let doc = Document::parse(xml).map_err(|e| format!("the listing is not XML: {e}"))?;
    let root = doc.root_element();
    let sets = child(root, "ResourceRecordSets")
        .map(|s| s.children().filter(|n| n.tag_name().name() == "ResourceRecordSet").map(record_set).collect())
        .unwrap_or_default();
    let truncated = text(root, "IsTruncated").is_some_and(|t| t == "true");
    let next = match (truncated, text(root, "NextRecordName"), text(root, "NextRecordType")) {
        (true, Some(name), Some(kind)) => Some((name, kind, text(root, "NextRecordIdentifier"))),
        _ => None,
    };
    Ok((sets, next))
}

/// `body` (a change batch whose `DELETE`s all match) as the emulator must
/// get it to do what Route 53 does: each `DELETE` of a set that a later
/// `CREATE` in the batch makes again is left out and that `CREATE` sent as
/// an `UPSERT` (the same end state, applied at once). `None`: nothing to
/// rewrite. moto's Route 53, which LocalStack serves, gets a `DELETE` of a
/// weighted set wrong: it deletes every set of that set identifier in the
/// zone, whatever its name, and it refuses a `CREATE` it has seen before
/// ("already exists") even when the set was deleted since.
pub fn as_upserts(body: &[u8]) -> Option<Vec<u8>> {
    let xml = std::str::from_utf8(body).ok()?;
    let doc = Document::parse(xml).ok()?;
    let changes: Vec<(String, RecordSet, Node<'_, '_>)> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "Change")
        .filter_map(|c| Some((text(c, "Action")?, record_set(child(c, "ResourceRecordSet")?), c)))
        .collect();
    let mut edits: Vec<(std::ops::Range<usize>, &str)> = Vec::new();
    let mut paired = Vec::new();
    for (i, (action, set, change)) in changes.iter().enumerate() {
        if action != "DELETE" {
            continue;
        }
        let create = changes.iter().enumerate().skip(i + 1).find(|(j, (a, s, _))| a == "CREATE" && s.same_set(set) && !paired.contains(j));
        if let Some((j, (_, _, create))) = create {
            paired.push(j);
            edits.push((change.range(), ""));
            edits.push((child(*create, "Action")?.range(), "<Action>UPSERT</Action>"));
        }
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(xml.len());
    let mut at = 0;
    for (range, with) in edits {
        out.push_str(xml.get(at..range.start)?);
        out.push_str(with);
        at = range.end;
    }
    out.push_str(xml.get(at..)?);
    Some(out.into_bytes())
}

/// Route 53's refusal of a batch deleting `deletes` from a zone holding
/// `current`, if it refuses it: the first `DELETE` that is not found, or
/// does not match in every field.
pub fn refusal(deletes: &[RecordSet], current: &[RecordSet]) -> Option<String> {
    let first = deletes.iter().find_map(|d| match current.iter().find(|c| c.same_set(d)) {
        None => Some(format!("Tried to delete resource record set {} but it was not found", d.describe())),
        Some(c) if c != d => Some(format!("Tried to delete resource record set {} but the values provided do not match the current values", d.describe())),
        Some(_) => None,
    })?;
    Some(format!("[{first}]"))
}

/// How many change batches the proxy refused for a `DELETE` that did not match.
#[derive(Debug, Default)]
pub struct ExactDeletes {
    refused: AtomicU64,
}

impl ExactDeletes {
    /// Batches refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    pub(crate) fn count(&self) {
        self.refused.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BATCH: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Comment>x</Comment><Changes>
<Change><Action>DELETE</Action><ResourceRecordSet><Name>App.Example.internal</Name><Type>CNAME</Type><SetIdentifier>east</SetIdentifier><Weight>100</Weight><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>app.east.example.internal.</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change>
<Change><Action>CREATE</Action><ResourceRecordSet><Name>app.example.internal.</Name><Type>CNAME</Type><SetIdentifier>east</SetIdentifier><Weight>0</Weight><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>app.east.example.internal</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change>
</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"#;

    fn listing(weight: u32, ttl: u32) -> String {
        format!(
            r#"<ListResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ResourceRecordSets>
<ResourceRecordSet><Name>example.internal.</Name><Type>SOA</Type><TTL>900</TTL><ResourceRecords><ResourceRecord><Value>ns. host. 1 7200 900 1209600 86400</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>
<ResourceRecordSet><Name>app.example.internal.</Name><Type>CNAME</Type><SetIdentifier>east</SetIdentifier><Weight>{weight}</Weight><TTL>{ttl}</TTL><ResourceRecords><ResourceRecord><Value>app.east.example.internal</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>
</ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>300</MaxItems></ListResourceRecordSetsResponse>"#
        )
    }

    #[test]
    fn a_delete_must_match_the_set_in_every_field() {
        let d = deletes(BATCH.as_bytes()).unwrap();
        assert_eq!(d.len(), 1, "only the DELETE: {d:?}");
        let (now, next) = listed(listing(100, 60).as_bytes()).unwrap();
        assert_eq!(next, None);
        assert_eq!(refusal(&d, &now), None, "names and values compare as DNS names");
        let (heavier, _) = listed(listing(50, 60).as_bytes()).unwrap();
        let why = refusal(&d, &heavier).unwrap();
        assert!(why.contains("do not match the current values") && why.contains("set-identifier='east'"), "{why}");
        let (longer, _) = listed(listing(100, 300).as_bytes()).unwrap();
        assert!(refusal(&d, &longer).is_some(), "another TTL is another set");
        let gone: Vec<RecordSet> = now.into_iter().filter(|s| s.kind == "SOA").collect();
        assert!(refusal(&d, &gone).unwrap().contains("but it was not found"));
        assert!(deletes(b"not xml").is_err());
    }

    #[test]
    fn a_delete_and_a_create_of_one_set_reach_the_emulator_as_an_upsert() {
        let upserts = String::from_utf8(as_upserts(BATCH.as_bytes()).unwrap()).unwrap();
        assert!(!upserts.contains("DELETE") && !upserts.contains("CREATE"), "{upserts}");
        assert_eq!(upserts.matches("<Action>UPSERT</Action>").count(), 1, "{upserts}");
        assert!(upserts.contains("<Weight>0</Weight>") && !upserts.contains("<Weight>100</Weight>"), "the set as created: {upserts}");
        assert!(deletes(upserts.as_bytes()).unwrap().is_empty());
        // A DELETE alone, or a CREATE alone, is sent as it is.
        let create_only = BATCH.replacen("DELETE", "UPSERT", 1);
        assert_eq!(as_upserts(create_only.as_bytes()), None);
    }

    #[test]
    fn a_truncated_listing_says_where_the_next_page_starts() {
        let page = r#"<ListResourceRecordSetsResponse><ResourceRecordSets/><IsTruncated>true</IsTruncated><NextRecordName>b.example.</NextRecordName><NextRecordType>A</NextRecordType><NextRecordIdentifier>west</NextRecordIdentifier></ListResourceRecordSetsResponse>"#;
        assert_eq!(listed(page.as_bytes()).unwrap().1, Some(("b.example.".into(), "A".into(), Some("west".into()))));
    }
}
