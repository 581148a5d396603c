//! Who may start a run: every trigger request and every API call proves it
//! with a bearer token or an HMAC signature, checked in constant time. A
//! request that fails gets 401 and nothing runs.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::ServiceError;
use crate::config::AuthConfig;

/// Most clock skew an HMAC-signed request may have, in seconds (and so the
/// window in which a captured request could be replayed).
pub const MAX_SKEW_SECONDS: i64 = 300;

/// The header carrying the HMAC signature: `sha256=HEX`.
pub const SIGNATURE_HEADER: &str = "x-drover-signature";
/// The header carrying the signed Unix time.
pub const TIMESTAMP_HEADER: &str = "x-drover-timestamp";

/// A check a request must pass.
pub enum Verifier {
    /// `Authorization: Bearer TOKEN`, or HTTP Basic with TOKEN as password.
    Bearer(Vec<u8>),
    /// HMAC-SHA256 over `TIMESTAMP.BODY`.
    Hmac(Vec<u8>),
}

/// Why a request was refused (said in the 401's body and logged; never
/// says what the secret is).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn secret(var: &str, what: &str) -> Result<Vec<u8>, ServiceError> {
    match std::env::var(var) {
        Ok(v) if v.len() >= 16 => Ok(v.into_bytes()),
        Ok(_) => Err(ServiceError::Config(format!("{what}: the secret in ${var} is shorter than 16 characters; use a long random value"))),
        Err(_) => Err(ServiceError::Config(format!("{what}: environment variable {var} is not set; set it to the shared secret"))),
    }
}

impl Verifier {
    /// The verifier `auth` configures for `what` (e.g. "trigger 'orders'"),
    /// reading its secret from the environment now.
    pub fn from_config(auth: &AuthConfig, what: &str) -> Result<Verifier, ServiceError> {
        match (&auth.bearer_env, &auth.hmac_sha256_env) {
            (Some(var), None) => Ok(Verifier::Bearer(secret(var, what)?)),
            (None, Some(var)) => Ok(Verifier::Hmac(secret(var, what)?)),
            _ => Err(ServiceError::Config(format!("{what}: auth must set exactly one of bearer_env or hmac_sha256_env"))),
        }
    }

    /// The bearer token in `$var`, for the HTTP API.
    pub fn bearer_from_env(var: &str, what: &str) -> Result<Verifier, ServiceError> {
        Ok(Verifier::Bearer(secret(var, what)?))
    }

    /// Checks a request: `header(name)` reads its headers (lower-case
    /// names); `now` is the current Unix time.
    pub fn check<'a>(&self, header: impl Fn(&str) -> Option<&'a str>, body: &[u8], now: i64) -> Result<(), Refused> {
        match self {
            Verifier::Bearer(token) => {
                let given = header("authorization").ok_or_else(|| Refused("no Authorization header".into()))?;
                let presented: Vec<u8> = if let Some(t) = strip_scheme(given, "bearer") {
                    t.as_bytes().to_vec()
                } else if let Some(b) = strip_scheme(given, "basic") {
                    let decoded = base64::engine::general_purpose::STANDARD.decode(b).map_err(|_| Refused("malformed Basic credentials".into()))?;
                    match decoded.iter().position(|&c| c == b':') {
                        Some(i) => decoded[i + 1..].to_vec(),
                        None => return Err(Refused("malformed Basic credentials".into())),
                    }
                } else {
                    return Err(Refused("the Authorization header is neither Bearer nor Basic".into()));
                };
                if presented.len() == token.len() && bool::from(presented.ct_eq(token)) { Ok(()) } else { Err(Refused("wrong token".into())) }
            }
            Verifier::Hmac(key) => {
                let ts = header(TIMESTAMP_HEADER).ok_or_else(|| Refused(format!("no {TIMESTAMP_HEADER} header")))?;
                let t: i64 = ts.trim().parse().map_err(|_| Refused(format!("{TIMESTAMP_HEADER} is not Unix seconds")))?;
                if (now - t).abs() > MAX_SKEW_SECONDS {
                    return Err(Refused(format!("{TIMESTAMP_HEADER} is {} s away from the agent's clock (at most {MAX_SKEW_SECONDS})", now - t)));
                }
                let sig = header(SIGNATURE_HEADER).ok_or_else(|| Refused(format!("no {SIGNATURE_HEADER} header")))?;
                let hex_sig = sig.trim().strip_prefix("sha256=").ok_or_else(|| Refused(format!("{SIGNATURE_HEADER} must be sha256=HEX")))?;
                let given = hex::decode(hex_sig).map_err(|_| Refused(format!("{SIGNATURE_HEADER} is not hex")))?;
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|_| Refused("bad key".into()))?;
                mac.update(ts.trim().as_bytes());
                mac.update(b".");
                mac.update(body);
                mac.verify_slice(&given).map_err(|_| Refused("the signature does not match the body".into()))
            }
        }
    }
}

