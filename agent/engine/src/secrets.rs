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
            let unavailable = |detail: String| EngineError::SecretUnavailable { name: name.clone(), reference: source.to_string(), detail };
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
                let m = self.mask_value(v);
                if m != *v {
                    tracing::warn!(param = %k, "a plain parameter holds a secret's value; it was masked before being journaled");
                }
                (k.clone(), m)
            })
            .collect();
        Value::Object(masked)
    }

    /// `text` with every secret value replaced by `[masked:NAME]`: the value
    /// as it is, and as it reads once escaped in JSON or in Rust's `{:?}`
    /// (a runbook that serializes a secret into a log line or an error
    /// writes `\"` for `"`, `\n` for a newline).
    pub fn mask(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_string();
        }
        let mut forms: Vec<(String, &String)> = Vec::new();
        for (name, value) in &self.values {
            let json = Value::String(value.clone()).to_string();
            let json = json[1..json.len() - 1].to_string();
            for form in [value.clone(), json, value.escape_debug().to_string()] {
                if !forms.iter().any(|(f, _)| *f == form) {
                    forms.push((form, name));
                }
            }
        }
        // Longest first, so a secret containing another is masked whole.
        forms.sort_by_key(|(f, _)| std::cmp::Reverse(f.len()));
        let mut out = text.to_string();
        for (form, name) in forms {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), &format!("[masked:{name}]"));
            }
        }
        out
    }

    /// `value` with every secret masked in each of its strings (object keys
    /// included), before it is serialized: masking the JSON text instead
    /// would miss a value JSON escapes (`"`, `\`, control characters).
    pub fn mask_value(&self, value: &Value) -> Value {
        if self.is_empty() {
            return value.clone();
        }
        match value {
            Value::String(s) => Value::String(self.mask(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_value(v)).collect()),
            Value::Object(obj) => Value::Object(obj.iter().map(|(k, v)| (self.mask(k), self.mask_value(v))).collect()),
            Value::Number(n) => {
                let text = n.to_string();
                let masked = self.mask(&text);
                if masked == text { value.clone() } else { Value::String(masked) }
            }
            other => other.clone(),
        }
    }

    /// JSON text a runbook handed over (a step output, a payload, a result)
    /// with every secret masked in its strings ([`Secrets::mask_value`]);
    /// text that is not JSON is masked as text ([`Secrets::mask`]).
    pub fn mask_json(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_string();
        }
        match serde_json::from_str::<Value>(text) {
            Ok(v) => self.mask_value(&v).to_string(),
            Err(_) => self.mask(text),
        }
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

    /// A secret JSON would escape (`"`, `\`, control characters) or that is
    /// not ASCII is masked in every form a runbook can hand it back in.
    #[test]
    fn a_secret_json_escapes_is_masked_before_serializing() {
        let value = "q\"uo\\te\nnl\ttab\u{1}é-日本-s3cr3t";
        let s = Secrets { values: BTreeMap::from([("pw".to_string(), value.to_string())]) };
        let json_form = {
            let t = Value::String(value.to_string()).to_string();
            t[1..t.len() - 1].to_string()
        };
        assert_ne!(json_form, value);
        let leaks = |text: &str| [value.to_string(), json_form.clone(), value.escape_debug().to_string()].iter().any(|f| text.contains(f.as_str()));
        // A step output, a payload, a result: JSON text.
        let output = serde_json::to_string(&json!({"note": format!("a {value} b"), value: [value, 1], "n": {"deep": value}})).unwrap();
        assert!(leaks(&output));
        let masked = s.mask_json(&output);
        assert!(!leaks(&masked), "{masked}");
        let v: Value = serde_json::from_str(&masked).unwrap();
        assert_eq!(v["note"], "a [masked:pw] b");
        assert_eq!(v["[masked:pw]"], json!(["[masked:pw]", 1]));
        assert_eq!(v["n"]["deep"], "[masked:pw]");
        // A string result (JSON text of a string), and text that is not JSON.
        assert_eq!(s.mask_json(&Value::String(value.into()).to_string()), "\"[masked:pw]\"");
        assert_eq!(s.mask_json(&format!("not json {value}")), "not json [masked:pw]");
        // Plain text (a log line, an error message) holding the value raw,
        // JSON-escaped or Debug-formatted.
        for text in [format!("raw {value}."), format!("json {output}"), format!("debug {value:?}")] {
            let m = s.mask(&text);
            assert!(!leaks(&m), "{text} -> {m}");
            assert!(m.contains("[masked:pw]"), "{m}");
        }
        // Parameters: a string or a number pasted in.
        let num = Secrets { values: BTreeMap::from([("pin".to_string(), "20261205".to_string())]) };
        assert_eq!(num.mask_params(&json!({"n": 20261205, "m": 3})), json!({"n": "[masked:pin]", "m": 3}));
        assert_eq!(s.mask_params(&json!({"note": value})), json!({"note": "[masked:pw]"}));
    }
}
