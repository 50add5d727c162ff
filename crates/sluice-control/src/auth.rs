//! Bearer tokens: verified, counted, and every rejection written to the
//! audit log; the token itself is never logged or stored.

use serde_json::json;
use sluice_core::Identity;
use sluice_core::audit::{AuditEvent, EventKind};
use sluice_core::metrics::ResultLabel;

use crate::Shared;
use crate::error::Error;

/// Verifies a bearer token; a rejection is counted, audited and returned
/// as a client-safe 401. Every surface that takes tokens goes through here.
pub async fn authenticate(state: &Shared, token: &str) -> Result<Identity, Error> {
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

/// The refusal of a request that carried no token: counted and audited
/// like any rejected token.
pub async fn missing(state: &Shared) -> Error {
    reject(
        state,
        "missing_token",
        "send an OIDC access token as `Authorization: Bearer <token>`",
    )
    .await
}

async fn reject(state: &Shared, reason: &'static str, message: &str) -> Error {
    state
        .metrics
        .tokens
        .get_or_create(&ResultLabel { result: reason })
        .inc();
    tracing::info!(reason, "bearer token rejected");
    let event = AuditEvent::new(EventKind::TokenRejected)
        .detail(json!({ "reason": reason, "message": message }));
    if let Err(e) = state.audit.append(event).await {
        return Error::internal(e);
    }
    Error::unauthorized(message)
}
