//! Bounded HTTP GETs of JSON documents (discovery, JWKS): http(s) only, a
//! timeout on every request, and a size cap enforced while reading.

use crate::config::is_http_url;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Each request, connect to last byte.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Discovery documents and key sets are a few KiB; anything near this is hostile.
const MAX_BODY: usize = 1024 * 1024;

/// Why a document could not be fetched. Logged, never shown to clients.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("refusing to fetch a non-http(s) URL")]
    BadUrl,
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("unexpected HTTP status {0}")]
    Status(u16),
    #[error("response larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("response is not the expected JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

/// The HTTP client shared by every issuer.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        // An identity provider has no reason to bounce us around; a few
        // redirects cover trailing-slash fixes.
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        // Building fails only when the TLS backend cannot initialise, which
        // is a broken installation, not bad input.
        .expect("build the HTTP client for OIDC discovery")
}

/// GETs `url` and parses its JSON body, reading at most `MAX_BODY` bytes.
pub(crate) async fn get_json<T: DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> Result<T, FetchError> {
    if !is_http_url(url) {
        return Err(FetchError::BadUrl);
    }
    let mut resp = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await?;
    if !resp.status().is_success() {
        return Err(FetchError::Status(resp.status().as_u16()));
    }
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(serde_json::from_slice(&body)?)
}
