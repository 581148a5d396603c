//! The capability policy: what a runbook declared it needs (`describe()`),
//! what the operator granted it (the agent's configuration), and the check
//! every capability call passes before anything reaches AWS.
//!
//! A call is allowed when both the declaration and the grants allow it (the
//! intersection). Each part of the call is checked on its own: the operation,
//! every region it touches, every resource it names.
//!
//! Resources are named `kind/name`: `db/orders-db`, `snapshot/orders-db-final`,
//! `zone/orders.example.internal`, `record/db.orders.example.internal`,
//! `instance/i-0abc`, `volume/vol-0abc`, `image/ami-0abc` or `image/NAME`,
//! `lineage/NAME`, `healthcheck/ID`, `alarm/NAME`, `cluster/ID` (an Aurora
//! cluster or global database), `asg/NAME` (an Auto Scaling group),
//! `ecs-service/CLUSTER/SERVICE`. A pattern is `kind/glob` (that kind only) or a bare glob
//! (any kind); `*` matches any run of characters.
//!
//! A declaration may name the run's parameters: `{db_instance}` in a region or
//! resource pattern stands for that parameter's value, escaped so that a
//! value can never widen the pattern (`--param db_instance='*'` means a DB
//! named `*`, not every DB).

use std::collections::BTreeMap;
use std::fmt;

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::info::{CapabilityInfo, ParamType, RunbookInfo};

/// A service the agent serves, its operations, and whether calls name a region.
pub struct Service {
    /// The name used in declarations and grants.
    pub name: &'static str,
    /// Its operations (the WIT function names).
    pub operations: &'static [&'static str],
    /// Whether calls are made in a region (Route 53 is global).
    pub regional: bool,
}

/// Every capability the contract offers.
pub const SERVICES: &[Service] = &[
    Service {
        name: "rds",
        operations: &[
            "describe-instance",
            "create-snapshot",
            "copy-snapshot",
            "describe-snapshot",
            "create-read-replica",
            "promote-read-replica",
            "wait-instance-available",
            "wait-snapshot-available",
            "latest-snapshot",
            "restore-from-snapshot",
            "delete-instance",
            "run-instances",
            "replica-lag",
            "describe-cluster",
            "describe-global-cluster",
            "failover-global-cluster",
            "wait-global-writer",
            "detach-from-global-cluster",
        ],
        regional: true,
    },
    Service {
        name: "ec2",
        operations: &[
            "describe-instance",
            "snapshot-volume",
            "copy-snapshot",
            "create-image",
            "copy-image",
            "wait-image-available",
            "run-instance",
            "prune-images",
            "latest-image",
            "terminate-instance",
            "run-instances",
            "tag",
        ],
        regional: true,
    },
    Service {
        name: "route53",
        operations: &[
            "get-records",
            "get-records-of",
            "upsert-cname",
            "change-records",
            "set-weights",
            "delete-cname",
            "get-health-check",
            "update-health-check",
            "upsert-failover",
        ],
        regional: false,
    },
    Service { name: "cloudwatch", operations: &["describe-alarms"], regional: true },
    Service { name: "autoscaling", operations: &["describe-group", "set-capacity", "wait-in-service"], regional: true },
    Service { name: "ecs", operations: &["describe-service", "set-desired-count", "wait-stable"], regional: true },
];

fn service(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}

/// One capability, as a runbook declares it or an operator grants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// `rds`, `ec2` or `route53`.
    pub service: String,
    /// Operations, or `*` for all of the service's.
    #[serde(default)]
    pub operations: Vec<String>,
    /// Region patterns; ignored for a global service (Route 53).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Resource patterns (`kind/glob` or `glob`).
    #[serde(default)]
    pub resources: Vec<String>,
}

