//! The OAuth device authorization grant (RFC 8628) for people, and the
//! refresh of the tokens it leaves in the cache.
//!
//! `sluice login --device` asks the issuer for a device code, tells the
//! person where to sign in (on stderr: stdout stays for the result), and
//! polls the token endpoint at the interval the issuer names until the
//! person signs in, refuses, or the code expires. The client is public
//! (`token_endpoint_auth_method: none`), as Okta's and most issuers' device
//! clients are: nothing secret lives on the person's machine but the
//! tokens, which go to the 0600 cache.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use super::failure::{Code, fail};

const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What a successful exchange leaves: the access token and, when the
/// issuer gave one, what it takes to refresh it.
pub struct Tokens {
    pub access: String,
    pub refresh: Option<Refresh>,
}

/// Enough to refresh without asking the person again.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Refresh {
    pub token: String,
    pub token_endpoint: String,
    pub client_id: String,
}

/// Runs the device flow at the issuer whose discovery document is `doc`.
pub async fn sign_in(
    http: &reqwest::Client,
    doc: &Value,
    client_id: &str,
    scope: Option<&str>,
    resource: Option<&str>,
    json_out: bool,
) -> Result<Tokens> {
    let Some(auth_endpoint) = doc["device_authorization_endpoint"].as_str() else {
        bail!("the issuer does not offer the device flow (no device_authorization_endpoint)");
    };
    let token_endpoint = doc["token_endpoint"]
        .as_str()
        .context("the issuer's discovery document has no token_endpoint")?;
    let mut form = vec![("client_id", client_id)];
    // openid for the sign-in itself, offline_access so a refresh token
    // may come back (issuers that ignore it just give none).
    let scope = scope.unwrap_or("openid offline_access");
    form.push(("scope", scope));
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    let started = Instant::now();
    let code = call(http, auth_endpoint, &form).await?;
    let device_code = field(&code, "device_code")?;
    let user_code = field(&code, "user_code")?;
    let uri = field(&code, "verification_uri")?;
    let expires_in = Duration::from_secs(code["expires_in"].as_u64().unwrap_or(600).min(3600));
    let mut interval = Duration::from_secs(code["interval"].as_u64().unwrap_or(5).clamp(1, 60));
    announce(&code, uri, user_code, expires_in, json_out);

    let poll = [
        ("grant_type", DEVICE_CODE),
        ("device_code", device_code),
        ("client_id", client_id),
    ];
    loop {
        if started.elapsed() >= expires_in {
            return Err(fail(
                Code::Expired,
                "the sign-in code expired before it was used; run `sluice login --device` again",
            ));
        }
        tokio::time::sleep(interval).await;
        let (status, body) = post(http, token_endpoint, &poll).await?;
        if status.is_success() {
            eprintln!("signed in");
            return tokens(&body, token_endpoint, client_id);
        }
        match body["error"].as_str().unwrap_or("") {
            "authorization_pending" => {}
            // RFC 8628 section 3.5: five seconds more from now on.
            "slow_down" => interval += Duration::from_secs(5),
            "access_denied" => {
                return Err(fail(Code::Denied, "the sign-in was refused at the issuer"));
            }
            "expired_token" => {
                return Err(fail(
                    Code::Expired,
                    "the sign-in code expired; run `sluice login --device` again",
                ));
            }
            other => bail!(
                "the issuer refused: {other} {}",
                body["error_description"].as_str().unwrap_or("")
            ),
        }
    }
}

/// Where and how to sign in, on stderr (a JSON line with `--json`, for a
/// program that shows it to its person).
fn announce(code: &Value, uri: &str, user_code: &str, expires_in: Duration, json_out: bool) {
    let complete = code["verification_uri_complete"].as_str();
    if json_out {
        eprintln!(
            "{}",
            json!({
                "verification_uri": uri,
                "verification_uri_complete": complete,
                "user_code": user_code,
                "expires_in": expires_in.as_secs(),
            })
        );
        return;
    }
    eprintln!("To sign in, open {uri} and enter the code {user_code}");
    if let Some(c) = complete {
        eprintln!("(or open {c})");
    }
    eprintln!(
        "waiting up to {} minutes for the sign-in…",
        expires_in.as_secs().div_ceil(60)
    );
}

/// New tokens for an expiring cached one, by its refresh token. The
/// issuer may rotate the refresh token; the new one is returned.
pub async fn refresh(r: &Refresh) -> Result<Tokens> {
    let http = http()?;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", r.token.as_str()),
        ("client_id", r.client_id.as_str()),
    ];
    let (status, body) = post(&http, &r.token_endpoint, &form).await?;
    if !status.is_success() {
        return Err(fail(
            Code::Unauthorized,
            format!(
                "the issuer would not refresh the login ({}); run `sluice login` again",
                body["error"].as_str().unwrap_or("error")
            ),
        ));
    }
    let mut t = tokens(&body, &r.token_endpoint, &r.client_id)?;
    // An issuer that does not rotate leaves the old refresh token valid.
    if t.refresh.is_none() {
        t.refresh = Some(r.clone());
    }
    Ok(t)
}

/// The HTTP client for issuers: bounded, and never following a redirect
/// with a credential in the body.
pub fn http() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

fn tokens(body: &Value, token_endpoint: &str, client_id: &str) -> Result<Tokens> {
    Ok(Tokens {
        access: field(body, "access_token")?.to_string(),
        refresh: body["refresh_token"].as_str().map(|t| Refresh {
            token: t.to_string(),
            token_endpoint: token_endpoint.to_string(),
            client_id: client_id.to_string(),
        }),
    })
}

async fn call(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> Result<Value> {
    let (status, body) = post(http, url, form).await?;
    if !status.is_success() {
        bail!(
            "the issuer refused: {} {}",
            body["error"].as_str().unwrap_or("error"),
            body["error_description"].as_str().unwrap_or("")
        );
    }
    Ok(body)
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<(reqwest::StatusCode, Value)> {
    let resp = http
        .post(url)
        .form(form)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str> {
    body[name]
        .as_str()
        .with_context(|| format!("the issuer's answer has no {name}"))
}
