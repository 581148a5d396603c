//! How drover reaches a registry: HTTPS, except for a registry on the
//! loopback interface (a test registry, a local mirror) and those the
//! operator names (`[registry] plain_http`, `--plain-http`).

use std::net::Ipv4Addr;

use oci_client::Reference;
use oci_client::client::{ClientConfig, ClientProtocol};

/// Which registries may be reached over plain HTTP besides loopback ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transport {
    /// `host:port` of registries reached over plain HTTP.
    pub plain_http: Vec<String>,
}

impl Transport {
    /// Whether `reference`'s registry is reached over plain HTTP.
    pub fn plain(&self, reference: &Reference) -> bool {
        let registry = reference.resolve_registry();
        loopback(registry) || self.plain_http.iter().any(|h| h == registry)
    }

    /// A client for `reference`'s registry.
    pub fn client(&self, reference: &Reference) -> oci_client::Client {
        let protocol = if self.plain(reference) { ClientProtocol::Http } else { ClientProtocol::Https };
        oci_client::Client::new(ClientConfig {
            protocol,
            // An image index where a runbook's manifest belongs is an error,
            // never a platform picked for us.
            platform_resolver: None,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            ..ClientConfig::default()
        })
    }
}

/// Whether `registry` (`host[:port]`) is on the loopback interface.
fn loopback(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    host == "localhost" || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_unless_loopback_or_named() {
        let r = |s: &str| s.parse::<Reference>().unwrap();
        let t = Transport { plain_http: vec!["mirror.internal:5000".into()] };
        assert!(t.plain(&r("127.0.0.1:5055/a/b:1")));
        assert!(t.plain(&r("127.3.4.5:80/a/b:1")));
        assert!(t.plain(&r("localhost:5000/a/b:1")));
        assert!(t.plain(&r("mirror.internal:5000/a/b:1")));
        assert!(!t.plain(&r("mirror.internal:5001/a/b:1")));
        assert!(!t.plain(&r("registry.example.com/a/b:1")));
        assert!(!t.plain(&r("128.0.0.1:5000/a/b:1")));
    }
}
