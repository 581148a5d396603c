//! Paths of the runbook components built for the host's tests.
//!
//! `build.rs` builds the `runbooks/` workspace (reference runbooks and the
//! test fixtures under `runbooks/fixtures/`) for wasm32-wasip2; each component
//! gets a constant named after its crate, e.g. [`HELLO_DURABLE`].

include!(concat!(env!("OUT_DIR"), "/runbooks.rs"));
