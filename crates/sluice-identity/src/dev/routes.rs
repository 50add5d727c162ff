//! HTTP face of the dev issuer: discovery, JWKS and a token endpoint.

use super::DevIssuer;
use crate::claims::{MAX_GROUP_BYTES, MAX_GROUPS};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
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

async fn token(
    State(issuer): State<DevIssuer>,
    body: Result<Json<TokenRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
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
