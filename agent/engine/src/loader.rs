//! Loading a runbook: check that the bytes are a component for our world and
//! contract version, compile it (or take it from the cache), and read its
//! description. Every refusal names the file and says what to do.

use std::time::Instant;

use wasmtime::component::types::ComponentItem;

use crate::bindings::{CONTRACT_PACKAGE, CONTRACT_VERSION, RunbookPre};
use crate::host::{HostState, ImportInDescribe};
use crate::info::RunbookInfo;
use crate::{Engine, EngineError};

/// A runbook ready to run: validated, compiled, imports resolved, described.
pub struct LoadedRunbook {
    /// What it says about itself (digest and contract version included).
    pub info: RunbookInfo,
    /// Whether the compiled code came from the cache.
    pub from_cache: bool,
    /// Time to load (compile or cache) and describe.
    pub load_time: std::time::Duration,
    pub(crate) pre: RunbookPre<HostState>,
}

/// Whether `import` (a `drover:runbook/...@X.Y.Z` name) is served by our
/// contract version: same major and minor (0.x: same minor), patch not newer.
fn contract_version_of(import: &str) -> Option<&str> {
    import.strip_prefix(CONTRACT_PACKAGE)?.strip_prefix('/')?.split_once('@').map(|(_, v)| v)
}

fn compatible(found: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let mut it = v.split(['.', '-', '+']).map(|p| p.parse::<u64>().ok());
        Some((it.next()??, it.next()??, it.next()??))
    };
    match (parse(found), parse(CONTRACT_VERSION)) {
        (Some((fa, fb, fc)), Some((oa, ob, oc))) => fa == oa && fb == ob && fc <= oc,
        _ => false,
    }
}

/// Checks that `bytes` are a WebAssembly component (magic number and
/// component layer) before anything else looks at them.
pub fn check_header(label: &str, bytes: &[u8]) -> Result<(), EngineError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        let head: String = bytes.iter().take(8).map(|b| if b.is_ascii_graphic() { (*b as char).to_string() } else { format!("\\x{b:02x}") }).collect();
        let head = if bytes.is_empty() { "nothing: the file is empty".to_string() } else { format!("'{head}'") };
        return Err(EngineError::NotWasm { label: label.into(), head });
    }
    // Bytes 4..8: version and layer. Core modules: 01 00 00 00; components: 0d 00 01 00.
    if bytes[6..8] == [0, 0] {
        return Err(EngineError::CoreModule { label: label.into() });
    }
    Ok(())
}

impl Engine {
    /// Loads a runbook from `bytes` (`label` names it in errors: a path).
    /// Keeps the bytes under their digest so runs can be resumed with them.
    pub async fn load(&self, label: &str, bytes: &[u8]) -> Result<LoadedRunbook, EngineError> {
        let started = Instant::now();
        check_header(label, bytes)?;
        let digest = self.artifacts.put_component(bytes)?;
        let (component, from_cache) = self.artifacts.compiled(&self.wasm, &digest, bytes)?;

        let ty = component.component_type();
        let mut contract = None;
        for (name, _) in ty.imports(&self.wasm) {
            if name.starts_with("wasi:") {
                continue;
            }
            match contract_version_of(name) {
                Some(v) if compatible(v) => contract = Some(v.to_string()),
                Some(v) => {
                    return Err(EngineError::UnsupportedContract {
                        label: label.into(),
                        import: name.into(),
                        found: format!("{CONTRACT_PACKAGE}@{v}"),
                        supported: CONTRACT_VERSION,
                    });
                }
                None => {
                    return Err(EngineError::UnknownImport { label: label.into(), import: name.into(), supported: CONTRACT_VERSION });
                }
            }
        }
        let exports: Vec<(String, bool)> =
            ty.exports(&self.wasm).map(|(n, item)| (n.to_string(), matches!(item.ty, ComponentItem::ComponentFunc(_)))).collect();
        let has = |n: &str| exports.iter().any(|(e, f)| e == n && *f);
        if !has("describe") || !has("run") {
            return Err(EngineError::WrongWorld { label: label.into(), exports: exports.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ") });
        }

        let pre = self.linker.instantiate_pre(&component).map_err(|e| EngineError::Instantiate(format!("{label}: {e:#}")))?;
        let pre = RunbookPre::new(pre).map_err(|e| EngineError::WrongWorld {
            label: label.into(),
            exports: format!("{} ({e:#})", exports.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")),
        })?;

        let (mut store, stderr) = self.new_store(None, "describe", 0, None);
        let describe_err = |e: wasmtime::Error| {
            let detail = if e.downcast_ref::<ImportInDescribe>().is_some() {
                ImportInDescribe.to_string()
            } else {
                let tail = crate::sandbox::stderr_tail(&stderr, 2048);
                if tail.is_empty() { format!("{e:#}") } else { format!("{e:#}; runbook stderr: {tail}") }
            };
            EngineError::Describe { label: label.into(), detail }
        };
        let instance = pre.instantiate_async(&mut store).await.map_err(describe_err)?;
        let raw = instance.call_describe(&mut store).await.map_err(describe_err)?;
        let info = RunbookInfo::from_wit(raw, contract.unwrap_or_else(|| CONTRACT_VERSION.to_string()), digest)?;
        Ok(LoadedRunbook { info, from_cache, load_time: started.elapsed(), pre })
    }

    /// Loads the runbook kept under `digest` (the one a run is pinned to).
    pub async fn load_pinned(&self, digest: &str) -> Result<LoadedRunbook, EngineError> {
        let bytes = self.artifacts.component_bytes(digest)?;
        self.load(&format!("runbook sha256:{}", &digest[..digest.len().min(12)]), &bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_versions() {
        assert_eq!(contract_version_of("drover:runbook/steps@0.1.0"), Some("0.1.0"));
        assert_eq!(contract_version_of("drover:other/steps@0.1.0"), None);
        assert!(compatible("0.1.0"));
        assert!(compatible("0.1.1"));
        assert!(compatible("0.1.2"));
        assert!(compatible("0.1.3"));
        assert!(compatible("0.1.4"));
        assert!(compatible("0.1.5"));
        assert!(!compatible("0.1.9"));
        assert!(!compatible("0.2.0"));
        assert!(!compatible("1.1.0"));
        assert!(!compatible("garbage"));
    }

    #[test]
    fn headers() {
        assert!(matches!(check_header("f", b"hello world"), Err(EngineError::NotWasm { .. })));
        assert!(matches!(check_header("f", b""), Err(EngineError::NotWasm { .. })));
        assert!(matches!(check_header("f", b"\0asm\x01\0\0\0"), Err(EngineError::CoreModule { .. })));
        assert!(check_header("f", b"\0asm\x0d\0\x01\0").is_ok());
    }
}