impl Grant {
    /// Checks the grant is well formed: a known service, its operations,
    /// patterns that compile, and regions for a regional service.
    pub fn validate(&self) -> Result<(), String> {
        let svc = service(&self.service)
            .ok_or_else(|| format!("unknown service '{}' (known: {})", self.service, SERVICES.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")))?;
        for op in &self.operations {
            if op != "*" && !svc.operations.contains(&op.as_str()) {
                return Err(format!("unknown {} operation '{op}' (known: {})", svc.name, svc.operations.join(", ")));
            }
        }
        for p in self.regions.iter().chain(&self.resources) {
            glob(p)?;
        }
        Ok(())
    }
}

impl From<&CapabilityInfo> for Grant {
    fn from(c: &CapabilityInfo) -> Self {
        Grant { service: c.service.clone(), operations: c.operations.clone(), regions: c.regions.clone(), resources: c.resources.clone() }
    }
}

/// The grants of one runbook in the agent's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunbookGrants {
    /// When set, the grants hold only for the component with this SHA-256
    /// (hex): a module that merely calls itself by the same name gets nothing.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The capabilities granted.
    #[serde(default)]
    pub grants: Vec<Grant>,
}

/// The operator's grants, per runbook name.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Grants by runbook name (as its `describe()` gives it).
    pub runbooks: BTreeMap<String, RunbookGrants>,
}

impl Policy {
    /// A policy granting `info` exactly what it declares for `params`: a
    /// simulated run (`drover test`, `drover simulate`) tests the runbook,
    /// `drover check` tests the configuration's grants.
    pub fn declared(info: &RunbookInfo, params: &Value) -> Policy {
        let grants = RunbookGrants { sha256: None, grants: resolve(info, params) };
        Policy { runbooks: [(info.name.clone(), grants)].into() }
    }

    /// What the operator granted `info` (nothing when the runbook is not in
    /// the configuration, or when its pinned digest is not this component's).
    pub fn grants_for(&self, info: &RunbookInfo) -> &[Grant] {
        match self.runbooks.get(&info.name) {
            Some(g) if g.sha256.as_deref().is_none_or(|d| d.eq_ignore_ascii_case(&info.digest)) => &g.grants,
            _ => &[],
        }
    }

    /// Checks every grant (for the configuration loader).
    pub fn validate(&self) -> Result<(), String> {
        for (name, g) in &self.runbooks {
            for (i, grant) in g.grants.iter().enumerate() {
                grant.validate().map_err(|e| format!("runbooks.{name}.grants[{i}]: {e}"))?;
            }
        }
        Ok(())
    }
}

/// Checks the capabilities a runbook declared (from `describe()`): known
/// services and operations, and `{param}` placeholders that name one of its
/// plain string parameters.
pub(crate) fn validate_declaration(info: &RunbookInfo) -> Result<(), String> {
    for c in &info.capabilities {
        Grant::from(c).validate()?;
        for p in c.regions.iter().chain(&c.resources) {
            for name in placeholders(p)? {
                match info.params.iter().find(|q| q.name == name) {
                    Some(q) if q.ty == ParamType::String && !q.secret => {}
                    Some(_) => return Err(format!("'{p}' names parameter '{name}', which is not a plain string parameter")),
                    None => return Err(format!("'{p}' names parameter '{name}', which the runbook does not declare")),
                }
            }
        }
    }
    Ok(())
}

/// The `{name}` placeholders of a pattern.
fn placeholders(pattern: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').ok_or_else(|| format!("'{pattern}' has a '{{' without its '}}'"))?;
        out.push(&rest[open + 1..open + close]);
        rest = &rest[open + close + 1..];
    }
    Ok(out)
}

/// `pattern` with each `{param}` replaced by the parameter's value, escaped.
fn substitute(pattern: &str, params: &Value) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        out.push_str(&rest[..open]);
        let name = &rest[open + 1..open + close];
        let value = params.get(name).and_then(Value::as_str).unwrap_or_default();
        out.push_str(&escape(value));
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// `value` as a glob that matches exactly `value`: every character the glob
/// syntax gives a meaning outside a class (`*`, `?`, `[`, `]`, `{`, `}` and,
/// since globs are compiled with backslash escapes, `\` itself) is preceded
/// by a backslash. (`globset::escape` leaves `\` alone, so a value ending in
/// `\`, or holding `\*`, would escape or unescape what follows it.)
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A pattern compiled, once per process: compiling one builds a regex
/// automaton, and every run compiles its runbook's patterns (a simulation
/// runs thousands of runs a minute with the same ones; profiled, it was a
/// tenth of its time). Bounded: emptied when it reaches `GLOB_CACHE_MAX`.
fn glob(pattern: &str) -> Result<GlobMatcher, String> {
    static CACHE: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, GlobMatcher>>> = std::sync::LazyLock::new(Default::default);
    const GLOB_CACHE_MAX: usize = 4096;
    if let Some(m) = CACHE.lock().unwrap_or_else(|p| p.into_inner()).get(pattern) {
        return Ok(m.clone());
    }
    let matcher = GlobBuilder::new(pattern)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map(|g: Glob| g.compile_matcher())
        .map_err(|e| format!("bad pattern '{pattern}': {e}"))?;
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= GLOB_CACHE_MAX {
        cache.clear();
    }
    cache.insert(pattern.to_string(), matcher.clone());
    Ok(matcher)
}

