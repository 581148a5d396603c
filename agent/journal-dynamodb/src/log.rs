//! A run's commits as a log of items, and the journal they fold into.
//!
//! Commit number V of a run (its `log_version` after the commit) is written
//! as one or more chunk items `log#V#PART`, each at most [`CHUNK_BYTES`]
//! (DynamoDB items hold 400 KB; a step output may be 1 MiB). Chunks carry
//! the fence of the driver that wrote them. A commit counts once the run
//! item's `log_version` reaches V, and only the chunks of the highest fence
//! at V count: a stale driver's chunks, written before it found out it had
//! been fenced out, are ignored by every reader.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use drover_journal::{AttemptRecord, Entry, Event, JournalError, Op};

use crate::items::{Item, get_n, get_s, log_sk, n, run_pk, s};

/// The most bytes of a commit one chunk item holds.
/// (DynamoDB's limit is 400 KB an item; emulators count binary attributes
/// base64-encoded, so the chunk stays under that too.)
pub const CHUNK_BYTES: usize = 200 * 1024;

/// The chunk items of commit `version` of run `run_id` by `fence`.
pub fn chunks(run_id: &str, version: u64, fence: u64, ops: &[Op]) -> Result<Vec<Item>, JournalError> {
    let bytes = serde_json::to_vec(ops).map_err(|e| JournalError::Malformed(format!("a journal commit does not encode as JSON: {e}")))?;
    let parts: Vec<&[u8]> = if bytes.is_empty() { vec![&[][..]] } else { bytes.chunks(CHUNK_BYTES).collect() };
    let total = parts.len();
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(i, data)| {
            Item::from([
                ("pk".into(), s(run_pk(run_id))),
                ("sk".into(), s(log_sk(version, i as u32))),
                ("chunk_fence".into(), n(fence)),
                ("chunk_parts".into(), n(total)),
                ("chunk_data".into(), AttributeValue::B(Blob::new(data.to_vec()))),
            ])
        })
        .collect())
}

/// A run's journal: what the commits up to its `log_version` add up to.
#[derive(Debug, Default)]
pub struct Folded {
    /// Entries by `seq`.
    pub entries: BTreeMap<u64, Entry>,
    /// Attempts by (seq, number).
    pub attempts: BTreeMap<(u64, u32), AttemptRecord>,
    /// Events in order.
    pub events: Vec<Event>,
}

/// A commit's fence, its number of parts, and its chunks by part.
type CommitParts<'a> = (u64, u64, BTreeMap<u64, &'a [u8]>);

/// Folds the chunk items of commits 1..=`version` (in any order; others ignored).
pub fn fold(items: &[Item], version: u64) -> Result<Folded, JournalError> {
    // version -> (fence, parts, chunks by part)
    let mut commits: BTreeMap<u64, CommitParts<'_>> = BTreeMap::new();
    for item in items {
        let sk = get_s(item, "sk").unwrap_or_default();
        let mut it = sk.strip_prefix("log#").unwrap_or_default().split('#');
        let (Some(Ok(v)), Some(Ok(part))) = (it.next().map(str::parse::<u64>), it.next().map(str::parse::<u64>)) else {
            return Err(JournalError::Malformed(format!("commit log item with key '{sk}'")));
        };
        if v == 0 || v > version {
            continue;
        }
        let fence = get_n(item, "chunk_fence")?;
        let parts = get_n(item, "chunk_parts")?;
        let data = match item.get("chunk_data") {
            Some(AttributeValue::B(b)) => b.as_ref(),
            _ => return Err(JournalError::Malformed(format!("commit log item '{sk}' without data"))),
        };
        let slot = commits.entry(v).or_insert((fence, parts, BTreeMap::new()));
        if fence > slot.0 {
            *slot = (fence, parts, BTreeMap::new());
        }
        if fence == slot.0 {
            slot.2.insert(part, data);
        }
    }
    let mut folded = Folded::default();
    for v in 1..=version {
        let Some((_, parts, chunks)) = commits.get(&v) else {
            return Err(JournalError::Malformed(format!("commit {v} of {version} is missing from the log")));
        };
        if chunks.len() as u64 != *parts || chunks.keys().copied().ne(0..*parts) {
            return Err(JournalError::Malformed(format!("commit {v} has {} of its {parts} chunks", chunks.len())));
        }
        let bytes: Vec<u8> = chunks.values().flat_map(|c| c.iter().copied()).collect();
        let ops: Vec<Op> = serde_json::from_slice(&bytes).map_err(|e| JournalError::Malformed(format!("commit {v}: {e}")))?;
        for op in ops {
            apply(&mut folded, op);
        }
    }
    Ok(folded)
}

fn apply(f: &mut Folded, op: Op) {
    match op {
        Op::PutEntry(e) => {
            f.entries.insert(e.seq, e);
        }
        Op::TruncateAfter(seq) => {
            f.entries.split_off(&(seq + 1));
        }
        Op::AddAttempt(a) => {
            f.attempts.insert((a.seq, a.number), a);
        }
        Op::AddEvent(e) => f.events.push(e),
        // Kept on the run item and the gate items.
        Op::OpenApproval { .. } | Op::SetStatus { .. } | Op::SetRunbook(_) | Op::ClearCancel => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use drover_journal::{EntryKind, EntryStatus};

    fn entry(seq: u64, key: &str) -> Op {
        Op::PutEntry(Entry::new(seq, EntryKind::Step, Some(key.into()), EntryStatus::Succeeded, Utc::now()))
    }

    fn keys(f: &Folded) -> Vec<String> {
        f.entries.values().map(|e| e.key.clone().unwrap()).collect()
    }

    #[test]
    fn a_stale_drivers_chunks_and_uncommitted_chunks_are_ignored() {
        let mut items = chunks("r", 1, 1, &[entry(0, "a")]).unwrap();
        items.extend(chunks("r", 2, 1, &[entry(1, "stale")]).unwrap());
        items.extend(chunks("r", 2, 2, &[entry(1, "b")]).unwrap());
        items.extend(chunks("r", 3, 2, &[entry(2, "not yet committed")]).unwrap());
        let f = fold(&items, 2).unwrap();
        assert_eq!(keys(&f), ["a", "b"]);
    }

    #[test]
    fn a_large_commit_is_split_and_joined() {
        let mut e = Entry::new(0, EntryKind::Step, Some("big".into()), EntryStatus::Succeeded, Utc::now());
        e.output = Some(serde_json::json!("y".repeat(CHUNK_BYTES * 2)));
        let items = chunks("r", 1, 1, &[Op::PutEntry(e.clone())]).unwrap();
        assert_eq!(items.len(), 3);
        let f = fold(&items, 1).unwrap();
        assert_eq!(f.entries[&0], e);
        assert!(matches!(fold(&items[..2], 1), Err(JournalError::Malformed(_))));
        assert!(matches!(fold(&[], 1), Err(JournalError::Malformed(_))));
    }
}
