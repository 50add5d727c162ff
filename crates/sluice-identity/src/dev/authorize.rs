//! The dev issuer's authorization code flow, for the approvers' web page in
//! the playground: `GET /authorize` shows a form where anyone can say who
//! they are (subject, name, groups), `POST /authorize` answers with a code,
//! and `POST /token` (form-encoded, `grant_type=authorization_code`) trades
//! the code and its PKCE verifier for an ID token and an access token.
//!
//! Only PKCE with S256 is accepted; codes live one minute and are used once;
//! redirect URIs must be on the issuer's own origin (the gateway serving it).

use super::{DevIssuer, unix_now};
use crate::claims::{MAX_GROUP_BYTES, MAX_GROUPS};
use axum::Json;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A code is good for this long after the form was sent.
const CODE_TTL: Duration = Duration::from_secs(60);
/// Outstanding codes; beyond this the oldest requests are refused.
const MAX_CODES: usize = 1000;
/// Tokens minted by the code flow live this long.
const TOKEN_TTL_SECS: u64 = 3600;
const MAX_FIELD_BYTES: usize = 256;

/// Codes handed out and not yet exchanged.
#[derive(Default)]
pub(super) struct Codes(Mutex<HashMap<String, Code>>);

struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    sub: String,
    name: Option<String>,
    groups: Vec<String>,
    expires: Instant,
}

/// What the relying party sends to `/authorize` (query, then form fields).
#[derive(Deserialize, Default, Clone)]
pub(super) struct AuthorizeParams {
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
    #[serde(default)]
    scope: Option<String>,
}

/// The sign-in form's own fields, beside the relayed parameters.
#[derive(Deserialize)]
pub(super) struct SignIn {
    #[serde(flatten)]
    params: AuthorizeParams,
    sub: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    groups: String,
}

impl AuthorizeParams {
    /// Refuses requests the flow cannot serve safely; the message is shown
    /// on the page (never redirected to an unchecked URI).
    fn check(&self, issuer: &DevIssuer) -> Result<(), String> {
        if self.response_type != "code" {
            return Err("response_type must be \"code\"".into());
        }
        if self.client_id.is_empty() || self.client_id.len() > MAX_FIELD_BYTES {
            return Err("client_id is required".into());
        }
        if !same_origin(&self.redirect_uri, issuer.issuer_url()) {
            return Err(
                "redirect_uri must be on the issuer's own origin (the playground gateway)".into(),
            );
        }
        if self.code_challenge_method != "S256" {
            return Err("PKCE is required: code_challenge_method must be \"S256\"".into());
        }
        let c = &self.code_challenge;
        if c.len() < 43
            || c.len() > 128
            || !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("code_challenge must be 43-128 base64url characters".into());
        }
        for v in [&self.state, &self.nonce, &self.scope]
            .into_iter()
            .flatten()
        {
            if v.len() > 1024 {
                return Err("state, nonce and scope must be at most 1024 bytes".into());
            }
        }
        Ok(())
    }
}

fn same_origin(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => {
            matches!(a.scheme(), "http" | "https") && a.origin() == b.origin() && a.username() == ""
        }
        _ => false,
    }
}

/// `GET /authorize`: the sign-in form.
pub(super) async fn form(
    State(issuer): State<DevIssuer>,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    if let Err(m) = params.check(&issuer) {
        return page(StatusCode::BAD_REQUEST, &error_body(&m));
    }
    let hidden: String = [
        ("response_type", Some(&params.response_type)),
        ("client_id", Some(&params.client_id)),
        ("redirect_uri", Some(&params.redirect_uri)),
        ("state", params.state.as_ref()),
        ("nonce", params.nonce.as_ref()),
        ("code_challenge", Some(&params.code_challenge)),
        ("code_challenge_method", Some(&params.code_challenge_method)),
        ("scope", params.scope.as_ref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        v.map(|v| {
            format!(
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                escape(v)
            )
        })
    })
    .collect();
    let body = format!(
        "<h1>Sign in to the Sluice playground</h1>\
         <p class=\"warn\">Development issuer: anyone can be anyone here. It exists only in \
         <code>sluice dev</code>.</p>\
         <p>Signing in to <b>{client}</b>.</p>\
         <form method=\"post\" action=\"authorize\">{hidden}\
         <label>Subject <input id=\"sub\" name=\"sub\" value=\"dba-1\" required></label>\
         <label>Display name <input id=\"name\" name=\"name\" value=\"\" placeholder=\"optional\"></label>\
         <label>Groups <input id=\"groups\" name=\"groups\" value=\"dba\"></label>\
         <p class=\"hint\">Groups separated by spaces or commas. The playground's approvers are in \
         <code>dba</code>.</p>\
         <button id=\"sign-in\" type=\"submit\">Sign in</button></form>",
        client = escape(&params.client_id),
    );
    page(StatusCode::OK, &body)
}

