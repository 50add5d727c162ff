//! `GET /v1/connections`: what the caller may request, and on what terms;
//! `GET /v1/whoami`: who the caller is to the gateway.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use sluice_core::access;

use crate::auth::Caller;
use sluice_control::Shared;

pub async fn list(State(state): State<Shared>, Caller(who): Caller) -> Json<Value> {
    let items: Vec<Value> = access::eligible_rules(&state.config, &who)
        .filter_map(|rule| {
            let conn = state.config.connection(&rule.connection)?;
            Some(json!({
                "name": conn.name,
                "kind": conn.kind,
                "profile": rule.profile,
                "max_ttl_secs": rule.max_ttl.0.as_secs(),
                "approval": rule.approval,
                "rule": rule.name,
            }))
        })
        .collect();
    Json(json!({ "connections": items }))
}

/// `GET /v1/whoami`: the identity the gateway built from the caller's
/// token (as every rule sees it), and whether it is an admin or approver.
pub async fn whoami(State(state): State<Shared>, Caller(who): Caller) -> Json<Value> {
    Json(json!({
        "subject": who.subject,
        "issuer": who.issuer,
        "name": who.name,
        "groups": who.groups,
        "kind": who.kind,
        "admin": access::is_admin(&state.config, &who),
        "approver": who.in_any(&state.config.approvals.approver_groups),
    }))
}