/// A resource a call names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    /// `db`, `snapshot`, `zone`, `record`, `instance`, `volume`, `image`,
    /// `lineage`, `healthcheck`, `alarm`, `cluster`.
    pub kind: &'static str,
    /// Its name or id.
    pub name: String,
}

impl Resource {
    /// `kind/name`.
    pub fn new(kind: &'static str, name: impl Into<String>) -> Self {
        Resource { kind, name: name.into() }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// One capability call, as the policy sees it.
#[derive(Debug, Clone)]
pub struct Access {
    /// Service.
    pub service: &'static str,
    /// Operation (WIT function name).
    pub operation: &'static str,
    /// Regions the call acts in (empty for a global service).
    pub regions: Vec<String>,
    /// Resources it names.
    pub resources: Vec<Resource>,
    /// Whether it changes anything.
    pub mutating: bool,
}

impl Access {
    /// `service.operation`.
    pub fn name(&self) -> String {
        format!("{}.{}", self.service, self.operation)
    }
}

/// A compiled rule.
struct Rule {
    service: String,
    operations: Vec<String>,
    regions: Vec<(String, GlobMatcher)>,
    resources: Vec<(String, Option<String>, GlobMatcher)>,
}

impl Rule {
    fn compile(g: &Grant) -> Result<Rule, String> {
        let regions = g.regions.iter().map(|r| Ok((r.clone(), glob(r)?))).collect::<Result<_, String>>()?;
        let resources = g
            .resources
            .iter()
            .map(|p| {
                let (kind, name) = split_kind(p);
                Ok((p.clone(), kind.map(str::to_string), glob(name)?))
            })
            .collect::<Result<_, String>>()?;
        Ok(Rule { service: g.service.clone(), operations: g.operations.clone(), regions, resources })
    }

    fn has_operation(&self, service: &str, op: &str) -> bool {
        self.service == service && self.operations.iter().any(|o| o == "*" || o == op)
    }

    fn allows_region(&self, region: &str) -> bool {
        self.regions.iter().any(|(_, g)| g.is_match(region))
    }

    fn allows_resource(&self, r: &Resource) -> bool {
        self.resources.iter().any(|(_, kind, g)| kind.as_deref().is_none_or(|k| k == r.kind) && g.is_match(&r.name))
    }
}

/// `kind/glob` → (Some(kind), glob) (a kind is lower-case letters and `-`,
/// e.g. `ecs-service`); `glob` → (None, glob).
fn split_kind(pattern: &str) -> (Option<&str>, &str) {
    match pattern.split_once('/') {
        Some((k, rest)) if !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '-') => (Some(k), rest),
        _ => (None, pattern),
    }
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct Denial {
    /// The runbook.
    pub runbook: String,
    /// `service.operation`.
    pub operation: String,
    /// What was not allowed: `operation`, `region us-west-2`, `resource db/x`.
    pub subject: String,
    /// The runbook did not declare it (else: the operator did not grant it).
    pub undeclared: bool,
}

impl Denial {
    fn message(&self) -> String {
        if self.undeclared {
            format!(
                "permission denied: runbook '{}' called {} on {}, which it did not declare in describe(); \
                 the call was not made. Declare it (and have the operator grant it) to use it",
                self.runbook, self.operation, self.subject
            )
        } else {
            format!(
                "permission denied: runbook '{}' called {} on {}, which the operator has not granted; \
                 the call was not made. Missing grant: {} {} (add it under [runbooks.{}] in the agent's configuration)",
                self.runbook, self.operation, self.subject, self.operation, self.subject, self.runbook
            )
        }
    }
}

/// The effective permission of one run: its resolved declaration and the
/// operator's grants, compiled.
pub struct Guard {
    runbook: String,
    declared: Vec<Rule>,
    granted: Vec<Rule>,
}

impl Guard {
    /// The permission of `info` run with `params` under `policy`.
    pub fn new(info: &RunbookInfo, params: &Value, policy: &Policy) -> Result<Guard, String> {
        Ok(Guard {
            runbook: info.name.clone(),
            declared: resolve(info, params).iter().map(Rule::compile).collect::<Result<_, _>>()?,
            granted: policy.grants_for(info).iter().map(Rule::compile).collect::<Result<_, _>>()?,
        })
    }

    /// Checks a call against the declaration, then against the grants.
    pub fn check(&self, a: &Access) -> Result<(), Denial> {
        let deny = |subject: String, undeclared: bool| Denial { runbook: self.runbook.clone(), operation: a.name(), subject, undeclared };
        for (rules, undeclared) in [(&self.declared, true), (&self.granted, false)] {
            let matching: Vec<&Rule> = rules.iter().filter(|r| r.has_operation(a.service, a.operation)).collect();
            if matching.is_empty() {
                return Err(deny("any resource (the operation itself)".into(), undeclared));
            }
            let regional = service(a.service).is_some_and(|s| s.regional);
            if regional && let Some(region) = a.regions.iter().find(|reg| !matching.iter().any(|r| r.allows_region(reg))) {
                return Err(deny(format!("region {region}"), undeclared));
            }
            if let Some(res) = a.resources.iter().find(|res| !matching.iter().any(|r| r.allows_resource(res))) {
                return Err(deny(format!("resource {res}"), undeclared));
            }
        }
        Ok(())
    }
}

/// The declaration of `info` with its `{param}` placeholders filled in. A
/// pattern naming a parameter that is empty (an optional resource the run
/// does not use) declares nothing.
pub fn resolve(info: &RunbookInfo, params: &Value) -> Vec<Grant> {
    let fill = |patterns: &[String]| -> Vec<String> {
        patterns
            .iter()
            .filter(|p| placeholders(p).unwrap_or_default().iter().all(|name| params.get(*name).and_then(Value::as_str).is_some_and(|v| !v.is_empty())))
            .map(|p| substitute(p, params))
            .collect()
    };
    info.capabilities
        .iter()
        .map(|c| Grant { service: c.service.clone(), operations: c.operations.clone(), regions: fill(&c.regions), resources: fill(&c.resources) })
        .collect()
}

/// What `info` run with `params` declares that `policy` does not grant.
pub fn missing_for(info: &RunbookInfo, params: &Value, policy: &Policy) -> Vec<String> {
    missing(&resolve(info, params), policy.grants_for(info))
}

/// What `declared` needs that `granted` does not cover, one line per item
/// (`rds promote-read-replica`, `rds region us-west-2`, `rds resource db/x`).
/// A declared pattern is covered when a granted pattern matches its text, a
/// conservative test: the check of each call is the authority.
pub fn missing(declared: &[Grant], granted: &[Grant]) -> Vec<String> {
    let mut out = Vec::new();
    for d in declared {
        let same: Vec<&Grant> = granted.iter().filter(|g| g.service == d.service).collect();
        for op in &d.operations {
            let ok = same.iter().any(|g| g.operations.iter().any(|o| o == "*" || o == op));
            if !ok {
                out.push(format!("{} operation {op}", d.service));
            }
        }
        let covering: Vec<&Grant> = same.iter().copied().filter(|g| d.operations.iter().all(|op| g.operations.iter().any(|o| o == "*" || o == op))).collect();
        let pool = if covering.is_empty() { &same } else { &covering };
        if service(&d.service).is_some_and(|s| s.regional) {
            for r in &d.regions {
                if !pool.iter().any(|g| g.regions.iter().any(|p| glob(p).is_ok_and(|m| m.is_match(r)))) {
                    out.push(format!("{} region {r}", d.service));
                }
            }
        }
        for r in &d.resources {
            let (kind, name) = split_kind(r);
            let ok = pool.iter().any(|g| {
                g.resources.iter().any(|p| {
                    let (gk, gname) = split_kind(p);
                    let kind_ok = match (gk, kind) {
                        (None, _) => true,
                        (Some(a), Some(b)) => a == b,
                        (Some(_), None) => false,
                    };
                    kind_ok && glob(gname).is_ok_and(|m| m.is_match(name))
                })
            });
            if !ok {
                out.push(format!("{} resource {r}", d.service));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_may_have_a_hyphen() {
        assert_eq!(split_kind("ecs-service/orders/api"), (Some("ecs-service"), "orders/api"));
        assert_eq!(split_kind("asg/orders-web"), (Some("asg"), "orders-web"));
        assert_eq!(split_kind("Orders/x"), (None, "Orders/x"));
    }
    use crate::info::ParamInfo;
    use serde_json::json;

    fn info(caps: Vec<CapabilityInfo>) -> RunbookInfo {
        let p = |name: &str| ParamInfo { name: name.into(), description: String::new(), ty: ParamType::String, default: None, secret: false };
        RunbookInfo {
            name: "failover".into(),
            version: "1.0.0".into(),
            description: String::new(),
            params: vec![p("db"), p("dr")],
            capabilities: caps,
            contract: "0.1.0".into(),
            digest: "ab12".into(),
        }
    }

    fn cap(service: &str, ops: &[&str], regions: &[&str], resources: &[&str]) -> CapabilityInfo {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        CapabilityInfo { service: service.into(), operations: v(ops), regions: v(regions), resources: v(resources) }
    }

    fn grant(service: &str, ops: &[&str], regions: &[&str], resources: &[&str]) -> Grant {
        Grant::from(&cap(service, ops, regions, resources))
    }

    fn policy(grants: Vec<Grant>, sha256: Option<&str>) -> Policy {
        let mut p = Policy::default();
        p.runbooks.insert("failover".into(), RunbookGrants { sha256: sha256.map(Into::into), grants });
        p
    }

    fn promote(region: &str, db: &str) -> Access {
        Access { service: "rds", operation: "promote-read-replica", regions: vec![region.into()], resources: vec![Resource::new("db", db)], mutating: true }
    }

    #[test]
    fn a_call_needs_both_the_declaration_and_the_grant() {
        let rb = info(vec![cap("rds", &["promote-read-replica", "describe-instance"], &["{dr}"], &["db/{db}-replica"])]);
        let params = json!({"db": "orders-db", "dr": "us-west-2"});
        let pol = policy(vec![grant("rds", &["*"], &["us-*"], &["db/orders-*"])], None);
        let g = Guard::new(&rb, &params, &pol).unwrap();
        assert!(missing_for(&rb, &params, &pol).is_empty(), "{:?}", missing_for(&rb, &params, &pol));
        g.check(&promote("us-west-2", "orders-db-replica")).unwrap();

        // Outside the declaration: another region, another DB.
        let d = g.check(&promote("us-east-1", "orders-db-replica")).unwrap_err();
        assert!(d.undeclared && d.subject == "region us-east-1", "{d}");
        let d = g.check(&promote("us-west-2", "billing-db")).unwrap_err();
        assert!(d.undeclared && d.subject == "resource db/billing-db", "{d}");
        assert!(d.to_string().contains("runbook 'failover' called rds.promote-read-replica on resource db/billing-db"), "{d}");

        // Declared but not granted: the grant is narrower.
        let narrow = policy(vec![grant("rds", &["describe-instance"], &["us-west-2"], &["db/*"])], None);
        let g = Guard::new(&rb, &params, &narrow).unwrap();
        assert_eq!(missing_for(&rb, &params, &narrow), ["rds operation promote-read-replica"]);
        let d = g.check(&promote("us-west-2", "orders-db-replica")).unwrap_err();
        assert!(!d.undeclared, "{d}");
        assert!(d.to_string().contains("[runbooks.failover]"), "{d}");
    }

    #[test]
    fn a_parameter_cannot_widen_the_declaration() {
        let rb = info(vec![cap("rds", &["promote-read-replica"], &["{dr}"], &["db/{db}"])]);
        let pol = policy(vec![grant("rds", &["*"], &["*"], &["*"])], None);
        let g = Guard::new(&rb, &json!({"db": "*", "dr": "*"}), &pol).unwrap();
        assert!(g.check(&promote("us-west-2", "orders-db")).is_err());
        g.check(&promote("*", "*")).unwrap();
        // An empty parameter declares nothing (rather than `db/`).
        let g = Guard::new(&rb, &json!({"db": "", "dr": "us-west-2"}), &pol).unwrap();
        assert_eq!(g.check(&promote("us-west-2", "")).unwrap_err().subject, "resource db/");
    }

    /// Values as they come from alert labels (`params_from_labels` of a
    /// trigger) or `--param`: whatever the value, the pattern it fills
    /// matches that value and nothing else, wherever it sits in the pattern.
    #[test]
    fn a_hostile_parameter_value_matches_only_itself() {
        let hostile = [
            "*",
            "?",
            "[",
            "]",
            "[*]",
            "{",
            "}",
            "{a,b}",
            "\\",
            "\\*",
            "\\?",
            "a\\",
            "a\\\\",
            "\\[*]",
            "**",
            "a/**",
            "/",
            "a/b",
            "ä*ß",
            "日本\\",
            "!",
            "[!a]",
            "a-z",
            "[a-z]",
            "*\\",
            "\\\\*",
            "a,b",
            "\\{a,b\\}",
        ];
        let probes: Vec<String> = hostile
            .iter()
            .map(|s| s.to_string())
            .chain(
                ["", "a", "ab", "b", "x", "[x]", "{x}", "orders-db", "a-replica", "-replica", "pre-", "pre-a", "\\a", "a\\b", "\\x", "aa", "ä", "日本"]
                    .map(String::from),
            )
            .collect();
        let pol = policy(vec![grant("rds", &["*"], &["*"], &["*"])], None);
        for (before, after) in [("", ""), ("", "-replica"), ("pre-", ""), ("pre-", "-replica")] {
            let rb = info(vec![cap("rds", &["promote-read-replica"], &["{dr}"], &[&format!("db/{before}{{db}}{after}")])]);
            for value in hostile {
                let g =
                    Guard::new(&rb, &json!({"db": value, "dr": value}), &pol).unwrap_or_else(|e| panic!("value {value:?} in db/{before}{{db}}{after}: {e}"));
                g.check(&promote(value, &format!("{before}{value}{after}"))).unwrap_or_else(|e| panic!("{value:?}: {e}"));
                for probe in probes.iter().filter(|p| p.as_str() != value) {
                    let name = format!("{before}{probe}{after}");
                    assert!(g.check(&promote(value, &name)).is_err(), "value {value:?} in db/{before}{{db}}{after} widened the grant to db/{name}");
                    assert!(g.check(&promote(probe, &format!("{before}{value}{after}"))).is_err(), "region value {value:?} matched region {probe:?}");
                }
            }
        }
    }

    /// A zone is checked as the call names it: a grant of the plain name
    /// does not cover `private:NAME`, `public:NAME` or an id (the plain name
    /// itself only resolves when exactly one zone has it).
    #[test]
    fn zones_are_granted_in_the_form_the_call_names_them() {
        let rb = info(vec![cap("route53", &["upsert-cname"], &[], &["zone/*", "record/*"])]);
        let call = |zone: &str| Access {
            service: "route53",
            operation: "upsert-cname",
            regions: vec![],
            resources: vec![Resource::new("zone", zone), Resource::new("record", "db.orders.example.internal")],
            mutating: true,
        };
        let guard = |zones: &[&str]| {
            let mut resources = zones.to_vec();
            resources.push("record/*");
            Guard::new(&rb, &json!({}), &policy(vec![grant("route53", &["upsert-cname"], &[], &resources)], None)).unwrap()
        };
        let forms = ["orders.example.internal", "private:orders.example.internal", "public:orders.example.internal", "Z0PRIVATE1", "/hostedzone/Z0PRIVATE1"];
        let allowed = |g: &Guard| forms.iter().filter(|z| g.check(&call(z)).is_ok()).copied().collect::<Vec<_>>();
        assert_eq!(allowed(&guard(&["zone/orders.example.internal"])), ["orders.example.internal"]);
        assert_eq!(allowed(&guard(&["zone/orders*.example.internal"])), ["orders.example.internal"]);
        assert_eq!(allowed(&guard(&["zone/private:orders.example.internal"])), ["private:orders.example.internal"]);
        assert_eq!(allowed(&guard(&["zone/Z0PRIVATE1"])), ["Z0PRIVATE1"]);
        assert_eq!(allowed(&guard(&["zone/private:*", "zone/Z0PRIVATE1"])), ["private:orders.example.internal", "Z0PRIVATE1"]);
        assert_eq!(allowed(&guard(&["zone/*"])), forms);
    }

    #[test]
    fn grants_pinned_to_a_digest_hold_for_that_component_only() {
        let rb = info(vec![cap("route53", &["get-records"], &[], &["zone/*"])]);
        let pinned_elsewhere = policy(vec![grant("route53", &["*"], &[], &["*"])], Some("ffff"));
        assert_eq!(missing_for(&rb, &json!({}), &pinned_elsewhere), ["route53 operation get-records", "route53 resource zone/*"]);
        let pinned_here = policy(vec![grant("route53", &["*"], &[], &["*"])], Some("AB12"));
        assert!(missing_for(&rb, &json!({}), &pinned_here).is_empty());
    }

    #[test]
    fn a_global_service_ignores_regions_and_kinds_narrow_patterns() {
        let rb = info(vec![cap("route53", &["get-records"], &[], &["zone/example.internal", "record/*.example.internal"])]);
        let pol = policy(vec![grant("route53", &["get-records"], &[], &["zone/*", "record/*.example.internal"])], None);
        let g = Guard::new(&rb, &json!({}), &pol).unwrap();
        assert!(missing_for(&rb, &json!({}), &pol).is_empty(), "{:?}", missing_for(&rb, &json!({}), &pol));
        let read = |zone: &str, rec: &str| Access {
            service: "route53",
            operation: "get-records",
            regions: vec![],
            resources: vec![Resource::new("zone", zone), Resource::new("record", rec)],
            mutating: false,
        };
        g.check(&read("example.internal", "db.example.internal")).unwrap();
        let d = g.check(&read("example.internal", "db.other.internal")).unwrap_err();
        assert_eq!(d.subject, "resource record/db.other.internal");
        // A `zone/` pattern does not match a record of the same name.
        let rb = info(vec![cap("route53", &["get-records"], &[], &["zone/*"])]);
        let g = Guard::new(&rb, &json!({}), &pol).unwrap();
        assert!(g.check(&read("example.internal", "db.example.internal")).is_err());
    }

    /// Every function of a capability interface in the contract is an
    /// operation the policy knows, and the reverse: a capability cannot land
    /// without its policy.
    #[test]
    fn the_policy_covers_every_capability_of_the_contract() {
        let wit = include_str!("../../../wit/runbook.wit");
        for svc in SERVICES {
            let start = wit.find(&format!("interface {} {{", svc.name)).unwrap_or_else(|| panic!("no interface {}", svc.name));
            let body = &wit[start..start + wit[start..].find("\n}").unwrap()];
            let mut funcs: Vec<&str> = body.lines().filter_map(|l| l.trim().split_once(": func(").map(|(name, _)| name)).collect();
            funcs.sort();
            let mut known = svc.operations.to_vec();
            known.sort();
            assert_eq!(funcs, known, "interface {}", svc.name);
        }
    }

    #[test]
    fn declarations_and_grants_are_checked() {
        assert!(grant("s3", &["*"], &[], &[]).validate().unwrap_err().contains("unknown service 's3'"));
        assert!(grant("rds", &["drop-everything"], &[], &[]).validate().unwrap_err().contains("unknown rds operation"));
        let rb = info(vec![cap("rds", &["*"], &["{region}"], &[])]);
        assert!(validate_declaration(&rb).unwrap_err().contains("parameter 'region'"));
        let rb = info(vec![cap("rds", &["*"], &["{dr"], &[])]);
        assert!(validate_declaration(&rb).is_err());
        let rb = info(vec![cap("rds", &["*"], &["{dr}"], &["db/{db}"])]);
        validate_declaration(&rb).unwrap();
    }
}
