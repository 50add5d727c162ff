//! `/v1/approvals`: list, read, approve, deny.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_core::approval::{Approval, ApprovalStatus, Decision, Scope};
use sluice_core::{Identity, access};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::RawBody;
use sluice_control::Shared;
use sluice_control::approvals::approval_json;

const MAX_REASON: usize = 1000;

#[derive(Deserialize)]
pub struct ListQuery {
    /// "pending" (default), "approved", "denied", "expired" or "all".
    status: Option<String>,
}

fn is_approver(state: &Shared, who: &Identity) -> bool {
    who.in_any(&state.config.approvals.approver_groups) || access::is_admin(&state.config, who)
}

/// Approvers (and admins) see every approval; anyone else only their own.
fn may_see(state: &Shared, who: &Identity, a: &Approval) -> bool {
    is_approver(state, who) || who.same_principal(&a.requester_subject, &a.requester_issuer)
}

pub async fn list(
    State(state): State<Shared>,
    Caller(who): Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match q.status.as_deref().unwrap_or("pending") {
        "all" => None,
        s => Some(ApprovalStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request("status must be pending, approved, denied, expired or all")
        })?),
    };
    let mut items = Vec::new();
    for a in state.store.approvals(status, 200).await? {
        if may_see(&state, &who, &a) {
            let votes = state.store.votes(&a.id).await?;
            items.push(approval_json(&state, &a, &votes));
        }
    }
    Ok(Json(json!({ "approvals": items })))
}

pub async fn show(
    State(state): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let a = visible(&state, &who, &id).await?;
    let votes = state.store.votes(&a.id).await?;
    Ok(Json(approval_json(&state, &a, &votes)))
}

async fn visible(state: &Shared, who: &Identity, id: &str) -> Result<Approval, ApiError> {
    let not_found = || ApiError::not_found(format!("no approval {id} that you may see"));
    if id.len() > 64 {
        return Err(not_found());
    }
    let a = state.store.approval(id).await?.ok_or_else(not_found)?;
    if may_see(state, who, &a) {
        Ok(a)
    } else {
        Err(not_found())
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    #[serde(default)]
    reason: String,
    /// "once" (default) or "shape": every statement of this shape for the
    /// rest of the grant.
    #[serde(default)]
    scope: Option<Scope>,
}

pub async fn approve(
    state: State<Shared>,
    caller: Caller,
    id: Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    decide(state, caller, id, body, Decision::Approve).await
}

pub async fn deny(
    state: State<Shared>,
    caller: Caller,
    id: Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    decide(state, caller, id, body, Decision::Deny).await
}

async fn decide(
    State(state): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
    body: Bytes,
    decision: Decision,
) -> Result<Json<Value>, ApiError> {
    // An approval needs no body; a reason or scope comes as a JSON object.
    let blank = body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null";
    let body: DecisionBody = if blank {
        DecisionBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid request: {e}")))?
    };
    if body.reason.chars().count() > MAX_REASON {
        return Err(ApiError::bad_request(
            "reason is longer than 1000 characters",
        ));
    }
    visible(&state, &who, &id).await?;
    let a = sluice_control::approvals::vote(
        &state,
        &who,
        &id,
        decision,
        &body.reason,
        body.scope.unwrap_or(Scope::Once),
    )
    .await?;
    let votes = state.store.votes(&a.id).await?;
    Ok(Json(approval_json(&state, &a, &votes)))
}
