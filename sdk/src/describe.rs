//! What a runbook says about itself: name, version, parameters, capabilities.

use serde::Serialize;

use crate::bindings::drover::runbook::types::{Capability as WitCapability, ParamSpec, ParamType, RunbookInfo};

/// A runbook's self-description, returned from [`crate::Runbook::describe`].
///
/// ```
/// use drover_sdk::{Describe, Param};
/// let d = Describe::new("hello-durable", "0.1.0")
///     .description("Greets, waits durably, greets again.")
///     .param(Param::integer("pause_seconds", "How long to wait").default(2))
///     .param(Param::string("greeting", "What to say"));
/// assert_eq!(d.params().len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Describe {
    name: String,
    version: String,
    description: String,
    params: Vec<Param>,
    capabilities: Vec<Capability>,
}

impl Describe {
    /// A runbook named `name` at `version` (use `env!("CARGO_PKG_VERSION")`).
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Describe { name: name.into(), version: version.into(), description: String::new(), params: Vec::new(), capabilities: Vec::new() }
    }

    /// One paragraph for the operator.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// Declares a parameter.
    pub fn param(mut self, param: Param) -> Self {
        self.params.push(param);
        self
    }

    /// Declares a capability the runbook needs.
    pub fn capability(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }

    /// The declared parameters.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    pub(crate) fn into_wit(self) -> RunbookInfo {
        RunbookInfo {
            name: self.name,
            version: self.version,
            description: self.description,
            params: self
                .params
                .into_iter()
                .map(|p| ParamSpec { name: p.name, description: p.description, type_: p.ty, default: p.default, secret: p.secret })
                .collect(),
            capabilities: self
                .capabilities
                .into_iter()
                .map(|c| WitCapability { service: c.service, operations: c.operations, regions: c.regions, resources: c.resources })
                .collect(),
        }
    }
}

/// A run parameter: name, meaning, type, and an optional default.
#[derive(Debug, Clone)]
pub struct Param {
    name: String,
    description: String,
    ty: ParamType,
    default: Option<String>,
    secret: bool,
}

impl Param {
    fn new(name: &str, description: &str, ty: ParamType) -> Self {
        Param { name: name.into(), description: description.into(), ty, default: None, secret: false }
    }

    /// A secret parameter (a password, a token). The operator passes a
    /// reference (`--param NAME=env:VAR` or `file:PATH`), never the value; the
    /// runbook receives a [`crate::Secret`] handle it can give to a capability
    /// but cannot read. Declare it in the params struct as `Secret`.
    pub fn secret(name: &str, description: &str) -> Self {
        Param { secret: true, ..Param::new(name, description, ParamType::String) }
    }

    /// A text parameter.
    pub fn string(name: &str, description: &str) -> Self {
        Param::new(name, description, ParamType::String)
    }

    /// A signed 64-bit integer parameter.
    pub fn integer(name: &str, description: &str) -> Self {
        Param::new(name, description, ParamType::Integer)
    }

    /// A floating-point parameter.
    pub fn number(name: &str, description: &str) -> Self {
        Param::new(name, description, ParamType::Number)
    }

    /// A `true`/`false` parameter.
    pub fn boolean(name: &str, description: &str) -> Self {
        Param::new(name, description, ParamType::Boolean)
    }

    /// A parameter holding any JSON document.
    pub fn json(name: &str, description: &str) -> Self {
        Param::new(name, description, ParamType::Json)
    }

    /// Makes the parameter optional with this default. Without a default the
    /// agent refuses to start a run that does not give it.
    pub fn default(mut self, value: impl Serialize) -> Self {
        // Serializing plain values (numbers, strings, bools) cannot fail.
        self.default = Some(serde_json::to_string(&value).unwrap_or_else(|_| "null".into()));
        self
    }

    /// The parameter's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A capability the runbook needs: a service, its operations, regions and
/// resources. Every call the runbook makes is checked against it and against
/// what the operator granted; anything outside either is refused with a
/// `permission-denied` error before it reaches AWS.
///
/// Regions and resource patterns may name the runbook's string parameters:
/// `{dr_region}` stands for that parameter's value (taken literally, never as
/// a pattern). Resources are `kind/glob`: `db/`, `snapshot/`, `zone/`,
/// `record/`, `instance/`, `volume/`, `image/`, `lineage/`.
///
/// ```
/// use drover_sdk::Capability;
/// let rds = Capability::new("rds")
///     .operations(["describe-instance", "promote-read-replica", "wait-instance-available"])
///     .regions(["{dr_region}"])
///     .resources(["db/{replica}"]);
/// ```
#[derive(Debug, Clone)]
pub struct Capability {
    service: String,
    operations: Vec<String>,
    regions: Vec<String>,
    resources: Vec<String>,
}

impl Capability {
    /// A capability on `service` (`rds`, `ec2`, `route53`).
    pub fn new(service: &str) -> Self {
        Capability { service: service.into(), operations: vec![], regions: vec![], resources: vec![] }
    }

    /// The operations used.
    pub fn operations<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ops: I) -> Self {
        self.operations = ops.into_iter().map(Into::into).collect();
        self
    }

    /// The regions used.
    pub fn regions<I: IntoIterator<Item = S>, S: Into<String>>(mut self, regions: I) -> Self {
        self.regions = regions.into_iter().map(Into::into).collect();
        self
    }

    /// The resource patterns acted on.
    pub fn resources<I: IntoIterator<Item = S>, S: Into<String>>(mut self, resources: I) -> Self {
        self.resources = resources.into_iter().map(Into::into).collect();
        self
    }
}
