//! The `Caller` extractor: a verified identity from `Authorization: Bearer`,
//! through the control plane's token authentication (which counts, audits
//! and words every rejection).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sluice_control::Shared;
use sluice_core::Identity;

pub use sluice_control::auth::authenticate;

use crate::error::ApiError;

/// The verified caller of a request.
pub struct Caller(pub Identity);

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Some(token) = header.and_then(bearer) else {
            return Err(sluice_control::auth::missing(state).await.into());
        };
        Ok(Caller(authenticate(state, token).await?))
    }
}

fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
