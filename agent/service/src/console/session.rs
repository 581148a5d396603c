//! Who is using the console: a browser logs in once with the agent's API
//! token and gets a session cookie (`HttpOnly`, `SameSite=Strict`, scoped
//! to `/console`); every form it posts carries a CSRF token bound to that
//! session.
//!
//! Sessions are stateless and signed: the cookie is
//! `v1.BASE64URL(JSON{sid, name, exp}).HEX(HMAC-SHA256)` under a key derived
//! from the API token, so a restarted agent keeps its sessions and a rotated
//! token ends them all. The CSRF token is an HMAC of the session id under
//! the same key: a page of another site can neither read it nor make it.

use base64::Engine as _;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The cookie's name.
pub const COOKIE: &str = "drover_session";
/// How long a session lasts, in seconds (12 h: one on-call shift).
pub const LIFETIME_SECONDS: i64 = 12 * 3600;
/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";

/// A logged-in browser.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// Random id of this login (what the CSRF token is bound to).
    pub sid: String,
    /// The name the person gave at login (recorded as their claim).
    pub name: String,
    /// When it ends, Unix seconds.
    pub exp: i64,
}

/// Signs and checks sessions and CSRF tokens.
pub struct Keys {
    key: Vec<u8>,
}

impl Keys {
    /// The keys derived from the agent's API token (`secret`).
    pub fn new(secret: &[u8]) -> Keys {
        Keys { key: mac(secret, b"drover-console-session-v1") }
    }

    /// A new session for `name`, valid from now.
    pub fn open(&self, name: &str) -> Session {
        let sid = hex::encode(rand_bytes());
        Session { sid, name: name.trim().chars().take(80).collect(), exp: Utc::now().timestamp() + LIFETIME_SECONDS }
    }

    /// The cookie's value for `session`.
    pub fn seal(&self, session: &Session) -> String {
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(session).unwrap_or_default());
        let sig = hex::encode(mac(&self.key, format!("v1.{body}").as_bytes()));
        format!("v1.{body}.{sig}")
    }

    /// The session a cookie value proves, if its signature holds and it
    /// has not expired at `now`.
    pub fn unseal(&self, value: &str, now: i64) -> Option<Session> {
        let rest = value.strip_prefix("v1.")?;
        let (body, sig) = rest.rsplit_once('.')?;
        let given = hex::decode(sig).ok()?;
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).ok()?;
        m.update(format!("v1.{body}").as_bytes());
        m.verify_slice(&given).ok()?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).ok()?;
        let session: Session = serde_json::from_slice(&bytes).ok()?;
        (session.exp > now).then_some(session)
    }

    /// The CSRF token of `session`'s forms.
    pub fn csrf(&self, session: &Session) -> String {
        hex::encode(mac(&self.key, format!("csrf.{}", session.sid).as_bytes()))
    }

    /// Whether `token` is `session`'s CSRF token (constant time).
    pub fn csrf_ok(&self, session: &Session, token: &str) -> bool {
        let Ok(given) = hex::decode(token.trim()) else { return false };
        let Ok(mut m) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key) else { return false };
        m.update(format!("csrf.{}", session.sid).as_bytes());
        m.verify_slice(&given).is_ok()
    }
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let Ok(mut m) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else { return Vec::new() };
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// A fresh session id: unique, not secret (what makes a session or a CSRF
/// token unforgeable is the key).
fn rand_bytes() -> [u8; 16] {
    *uuid::Uuid::now_v7().as_bytes()
}

/// The `Set-Cookie` value that stores `value` (`secure`: only over HTTPS,
/// when the agent sits behind a TLS proxy that says so).
pub fn set_cookie(value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={LIFETIME_SECONDS}{secure}")
}

/// The `Set-Cookie` value that ends the session in the browser.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session cookie's value among a request's `Cookie` headers.
pub fn cookie_of<'a>(headers: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    headers.flat_map(|h| h.split(';')).map(str::trim).find_map(|c| c.strip_prefix(COOKIE).and_then(|v| v.strip_prefix('=')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_round_trips_and_a_forgery_does_not() {
        let keys = Keys::new(b"api-token-0123456789abcdef");
        let s = keys.open("  alice  ");
        assert_eq!(s.name, "alice");
        let sealed = keys.seal(&s);
        let now = Utc::now().timestamp();
        assert_eq!(keys.unseal(&sealed, now), Some(s.clone()));
        // Expired.
        assert_eq!(keys.unseal(&sealed, s.exp), None);
        // Another token's keys, a changed body, a changed signature.
        assert_eq!(Keys::new(b"another-token-0123456789").unseal(&sealed, now), None);
        let (body, sig) = sealed.rsplit_once('.').unwrap();
        let forged = Session { name: "mallory".into(), ..s.clone() };
        let forged_body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(keys.unseal(&format!("v1.{forged_body}.{sig}"), now), None);
        assert_eq!(keys.unseal(&format!("{body}.{}", "0".repeat(64)), now), None);
        assert_eq!(keys.unseal("garbage", now), None);
    }

    #[test]
    fn the_csrf_token_is_bound_to_the_session() {
        let keys = Keys::new(b"api-token-0123456789abcdef");
        let (a, b) = (keys.open("a"), keys.open("b"));
        let token = keys.csrf(&a);
        assert!(keys.csrf_ok(&a, &token));
        assert!(!keys.csrf_ok(&b, &token));
        assert!(!keys.csrf_ok(&a, ""));
        assert!(!keys.csrf_ok(&a, "not hex"));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let headers = ["theme=dark; drover_session=v1.abc.def", "x=1"];
        assert_eq!(cookie_of(headers.into_iter()), Some("v1.abc.def"));
        assert_eq!(cookie_of(["drover_sessionx=1"].into_iter()), None);
        assert!(set_cookie("v", false).contains("HttpOnly; SameSite=Strict"));
        assert!(set_cookie("v", true).ends_with("; Secure"));
    }
}
