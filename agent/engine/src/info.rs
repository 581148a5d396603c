//! What a runbook says about itself (`describe()`), in a form the agent can
//! print, serialize and check parameters against.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::EngineError;
use crate::bindings::types;

/// A parameter's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// Text.
    String,
    /// Signed 64-bit integer.
    Integer,
    /// Float.
    Number,
    /// `true` / `false`.
    Boolean,
    /// Any JSON.
    Json,
}

impl ParamType {
    fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
            ParamType::Json => "json",
        }
    }
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamInfo {
    /// Name.
    pub name: String,
    /// Meaning.
    pub description: String,
    /// Type.
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// Default; `None` means required.
    pub default: Option<Value>,
    /// A secret: given as a reference, never as a value.
    pub secret: bool,
}

/// One declared capability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapabilityInfo {
    /// Service.
    pub service: String,
    /// Operations.
    pub operations: Vec<String>,
    /// Regions.
    pub regions: Vec<String>,
    /// Resource patterns.
    pub resources: Vec<String>,
}

/// A runbook's self-description.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunbookInfo {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Description.
    pub description: String,
    /// Parameters.
    pub params: Vec<ParamInfo>,
    /// Capabilities.
    pub capabilities: Vec<CapabilityInfo>,
    /// The `drover:runbook` contract version the component imports.
    pub contract: String,
    /// SHA-256 of the component bytes.
    pub digest: String,
}

impl RunbookInfo {
    /// Converts and checks what `describe()` returned.
    pub(crate) fn from_wit(info: types::RunbookInfo, contract: String, digest: String) -> Result<Self, EngineError> {
        let bad = |detail: String| EngineError::BadDescription { name: info.name.clone(), detail };
        if info.name.trim().is_empty() {
            return Err(bad("describe() returned an empty name".into()));
        }
        let mut params: Vec<ParamInfo> = Vec::new();
        for p in &info.params {
            if p.name.is_empty() || !p.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
                return Err(bad(format!("parameter name '{}' must be lowercase letters, digits and '_'", p.name)));
            }
            if params.iter().any(|q| q.name == p.name) {
                return Err(bad(format!("parameter '{}' is declared twice", p.name)));
            }
            let ty = match p.type_ {
                types::ParamType::String => ParamType::String,
                types::ParamType::Integer => ParamType::Integer,
                types::ParamType::Number => ParamType::Number,
                types::ParamType::Boolean => ParamType::Boolean,
                types::ParamType::Json => ParamType::Json,
            };
            let default = match &p.default {
                None => None,
                Some(text) => {
                    let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("default of parameter '{}' is not JSON: {e}", p.name)))?;
                    check_type(&p.name, ty, &v).map_err(|detail| bad(format!("default {detail}")))?;
                    Some(v)
                }
            };
            if p.secret && (default.is_some() || ty != ParamType::String) {
                return Err(bad(format!("secret parameter '{}' must be a string without a default", p.name)));
            }
            params.push(ParamInfo { name: p.name.clone(), description: p.description.clone(), ty, default, secret: p.secret });
        }
        let described = RunbookInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            params,
            capabilities: info
                .capabilities
                .into_iter()
                .map(|c| CapabilityInfo { service: c.service, operations: c.operations, regions: c.regions, resources: c.resources })
                .collect(),
            contract,
            digest,
        };
        crate::policy::validate_declaration(&described)
            .map_err(|detail| EngineError::BadDescription { name: described.name.clone(), detail: format!("its declared capabilities: {detail}") })?;
        Ok(described)
    }

    /// Checks `--param NAME=VALUE` pairs against the declaration and returns
    /// the JSON object `run` receives: every parameter present, defaults
    /// filled in. Errors name the parameter and what was expected.
    pub fn validate_params(&self, raw: &[(String, String)]) -> Result<Value, EngineError> {
        let mut out = Map::new();
        for (name, text) in raw {
            let Some(spec) = self.params.iter().find(|p| &p.name == name) else {
                return Err(EngineError::UnknownParam {
                    runbook: self.name.clone(),
                    name: name.clone(),
                    known: self.params.iter().map(|p| p.name.clone()).collect::<Vec<_>>().join(", "),
                });
            };
            if out.contains_key(name) {
                return Err(EngineError::BadParam { name: name.clone(), detail: "given more than once".into() });
            }
            let value = if spec.secret {
                crate::secrets::parse_reference(name, text)?
            } else {
                parse_value(spec.ty, text).map_err(|detail| EngineError::BadParam { name: name.clone(), detail })?
            };
            out.insert(name.clone(), value);
        }
        for p in &self.params {
            if out.contains_key(&p.name) {
                continue;
            }
            match &p.default {
                Some(v) => {
                    out.insert(p.name.clone(), v.clone());
                }
                None => {
                    return Err(EngineError::MissingParam {
                        runbook: self.name.clone(),
                        name: p.name.clone(),
                        ty: p.ty.name(),
                        description: p.description.clone(),
                    });
                }
            }
        }
        Ok(Value::Object(out))
    }
}

