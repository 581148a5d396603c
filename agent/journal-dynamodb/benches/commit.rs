//! Step commit latency: the embedded store against the DynamoDB store.
//!
//! One run, one driver, N commits of what a step's completion writes (the
//! entry with its output, and an event), each `Durability::Durable`, one
//! after another; then N claims+releases. Prints median, p90 and p99.
//!
//!   eval "$(scripts/emulators env)"
//!   cargo bench -p drover-journal-dynamodb --bench commit [-- N]
//!
//! Against moto on loopback, the DynamoDB numbers are the store's own cost
//! (two to three requests a commit) plus moto's; against DynamoDB in the
//! agent's region add the network round trips (a few ms each).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a test fails by panicking")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use drover_journal::{Durability, Entry, EntryKind, EntryStatus, Event, Journal, Level, Op, SqliteJournal, conformance, current_owner};
use drover_journal_dynamodb::{DynamoConfig, DynamoJournal};

fn stats(name: &str, mut xs: Vec<Duration>) {
    xs.sort();
    let at = |q: f64| xs[((xs.len() as f64 * q) as usize).min(xs.len() - 1)].as_secs_f64() * 1000.0;
    println!("{name:<44} median {:7.2} ms   p90 {:7.2} ms   p99 {:7.2} ms   (n={})", at(0.5), at(0.9), at(0.99), xs.len());
}

async fn measure(name: &str, j: Arc<dyn Journal>, n: usize) {
    let id = format!("bench-{:08x}", rand::random::<u32>());
    j.create_run(&conformance::new_run(&id)).await.unwrap();
    let lease = j.claim(&id, &current_owner()).await.unwrap();
    let mut commits = Vec::with_capacity(n);
    for seq in 0..n as u64 {
        let mut e = Entry::new(seq, EntryKind::Step, Some(format!("s{seq}")), EntryStatus::Succeeded, Utc::now());
        e.output = Some(serde_json::json!({"db": "orders-replica", "endpoint": "orders-replica.abc.eu-west-1.rds.amazonaws.com"}));
        let ev = Event { at: Utc::now(), level: Level::Info, step: e.key.clone(), message: "done".into(), fields: vec![] };
        let t = Instant::now();
        j.commit(&lease, vec![Op::PutEntry(e), Op::AddEvent(ev)], Durability::Durable).await.unwrap();
        commits.push(t.elapsed());
    }
    stats(&format!("{name}: step commit"), commits);
    let mut checks = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        j.check_lease(&lease).await.unwrap();
        checks.push(t.elapsed());
    }
    stats(&format!("{name}: fencing check"), checks);
    j.release(&lease).await.unwrap();
    let t = Instant::now();
    let entries = j.entries(&id).await.unwrap();
    println!("{:<44} {:7.2} ms for {} entries", format!("{name}: read the journal (resume)"), t.elapsed().as_secs_f64() * 1000.0, entries.len());
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(300);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("drover-bench-{}", std::process::id()));
        let sqlite: Arc<dyn Journal> = Arc::new(SqliteJournal::open(dir.join("runs.db")).unwrap());
        measure("embedded", sqlite, n).await;
        let _ = std::fs::remove_dir_all(&dir);
        if !std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default().starts_with("http") {
            println!("dynamodb: skipped (set AWS_ENDPOINT_URL_DYNAMODB: eval \"$(scripts/emulators env)\")");
            return;
        }
        let config = DynamoConfig { table: format!("drover-bench-{:08x}", rand::random::<u32>()), region: "us-east-1".into(), lease: Duration::from_secs(15) };
        let d = DynamoJournal::open(config).await;
        d.init().await.unwrap();
        measure("dynamodb (moto, loopback)", Arc::new(d), n).await;
    });
}
