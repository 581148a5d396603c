//! drover's runbook signatures: ed25519 keys, detached signatures, and the
//! trust store that checks them.
//!
//! A runbook is a WebAssembly component, and running one hands it the
//! agent's credentials. A signature lets an operator require that a runbook
//! is byte for byte what the holder of a trusted key signed: the signature
//! covers the sha256 of the exact component bytes, so one changed byte, a
//! rebuild or a swapped file fails verification.
//!
//! The `drover` binary drives this crate through `drover keygen`,
//! `drover sign` and `drover verify`.
//!
//! # File formats
//!
//! **Secret key**, `PREFIX.key`, one line, written with mode 0600 and never
//! overwritten:
//!
//! ```text
//! drover-ed25519-secret <base64 of the 32-byte ed25519 seed>
//! ```
//!
//! **Public key**, `PREFIX.pub`, one line; the comment is free text (who owns
//! the key). The same line can be given inline wherever a public key is
//! expected (e.g. in `[signing] trusted_keys`), and so can the bare base64 key:
//!
//! ```text
//! drover-ed25519 <base64 of the 32-byte public key> <comment>
//! ```
//!
//! **Key id**: the first 16 hex characters of sha256(public key bytes), e.g.
//! `21fe31dfa154a261`. Every message that names a key names it by this id.
//!
//! **Signature**, detached, in `COMPONENT.sig` next to the component (e.g.
//! `failover.wasm.sig`), JSON:
//!
//! ```json
//! {
//!   "format": "drover-signature-v1",
//!   "key_id": "21fe31dfa154a261",
//!   "sha256": "<hex sha256 of the component bytes>",
//!   "signature": "<base64 of the 64-byte ed25519 signature>"
//! }
//! ```
//!
//! The signed message is `b"drover-runbook-signature-v1\n"` followed by the
//! 32 raw bytes of sha256(component bytes). The `sha256` and `key_id` fields
//! only tell what was signed and by whom (for clear errors); the signature is
//! checked against the digest of the bytes actually given, with a trusted key.
//!
//! # Example
//!
//! ```
//! use drover_signing::{SigningKey, TrustStore, load_public, load_secret, sign, write_keypair, write_signature};
//!
//! # fn main() -> Result<(), drover_signing::SigningError> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let prefix = dir.path().join("ops");
//! // Once, by whoever signs runbooks: `drover keygen --out ops`.
//! let key = SigningKey::generate()?;
//! let (secret_path, public_path) = write_keypair(&prefix, &key, "ops@example.com")?;
//!
//! // For each release: `drover sign failover.wasm --key ops.key`.
//! let component = dir.path().join("failover.wasm");
//! let bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
//! std::fs::write(&component, &bytes).unwrap();
//! write_signature(&component, &sign(&bytes, &load_secret(&secret_path)?))?;
//!
//! // Before running it: `drover verify failover.wasm --trusted ops.pub`.
//! let trust = TrustStore::new(vec![load_public(&public_path)?]);
//! assert_eq!(trust.verify_file(&component, &bytes)?, key.key_id());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signer as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `format` of a signature file this crate writes and reads.
pub const SIGNATURE_FORMAT: &str = "drover-signature-v1";

/// What the signed message starts with (the digest follows).
const CONTEXT: &[u8] = b"drover-runbook-signature-v1\n";
/// The first word of a secret key file.
const SECRET_TAG: &str = "drover-ed25519-secret";
/// The first word of a public key line.
const PUBLIC_TAG: &str = "drover-ed25519";