fn parse_value(ty: ParamType, text: &str) -> Result<Value, String> {
    match ty {
        ParamType::String => Ok(Value::String(text.to_string())),
        ParamType::Integer => text.trim().parse::<i64>().map(Value::from).map_err(|_| format!("expected an integer, got '{text}'")),
        ParamType::Number => {
            let n: f64 = text.trim().parse().map_err(|_| format!("expected a number, got '{text}'"))?;
            serde_json::Number::from_f64(n).map(Value::Number).ok_or_else(|| format!("expected a finite number, got '{text}'"))
        }
        ParamType::Boolean => match text.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("expected true or false, got '{text}'")),
        },
        ParamType::Json => serde_json::from_str(text).map_err(|e| format!("expected JSON, got '{text}': {e}")),
    }
}

fn check_type(name: &str, ty: ParamType, v: &Value) -> Result<(), String> {
    let ok = match ty {
        ParamType::String => v.is_string(),
        ParamType::Integer => v.is_i64(),
        ParamType::Number => v.is_number(),
        ParamType::Boolean => v.is_boolean(),
        ParamType::Json => true,
    };
    if ok { Ok(()) } else { Err(format!("of parameter '{name}' is {v}, not a {}", ty.name())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RunbookInfo {
        RunbookInfo {
            name: "t".into(),
            version: "1".into(),
            description: String::new(),
            params: vec![
                ParamInfo { name: "n".into(), description: "count".into(), ty: ParamType::Integer, default: Some(3.into()), secret: false },
                ParamInfo { name: "region".into(), description: "where".into(), ty: ParamType::String, default: None, secret: false },
                ParamInfo { name: "dry".into(), description: "".into(), ty: ParamType::Boolean, default: Some(false.into()), secret: false },
                ParamInfo { name: "tags".into(), description: "".into(), ty: ParamType::Json, default: Some(Value::Null), secret: false },
            ],
            capabilities: vec![],
            contract: "0.1.0".into(),
            digest: "d".into(),
        }
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn fills_defaults_and_types_values() {
        let v = info().validate_params(&p(&[("region", "us-west-2"), ("n", "7"), ("tags", r#"{"a":1}"#)])).unwrap();
        assert_eq!(v, serde_json::json!({"n": 7, "region": "us-west-2", "dry": false, "tags": {"a": 1}}));
    }

    #[test]
    fn refuses_unknown_missing_and_ill_typed() {
        let e = info().validate_params(&p(&[("region", "x"), ("bogus", "1")])).unwrap_err().to_string();
        assert!(e.contains("bogus") && e.contains("n, region, dry, tags"), "{e}");
        let e = info().validate_params(&p(&[])).unwrap_err().to_string();
        assert!(e.contains("region") && e.contains("required"), "{e}");
        let e = info().validate_params(&p(&[("region", "x"), ("n", "seven")])).unwrap_err().to_string();
        assert!(e.contains("'n'") && e.contains("expected an integer"), "{e}");
        let e = info().validate_params(&p(&[("region", "x"), ("dry", "yes")])).unwrap_err().to_string();
        assert!(e.contains("expected true or false"), "{e}");
        let e = info().validate_params(&p(&[("region", "x"), ("region", "y")])).unwrap_err().to_string();
        assert!(e.contains("more than once"), "{e}");
    }
}
