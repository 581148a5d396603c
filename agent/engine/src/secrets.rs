//! Secret parameters: references in, values resolved only inside the agent,
//! and a mask over everything a runbook writes out.
//!
//! The operator passes a secret as a reference (`env:NAME` or `file:PATH`).
//! The journal stores `{"$secret": NAME, "source": REFERENCE}`; the runbook
//! receives `{"$secret": NAME}`. The value is read from its source when a
//! driver starts or resumes the run and lives only in this process's memory.
//! Everything the runbook hands back (step outputs, errors, log events, its
//! result, a panic message) passes through [`Secrets::mask`] before it is
//! journaled, traced or printed.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::EngineError;

/// The JSON key marking a secret in parameters.
pub const SECRET_KEY: &str = "$secret";

/// How a secret parameter's reference is written: `env:NAME` or `file:PATH`.
pub fn parse_reference(name: &str, text: &str) -> Result<Value, EngineError> {
    let ok = match text.split_once(':') {
        Some(("env", var)) => !var.is_empty(),
        Some(("file", path)) => !path.is_empty(),
        _ => false,
    };
    if !ok {
        return Err(EngineError::BadParam {
            name: name.into(),
            detail: "is a secret: pass a reference, env:VARIABLE or file:PATH, never the value itself".into(),
        });
    }
    Ok(json!({ SECRET_KEY: name, "source": text }))
}

/// The secret values of one run, by parameter name.
#[derive(Default)]
pub struct Secrets {
    values: BTreeMap<String, String>,
}

impl Secrets {
    /// Resolves every secret reference in `params` (as journaled).
    pub fn resolve(params: &Value) -> Result<Self, EngineError> {
        let mut values = BTreeMap::new();
        let Some(obj) = params.as_object() else { return Ok(Secrets { values }) };
        for (name, v) in obj {
            let Some(source) = v.get("source").and_then(Value::as_str).filter(|_| v.get(SECRET_KEY).is_some()) else {
                continue;
            };
            let unavailable = |detail: String| EngineError::SecretUnavailable {
                name: name.clone(),
                reference: source.to_string(),
                detail,
            };
            let value = match source.split_once(':') {
                Some(("env", var)) => std::env::var(var).map_err(|_| unavailable(format!("environment variable {var} is not set")))?,
                Some(("file", path)) => std::fs::read_to_string(path)
                    .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                    .map_err(|e| unavailable(format!("cannot read {path}: {e}")))?,
                _ => return Err(unavailable("unknown kind of reference".into())),
            };
            if value.is_empty() {
                return Err(unavailable("the secret is empty".into()));
            }
            values.insert(name.clone(), value);
        }
        Ok(Secrets { values })
    }

    /// The value of secret parameter `name`, for a capability that needs it.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether there are any secrets.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `params` with any secret value pasted into a plain parameter masked
    /// (an operator's mistake must not put a secret into the journal). The
    /// secret parameters themselves hold only references.
    pub fn mask_params(&self, params: &Value) -> Value {
        let Some(obj) = params.as_object().filter(|_| !self.is_empty()) else { return params.clone() };
        let masked: Map<String, Value> = obj
            .iter()
            .map(|(k, v)| {
                if v.get(SECRET_KEY).is_some() {
                    return (k.clone(), v.clone());
                }
                let text = v.to_string();
                let m = self.mask(&text);
                if m == text {
                    return (k.clone(), v.clone());
                }
                tracing::warn!(param = %k, "a plain parameter holds a secret's value; it was masked before being journaled");
                (k.clone(), serde_json::from_str(&m).unwrap_or(Value::String(m)))
            })
            .collect();
        Value::Object(masked)
    }

    /// `text` with every secret value replaced by `[masked:NAME]`.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        // Longest first, so a secret containing another is masked whole.
        let mut secrets: Vec<(&String, &String)> = self.values.iter().collect();
        secrets.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        for (name, value) in secrets {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), &format!("[masked:{name}]"));
            }
        }
        out
    }
}

/// The parameters as the runbook receives them: secret handles without their source.
pub fn guest_params(params: &Value) -> Value {
    match params.as_object() {
        Some(obj) => Value::Object(
            obj.iter()
                .map(|(k, v)| match v.get(SECRET_KEY) {
                    Some(name) => (k.clone(), json!({ SECRET_KEY: name })),
                    None => (k.clone(), v.clone()),
                })
                .collect::<Map<_, _>>(),
        ),
        None => params.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_only() {
        assert!(parse_reference("pw", "env:DB_PW").is_ok());
        assert!(parse_reference("pw", "file:/run/secrets/pw").is_ok());
        let e = parse_reference("pw", "hunter2").unwrap_err().to_string();
        assert!(e.contains("never the value") && !e.contains("hunter2"), "{e}");
        assert!(parse_reference("pw", "env:").is_err());
    }

    #[test]
    fn resolves_masks_and_hides_sources_from_the_guest() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "tok-value-123\n").unwrap();
        // SAFETY: this test owns the variable; no other test reads it.
        unsafe { std::env::set_var("DROVER_TEST_SECRET_PW", "pw-value-456") };
        let params = json!({
            "pw": parse_reference("pw", "env:DROVER_TEST_SECRET_PW").unwrap(),
            "tok": parse_reference("tok", &format!("file:{}", f.display())).unwrap(),
            "n": 3
        });
        let s = Secrets::resolve(&params).unwrap();
        assert_eq!(s.value("tok"), Some("tok-value-123"));
        assert_eq!(s.mask("a pw-value-456 b tok-value-123"), "a [masked:pw] b [masked:tok]");
        assert_eq!(guest_params(&params), json!({"pw": {"$secret": "pw"}, "tok": {"$secret": "tok"}, "n": 3}));
        let pasted = json!({"pw": params["pw"].clone(), "note": "oops pw-value-456", "n": 3});
        assert_eq!(s.mask_params(&pasted), json!({"pw": params["pw"].clone(), "note": "oops [masked:pw]", "n": 3}));
        let missing = json!({"pw": parse_reference("pw", "env:DROVER_TEST_SECRET_UNSET").unwrap()});
        let e = Secrets::resolve(&missing).err().unwrap().to_string();
        assert!(e.contains("DROVER_TEST_SECRET_UNSET is not set"), "{e}");
    }
}
