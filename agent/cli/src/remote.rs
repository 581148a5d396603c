//! Talking to a running agent (`drover serve`) over its HTTP API, for the
//! commands that take `--agent URL` (or `$DROVER_AGENT`): the bearer token
//! comes from `$DROVER_API_TOKEN`.

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// A running agent's API.
pub struct Remote {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Remote {
    /// The agent at `url`.
    pub fn new(url: &str) -> Result<Remote> {
        let token =
            std::env::var("DROVER_API_TOKEN").context("--agent needs the agent's API token in DROVER_API_TOKEN (the value of its [serve] api_token_env)")?;
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build()?;
        Ok(Remote { base: url.trim_end_matches('/').to_string(), token, client })
    }

    /// `METHOD path` with an optional JSON body: (status, JSON answer).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let mut req = self.client.request(method.clone(), &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let resp = req.send().await.with_context(|| format!("cannot reach the agent at {}; is `drover serve` running there?", self.base))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status == 401 {
            bail!("the agent at {} refused the API token in DROVER_API_TOKEN: {}", self.base, v["error"].as_str().unwrap_or(&text));
        }
        Ok((status, v))
    }
}

/// `POST /v1/runs/RUN/CONTROL` on the agent at `url` with `body` (the
/// caller's `by` added as a claim): the answer, or an error carrying the
/// agent's reason (a 409 says why the control does not apply).
pub async fn control(url: &str, run_id: &str, control: &str, mut body: Value) -> Result<Value> {
    body["by"] = Value::String(crate::commands::who());
    let (status, v) = Remote::new(url)?.call(reqwest::Method::POST, &format!("/v1/runs/{run_id}/{control}"), Some(&body)).await?;
    if !(200..300).contains(&status) {
        bail!("the agent at {url} answered {status}: {}", v["error"].as_str().unwrap_or("no detail"));
    }
    Ok(v)
}