/// What can go wrong; each message says what failed, on which file or key,
/// and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The component has no `.sig` file next to it.
    #[error("{component} is not signed: there is no signature file {sig}; sign it with `drover sign {component} --key KEY`")]
    Unsigned {
        /// The component.
        component: String,
        /// Where its signature was looked for.
        sig: PathBuf,
    },
    /// The signature file is not a drover signature.
    #[error("signature {sig} is malformed ({reason}); it is not a `{SIGNATURE_FORMAT}` file: sign the component again with `drover sign FILE --key KEY`")]
    MalformedSignature {
        /// The signature file (or "the signature" when not read from a file).
        sig: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The component's bytes are not the ones that were signed.
    #[error(
        "{component} does not match its signature: its bytes hash to sha256 {actual} but the signature covers sha256 {signed}, so they are not the bytes that were signed (tampered with, or rebuilt since); use the signed build, or review this one and sign it with `drover sign`"
    )]
    DigestMismatch {
        /// The component.
        component: String,
        /// The sha256 of its bytes.
        actual: String,
        /// The sha256 the signature names.
        signed: String,
    },
    /// The signature names a key that is not trusted.
    #[error(
        "{component} is signed by key {key_id}, which is not trusted ({trusted}); if you trust that key, add its public key (the .pub file `drover keygen` wrote) to `[signing] trusted_keys`"
    )]
    UntrustedKey {
        /// The component.
        component: String,
        /// The key the signature names.
        key_id: KeyId,
        /// The trusted key ids, for the message.
        trusted: String,
    },
    /// The signature does not verify with the trusted key it names.
    #[error(
        "the signature of {component} by key {key_id} is not valid: the signature was tampered with or corrupted; do not trust this file, have the key's holder sign it again with `drover sign`"
    )]
    BadSignature {
        /// The component.
        component: String,
        /// The key the signature names.
        key_id: KeyId,
    },
    /// A key file or inline key is not a drover key.
    #[error(
        "key {key} is malformed ({reason}); a public key is one line `{PUBLIC_TAG} <base64 key> <comment>` and a secret key one line `{SECRET_TAG} <base64 seed>`, as `drover keygen` writes them"
    )]
    MalformedKey {
        /// The key file, or the inline key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `write_keypair` would overwrite a key.
    #[error("key file {} already exists: refusing to overwrite a key; choose another prefix, or move the old key away first", path.display())]
    KeyFileExists {
        /// The existing file.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        /// What was being done ("read", "write", ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed (in the message, so not also a `source`).
        error: io::Error,
    },
    /// The operating system gave no random bytes for a new key.
    #[error("cannot get random bytes from the operating system for a new key: {0}")]
    Random(String),
}

type Result<T, E = SigningError> = std::result::Result<T, E>;

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SigningError {
    let path = path.to_path_buf();
    move |error| SigningError::Io { action, path, error }
}

/// The hex sha256 of `bytes`, as signatures (and the engine) name components.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A key's id: the first 16 hex characters of sha256(public key bytes).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    fn of(public: &ed25519_dalek::VerifyingKey) -> Self {
        KeyId(sha256_hex(public.as_bytes())[..16].to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A secret (signing) key.
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
}

impl SigningKey {
    /// A new key from 32 random bytes of the operating system.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| SigningError::Random(e.to_string()))?;
        let key = Self::from_seed(&seed);
        seed.fill(0);
        Ok(key)
    }

    fn from_seed(seed: &[u8; 32]) -> Self {
        SigningKey { key: ed25519_dalek::SigningKey::from_bytes(seed) }
    }

    /// Its public key, with `comment`.
    pub fn public_key(&self, comment: &str) -> PublicKey {
        PublicKey::new(self.key.verifying_key(), comment.trim().to_string())
    }

    /// Its key id.
    pub fn key_id(&self) -> KeyId {
        KeyId::of(&self.key.verifying_key())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("key_id", &self.key_id()).finish_non_exhaustive()
    }
}

/// A public (verifying) key.
#[derive(Clone, Debug)]
pub struct PublicKey {
    key: ed25519_dalek::VerifyingKey,
    id: KeyId,
    /// Free text naming the key's owner (may be empty).
    pub comment: String,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for PublicKey {}

impl PublicKey {
    fn new(key: ed25519_dalek::VerifyingKey, comment: String) -> Self {
        let id = KeyId::of(&key);
        PublicKey { key, id, comment }
    }

