//! Whether a runbook argument names a file or an OCI artifact.
//!
//! `oci://REF` is always a reference; an existing path is always a file;
//! otherwise the argument is a reference only if it names a registry
//! explicitly (a first segment with `.` or `:`, or `localhost`) and a tag
//! or digest, so that `runbooks/x.wasm` is never read as Docker Hub's
//! `docker.io/runbooks/x.wasm:latest`. Anything else is a file (which the
//! caller then fails to read, saying so).

use std::path::{Path, PathBuf};

use oci_client::Reference;

use crate::OciError;

/// Where a runbook comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunbookSource {
    /// A component file (its signature beside it, `FILE.sig`).
    File(PathBuf),
    /// An OCI artifact, by tag or digest.
    Oci(Reference),
}

/// Parses a runbook argument (see the module docs).
pub fn parse_source(arg: &str) -> Result<RunbookSource, OciError> {
    if let Some(reference) = arg.strip_prefix("oci://") {
        return parse_reference(reference).map(RunbookSource::Oci);
    }
    let path = Path::new(arg);
    if path.exists() || !names_a_registry(arg) {
        return Ok(RunbookSource::File(path.to_path_buf()));
    }
    parse_reference(arg).map(RunbookSource::Oci)
}

/// Parses `REGISTRY/REPOSITORY:TAG` or `REGISTRY/REPOSITORY@sha256:HEX`; a
/// reference without a tag or digest is refused (no implicit `latest`).
pub fn parse_reference(text: &str) -> Result<Reference, OciError> {
    let bad = |reason: &str| OciError::BadReference { reference: text.to_string(), reason: reason.to_string() };
    let last = text.rsplit('/').next().unwrap_or(text);
    if !text.contains('@') && !last.contains(':') {
        return Err(bad("name a tag (`:1.4.0`) or a digest (`@sha256:...`): drover never assumes `latest`"));
    }
    if !names_a_registry(text) {
        return Err(bad("name the registry (`registry.example.com/team/runbook:1.0`, `127.0.0.1:5000/...`): drover never assumes Docker Hub"));
    }
    if let Some((_, digest)) = text.split_once('@') {
        let hex = digest.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("a digest is `sha256:` and 64 hex digits"));
        }
    }
    text.parse().map_err(|e: oci_client::ParseError| bad(&e.to_string()))
}

/// Whether the first segment of `text` is a registry host.
fn names_a_registry(text: &str) -> bool {
    match text.split_once('/') {
        Some((first, rest)) => !rest.is_empty() && (first.contains('.') || first.contains(':') || first == "localhost") && !first.starts_with('.'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn files_stay_files() {
        for arg in ["runbooks/x.wasm", "x.wasm", "./target/a.wasm", "../a/b.wasm", "/abs/path.wasm", "dir/with:colon"] {
            assert!(matches!(parse_source(arg), Ok(RunbookSource::File(_))), "{arg}");
        }
    }

    #[test]
    fn references_are_references() {
        for arg in ["127.0.0.1:5055/drover/probe:1.0", "localhost:5000/a/b:tag", "registry.example.com/team/failover:2.1"] {
            let Ok(RunbookSource::Oci(r)) = parse_source(arg) else { panic!("{arg}") };
            assert!(r.tag().is_some(), "{arg}");
        }
        let Ok(RunbookSource::Oci(r)) = parse_source(&format!("oci://localhost:5000/a/b@{DIGEST}")) else { panic!() };
        assert_eq!((r.registry(), r.repository(), r.digest()), ("localhost:5000", "a/b", Some(DIGEST)));
    }

    #[test]
    fn vague_references_are_refused() {
        for (arg, says) in [
            ("oci://localhost:5000/a/b", "name a tag"),
            ("oci://team/failover:1.0", "name the registry"),
            ("oci://localhost:5000/a/b@sha256:abc", "64 hex digits"),
        ] {
            let e = parse_source(arg).unwrap_err().to_string();
            assert!(e.contains(says), "{arg}: {e}");
        }
    }
}
