//! What can go wrong with a registry.

/// An OCI operation that failed: what, on which reference, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The argument is not a usable OCI reference.
    #[error("'{reference}' is not an OCI reference drover can use: {reason}")]
    BadReference {
        /// The argument.
        reference: String,
        /// Why not.
        reason: String,
    },
    /// The registry refused or failed a request.
    #[error("{action} {reference}: {detail}")]
    Registry {
        /// What was being done (`push`, `pull the manifest of`, ...).
        action: &'static str,
        /// The reference.
        reference: String,
        /// The registry's answer, and what to do.
        detail: String,
    },
    /// What the registry served is not a drover runbook artifact (or was
    /// tampered with).
    #[error("{reference} is not a drover runbook artifact drover can trust: {reason}")]
    NotARunbook {
        /// The reference.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl OciError {
    /// A registry failure of `action` on `reference`, with the advice that
    /// fits the error.
    pub(crate) fn registry(action: &'static str, reference: &str, e: oci_client::errors::OciDistributionError) -> Self {
        use oci_client::errors::OciDistributionError as E;
        let advice = match &e {
            E::AuthenticationFailure(_) | E::UnauthorizedError { .. } | E::ServerError { code: 401 | 403, .. } => {
                " (set DROVER_REGISTRY_USERNAME and DROVER_REGISTRY_PASSWORD, or log in so that the Docker configuration file holds credentials for this registry)"
            }
            E::RequestError(_) => {
                " (is the registry up and reachable? plain HTTP is used only for loopback registries and those named under [registry] plain_http)"
            }
            _ => "",
        };
        OciError::Registry { action, reference: reference.to_string(), detail: format!("{e}{advice}") }
    }
}
