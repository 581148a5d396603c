//! `drover pull`, and every runbook argument that is an OCI reference: the
//! artifact by tag (resolved to its digest) or by digest, checked by digest
//! all the way down, with the signatures that refer to it.

use drover_signing::Signature;
use oci_client::Reference;
use oci_client::secrets::RegistryAuth;

use crate::artifact::{self, Index, Manifest, WasmConfig};
use crate::{OciError, Transport, auth};

/// A pulled runbook artifact.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// `REGISTRY/REPOSITORY@sha256:HEX`: the reference pinned to the
    /// manifest pulled (a tag resolved now).
    pub pinned: String,
    /// The manifest's digest.
    pub manifest_digest: String,
    /// The component's bytes (their digest checked against the manifest).
    pub component: Vec<u8>,
    /// The artifact's config (not signed: check `drover` against the
    /// component's own description).
    pub config: WasmConfig,
    /// The drover signatures that refer to the manifest (unverified: the
    /// caller checks them against its trusted keys).
    pub signatures: Vec<Signature>,
}

/// Pulls the runbook at `reference`.
pub async fn pull(reference: &Reference, transport: &Transport) -> Result<Pulled, OciError> {
    let name = reference.whole();
    let client = transport.client(reference);
    let credentials = auth::credentials(reference.resolve_registry());
    let (body, manifest_digest) = client
        .pull_manifest_raw(reference, &credentials, &[artifact::MANIFEST_TYPE])
        .await
        .map_err(|e| OciError::registry("pull the manifest of", &name, e))?;
    let not_a_runbook = |reason: String| OciError::NotARunbook { reference: name.clone(), reason };
    if artifact::digest(&body) != manifest_digest {
        return Err(not_a_runbook(format!("its manifest's content does not match its digest {manifest_digest}")));
    }
    if reference.digest().is_some_and(|d| d != manifest_digest) {
        return Err(not_a_runbook(format!("the registry served manifest {manifest_digest} for this digest")));
    }
    let manifest: Manifest = serde_json::from_slice(&body).map_err(|e| not_a_runbook(format!("its manifest is not an OCI image manifest: {e}")))?;
    let pinned = reference.clone_with_digest(manifest_digest.clone());
    if manifest.config.media_type != artifact::WASM_CONFIG_TYPE {
        return Err(not_a_runbook(format!("its config is '{}', not '{}'", manifest.config.media_type, artifact::WASM_CONFIG_TYPE)));
    }
    let [layer] = manifest.layers.as_slice() else {
        return Err(not_a_runbook(format!("it has {} layers; a runbook artifact has one, the component", manifest.layers.len())));
    };
    if layer.media_type != artifact::WASM_LAYER_TYPE {
        return Err(not_a_runbook(format!("its layer is '{}', not '{}'", layer.media_type, artifact::WASM_LAYER_TYPE)));
    }
    let config_bytes = blob(&client, &pinned, &manifest.config.digest, &name).await?;
    let config: WasmConfig = serde_json::from_slice(&config_bytes).map_err(|e| not_a_runbook(format!("its config is not a Wasm artifact config: {e}")))?;
    if config.layer_digests.first() != Some(&layer.digest) {
        return Err(not_a_runbook(format!("its config lists layers {:?}, its manifest {}", config.layer_digests, layer.digest)));
    }
    let component = blob(&client, &pinned, &layer.digest, &name).await?;
    let signatures = signatures(&client, &pinned, &credentials).await;
    Ok(Pulled { pinned: pinned.whole(), manifest_digest, component, config, signatures })
}

/// The blob `digest`, its content checked against it.
async fn blob(client: &oci_client::Client, pinned: &Reference, digest: &str, name: &str) -> Result<Vec<u8>, OciError> {
    let mut out = Vec::new();
    let tampered = |detail: String| OciError::NotARunbook {
        reference: name.to_string(),
        reason: format!("blob {digest} does not match its digest (tampered with, or damaged; nothing of it was used): {detail}"),
    };
    match client.pull_blob(pinned, digest, &mut out).await {
        Ok(()) => {}
        Err(e @ oci_client::errors::OciDistributionError::DigestError(_)) => return Err(tampered(e.to_string())),
        Err(e) => return Err(OciError::registry("pull a blob of", name, e)),
    }
    let got = artifact::digest(&out);
    if got != digest {
        return Err(tampered(format!("its content is {got}")));
    }
    Ok(out)
}

/// The drover signatures referring to `pinned`. A referrer that cannot be
/// read is left out (logged): a runbook whose signatures are all unreadable
/// is unsigned, which `[signing] require` refuses.
async fn signatures(client: &oci_client::Client, pinned: &Reference, credentials: &RegistryAuth) -> Vec<Signature> {
    let index: Index = match client.pull_referrers(pinned, Some(artifact::SIGNATURE_TYPE)).await {
        Ok(i) => serde_json::to_value(&i).and_then(serde_json::from_value).unwrap_or_else(|_| Index::empty()),
        Err(e) => {
            tracing::warn!(reference = %pinned.whole(), error = %e, "cannot list the artifact's referrers; treating it as unsigned");
            Index::empty()
        }
    };
    let mut found = Vec::new();
    for entry in index.manifests.iter().filter(|m| m.artifact_type.as_deref() == Some(artifact::SIGNATURE_TYPE)) {
        let at = pinned.clone_with_digest(entry.digest.clone());
        let read = async {
            let (body, _) = client.pull_manifest_raw(&at, credentials, &[artifact::MANIFEST_TYPE]).await.map_err(|e| e.to_string())?;
            let m: Manifest = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            let layer = m.layers.first().ok_or("no layer")?;
            let bytes = blob(client, &at, &layer.digest, &at.whole()).await.map_err(|e| e.to_string())?;
            Signature::from_json(&String::from_utf8_lossy(&bytes)).map_err(|e| e.to_string())
        };
        match read.await {
            Ok(sig) => found.push(sig),
            Err(e) => tracing::warn!(referrer = %at.whole(), error = %e, "an unreadable signature referrer was left out"),
        }
    }
    found
}
