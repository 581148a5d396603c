//! The agent's configuration file (TOML): resource limits, the signatures it
//! requires, and the capabilities the operator grants each runbook.
//! `docs/drover.toml` is a complete, commented example.
//!
//! Found at `--config FILE`, else `$DROVER_CONFIG`, else `drover.toml` in the
//! agent's home. Without a file, the defaults hold: the default limits, no
//! signature required, and no capability granted to any runbook.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use drover_engine::Limits;
use drover_engine::policy::{Policy, RunbookGrants};
use drover_signing::TrustStore;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `store`: where runs are kept (a top-level key, before any section).
    #[serde(default)]
    pub store: StoreConfig,
    /// `[limits]`.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `[signing]`.
    #[serde(default)]
    pub signing: SigningConfig,
    /// `[registry]`: how OCI registries are reached.
    #[serde(default)]
    pub registry: RegistryConfig,
    /// `[runbooks.NAME]`: grants per runbook name.
    #[serde(default)]
    pub runbooks: BTreeMap<String, RunbookGrants>,
    /// `[serve]`: what `drover serve` listens on, serves, schedules and answers.
    pub serve: Option<drover_service::ServeConfig>,
    /// Where it was read from (`None`: no file, defaults).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// `store = "embedded"` (the default: `runs.db` in the home; or
/// `store = { embedded = { lease_seconds = 15 } }`) or
/// `store = { dynamodb = { table = "T", region = "R", lease_seconds = 15 } }`
/// (shared by agents in several regions; `drover store init` creates it).
#[derive(Debug, Clone, PartialEq)]
pub enum StoreConfig {
    Embedded(EmbeddedStore),
    Dynamodb(DynamoStore),
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig::Embedded(EmbeddedStore::default())
    }
}

impl<'de> Deserialize<'de> for StoreConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum Tagged {
            Embedded(EmbeddedStore),
            Dynamodb(DynamoStore),
        }
        match toml::Value::deserialize(d)? {
            toml::Value::String(name) if name == "embedded" => Ok(StoreConfig::default()),
            toml::Value::String(name) => Err(serde::de::Error::custom(format!("unknown variant `{name}`, expected `embedded` or `dynamodb`"))),
            table => match Tagged::deserialize(table).map_err(serde::de::Error::custom)? {
                Tagged::Embedded(e) => Ok(StoreConfig::Embedded(e)),
                Tagged::Dynamodb(d) => Ok(StoreConfig::Dynamodb(d)),
            },
        }
    }
}

/// The embedded store's settings.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedStore {
    /// How long a driver's claim lasts without renewal (default 15): the
    /// longest a run waits after its driver stopped on another host (a
    /// container re-created under a new host name). A driver on this host
    /// whose process exited is taken over at once.
    pub lease_seconds: Option<f64>,
}

impl EmbeddedStore {
    /// The lease, checked.
    pub fn lease(&self) -> Result<Duration> {
        lease_setting("store.embedded", self.lease_seconds, drover_journal::SqliteJournal::DEFAULT_LEASE)
    }
}

/// `NAME.lease_seconds`: between 1 and 300 s, `default` when not set.
fn lease_setting(name: &str, seconds: Option<f64>, default: Duration) -> Result<Duration> {
    match seconds {
        None => Ok(default),
        Some(s) if s.is_finite() && (1.0..=300.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        Some(s) => bail!("{name}.lease_seconds must be between 1 and 300, not {s}"),
    }
}

/// The shared store's table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamoStore {
    pub table: String,
    pub region: String,
    /// How long a driver's claim lasts without renewal (default 15): the
    /// longest a run waits for a survivor after its driver died.
    pub lease_seconds: Option<f64>,
}

impl DynamoStore {
    /// The store's settings, checked.
    pub fn settings(&self) -> Result<drover_journal_dynamodb::DynamoConfig> {
        let t = &self.table;
        if !(3..=255).contains(&t.len()) || !t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            bail!("store.dynamodb.table '{t}' is not a DynamoDB table name: 3 to 255 letters, digits, '_', '-' or '.'");
        }
        if self.region.is_empty() || !self.region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            bail!("store.dynamodb.region '{}' is not a region name (like eu-west-1)", self.region);
        }
        let lease = lease_setting("store.dynamodb", self.lease_seconds, drover_journal_dynamodb::DynamoConfig::DEFAULT_LEASE)?;
        Ok(drover_journal_dynamodb::DynamoConfig { table: t.clone(), region: self.region.clone(), lease })
    }
}

