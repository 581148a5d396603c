//! Cleanups and undos: what a runbook registers as it goes, and what the
//! agent hands back to [`crate::Runbook::finalize`] when the run has ended.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Error;
use crate::bindings::{ActionKind, Ending as WitEnding};

/// How the runbook's `run` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `run` returned its result.
    Succeeded,
    /// `run` returned an error, trapped, panicked or hit a limit.
    Failed,
    /// An operator cancelled the run.
    Cancelled,
}

/// A registered cleanup or undo, handed to [`crate::Runbook::finalize`].
#[derive(Debug, Clone)]
pub struct Action {
    undo: bool,
    key: String,
    payload: Value,
    ending: Ending,
}

impl Action {
    pub(crate) fn from_wit(a: crate::bindings::Action) -> Result<Self, Error> {
        let payload = serde_json::from_str(&a.payload).map_err(|e| Error::new("bad-payload", format!("payload of action '{}' is not JSON: {e}", a.key)))?;
        Ok(Action {
            undo: matches!(a.kind, ActionKind::Undo),
            key: a.key,
            payload,
            ending: match a.ending {
                WitEnding::Succeeded => Ending::Succeeded,
                WitEnding::Failed => Ending::Failed,
                WitEnding::Cancelled => Ending::Cancelled,
            },
        })
    }

    /// The key it was registered under.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether it is an undo (registered with [`crate::Ctx::compensate`]);
    /// otherwise a cleanup ([`crate::Ctx::defer`]).
    pub fn is_undo(&self) -> bool {
        self.undo
    }

    /// How `run` ended.
    pub fn ending(&self) -> Ending {
        self.ending
    }

    /// The payload, decoded as the type it was registered with.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_value(self.payload.clone()).map_err(|e| Error::new("bad-payload", format!("payload of action '{}': {e}", self.key)))
    }
}
