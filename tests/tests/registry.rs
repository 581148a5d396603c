//! Runbooks as signed OCI artifacts, through the real binary against a real
//! registry: the CNCF distribution registry (Debian's `docker-registry`)
//! started on 127.0.0.1 by the test. A signed runbook is pushed (the
//! signature as a referrer), pulled by tag and by digest, verified, checked
//! and run from its reference under `[signing] require = true`; a run keeps
//! the digest it was pinned to when the tag moves, and resumes from it with
//! the registry gone; a tampered layer and an unsigned artifact are refused.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use drover_chaos::{Agent, kill9};
use drover_e2e::{Served, drover, free_port, wait_until};
use drover_test_artifacts as artifacts;
use serde_json::Value;

/// A registry on 127.0.0.1 for one test, stopped when dropped.
struct Registry {
    child: Child,
    addr: String,
    root: PathBuf,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        Registry::start_with(dir, "")
    }

    /// A registry that asks for user `drover`, password `s3cret`.
    fn with_password(dir: &Path) -> Registry {
        // bcrypt of s3cret (the registry accepts only bcrypt lines).
        let htpasswd = dir.join("htpasswd");
        std::fs::write(&htpasswd, "drover:$2b$05$tqpIA7HZapZ7YWLqBgxZY.w4g4CiCvT3z.xZa9EVb7jLk4DIwVLo.\n").unwrap();
        Registry::start_with(dir, &format!("auth: {{ htpasswd: {{ realm: drover-test, path: {} }} }}\n", htpasswd.display()))
    }

    fn start_with(dir: &Path, extra: &str) -> Registry {
        let root = dir.join("registry");
        std::fs::create_dir_all(&root).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{ level: warn }}\nstorage: {{ filesystem: {{ rootdirectory: {} }}, delete: {{ enabled: true }} }}\nhttp: {{ addr: {addr} }}\n{extra}",
                root.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Debian's docker-registry (scripts/test installs it)");
        let r = Registry { child, addr, root };
        wait_until("the registry to answer", Duration::from_secs(20), || std::net::TcpStream::connect(&r.addr).ok().map(|_| ()));
        r
    }

    /// Where the registry keeps blob `digest`.
    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.root.join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An agent whose configuration requires signatures by the key it makes,