    /// Parses a public key given as text: the line of a `.pub` file
    /// (`drover-ed25519 <base64> [comment]`) or the bare base64 key.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let label = if text.starts_with(SECRET_TAG) {
            "given inline (a secret key, not shown)".to_string()
        } else {
            format!("'{}'", text.chars().take(80).collect::<String>())
        };
        Self::parse_labeled(text, &label)
    }

    fn parse_labeled(text: &str, label: &str) -> Result<Self> {
        let malformed = |reason: &str| SigningError::MalformedKey { key: label.to_string(), reason: reason.to_string() };
        let line = one_line(text).map_err(&malformed)?;
        let (tag, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let (b64, comment) = match tag {
            PUBLIC_TAG => {
                let rest = rest.trim_start();
                let (b64, comment) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                (b64, comment.trim())
            }
            SECRET_TAG => return Err(malformed("this is a secret key; give the public key (.pub) instead")),
            bare if rest.is_empty() => (bare, ""),
            _ => return Err(malformed(&format!("it does not start with `{PUBLIC_TAG}`"))),
        };
        let bytes = decode_32(b64).map_err(|r| malformed(&r))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| malformed("the 32 bytes are not an ed25519 public key"))?;
        Ok(Self::new(key, comment.to_string()))
    }

    /// Its key id.
    pub fn key_id(&self) -> &KeyId {
        &self.id
    }

    /// The line of its `.pub` file: `drover-ed25519 <base64> <comment>`.
    pub fn to_line(&self) -> String {
        let b64 = BASE64.encode(self.key.as_bytes());
        if self.comment.is_empty() { format!("{PUBLIC_TAG} {b64}") } else { format!("{PUBLIC_TAG} {b64} {}", self.comment) }
    }
}

/// The one non-blank line of a key file or key text.
fn one_line(text: &str) -> Result<&str, &'static str> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    match (lines.next(), lines.next()) {
        (Some(l), None) => Ok(l),
        (None, _) => Err("it is empty"),
        (Some(_), Some(_)) => Err("it has more than one line"),
    }
}

fn decode_32(b64: &str) -> Result<[u8; 32], String> {
    let bytes = BASE64.decode(b64).map_err(|e| format!("the key is not base64: {e}"))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| format!("the key is {} bytes, not 32", bytes.len()))
}

/// Reads a public key file (`.pub`).
pub fn load_public(path: &Path) -> Result<PublicKey> {
    let text = std::fs::read_to_string(path).map_err(io_err("read public key", path))?;
    PublicKey::parse_labeled(&text, &path.display().to_string())
}

/// A trusted key as given on a command line or in configuration: inline key
/// text (`drover-ed25519 <base64> [comment]`, or the bare base64 key), else
/// the path of a `.pub` file.
pub fn load_trusted(spec: &str) -> Result<PublicKey> {
    let path = Path::new(spec);
    let s = spec.trim();
    if !path.is_file() && (s.starts_with(PUBLIC_TAG) || decode_32(s).is_ok()) {
        return PublicKey::parse(s);
    }
    load_public(path)
}

/// Reads a secret key file (`.key`).
pub fn load_secret(path: &Path) -> Result<SigningKey> {
    let label = path.display().to_string();
    let malformed = |reason: &str| SigningError::MalformedKey { key: label.clone(), reason: reason.to_string() };
    let text = std::fs::read_to_string(path).map_err(io_err("read secret key", path))?;
    let line = one_line(&text).map_err(&malformed)?;
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(SECRET_TAG), Some(b64), None) => {
            let mut seed = decode_32(b64).map_err(|r| malformed(&r))?;
            let key = SigningKey::from_seed(&seed);
            seed.fill(0);
            Ok(key)
        }
        (Some(PUBLIC_TAG), ..) => Err(malformed("this is a public key; sign with the secret key (.key) instead")),
        _ => Err(malformed(&format!("it is not one line `{SECRET_TAG} <base64 seed>`"))),
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes `key` as `PREFIX.key` (mode 0600) and its public key, with
/// `comment`, as `PREFIX.pub`. Refuses (with [`SigningError::KeyFileExists`])
/// if either file exists; returns (secret path, public path).
pub fn write_keypair(prefix: &Path, key: &SigningKey, comment: &str) -> Result<(PathBuf, PathBuf)> {
    let secret_path = with_suffix(prefix, ".key");
    let public_path = with_suffix(prefix, ".pub");
    for path in [&secret_path, &public_path] {
        if path.symlink_metadata().is_ok() {
            return Err(SigningError::KeyFileExists { path: path.clone() });
        }
    }
    let secret = format!("{SECRET_TAG} {}\n", BASE64.encode(key.key.as_bytes()));
    create_new(&secret_path, secret.as_bytes(), true)?;
    let public = format!("{}\n", key.public_key(comment).to_line());
    if let Err(e) = create_new(&public_path, public.as_bytes(), false) {
        let _ = std::fs::remove_file(&secret_path);
        return Err(e);
    }
    Ok((secret_path, public_path))
}