impl Verifier {
    /// The shared secret (what keys derived from it start from, e.g. the
    /// console's session keys).
    pub fn secret(&self) -> &[u8] {
        let (Verifier::Bearer(secret) | Verifier::Hmac(secret)) = self;
        secret
    }

    /// A stable label of the secret that never reveals it: `token:` and the
    /// first 8 hex digits of its SHA-256 (who authenticated, when the
    /// configuration gives the token no name).
    pub fn label(&self) -> String {
        use sha2::Digest as _;
        let (Verifier::Bearer(secret) | Verifier::Hmac(secret)) = self;
        format!("token:{}", &hex::encode(Sha256::digest(secret))[..8])
    }
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = value.trim().split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// The `X-Drover-Signature` value for `body` signed at `timestamp` with
/// `key`: what a sender computes (and what the tests send).
pub fn sign(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length; were it ever refused, the empty
    // signature matches no request, so the request is refused.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else { return String::new() };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(h: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name| h.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    #[test]
    fn bearer_and_basic() {
        let v = Verifier::Bearer(b"0123456789abcdef".to_vec());
        assert!(v.check(headers(&[("authorization", "Bearer 0123456789abcdef")]), b"", 0).is_ok());
        assert!(v.check(headers(&[("authorization", "bearer  0123456789abcdef ")]), b"", 0).is_ok());
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("sns:0123456789abcdef"));
        assert!(v.check(headers(&[("authorization", basic.as_str())]), b"", 0).is_ok());
        for bad in ["Bearer 0123456789abcdeX", "Bearer 0123456789abcdef0", "Token 0123456789abcdef", "Basic !!"] {
            assert!(v.check(headers(&[("authorization", bad)]), b"", 0).is_err(), "{bad}");
        }
        assert_eq!(v.check(headers(&[]), b"", 0).unwrap_err().0, "no Authorization header");
    }

    #[test]
    fn a_token_is_labelled_without_revealing_it() {
        let v = Verifier::Bearer(b"0123456789abcdef".to_vec());
        let label = v.label();
        assert_eq!(label, "token:9f9f5111", "{label}");
        assert_eq!(label, Verifier::Bearer(b"0123456789abcdef".to_vec()).label(), "stable");
        assert_ne!(label, Verifier::Bearer(b"0123456789abcdeX".to_vec()).label());
    }

    #[test]
    fn hmac_binds_body_and_time() {
        let key = b"a-long-shared-secret";
        let v = Verifier::Hmac(key.to_vec());
        let body = br#"{"labels":{"app":"orders"}}"#;
        let sig = sign(key, 1_000_000, body);
        let ok = [(TIMESTAMP_HEADER, "1000000"), (SIGNATURE_HEADER, sig.as_str())];
        assert!(v.check(headers(&ok), body, 1_000_100).is_ok());
        // Another body, another time, or too old: refused.
        assert!(v.check(headers(&ok), br#"{"labels":{"app":"other"}}"#, 1_000_100).is_err());
        let moved = [(TIMESTAMP_HEADER, "1000001"), (SIGNATURE_HEADER, sig.as_str())];
        assert!(v.check(headers(&moved), body, 1_000_100).is_err());
        let e = v.check(headers(&ok), body, 1_000_000 + MAX_SKEW_SECONDS + 1).unwrap_err();
        assert!(e.0.contains("away from the agent's clock"), "{e}");
    }
}
