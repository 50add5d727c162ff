//! HTTP delivery: one POST per batch. Any 2xx is delivery; anything else (a
//! non-2xx status, a timeout, a refused connection) is a failure the runner
//! retries.
//!
//! - `json`: the body is a JSON array of events.
//! - `splunk-hec`: the body is one `{"event", "time", "sourcetype"}` object a
//!   line (HEC's batch form) with `Authorization: Splunk <token>`.
//!
//! The token is read once from `token_env`/`token_file`, kept in a header
//! value marked sensitive, and never appears in an error or a log line.
//! Redirects are not followed, so the token is never sent to another host.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use sluice_core::config::audit::{HttpFormat, SinkConfig};
use std::time::Duration;

use super::config_error;
use crate::error::ExportError;
use crate::export::ExportEvent;

/// How much of an error response is kept for the log line.
const ERROR_BODY_CHARS: usize = 200;

pub struct HttpSink {
    client: reqwest::Client,
    url: String,
    format: HttpFormat,
    auth: Option<HeaderValue>,
    sourcetype: String,
    index: Option<String>,
}

impl HttpSink {
    pub(super) fn from_config(c: &SinkConfig) -> Result<HttpSink, ExportError> {
        let url = c
            .url
            .clone()
            .ok_or_else(|| config_error(c, "an http sink needs url"))?;
        let token = read_token(c)?;
        let format = c.format();
        let auth = match token {
            None => None,
            Some(t) => {
                let scheme = match format {
                    HttpFormat::SplunkHec => "Splunk",
                    HttpFormat::Json => "Bearer",
                };
                let mut v = HeaderValue::from_str(&format!("{scheme} {t}")).map_err(|_| {
                    config_error(c, "the token holds characters not allowed in a header")
                })?;
                v.set_sensitive(true);
                Some(v)
            }
        };
        let timeout = c.timeout().0;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| config_error(c, format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpSink {
            client,
            url,
            format,
            auth,
            sourcetype: c.sourcetype().to_string(),
            index: c.index.clone(),
        })
    }

    pub async fn deliver(&mut self, events: &[ExportEvent]) -> Result<(), ExportError> {
        let body = match self.format {
            HttpFormat::Json => json_array(events),
            HttpFormat::SplunkHec => hec_lines(events, &self.sourcetype, self.index.as_deref()),
        };
        let mut req = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(auth) = &self.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        // `without_url`: a URL may carry credentials in its query.
        let mut resp = req
            .send()
            .await
            .map_err(|e| ExportError::Delivery(e.without_url().to_string()))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let mut text = String::new();
        while text.len() < ERROR_BODY_CHARS {
            match resp.chunk().await {
                Ok(Some(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk)),
                _ => break,
            }
        }
        let text: String = text.chars().take(ERROR_BODY_CHARS).collect();
        Err(ExportError::Delivery(format!(
            "the receiver answered {status}: {}",
            text.trim()
        )))
    }
}

fn read_token(c: &SinkConfig) -> Result<Option<String>, ExportError> {
    if let Some(var) = &c.token_env {
        let t = std::env::var(var)
            .map_err(|_| config_error(c, format!("token_env: ${var} is not set")))?;
        return Ok(Some(t.trim().to_string()));
    }
    if let Some(path) = &c.token_file {
        let t = std::fs::read_to_string(path).map_err(|e| {
            config_error(
                c,
                format!("token_file {}: cannot read: {e}", path.display()),
            )
        })?;
        return Ok(Some(t.trim().to_string()));
    }
    Ok(None)
}

/// `[e1,e2,…]`.
pub fn json_array(events: &[ExportEvent]) -> String {
    let mut out = String::from("[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(e.line());
    }
    out.push(']');
    out
}

/// HEC's batch body: one event object a line. `time` is epoch seconds with
/// milliseconds, written exactly (no float rounding).
pub fn hec_lines(events: &[ExportEvent], sourcetype: &str, index: Option<&str>) -> String {
    let st = serde_json::Value::from(sourcetype).to_string();
    let index = index.map(|i| format!(",\"index\":{}", serde_json::Value::from(i)));
    let mut out = String::new();
    for e in events {
        let secs = e.ts_ms.div_euclid(1000);
        let ms = e.ts_ms.rem_euclid(1000);
        out.push_str(&format!(
            "{{\"event\":{},\"time\":{secs}.{ms:03},\"source\":\"sluice\",\"sourcetype\":{st}{}}}\n",
            e.line(),
            index.as_deref().unwrap_or("")
        ));
    }
    out
}