/// `POST /authorize`: records who signed in and sends the browser back
/// with a code.
pub(super) async fn submit(State(issuer): State<DevIssuer>, Form(f): Form<SignIn>) -> Response {
    if let Err(m) = f.params.check(&issuer) {
        return page(StatusCode::BAD_REQUEST, &error_body(&m));
    }
    let sub = f.sub.trim();
    if sub.is_empty() || sub.len() > MAX_FIELD_BYTES || f.name.len() > MAX_FIELD_BYTES {
        return page(
            StatusCode::BAD_REQUEST,
            &error_body("subject (and name) must be 1-256 bytes"),
        );
    }
    let groups: Vec<String> = f
        .groups
        .split([',', ' ', '\t'])
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect();
    if groups.len() > MAX_GROUPS || groups.iter().any(|g| g.len() > MAX_GROUP_BYTES) {
        return page(
            StatusCode::BAD_REQUEST,
            &error_body("too many or too long groups"),
        );
    }
    let name = Some(f.name.trim().to_string()).filter(|n| !n.is_empty());
    let code = random_token();
    {
        let mut codes = issuer
            .inner
            .codes
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        codes.retain(|_, c| c.expires > now);
        if codes.len() >= MAX_CODES {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                &error_body("too many sign-ins in progress; try again in a minute"),
            );
        }
        codes.insert(
            code.clone(),
            Code {
                client_id: f.params.client_id.clone(),
                redirect_uri: f.params.redirect_uri.clone(),
                challenge: f.params.code_challenge.clone(),
                nonce: f.params.nonce.clone(),
                sub: sub.to_string(),
                name,
                groups,
                expires: now + CODE_TTL,
            },
        );
    }
    // check() parsed it already.
    let Ok(mut back) = url::Url::parse(&f.params.redirect_uri) else {
        return page(StatusCode::BAD_REQUEST, &error_body("bad redirect_uri"));
    };
    back.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = &f.params.state {
        back.query_pairs_mut().append_pair("state", state);
    }
    Redirect::to(back.as_str()).into_response()
}

/// `POST /token` with `grant_type=authorization_code`.
#[derive(Deserialize)]
pub(super) struct CodeExchange {
    grant_type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    code_verifier: String,
}

pub(super) fn exchange(
    issuer: &DevIssuer,
    req: CodeExchange,
    basic_client: Option<String>,
) -> Response {
    if req.grant_type != "authorization_code" {
        return oauth_error(
            "unsupported_grant_type",
            "form-encoded requests must use grant_type=authorization_code (JSON mints directly)",
        );
    }
    let code = {
        let mut codes = issuer
            .inner
            .codes
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Removed before any check: a code is tried at most once.
        codes.remove(&req.code)
    };
    let Some(code) = code.filter(|c| c.expires > Instant::now()) else {
        return oauth_error("invalid_grant", "unknown, used or expired code");
    };
    let client_id = req.client_id.or(basic_client).unwrap_or_default();
    if client_id != code.client_id || req.redirect_uri != code.redirect_uri {
        return oauth_error(
            "invalid_grant",
            "client_id or redirect_uri differ from the authorization request",
        );
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(req.code_verifier.as_bytes()));
    let verifier_ok = (43..=128).contains(&req.code_verifier.len())
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            computed.as_bytes(),
            code.challenge.as_bytes(),
        ));
    if !verifier_ok {
        return oauth_error("invalid_grant", "PKCE verification failed");
    }
    let ttl = Duration::from_secs(TOKEN_TTL_SECS);
    let access = issuer.mint(&code.sub, code.name.as_deref(), &code.groups, ttl);
    let now = unix_now();
    let mut id = json!({
        "iss": issuer.issuer_url(),
        "sub": code.sub,
        "aud": client_id,
        "azp": client_id,
        "iat": now,
        "nbf": now,
        "auth_time": now,
        "exp": now + TOKEN_TTL_SECS,
        "groups": code.groups,
    });
    if let Some(n) = &code.nonce {
        id["nonce"] = json!(n);
    }
    if let Some(n) = &code.name {
        id["name"] = json!(n);
    }
    let id_token = issuer.sign_claims(&id);
    let mut resp = Json(json!({
        "access_token": access,
        "id_token": id_token,
        "token_type": "Bearer",
        "expires_in": TOKEN_TTL_SECS,
    }))
    .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn error_body(message: &str) -> String {
    format!(
        "<h1>Cannot sign in</h1><p class=\"warn\">{}</p>",
        escape(message)
    )
}

fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>Sluice playground sign-in</title><style>{STYLE}</style></head>\
         <body><main>{body}</main></body></html>"
    );
    let mut resp = (status, Html(html)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}\
main{max-width:28rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}\
label{display:block;margin:.8rem 0}input{display:block;width:100%;padding:.4rem;box-sizing:border-box}\
button{padding:.5rem 1.2rem}.warn{color:#8a4b00}.hint{font-size:.85rem;color:#555}";

/// Minimal HTML escaping for text and double-quoted attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_origins() {
        assert_eq!(
            escape("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
        let iss = "http://127.0.0.1:8420/dev-issuer";
        assert!(same_origin("http://127.0.0.1:8420/ui/callback", iss));
        assert!(!same_origin("http://127.0.0.1:8421/ui/callback", iss));
        assert!(!same_origin("https://evil.example/ui/callback", iss));
        assert!(!same_origin("http://u@127.0.0.1:8420/ui/callback", iss));
        assert!(!same_origin("javascript:alert(1)", iss));
    }
}
