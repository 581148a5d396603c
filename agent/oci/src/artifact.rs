//! The artifacts as JSON: a runbook's manifest, its config, a signature's
//! referrer manifest and the referrers index (tag schema).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// An OCI image manifest.
pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image index.
pub const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The config of a Wasm OCI artifact.
pub const WASM_CONFIG_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// A WebAssembly component layer.
pub const WASM_LAYER_TYPE: &str = "application/wasm";
/// drover's detached signature, as a referrer's artifact type and layer.
pub const SIGNATURE_TYPE: &str = "application/vnd.drover.signature.v1+json";
/// The empty config of an artifact that needs none.
pub const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's content.
pub const EMPTY: &[u8] = b"{}";

/// `sha256:HEX` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the content is.
    pub media_type: String,
    /// `sha256:HEX` of the content.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// The artifact type of a referrer, in an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    /// The descriptor of `bytes` as `media_type`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Descriptor { media_type: media_type.into(), digest: digest(bytes), size: bytes.len() as u64, artifact_type: None, annotations: None }
    }
}

/// An OCI image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`MANIFEST_TYPE`].
    #[serde(default)]
    pub media_type: Option<String>,
    /// Set on a referrer (a signature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers: exactly one for a runbook or a signature.
    pub layers: Vec<Descriptor>,
    /// The manifest a referrer refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Manifest {
    /// The manifest's bytes as pushed (its digest is theirs).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// An OCI image index (the referrers of a manifest, under the tag schema).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// [`INDEX_TYPE`].
    #[serde(default)]
    pub media_type: Option<String>,
    /// The referrers.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

impl Index {
    /// An empty index.
    pub fn empty() -> Self {
        Index { schema_version: 2, media_type: Some(INDEX_TYPE.into()), manifests: Vec::new() }
    }

    /// Adds `entry` unless a manifest with its digest is listed already.
    pub fn add(&mut self, entry: Descriptor) {
        if !self.manifests.iter().any(|m| m.digest == entry.digest) {
            self.manifests.push(entry);
        }
    }
}

/// The config of a runbook artifact: the Wasm OCI artifact's fields, and
/// drover's metadata under `drover`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// When it was pushed (RFC 3339).
    pub created: String,
    /// `wasm`.
    pub architecture: String,
    /// `wasip2`.
    pub os: String,
    /// The digest of each layer (one).
    pub layer_digests: Vec<String>,
    /// drover's metadata: what `drover inspect --json` says of the runbook
    /// (name, version, contract, parameters, capabilities). Not covered by
    /// the signature: checked against the component when it is loaded.
    #[serde(default)]
    pub drover: Value,
}

/// The referrers tag of manifest `digest` (`sha256-HEX`).
pub fn referrers_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_lists_each_referrer_once() {
        let mut i = Index::empty();
        let a = Descriptor::of(MANIFEST_TYPE, b"a");
        i.add(a.clone());
        i.add(Descriptor::of(MANIFEST_TYPE, b"b"));
        i.add(a);
        assert_eq!(i.manifests.len(), 2);
        assert_eq!(referrers_tag(&i.manifests[0].digest), format!("sha256-{}", &i.manifests[0].digest[7..]));
    }

    #[test]
    fn manifests_use_the_oci_field_names() {
        let m = Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST_TYPE.into()),
            artifact_type: Some(SIGNATURE_TYPE.into()),
            config: Descriptor::of(EMPTY_TYPE, EMPTY),
            layers: vec![Descriptor::of(SIGNATURE_TYPE, b"{}")],
            subject: Some(Descriptor::of(MANIFEST_TYPE, b"m")),
            annotations: None,
        };
        let v: Value = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["artifactType"], SIGNATURE_TYPE);
        assert_eq!(v["config"]["digest"], "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        assert_eq!(v["subject"]["mediaType"], MANIFEST_TYPE);
        assert!(v.get("annotations").is_none());
    }
}
