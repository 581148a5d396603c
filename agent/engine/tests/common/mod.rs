//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use drover_engine::policy::{Grant, Policy, RunbookGrants};
use drover_engine::{Engine, Limits, LoadedRunbook, Observer, RunRequest};
use drover_journal::{Journal, SqliteJournal};

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub engine: Engine,
    pub journal: Arc<dyn Journal>,
}

pub fn fixture() -> Fixture {
    fixture_with(Limits::default())
}

pub fn fixture_with(limits: Limits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // Components and compiled code are shared by all tests (content-addressed).
    let home = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("engine-tests-home");
    let engine = Engine::new(&home, limits).unwrap().with_policy(policy());
    let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::open(dir.path().join("runs.db")).unwrap());
    Fixture { _dir: dir, engine, journal }
}

/// The fixtures' grants: `hog` and `extremes` get exactly what they declare.
pub fn policy() -> Policy {
    let mut p = Policy::default();
    let grants = vec![Grant {
        service: "rds".into(),
        operations: vec!["describe-instance".into()],
        regions: vec!["us-east-1".into()],
        resources: vec!["db/allowed-*".into()],
    }];
    p.runbooks.insert("hog".into(), RunbookGrants { sha256: None, grants });
    let grants = vec![Grant {
        service: "ec2".into(),
        operations: vec!["wait-image-available".into(), "tag".into()],
        regions: vec!["us-east-1".into()],
        resources: vec!["image/ami-*".into()],
    }];
    p.runbooks.insert("extremes".into(), RunbookGrants { sha256: None, grants });
    p
}

pub async fn load(f: &Fixture, path: &str) -> LoadedRunbook {
    let bytes = std::fs::read(path).unwrap();
    f.engine.load(path, &bytes).await.unwrap()
}

pub fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

pub async fn start(f: &Fixture, rb: &LoadedRunbook, id: &str, p: &[(&str, &str)]) -> drover_journal::RunRecord {
    let params = rb.info.validate_params(&params(p)).unwrap();
    f.engine.start(f.journal.clone(), rb, RunRequest::new(id, params), Observer::none()).await.unwrap()
}

pub async fn attempts_of(f: &Fixture, id: &str, key: &str) -> usize {
    f.journal.attempts(id).await.unwrap().iter().filter(|a| a.key == key).count()
}