/// `[limits]`: every key optional; a missing key keeps its default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub memory_mib: Option<u64>,
    pub cpu_seconds_per_run: Option<f64>,
    pub cpu_seconds_per_step: Option<f64>,
    pub step_timeout_seconds: Option<f64>,
    pub run_timeout_seconds: Option<f64>,
    pub stack_kib: Option<u64>,
    pub output_kib: Option<u64>,
    pub log_kib: Option<u64>,
    pub concurrent_host_calls: Option<u64>,
    pub max_branches: Option<u64>,
    pub concurrent_branches: Option<u64>,
}

/// `[registry]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Registries (`host:port`) reached over plain HTTP. Loopback registries
    /// always are; every other is reached over HTTPS unless listed here.
    #[serde(default)]
    pub plain_http: Vec<String>,
}

impl RegistryConfig {
    /// The transport to registries.
    pub fn transport(&self) -> drover_oci::Transport {
        drover_oci::Transport { plain_http: self.plain_http.clone() }
    }
}

/// `[signing]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// Refuse every runbook without a signature by a trusted key.
    #[serde(default)]
    pub require: bool,
    /// Trusted public keys: a key file path (relative to the configuration
    /// file) or the key itself (`drover-ed25519 BASE64`).
    #[serde(default)]
    pub trusted_keys: Vec<String>,
}

impl Config {
    /// Reads the configuration: `explicit` (must exist), else `home/drover.toml` if present.
    pub fn load(explicit: Option<&Path>, home: &Path) -> Result<Config> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = home.join("drover.toml");
                if !p.exists() {
                    return Ok(Config::default());
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the configuration {}; fix the path given to --config or DROVER_CONFIG", path.display()))?;
        let mut config = Config::parse(&text).with_context(|| format!("bad configuration {}", path.display()))?;
        config.source = Some(path);
        Ok(config)
    }

    /// Parses and checks a configuration.
    pub fn parse(text: &str) -> Result<Config> {
        let config: Config = toml::from_str(text)?;
        config.policy().validate().map_err(anyhow::Error::msg)?;
        config.limits()?;
        match &config.store {
            StoreConfig::Embedded(e) => {
                e.lease()?;
            }
            StoreConfig::Dynamodb(d) => {
                d.settings()?;
            }
        }
        if let Some(serve) = &config.serve {
            serve.validate()?;
        }
        if config.signing.require && config.signing.trusted_keys.is_empty() {
            bail!("[signing] require = true but trusted_keys is empty: no runbook could run; add the public key (drover keygen writes one) to trusted_keys");
        }
        Ok(config)
    }

    /// `path` from the configuration, taken relative to the file's directory.
    pub fn relative(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        let base = self.source.as_deref().and_then(Path::parent).unwrap_or(Path::new("."));
        base.join(path)
    }

    /// The grants.
    pub fn policy(&self) -> Policy {
        Policy { runbooks: self.runbooks.clone() }
    }

    /// The keys whose signatures are trusted, when signatures are required.
    /// Relative key file paths are taken from the configuration file's directory.
    pub fn trust(&self) -> Result<Option<TrustStore>> {
        if !self.signing.require {
            return Ok(None);
        }
        let base = self.source.as_deref().and_then(Path::parent).unwrap_or(Path::new("."));
        let specs = self.signing.trusted_keys.iter().map(|k| {
            let inline = k.trim_start().starts_with("drover-ed25519 ") || !k.contains(['/', '.']);
            if inline || Path::new(k).is_absolute() { k.clone() } else { base.join(k).display().to_string() }
        });
        // parse() has refused a requirement with no trusted key.
        Ok(Some(TrustStore::from_specs(specs.collect::<Vec<_>>()).context("[signing] trusted_keys")?))
    }

