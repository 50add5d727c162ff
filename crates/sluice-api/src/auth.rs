//! The `Caller` extractor: a verified identity from `Authorization: Bearer`.
//! Every rejection is answered 401 with its reason and written to the audit
//! log; the token itself is never logged or stored.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::json;
use sluice_core::Identity;
use sluice_core::audit::{AuditEvent, EventKind};

use crate::error::ApiError;
use crate::state::Shared;
use sluice_core::metrics::ResultLabel;

/// The verified caller of a request.
pub struct Caller(pub Identity);

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = match header.and_then(bearer) {
            Some(t) => t,
            None => {
                return Err(reject(
                    state,
                    "missing_token",
                    "send an OIDC access token as `Authorization: Bearer <token>`",
                )
                .await);
            }
        };
        authenticate(state, token).await.map(Caller)
    }
}

/// Verifies a bearer token; a rejection is counted, audited and returned
/// as a client-safe 401. Every surface that takes tokens goes through here.
pub async fn authenticate(state: &Shared, token: &str) -> Result<Identity, ApiError> {
    match state.verifier.verify(token).await {
        Ok(identity) => {
            state
                .metrics
                .tokens
                .get_or_create(&ResultLabel { result: "ok" })
                .inc();
            Ok(identity)
        }
        Err(rejection) => Err(reject(state, rejection.reason(), &rejection.to_string()).await),
    }
}

fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

async fn reject(state: &Shared, reason: &'static str, message: &str) -> ApiError {
    state
        .metrics
        .tokens
        .get_or_create(&ResultLabel { result: reason })
        .inc();
    tracing::info!(reason, "bearer token rejected");
    let event = AuditEvent::new(EventKind::TokenRejected)
        .detail(json!({ "reason": reason, "message": message }));
    if let Err(e) = state.audit.append(event).await {
        return ApiError::internal(e);
    }
    ApiError::unauthorized(message)
}
