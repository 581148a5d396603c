//! Registry credentials, first found wins: `DROVER_REGISTRY_USERNAME` and
//! `DROVER_REGISTRY_PASSWORD` (basic), `DROVER_REGISTRY_TOKEN` (bearer), the
//! Docker configuration file (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`, credential helpers included), else anonymous.

use oci_client::secrets::RegistryAuth;

/// The credentials for `registry` (`host:port`).
pub fn credentials(registry: &str) -> RegistryAuth {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(user), Some(password)) = (var("DROVER_REGISTRY_USERNAME"), var("DROVER_REGISTRY_PASSWORD")) {
        return RegistryAuth::Basic(user, password);
    }
    if let Some(token) = var("DROVER_REGISTRY_TOKEN") {
        return RegistryAuth::Bearer(token);
    }
    for server in [registry.to_string(), format!("https://{registry}"), format!("http://{registry}")] {
        match docker_credential::get_credential(&server) {
            Ok(docker_credential::DockerCredential::UsernamePassword(user, password)) => return RegistryAuth::Basic(user, password),
            Ok(docker_credential::DockerCredential::IdentityToken(_)) => {
                tracing::warn!(registry, "the Docker configuration holds an identity token for this registry, which drover cannot use; trying anonymously");
                break;
            }
            Err(e) => tracing::debug!(registry, server, error = %e, "no Docker credentials"),
        }
    }
    RegistryAuth::Anonymous
}
