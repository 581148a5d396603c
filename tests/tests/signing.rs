//! Signed runbooks through the real binary: `drover keygen` makes a key pair,
//! `drover sign` signs a runbook component's exact bytes, and `drover verify`
//! accepts them only with a trusted key; one flipped byte, or a key that is
//! not trusted, fails with an error saying which.

use std::path::Path;

use drover_chaos::Agent;
use drover_e2e::drover;
use drover_test_artifacts as artifacts;

/// `drover keygen --out PREFIX`; returns the key id it prints.
fn keygen(agent: &Agent, prefix: &Path) -> String {
    let (code, stdout, stderr) = drover(agent, &["keygen", "--out", prefix.to_str().unwrap(), "--comment", "e2e test"]);
    assert_eq!(code, Some(0), "{stderr}");
    for ext in ["key", "pub"] {
        assert!(stdout.contains(&format!("{}.{ext}", prefix.display())), "{stdout}");
    }
    let id = stdout.lines().find_map(|l| l.strip_prefix("key id: ")).expect("keygen prints the key id");
    assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    id.to_string()
}

#[test]
fn a_signed_runbook_verifies_only_unchanged_and_with_a_trusted_key() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::new(dir.path().join("home"));
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();

    // Key pairs: the secret is owner-only, and an existing key is never overwritten.
    let ops_id = keygen(&agent, &dir.path().join("ops"));
    let other_id = keygen(&agent, &dir.path().join("other"));
    assert_ne!(ops_id, other_id);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path("ops.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let secret = std::fs::read(path("ops.key")).unwrap();
    let (code, _, stderr) = drover(&agent, &["keygen", "--out", &path("ops")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("already exists") && stderr.contains("refusing to overwrite"), "{stderr}");
    assert_eq!(std::fs::read(path("ops.key")).unwrap(), secret, "the old key is untouched");

    let wasm = path("hello-durable.wasm");
    std::fs::copy(artifacts::HELLO_DURABLE, &wasm).unwrap();
    let (ops_pub, other_pub) = (path("ops.pub"), path("other.pub"));

    // Unsigned: verify says how to sign it.
    let (code, _, stderr) = drover(&agent, &["verify", &wasm, "--trusted", &ops_pub]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("is not signed") && stderr.contains("drover sign"), "{stderr}");

    // Only components are signed.
    std::fs::write(path("notes.txt"), "not a runbook").unwrap();
    std::fs::write(path("core.wasm"), b"\0asm\x01\x00\x00\x00").unwrap();
    for (file, why) in [("notes.txt", "is not a WebAssembly file"), ("core.wasm", "core WebAssembly module")] {
        let (code, _, stderr) = drover(&agent, &["sign", &path(file), "--key", &path("ops.key")]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(why), "{file}: {stderr}");
        assert!(!Path::new(&format!("{}.sig", path(file))).exists());
    }

    // Sign, then verify with the public key file and with the key given inline.
    let (code, stdout, stderr) = drover(&agent, &["sign", &wasm, "--key", &path("ops.key")]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(&ops_id), "{stdout}");
    let sig: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{wasm}.sig")).unwrap()).unwrap();
    assert_eq!(sig["format"], "drover-signature-v1");
    assert_eq!(sig["key_id"], ops_id.as_str());
    let digest = sig["sha256"].as_str().unwrap();
    assert!(stdout.contains(&format!("sha256: {digest}")), "{stdout}");

    let inline = std::fs::read_to_string(&ops_pub).unwrap();
    for trusted in [&[other_pub.as_str(), ops_pub.as_str()][..], &[inline.trim()]] {
        let mut args = vec!["verify", wasm.as_str()];
        trusted.iter().for_each(|t| args.extend(["--trusted", t]));
        let (code, stdout, stderr) = drover(&agent, &args);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(stdout.trim(), format!("ok: signed by key {ops_id}"));
    }

    // Signed by a key that is not trusted: the error names the signer's key id.
    let (code, _, stderr) = drover(&agent, &["verify", &wasm, "--trusted", &other_pub]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&format!("signed by key {ops_id}, which is not trusted")), "{stderr}");
    assert!(stderr.contains("[signing] trusted_keys"), "{stderr}");

    // One flipped byte: not the bytes that were signed.
    let mut bytes = std::fs::read(&wasm).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&wasm, &bytes).unwrap();
    let (code, _, stderr) = drover(&agent, &["verify", &wasm, "--trusted", &ops_pub]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("does not match its signature") && stderr.contains(digest), "{stderr}");
    assert!(stderr.contains("not the bytes that were signed"), "{stderr}");
}
