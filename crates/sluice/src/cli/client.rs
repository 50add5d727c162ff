//! The HTTP client the CLI verbs share: `SLUICE_URL` and `SLUICE_TOKEN`,
//! and API errors turned into one readable line.

use anyhow::Result;

use super::failure::{Code, fail};
use serde_json::Value;
use std::time::Duration;

pub const DEFAULT_URL: &str = "http://127.0.0.1:8420";

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// From the environment: `SLUICE_URL` (default http://127.0.0.1:8420)
    /// and `SLUICE_TOKEN`.
    pub fn from_env() -> Result<Client> {
        let base = std::env::var("SLUICE_URL").unwrap_or_else(|_| DEFAULT_URL.into());
        let base = base.trim_end_matches('/').to_string();
        let token = std::env::var("SLUICE_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .or_else(|| super::cache::token_for(&base));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()?;
        Ok(Client { http, base, token })
    }

    /// As [`Client::from_env`], with the cached token refreshed first
    /// when it is about to expire: for calls made long after the command
    /// started (renewals, the revoke after `exec`'s command ends).
    pub async fn fresh() -> Result<Client> {
        if std::env::var_os("SLUICE_TOKEN").is_none() {
            super::cache::refresh_if_due(Client::from_env()?.base()).await?;
        }
        Client::from_env()
    }

    fn token(&self) -> Result<&str> {
        self.token.as_deref().ok_or_else(|| {
            fail(
                Code::Unauthorized,
                "not logged in: run `sluice login` (or set SLUICE_TOKEN to a token from `sluice token`)",
            )
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        let req = self.http.get(self.url(path)).bearer_auth(self.token()?);
        self.send(req).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let req = self
            .http
            .post(self.url(path))
            .bearer_auth(self.token()?)
            .json(body);
        self.send(req).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value> {
        let req = self.http.delete(self.url(path)).bearer_auth(self.token()?);
        self.send(req).await
    }

    /// POST without a bearer token (the playground issuer's token endpoint).
    pub async fn post_anonymous(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    /// The same client sending `token`.
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    /// The gateway's API base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The token this client sends, if any.
    pub fn bearer(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The gateway's readiness (`/readyz`): its answer, or why not.
    pub async fn ready(&self) -> (bool, String) {
        match self.http.get(self.url("/readyz")).send().await {
            Ok(r) => {
                let ok = r.status().is_success();
                (ok, r.text().await.unwrap_or_default().trim().to_string())
            }
            Err(e) => (false, format!("unreachable: {e}")),
        }
    }

    /// GET a body that is not JSON (an asciicast file), as text.
    pub async fn get_text(&self, path: &str) -> Result<String> {
        let req = self.http.get(self.url(path)).bearer_auth(self.token()?);
        self.exchange(req).await
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value> {
        let text = self.exchange(req).await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The response body of a successful request; an error naming the
    /// API's message otherwise.
    async fn exchange(&self, req: reqwest::RequestBuilder) -> Result<String> {
        let resp = req.send().await.map_err(|e| {
            fail(
                Code::Unavailable,
                format!("cannot reach Sluice at {} (is it running?): {e}", self.base),
            )
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let msg = body["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| {
                    format!(
                        "HTTP {status}: {}",
                        text.chars().take(200).collect::<String>()
                    )
                });
            return Err(fail(Code::of_status(status.as_u16()), msg));
        }
        Ok(text)
    }
}