/// Creates `path` (failing if it exists), owner-only if `private`, with `contents`.
fn create_new(path: &Path, contents: &[u8], private: bool) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => SigningError::KeyFileExists { path: path.to_path_buf() },
        _ => SigningError::Io { action: "create", path: path.to_path_buf(), error: e },
    })?;
    #[cfg(unix)]
    if private {
        // The mode given to open is narrowed by the umask; make it exactly 0600.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io_err("set permissions of", path))?;
    }
    file.write_all(contents).and_then(|()| file.sync_all()).map_err(io_err("write", path))
}

/// A detached signature: the contents of `COMPONENT.sig`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Always [`SIGNATURE_FORMAT`].
    pub format: String,
    /// The key that signed.
    pub key_id: KeyId,
    /// The hex sha256 of the component bytes that were signed.
    pub sha256: String,
    /// The base64 ed25519 signature of the message (see the crate docs).
    pub signature: String,
}

impl Signature {
    /// The JSON of a `.sig` file (pretty, with a final newline).
    pub fn to_json(&self) -> String {
        let doc = serde_json::json!({"format": self.format, "key_id": self.key_id.0, "sha256": self.sha256, "signature": self.signature});
        let mut s = format!("{doc:#}");
        s.push('\n');
        s
    }

    /// Parses and checks the JSON of a `.sig` file.
    pub fn from_json(text: &str) -> Result<Self> {
        Self::from_json_labeled(text, "the signature")
    }

    fn from_json_labeled(text: &str, label: &str) -> Result<Self> {
        let malformed = |reason: String| SigningError::MalformedSignature { sig: label.to_string(), reason };
        let sig: Signature = serde_json::from_str(text).map_err(|e| malformed(format!("not the expected JSON: {e}")))?;
        sig.check().map_err(malformed)?;
        Ok(sig)
    }

    /// Checks the fields' forms; returns the raw signature bytes.
    fn check(&self) -> Result<[u8; 64], String> {
        let is_hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if self.format != SIGNATURE_FORMAT {
            return Err(format!("format is '{}', not '{SIGNATURE_FORMAT}'", self.format));
        }
        if !is_hex(self.key_id.as_str(), 16) {
            return Err(format!("key_id '{}' is not 16 lowercase hex characters", self.key_id));
        }
        if !is_hex(&self.sha256, 64) {
            return Err(format!("sha256 '{}' is not 64 lowercase hex characters", self.sha256));
        }
        let bytes = BASE64.decode(&self.signature).map_err(|e| format!("signature is not base64: {e}"))?;
        <[u8; 64]>::try_from(bytes.as_slice()).map_err(|_| format!("signature is {} bytes, not 64", bytes.len()))
    }
}

/// The message a signature signs for a component whose sha256 is `digest`.
fn message(digest: &[u8]) -> Vec<u8> {
    [CONTEXT, digest].concat()
}

/// Signs the exact `bytes` of a component with `key`.
pub fn sign(bytes: &[u8], key: &SigningKey) -> Signature {
    let digest = Sha256::digest(bytes);
    let signature = key.key.sign(&message(&digest));
    Signature { format: SIGNATURE_FORMAT.to_string(), key_id: key.key_id(), sha256: hex::encode(digest), signature: BASE64.encode(signature.to_bytes()) }
}

/// Where the signature of `component` lives: `COMPONENT.sig`.
pub fn signature_path(component: &Path) -> PathBuf {
    with_suffix(component, ".sig")
}

/// Writes `sig` as the signature of `component` (replacing any older one);
/// returns the `.sig` path.
pub fn write_signature(component: &Path, sig: &Signature) -> Result<PathBuf> {
    let path = signature_path(component);
    std::fs::write(&path, sig.to_json()).map_err(io_err("write signature", &path))?;
    Ok(path)
}

/// Reads the signature of `component` from `COMPONENT.sig`
/// ([`SigningError::Unsigned`] if there is none).
pub fn read_signature(component: &Path) -> Result<Signature> {
    let path = signature_path(component);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(SigningError::Unsigned { component: component.display().to_string(), sig: path });
        }
        Err(e) => return Err(SigningError::Io { action: "read signature", path, error: e }),
    };
    Signature::from_json_labeled(&text, &path.display().to_string())
}

