//! HTTP face of the dev issuer: discovery, JWKS, a token endpoint and the
//! sign-in page of the authorization code flow.

use super::DevIssuer;
use crate::claims::{MAX_GROUP_BYTES, MAX_GROUPS};
use axum::extract::{DefaultBodyLimit, Form, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

const DEFAULT_TTL_SECS: u64 = 3600;
const MAX_TTL_SECS: u64 = 86_400;
const MAX_SUBJECT_BYTES: usize = 256;

pub(super) fn router(issuer: DevIssuer) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/token", post(token))
        .route(
            "/authorize",
            get(super::authorize::form).post(super::authorize::submit),
        )
        .layer(DefaultBodyLimit::max(256 * 1024))
        .with_state(issuer)
}

async fn discovery(State(issuer): State<DevIssuer>) -> Response {
    Json(issuer.discovery_document()).into_response()
}

async fn jwks(State(issuer): State<DevIssuer>) -> Response {
    Json(issuer.jwks()).into_response()
}

/// `POST /token` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    sub: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    ttl_secs: Option<u64>,
}

/// JSON mints directly; a form-encoded body is the code flow's exchange.
async fn token(State(issuer): State<DevIssuer>, request: Request) -> Response {
    let form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        let basic = basic_client_id(request.headers());
        return match Form::<super::authorize::CodeExchange>::from_request(request, &()).await {
            Ok(Form(req)) => super::authorize::exchange(&issuer, req, basic),
            Err(e) => bad_request(&format!("invalid token request: {}", e.body_text())),
        };
    }
    let body = Json::<TokenRequest>::from_request(request, &()).await;
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => {
            return bad_request(&format!(
                "expected JSON {{\"sub\", \"groups\", \"name\", \"ttl_secs\"}}: {}",
                e.body_text()
            ));
        }
    };
    if req.sub.trim().is_empty() || req.sub.len() > MAX_SUBJECT_BYTES {
        return bad_request("sub must be a non-empty string of at most 256 bytes");
    }
    if req.groups.len() > MAX_GROUPS
        || req
            .groups
            .iter()
            .any(|g| g.is_empty() || g.len() > MAX_GROUP_BYTES)
    {
        return bad_request(
            "groups must be at most 1000 non-empty names of at most 256 bytes each",
        );
    }
    if req
        .name
        .as_ref()
        .is_some_and(|n| n.len() > MAX_SUBJECT_BYTES)
    {
        return bad_request("name must be at most 256 bytes");
    }
    let ttl = req.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if ttl == 0 || ttl > MAX_TTL_SECS {
        return bad_request("ttl_secs must be between 1 and 86400");
    }
    let token = issuer.mint(
        &req.sub,
        req.name.as_deref(),
        &req.groups,
        Duration::from_secs(ttl),
    );
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl})).into_response()
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_request", "message": message})),
    )
        .into_response()
}

/// The client id of `Authorization: Basic` (client_secret_basic); the dev
/// issuer checks no secret.
fn basic_client_id(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, creds) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(creds.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let id = text.split_once(':').map(|(id, _)| id).unwrap_or(&text);
    // RFC 6749 §2.3.1: form-urlencoded before base64.
    url::form_urlencoded::parse(format!("x={id}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}
