//! Runbooks as OCI artifacts.
//!
//! A runbook travels through a registry the way WebAssembly components do
//! (the CNCF TAG-Runtime "Wasm OCI artifact" layout, as `wkg` writes it): an
//! OCI image manifest with one layer, the component (`application/wasm`),
//! and a config `application/vnd.wasm.config.v0+json` that carries drover's
//! metadata (name, version, contract, declared capabilities) under the key
//! `drover`. drover's detached signature (the `.sig` JSON of
//! `drover-signing`) is a referrer of that manifest: an artifact of type
//! `application/vnd.drover.signature.v1+json` whose `subject` is the
//! component's manifest, listed under the referrers tag `sha256-<hex>`
//! (registries without the referrers API, such as the CNCF distribution
//! registry, serve it that way). The signature is not a second layer: a
//! consumer of the Wasm artifact layout refuses a manifest with more than
//! one.
//!
//! - [`source`]: whether a runbook argument is a file or an OCI reference;
//! - [`transport`]: HTTPS, or plain HTTP for loopback registries and those
//!   the operator names;
//! - [`auth`]: registry credentials from the environment or the Docker
//!   configuration file;
//! - [`artifact`]: the media types, manifests and config as JSON;
//! - [`push`] and [`pull`]: the two directions.
//!
//! What is pulled is checked by digest all the way down (the manifest
//! against the reference's digest, each blob against its descriptor); the
//! config is not covered by the signature, so the caller checks it against
//! what the component itself says (`describe()`).

pub mod artifact;
pub mod auth;
mod error;
pub mod pull;
pub mod push;
pub mod source;
pub mod transport;

pub use error::OciError;
pub use pull::{Pulled, pull};
pub use push::{Pushed, push};
pub use source::{RunbookSource, parse_source};
pub use transport::Transport;

/// A parsed OCI reference (`registry/repository:tag` or `@sha256:...`).
pub use oci_client::Reference;