/// and a signed copy of `component` (`NAME.wasm` + `.sig`) in `dir`.
fn signing_agent(dir: &Path) -> Agent {
    let agent = Agent::new(dir.join("home"));
    let (code, _, stderr) = drover(&agent, &["keygen", "--out", dir.join("k").to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let config = dir.join("drover.toml");
    std::fs::write(&config, format!("[signing]\nrequire = true\ntrusted_keys = [\"{}\"]\n", dir.join("k.pub").display())).unwrap();
    agent.with_env("DROVER_CONFIG", config.to_str().unwrap()).with_env("T_API", "t0ken-t0ken-t0ken-t0ken")
}

/// A configuration for `drover serve` (signatures required) serving the
/// runbook at `reference`.
fn serve_config(dir: &Path, reference: &str) -> PathBuf {
    let path = dir.join("serve.toml");
    let signing = std::fs::read_to_string(dir.join("drover.toml")).unwrap();
    std::fs::write(&path, format!("{signing}\n[serve]\napi_token_env = \"T_API\"\n\n[[serve.runbook]]\npath = \"{reference}\"\n")).unwrap();
    path
}

fn signed_copy(agent: &Agent, dir: &Path, component: &str, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(component, &path).unwrap();
    let (code, _, stderr) = drover(agent, &["sign", "--key", dir.join("k.key").to_str().unwrap(), path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    path
}

/// `agent` with `key=value` added to its environment.
fn with(agent: &Agent, key: &str, value: &str) -> Agent {
    Agent { bin: agent.bin.clone(), home: agent.home.clone(), env: agent.env.clone() }.with_env(key, value)
}

fn sha256(path: &Path) -> String {
    drover_signing::sha256_hex(&std::fs::read(path).unwrap())
}

fn push(agent: &Agent, file: &Path, reference: &str) -> Value {
    let (status, v) = agent.json(&["push", file.to_str().unwrap(), reference, "--json"]).unwrap();
    assert!(status.success(), "{v:#}");
    v
}

#[test]
fn a_signed_runbook_is_pushed_pulled_verified_and_run_by_tag_and_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(dir.path());
    let agent = signing_agent(dir.path());
    let probe = signed_copy(&agent, dir.path(), artifacts::PROBE, "probe.wasm");
    let tag = format!("{}/drover/probe:1.0", reg.addr);

    let pushed = push(&agent, &probe, &tag);
    let pinned = pushed["pinned"].as_str().unwrap().to_string();
    assert!(pinned.starts_with(&format!("{}/drover/probe@sha256:", reg.addr)), "{pushed:#}");
    assert!(pushed["signature_digest"].is_string(), "{pushed:#}");
    // The layout others read: one application/wasm layer, the wasm config with drover's metadata.
    let manifest_digest = pushed["manifest_digest"].as_str().unwrap();
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(reg.blob_path(manifest_digest)).unwrap()).unwrap();
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.wasm.config.v0+json", "{manifest:#}");
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1, "{manifest:#}");
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm", "{manifest:#}");
    let config: Value = serde_json::from_slice(&std::fs::read(reg.blob_path(manifest["config"]["digest"].as_str().unwrap())).unwrap()).unwrap();
    assert_eq!((config["drover"]["name"].as_str(), config["os"].as_str()), (Some("probe"), Some("wasip2")), "{config:#}");

    // Pulled by tag and by digest: the same bytes, with a signature that verifies.
    for (reference, out) in [(tag.as_str(), "by-tag.wasm"), (pinned.as_str(), "by-digest.wasm")] {
        let out = dir.path().join(out);
        let (status, v) = agent.json(&["pull", reference, "-o", out.to_str().unwrap(), "--json"]).unwrap();
        assert!(status.success(), "{v:#}");
        assert_eq!(v["pinned"].as_str(), Some(pinned.as_str()), "{v:#}");
        assert_eq!(sha256(&out), sha256(&probe));
        let (code, said, stderr) = drover(&agent, &["verify", out.to_str().unwrap(), "--trusted", dir.path().join("k.pub").to_str().unwrap()]);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(said.starts_with("ok: signed by key"), "{said}");
    }
    let (code, said, stderr) = drover(&agent, &["verify", &tag, "--trusted", dir.path().join("k.pub").to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(said.contains(&pinned), "{said}");
    let (code, said, stderr) = drover(&agent, &["check", &tag]);
    assert_eq!(code, Some(0), "{said}{stderr}");
    let (status, info) = agent.json(&["inspect", &pinned, "--json"]).unwrap();
    assert!(status.success() && info["name"] == "probe", "{info:#}");
    // The author's tools take a reference too.
    let scenario = dir.path().join("empty.toml");
    std::fs::write(&scenario, "").unwrap();
    let (code, said, stderr) = drover(&agent, &["test", &tag, "--scenario", scenario.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{said}{stderr}");

    // Run by tag: the run is pinned to the digest, which it records.
    let (status, run) = agent.json(&["run", &tag, "--run-id", "t1", "--quiet", "--json"]).unwrap();
    assert!(status.success(), "{run:#}");
    let shown = agent.show("t1").unwrap();
    assert_eq!(shown["runbook_digest"].as_str(), Some(sha256(&probe).as_str()), "{shown:#}");
    assert_eq!(shown["origin"]["runbook_source"]["pinned"].as_str(), Some(pinned.as_str()), "{shown:#}");
    assert_eq!(shown["origin"]["runbook_source"]["requested"].as_str(), Some(tag.as_str()), "{shown:#}");
    let (status, run) = agent.json(&["run", &format!("oci://{pinned}"), "--run-id", "d1", "--quiet", "--json"]).unwrap();
    assert!(status.success() && run["status"] == "succeeded", "{run:#}");
    // `drover serve` pulls it at start and serves it (an unservable one stops it: see below).
    let served = Served::start(&agent, &serve_config(dir.path(), &pinned), &format!("127.0.0.1:{}", free_port()), &dir.path().join("serve.log"));
    drop(served);
    // No implicit `latest`, no implicit Docker Hub, and HTTPS for a registry that is not on loopback.
    let (code, _, stderr) = drover(&agent, &["pull", &format!("{}/drover/probe", reg.addr)]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("name a tag"), "{stderr}");
    let (code, _, stderr) = drover(&agent, &["pull", "registry.invalid:5000/drover/probe:1.0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("https://registry.invalid:5000"), "{stderr}");
}

#[test]
fn a_run_keeps_its_digest_when_the_tag_moves_and_resumes_from_it_with_the_registry_gone() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(dir.path());
    let agent = signing_agent(dir.path());
    let probe = signed_copy(&agent, dir.path(), artifacts::PROBE, "probe.wasm");
    let other = signed_copy(&agent, dir.path(), artifacts::PROBE_REORDERED, "probe-next.wasm");
    let tag = format!("{}/drover/probe:stable", reg.addr);
    push(&agent, &probe, &tag);

    // s1, a durable sleep, then s2 and s3; killed during the sleep.
    let args = ["run", &tag, "--run-id", "m1", "--quiet", "-p", "steps=3", "-p", "sleep_after=1", "-p", "sleep_ms=3000"];
    let mut child = agent.spawn(&args, "").unwrap();
    wait_until("s1 to finish", Duration::from_secs(30), || (agent.attempt_count("m1", "s1") == 1).then_some(()));
    assert!(drover_chaos::killed_by_sigkill(&kill9(&mut child)));

    // The tag moves to another build; the registry then goes away.
    let moved = push(&agent, &other, &tag);
    assert_ne!(moved["runbook"]["sha256"].as_str(), Some(sha256(&probe).as_str()));
    drop(reg);
    let (status, run) = agent.json(&["resume", "m1", "--quiet", "--json"]).unwrap();
    assert!(status.success(), "{run:#}");
    let shown = agent.show("m1").unwrap();
    assert_eq!(shown["status"], "succeeded", "{shown:#}");
    assert_eq!(shown["runbook_digest"].as_str(), Some(sha256(&probe).as_str()), "the run kept the build it was pinned to");
    for step in ["s1", "s2", "s3"] {
        assert_eq!(agent.attempt_count("m1", step), 1, "{step}");
    }
}

#[test]
fn a_tampered_layer_and_an_unsigned_artifact_are_refused_under_require() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(dir.path());
    let agent = signing_agent(dir.path());
    let probe = signed_copy(&agent, dir.path(), artifacts::PROBE, "probe.wasm");

    // Unsigned: pushed (with a note), refused at pull, run and check.
    let unsigned = dir.path().join("janitor.wasm");
    std::fs::copy(artifacts::JANITOR, &unsigned).unwrap();
    let open = Agent::new(dir.path().join("home-open"));
    let (status, _) = open.json(&["push", unsigned.to_str().unwrap(), &format!("{}/drover/janitor:1.0", reg.addr), "--json"]).unwrap();
    assert!(status.success());
    for args in [vec!["pull", "REF"], vec!["run", "REF", "--run-id", "u1", "--quiet"]] {
        let reference = format!("{}/drover/janitor:1.0", reg.addr);
        let args: Vec<&str> = args.iter().map(|a| if *a == "REF" { reference.as_str() } else { a }).collect();
        let (code, _, stderr) = drover(&agent, &args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("requires a signature by a trusted key") && stderr.contains("it has no drover signature"), "{stderr}");
    }
    assert!(agent.show("u1").is_none(), "nothing ran");
    let config = serve_config(dir.path(), &format!("{}/drover/janitor:1.0", reg.addr));
    let out = agent.output(&["--config", config.to_str().unwrap(), "serve", "--listen", &format!("127.0.0.1:{}", free_port())]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("[[serve.runbook]]") && stderr.contains("it has no drover signature"), "{stderr}");

    // A layer changed in the registry's storage: refused by digest.
    let pushed = push(&agent, &probe, &format!("{}/drover/probe:1.0", reg.addr));
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(reg.blob_path(pushed["manifest_digest"].as_str().unwrap())).unwrap()).unwrap();
    let layer = reg.blob_path(manifest["layers"][0]["digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&layer).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&layer, bytes).unwrap();
    let (code, _, stderr) = drover(&agent, &["run", pushed["pinned"].as_str().unwrap(), "--run-id", "evil", "--quiet"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("does not match its digest (tampered with, or damaged; nothing of it was used)"), "{stderr}");
    assert!(agent.show("evil").is_none(), "nothing ran");
}

#[test]
fn registry_credentials_come_from_the_environment_or_the_docker_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::with_password(dir.path());
    let agent = signing_agent(dir.path());
    let probe = signed_copy(&agent, dir.path(), artifacts::PROBE, "probe.wasm");
    let tag = format!("{}/drover/probe:1.0", reg.addr);
    let empty = dir.path().join("docker-empty");
    std::fs::create_dir_all(&empty).unwrap();
    let anonymous = with(&agent, "DOCKER_CONFIG", empty.to_str().unwrap());
    let (code, _, stderr) = drover(&anonymous, &["push", probe.to_str().unwrap(), &tag]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("DROVER_REGISTRY_USERNAME"), "the refusal says how to give credentials: {stderr}");

    // From the environment.
    let by_env = with(&anonymous, "DROVER_REGISTRY_USERNAME", "drover").with_env("DROVER_REGISTRY_PASSWORD", "s3cret");
    let (code, _, stderr) = drover(&by_env, &["push", probe.to_str().unwrap(), &tag]);
    assert_eq!(code, Some(0), "{stderr}");
    // From the Docker configuration file.
    let docker = dir.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(docker.join("config.json"), format!("{{\"auths\": {{\"{}\": {{\"auth\": \"ZHJvdmVyOnMzY3JldA==\"}}}}}}", reg.addr)).unwrap();
    let by_file = with(&agent, "DOCKER_CONFIG", docker.to_str().unwrap());
    let (code, _, stderr) = drover(&by_file, &["run", &tag, "--run-id", "c1", "--quiet"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(by_file.show("c1").unwrap()["status"], "succeeded");
}