/// The public keys whose signatures are trusted.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    /// The trusted keys.
    pub keys: Vec<PublicKey>,
}

impl TrustStore {
    /// A store trusting `keys`.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        TrustStore { keys }
    }

    /// A store trusting each key in `specs` (see [`load_trusted`]: inline keys
    /// or `.pub` file paths), as `[signing] trusted_keys` or `--trusted` give them.
    pub fn from_specs<S: AsRef<str>>(specs: impl IntoIterator<Item = S>) -> Result<Self> {
        let keys = specs.into_iter().map(|s| load_trusted(s.as_ref())).collect::<Result<_>>()?;
        Ok(TrustStore { keys })
    }

    /// Checks that `sig` is a valid signature of the exact `bytes` by a
    /// trusted key; returns that key's id.
    pub fn verify(&self, bytes: &[u8], sig: &Signature) -> Result<KeyId> {
        self.verify_labeled("the component", "the signature", bytes, sig)
    }

    /// The key of the first of `signatures` (e.g. an OCI artifact's
    /// referrers) that a trusted key made over the exact `bytes`; else why
    /// each was refused (none: there was no signature).
    pub fn verify_any(&self, bytes: &[u8], signatures: &[Signature]) -> std::result::Result<KeyId, Vec<SigningError>> {
        let mut refused = Vec::new();
        for sig in signatures {
            match self.verify(bytes, sig) {
                Ok(key) => return Ok(key),
                Err(e) => refused.push(e),
            }
        }
        Err(refused)
    }

    /// Checks the bytes `bytes` of the component at `component_path` against
    /// its signature file `COMPONENT.sig` (see [`verify`](Self::verify)).
    pub fn verify_file(&self, component_path: &Path, bytes: &[u8]) -> Result<KeyId> {
        let sig = read_signature(component_path)?;
        let sig_label = signature_path(component_path).display().to_string();
        self.verify_labeled(&component_path.display().to_string(), &sig_label, bytes, &sig)
    }

    fn verify_labeled(&self, component: &str, sig_label: &str, bytes: &[u8], sig: &Signature) -> Result<KeyId> {
        let raw = sig.check().map_err(|reason| SigningError::MalformedSignature { sig: sig_label.to_string(), reason })?;
        let digest = Sha256::digest(bytes);
        let actual = hex::encode(digest);
        if actual != sig.sha256 {
            return Err(SigningError::DigestMismatch { component: component.to_string(), actual, signed: sig.sha256.clone() });
        }
        let Some(key) = self.keys.iter().find(|k| k.id == sig.key_id) else {
            let trusted = match self.keys.len() {
                0 => "no key is trusted".to_string(),
                _ => format!("trusted: {}", self.keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>().join(", ")),
            };
            return Err(SigningError::UntrustedKey { component: component.to_string(), key_id: sig.key_id.clone(), trusted });
        };
        key.key
            .verify_strict(&message(&digest), &ed25519_dalek::Signature::from_bytes(&raw))
            .map_err(|_| SigningError::BadSignature { component: component.to_string(), key_id: key.id.clone() })?;
        Ok(key.id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032, test 1: its seed and public key.
    const RFC_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    /// The smallest component header.
    const COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    fn rfc_key() -> SigningKey {
        SigningKey::from_seed(&hex::decode(RFC_SEED).unwrap().try_into().unwrap())
    }

    fn component() -> Vec<u8> {
        let mut b = COMPONENT.to_vec();
        b.extend((0..4096u32).map(|i| (i * 7 % 251) as u8));
        b
    }

    #[test]
    fn signatures_match_an_independent_implementation() {
        // Computed with Python's `cryptography` (OpenSSL) from the crate docs' format.
        let key = rfc_key();
        assert_eq!(hex::encode(key.key.verifying_key().as_bytes()), RFC_PUBLIC);
        assert_eq!(key.key_id().as_str(), "21fe31dfa154a261");
        let sig = sign(COMPONENT, &key);
        assert_eq!(sig.sha256, "24eaf3439a60c96764c4f2c92a0a81b52bd4fe5d5b91f090184a0f6486b1bf29");
        assert_eq!(sig.signature, "SXGMCet8KufrE4CfWlQTJV7tCNvva5QKHDADFhej4qg+/rBbzBBdK9X8vE+MsMnAxetar+Do+sqd1n8udjAGDw==");
        assert_eq!(key.public_key("ops").to_line(), "drover-ed25519 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo= ops");
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let key = SigningKey::generate().unwrap();
        let bytes = component();
        let sig = Signature::from_json(&sign(&bytes, &key).to_json()).unwrap();
        assert_eq!(sig.format, SIGNATURE_FORMAT);
        assert_eq!(sig.sha256, sha256_hex(&bytes));
        let trust = TrustStore::new(vec![SigningKey::generate().unwrap().public_key(""), key.public_key("me")]);
        assert_eq!(trust.verify(&bytes, &sig).unwrap(), key.key_id());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rb.wasm");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(write_signature(&path, &sig).unwrap(), dir.path().join("rb.wasm.sig"));
        assert_eq!(trust.verify_file(&path, &bytes).unwrap(), key.key_id());
    }

    #[test]
    fn one_flipped_byte_is_a_digest_mismatch() {
        let key = SigningKey::generate().unwrap();
        let mut bytes = component();
        let sig = sign(&bytes, &key);
        bytes[1000] ^= 0x01;
        let trust = TrustStore::new(vec![key.public_key("")]);
        let e = trust.verify(&bytes, &sig).unwrap_err();
        assert!(matches!(&e, SigningError::DigestMismatch { signed, .. } if *signed == sig.sha256), "{e}");
        assert!(e.to_string().contains("not the bytes that were signed"), "{e}");
        // Also when the signature's digest field is made to match the new bytes.
        let forged = Signature { sha256: sha256_hex(&bytes), ..sig };
        assert!(matches!(trust.verify(&bytes, &forged), Err(SigningError::BadSignature { .. })));
    }

    #[test]
    fn a_signature_by_another_key_is_untrusted() {
        let (trusted, other) = (SigningKey::generate().unwrap(), SigningKey::generate().unwrap());
        let bytes = component();
        let e = TrustStore::new(vec![trusted.public_key("")]).verify(&bytes, &sign(&bytes, &other)).unwrap_err();
        assert!(matches!(&e, SigningError::UntrustedKey { key_id, .. } if *key_id == other.key_id()), "{e}");
        let msg = e.to_string();
        assert!(msg.contains(other.key_id().as_str()) && msg.contains("[signing] trusted_keys"), "{msg}");
        assert!(msg.contains(trusted.key_id().as_str()), "{msg}");
        let e = TrustStore::default().verify(&bytes, &sign(&bytes, &other)).unwrap_err();
        assert!(e.to_string().contains("no key is trusted"), "{e}");
    }

    #[test]
    fn a_signature_claiming_a_trusted_key_it_is_not_by_is_bad() {
        let (trusted, other) = (SigningKey::generate().unwrap(), SigningKey::generate().unwrap());
        let bytes = component();
        let sig = Signature { key_id: trusted.key_id(), ..sign(&bytes, &other) };
        let e = TrustStore::new(vec![trusted.public_key("")]).verify(&bytes, &sig).unwrap_err();
        assert!(matches!(e, SigningError::BadSignature { .. }), "{e}");
    }

    #[test]
    fn a_tampered_signature_field_is_bad() {
        let key = SigningKey::generate().unwrap();
        let bytes = component();
        let mut sig = sign(&bytes, &key);
        let mut raw = BASE64.decode(&sig.signature).unwrap();
        raw[10] ^= 0x40;
        sig.signature = BASE64.encode(&raw);
        let e = TrustStore::new(vec![key.public_key("")]).verify(&bytes, &sig).unwrap_err();
        assert!(matches!(&e, SigningError::BadSignature { key_id, .. } if *key_id == key.key_id()), "{e}");
        assert!(e.to_string().contains("tampered"), "{e}");
    }

    #[test]
    fn malformed_signatures_are_refused_saying_why() {
        let key = SigningKey::generate().unwrap();
        let sig = sign(COMPONENT, &key);
        let cases = [
            ("not json".to_string(), "not the expected JSON"),
            (Signature { format: "v0".into(), ..sig.clone() }.to_json(), "format"),
            (Signature { sha256: "abc".into(), ..sig.clone() }.to_json(), "sha256"),
            (Signature { key_id: KeyId("XYZ".into()), ..sig.clone() }.to_json(), "key_id"),
            (Signature { signature: "!!".into(), ..sig.clone() }.to_json(), "not base64"),
            (Signature { signature: BASE64.encode([0u8; 12]), ..sig.clone() }.to_json(), "12 bytes"),
        ];
        for (text, why) in cases {
            let e = Signature::from_json(&text).unwrap_err();
            assert!(matches!(e, SigningError::MalformedSignature { .. }) && e.to_string().contains(why), "{why}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rb.wasm");
        std::fs::write(signature_path(&path), "{}").unwrap();
        let e = TrustStore::new(vec![key.public_key("")]).verify_file(&path, COMPONENT).unwrap_err();
        assert!(matches!(&e, SigningError::MalformedSignature { sig, .. } if sig.ends_with("rb.wasm.sig")), "{e}");
    }

    #[test]
    fn a_missing_sig_file_is_unsigned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rb.wasm");
        std::fs::write(&path, COMPONENT).unwrap();
        let trust = TrustStore::new(vec![SigningKey::generate().unwrap().public_key("")]);
        let e = trust.verify_file(&path, COMPONENT).unwrap_err();
        assert!(matches!(e, SigningError::Unsigned { .. }), "{e}");
        assert!(e.to_string().contains("rb.wasm.sig") && e.to_string().contains("drover sign"), "{e}");
    }

    #[test]
    fn keypair_files_round_trip_and_the_secret_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        let (secret, public) = write_keypair(&dir.path().join("ops"), &key, "ops team <ops@example.com>").unwrap();
        assert_eq!((secret.clone(), public.clone()), (dir.path().join("ops.key"), dir.path().join("ops.pub")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(load_secret(&secret).unwrap().key_id(), key.key_id());
        let pk = load_public(&public).unwrap();
        assert_eq!((pk.key_id(), pk.comment.as_str()), (&key.key_id(), "ops team <ops@example.com>"));
        assert!(std::fs::read_to_string(&secret).unwrap().starts_with("drover-ed25519-secret "));

        // A public key can be given inline, as its line or as the bare key, or as the file.
        let line = std::fs::read_to_string(&public).unwrap();
        let bare = line.split_whitespace().nth(1).unwrap();
        for spec in [line.trim(), bare, public.to_str().unwrap()] {
            assert_eq!(load_trusted(spec).unwrap(), pk, "{spec}");
        }
        let store = TrustStore::from_specs([bare]).unwrap();
        assert_eq!(store.verify(COMPONENT, &sign(COMPONENT, &key)).unwrap(), key.key_id());

        // Each kind of key is refused where the other belongs.
        assert!(load_public(&secret).unwrap_err().to_string().contains("this is a secret key"));
        assert!(load_secret(&public).unwrap_err().to_string().contains("this is a public key"));
        for bad in ["", "drover-ed25519 AAAA", "ssh-ed25519 AAAAC3Nza x", "a\nb"] {
            assert!(matches!(PublicKey::parse(bad), Err(SigningError::MalformedKey { .. })), "{bad:?}");
        }
        assert!(matches!(load_trusted("/no/such.pub"), Err(SigningError::Io { .. })));
    }

    #[test]
    fn an_existing_key_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("ops");
        let (secret, public) = write_keypair(&prefix, &SigningKey::generate().unwrap(), "").unwrap();
        let before = (std::fs::read(&secret).unwrap(), std::fs::read(&public).unwrap());
        let e = write_keypair(&prefix, &SigningKey::generate().unwrap(), "").unwrap_err();
        assert!(matches!(&e, SigningError::KeyFileExists { path } if *path == secret), "{e}");
        assert!(e.to_string().contains("refusing to overwrite"), "{e}");
        assert_eq!(before, (std::fs::read(&secret).unwrap(), std::fs::read(&public).unwrap()));

        // Only the public half there: refused too, and no secret is left behind.
        let lone = dir.path().join("lone");
        std::fs::write(with_suffix(&lone, ".pub"), "x").unwrap();
        let e = write_keypair(&lone, &SigningKey::generate().unwrap(), "").unwrap_err();
        assert!(matches!(e, SigningError::KeyFileExists { .. }), "{e}");
        assert!(!with_suffix(&lone, ".key").exists());
    }
}
