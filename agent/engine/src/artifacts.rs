//! Where components are kept: runbook bytes by content digest (so a run can
//! always be resumed with exactly the bytes it started with) and compiled
//! machine code by digest and engine compatibility (so a second start does
//! not recompile).
//!
//! Layout under the agent's home:
//! - `runbooks/<sha256>.wasm`: the component bytes, written once.
//! - `cache/<engine-hash>/<sha256>.cwasm`: wasmtime's precompiled artifact.
//!   `<engine-hash>` covers the wasmtime version and every setting that
//!   changes machine code; only this agent writes here, since loading
//!   precompiled code is trusted.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use crate::EngineError;

/// The component store and compile cache.
pub struct Artifacts {
    runbooks: PathBuf,
    cache: PathBuf,
}

/// SHA-256 of `bytes`, hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn io(path: &Path, what: &str, e: std::io::Error) -> EngineError {
    EngineError::Storage { path: path.to_path_buf(), detail: format!("{what}: {e}") }
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, "cannot create directory", e))?;
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(bytes).map_err(|e| io(&tmp.0, "cannot write", e))?;
    tmp.1.sync_all().map_err(|e| io(&tmp.0, "cannot sync", e))?;
    std::fs::rename(&tmp.0, path).map_err(|e| io(path, "cannot rename into place", e))?;
    Ok(())
}

fn tempfile_in(dir: &Path) -> Result<(PathBuf, std::fs::File), EngineError> {
    for n in 0..100u32 {
        let p = dir.join(format!(".tmp-{}-{}-{n}", std::process::id(), rand::random::<u32>()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&p, "cannot create temporary file", e)),
        }
    }
    Err(EngineError::Storage { path: dir.into(), detail: "cannot create a temporary file".into() })
}

impl Artifacts {
    /// The store under `home`, for components compiled by `engine`.
    pub fn new(home: &Path, engine: &wasmtime::Engine) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        Artifacts { runbooks: home.join("runbooks"), cache: home.join("cache").join(format!("{:016x}", h.finish())) }
    }

    /// Keeps `bytes` under their digest; returns the digest.
    pub fn put_component(&self, bytes: &[u8]) -> Result<String, EngineError> {
        let d = digest(bytes);
        let path = self.component_path(&d);
        if !path.exists() {
            write_atomic(&path, bytes)?;
        }
        Ok(d)
    }

    /// The bytes kept under `digest`, checked against it.
    pub fn component_bytes(&self, digest_hex: &str) -> Result<Vec<u8>, EngineError> {
        let path = self.component_path(digest_hex);
        let bytes = std::fs::read(&path).map_err(|e| EngineError::RunbookMissing { digest: digest_hex.into(), detail: format!("{}: {e}", path.display()) })?;
        if digest(&bytes) != digest_hex {
            return Err(EngineError::RunbookMissing {
                digest: digest_hex.into(),
                detail: format!("{} does not match its digest (damaged on disk)", path.display()),
            });
        }
        Ok(bytes)
    }

    fn component_path(&self, digest_hex: &str) -> PathBuf {
        self.runbooks.join(format!("{digest_hex}.wasm"))
    }

    /// The compiled component for `bytes` (digest `d`): loaded from the cache,
    /// or compiled and cached. Returns it and whether the cache served it.
    pub fn compiled(&self, engine: &wasmtime::Engine, d: &str, bytes: &[u8]) -> Result<(Component, bool), EngineError> {
        let path = self.cache.join(format!("{d}.cwasm"));
        if path.exists() {
            // SAFETY: this directory holds only artifacts this agent produced
            // with `precompile_component` for an engine with the same
            // compatibility hash (it is part of the path).
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, true)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unreadable compiled runbook; recompiling");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let compiled = engine.precompile_component(bytes).map_err(|e| EngineError::InvalidComponent { detail: format!("{e:#}") })?;
        write_atomic(&path, &compiled)?;
        // SAFETY: as above; we just wrote it.
        let c = unsafe { Component::deserialize_file(engine, &path) }
            .map_err(|e| EngineError::Storage { path: path.clone(), detail: format!("cannot load compiled runbook: {e}") })?;
        Ok((c, false))
    }
}
