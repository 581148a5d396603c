//! `drover push`: a runbook component (and its signature, if it has one)
//! to a registry.

use std::collections::BTreeMap;

use drover_signing::Signature;
use oci_client::Reference;
use oci_client::RegistryOperation;
use serde_json::Value;

use crate::artifact::{self, Descriptor, Index, Manifest, WasmConfig};
use crate::{OciError, Transport, auth};

/// What was pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `REGISTRY/REPOSITORY@sha256:HEX`: the reference pinned to what was
    /// pushed (put this in configurations).
    pub pinned: String,
    /// The manifest's digest.
    pub manifest_digest: String,
    /// The signature referrer's digest, if a signature was pushed.
    pub signature_digest: Option<String>,
}

/// Pushes `component` to `reference` (a tag) with `meta` (drover's
/// metadata, from `describe()`) in its config, the layer titled `title`,
/// and `signature` as a referrer. The signature is attached as given: the
/// caller checks that it signs these bytes.
pub async fn push(
    reference: &Reference,
    transport: &Transport,
    component: &[u8],
    meta: Value,
    title: &str,
    signature: Option<&Signature>,
) -> Result<Pushed, OciError> {
    let name = reference.whole();
    let client = transport.client(reference);
    let credentials = auth::credentials(reference.resolve_registry());
    client.auth(reference, &credentials, RegistryOperation::Push).await.map_err(|e| OciError::registry("authenticate to push", &name, e))?;
    let layer = Descriptor {
        annotations: Some(BTreeMap::from([("org.opencontainers.image.title".to_string(), title.to_string())])),
        ..Descriptor::of(artifact::WASM_LAYER_TYPE, component)
    };
    let version = meta["version"].as_str().unwrap_or_default().to_string();
    let description = meta["description"].as_str().unwrap_or_default().to_string();
    let config = WasmConfig {
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        architecture: "wasm".into(),
        os: "wasip2".into(),
        layer_digests: vec![layer.digest.clone()],
        drover: meta,
    };
    let config_bytes =
        serde_json::to_vec(&config).map_err(|e| OciError::NotARunbook { reference: name.clone(), reason: format!("its config does not serialize: {e}") })?;
    let config_desc = Descriptor::of(artifact::WASM_CONFIG_TYPE, &config_bytes);
    blob(&client, reference, component, &layer.digest).await?;
    blob(&client, reference, &config_bytes, &config_desc.digest).await?;
    let mut annotations = BTreeMap::new();
    if !version.is_empty() {
        annotations.insert("org.opencontainers.image.version".to_string(), version);
    }
    if !description.is_empty() {
        annotations.insert("org.opencontainers.image.description".to_string(), description);
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(artifact::MANIFEST_TYPE.into()),
        artifact_type: None,
        config: config_desc,
        layers: vec![layer],
        subject: None,
        annotations: (!annotations.is_empty()).then_some(annotations),
    };
    let body = manifest.to_bytes();
    let manifest_desc = Descriptor::of(artifact::MANIFEST_TYPE, &body);
    put_manifest(&client, reference, body, artifact::MANIFEST_TYPE).await?;
    let pinned = reference.clone_with_digest(manifest_desc.digest.clone());
    let signature_digest = match signature {
        Some(sig) => Some(attach(&client, &pinned, &manifest_desc, sig).await?),
        None => None,
    };
    Ok(Pushed { pinned: pinned.whole(), manifest_digest: manifest_desc.digest, signature_digest })
}

/// Pushes `sig` as a referrer of `subject` (at `pinned`), and lists it
/// under the referrers tag; returns its digest.
async fn attach(client: &oci_client::Client, pinned: &Reference, subject: &Descriptor, sig: &Signature) -> Result<String, OciError> {
    let sig_bytes = sig.to_json().into_bytes();
    let layer = Descriptor::of(artifact::SIGNATURE_TYPE, &sig_bytes);
    let config = Descriptor::of(artifact::EMPTY_TYPE, artifact::EMPTY);
    blob(client, pinned, artifact::EMPTY, &config.digest).await?;
    blob(client, pinned, &sig_bytes, &layer.digest).await?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(artifact::MANIFEST_TYPE.into()),
        artifact_type: Some(artifact::SIGNATURE_TYPE.into()),
        config,
        layers: vec![layer],
        subject: Some(subject.clone()),
        annotations: None,
    };
    let body = manifest.to_bytes();
    let entry = Descriptor { artifact_type: Some(artifact::SIGNATURE_TYPE.into()), ..Descriptor::of(artifact::MANIFEST_TYPE, &body) };
    put_manifest(client, &pinned.clone_with_digest(entry.digest.clone()), body, artifact::MANIFEST_TYPE).await?;
    // The referrers tag schema: read, add, write (registries with the
    // referrers API list it on their own; the tag does no harm there).
    let tag = Reference::with_tag(pinned.registry().to_string(), pinned.repository().to_string(), artifact::referrers_tag(&subject.digest));
    let mut index = match client.pull_manifest_raw(&tag, &auth::credentials(pinned.resolve_registry()), &[artifact::INDEX_TYPE]).await {
        Ok((bytes, _)) => serde_json::from_slice::<Index>(&bytes).unwrap_or_else(|_| Index::empty()),
        Err(_) => Index::empty(),
    };
    let digest = entry.digest.clone();
    index.add(entry);
    let body = serde_json::to_vec(&index).unwrap_or_default();
    put_manifest(client, &tag, body, artifact::INDEX_TYPE).await?;
    Ok(digest)
}

async fn blob(client: &oci_client::Client, reference: &Reference, bytes: &[u8], digest: &str) -> Result<(), OciError> {
    if client.blob_exists(reference, digest).await.unwrap_or(false) {
        return Ok(());
    }
    client.push_blob(reference, bytes.to_vec(), digest).await.map(|_| ()).map_err(|e| OciError::registry("push a blob to", &reference.whole(), e))
}

async fn put_manifest(client: &oci_client::Client, reference: &Reference, body: Vec<u8>, media_type: &'static str) -> Result<(), OciError> {
    let content_type = http::HeaderValue::from_static(media_type);
    client.push_manifest_raw(reference, body, content_type).await.map(|_| ()).map_err(|e| OciError::registry("push the manifest of", &reference.whole(), e))
}