    /// The limits: the defaults, with what the file sets.
    pub fn limits(&self) -> Result<Limits> {
        let l = &self.limits;
        let mut out = Limits::default();
        let positive = |name: &str, v: f64| -> Result<Duration> {
            if !(v.is_finite() && v > 0.0) {
                bail!("[limits] {name} must be a positive number of seconds, not {v}");
            }
            Ok(Duration::from_secs_f64(v))
        };
        let count = |name: &str, v: u64| -> Result<usize> {
            if v == 0 {
                bail!("[limits] {name} must be at least 1");
            }
            Ok(v as usize)
        };
        if let Some(v) = l.memory_mib {
            out.memory_bytes = count("memory_mib", v)? << 20;
        }
        if let Some(v) = l.cpu_seconds_per_run {
            out.cpu_time = positive("cpu_seconds_per_run", v)?;
        }
        if let Some(v) = l.cpu_seconds_per_step {
            out.step_cpu_time = positive("cpu_seconds_per_step", v)?;
        }
        if let Some(v) = l.step_timeout_seconds {
            out.step_timeout = positive("step_timeout_seconds", v)?;
        }
        if let Some(v) = l.run_timeout_seconds {
            out.run_timeout = positive("run_timeout_seconds", v)?;
        }
        if let Some(v) = l.stack_kib {
            if !(64..=64 * 1024).contains(&v) {
                bail!("[limits] stack_kib must be between 64 and 65536, not {v}");
            }
            out.stack_bytes = v as usize * 1024;
        }
        if let Some(v) = l.output_kib {
            out.max_output_bytes = count("output_kib", v)? * 1024;
        }
        if let Some(v) = l.log_kib {
            out.max_log_bytes = count("log_kib", v)? * 1024;
        }
        if let Some(v) = l.concurrent_host_calls {
            out.max_host_calls = count("concurrent_host_calls", v)?;
        }
        if let Some(v) = l.max_branches {
            out.max_branches = count("max_branches", v)?;
        }
        if let Some(v) = l.concurrent_branches {
            out.concurrent_branches = count("concurrent_branches", v)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/drover.toml")).unwrap();
        let c = Config::parse(&text).unwrap();
        assert!(c.runbooks.contains_key("regional-failover"));
        assert_eq!(c.limits().unwrap().memory_bytes, 256 << 20);
        let serve = c.serve.as_ref().unwrap();
        assert_eq!((serve.runbooks.len(), serve.drills.len(), serve.triggers.len()), (2, 1, 3));
    }

    #[test]
    fn mistakes_are_named() {
        let e = Config::parse("[limits]\nmemory_mb = 3\n").unwrap_err();
        assert!(format!("{e:#}").contains("unknown field `memory_mb`"), "{e:#}");
        let e = Config::parse("[limits]\ncpu_seconds_per_run = -1\n").unwrap_err();
        assert!(format!("{e:#}").contains("cpu_seconds_per_run must be a positive"), "{e:#}");
        let e = Config::parse("[runbooks.x]\ngrants = [{ service = \"s3\", operations = [\"*\"] }]\n").unwrap_err();
        assert!(format!("{e:#}").contains("runbooks.x.grants[0]: unknown service 's3'"), "{e:#}");
        let e = Config::parse("[runbooks.x]\ngrants = [{ service = \"rds\", operations = [\"nuke\"] }]\n").unwrap_err();
        assert!(format!("{e:#}").contains("unknown rds operation 'nuke'"), "{e:#}");
        let e = Config::parse("store = \"sqlite\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("unknown variant `sqlite`, expected `embedded` or `dynamodb`"), "{e:#}");
        let e = Config::parse("store = { dynamodb = { table = \"t\", region = \"us-east-1\" } }\n").unwrap_err();
        assert!(format!("{e:#}").contains("table 't' is not a DynamoDB table name"), "{e:#}");
        let e = Config::parse("store = { dynamodb = { table = \"drover\", region = \"us-east-1\", lease_seconds = 0.1 } }\n").unwrap_err();
        assert!(format!("{e:#}").contains("lease_seconds must be between 1 and 300"), "{e:#}");
        let e = Config::parse("store = { dynamodb = { table = \"drover\" } }\n").unwrap_err();
        assert!(format!("{e:#}").contains("missing field `region`"), "{e:#}");
    }

    #[test]
    fn the_store_is_embedded_unless_a_table_is_named() {
        let default = StoreConfig::Embedded(EmbeddedStore::default());
        assert_eq!(Config::parse("").unwrap().store, default);
        assert_eq!(Config::parse("store = \"embedded\"\n").unwrap().store, default);
        let c = Config::parse("store = { embedded = { lease_seconds = 4 } }\n").unwrap();
        let StoreConfig::Embedded(e) = &c.store else { panic!("{:?}", c.store) };
        assert_eq!(e.lease().unwrap(), Duration::from_secs(4));
        let e = Config::parse("store = { embedded = { lease_seconds = 0 } }\n").unwrap_err();
        assert!(format!("{e:#}").contains("store.embedded.lease_seconds must be between 1 and 300"), "{e:#}");
        let e = Config::parse("store = { embedded = { lease = 4 } }\n").unwrap_err();
        assert!(format!("{e:#}").contains("unknown field `lease`"), "{e:#}");
        let c = Config::parse("store = { dynamodb = { table = \"drover-runs\", region = \"eu-west-1\", lease_seconds = 5 } }\n").unwrap();
        let StoreConfig::Dynamodb(d) = &c.store else { panic!("{:?}", c.store) };
        let settings = d.settings().unwrap();
        assert_eq!((settings.table.as_str(), settings.region.as_str(), settings.lease.as_secs()), ("drover-runs", "eu-west-1", 5));
    }
}
