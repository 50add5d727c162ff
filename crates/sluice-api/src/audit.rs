//! `GET /v1/audit?after=SEQ&limit=N`: the audit chain, for admins.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_core::access;

use crate::auth::Caller;
use crate::error::ApiError;
use sluice_control::Shared;

#[derive(Deserialize)]
pub struct Page {
    #[serde(default)]
    after: i64,
    #[serde(default)]
    limit: Option<i64>,
}

pub async fn list(
    State(state): State<Shared>,
    Caller(who): Caller,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    if !access::is_admin(&state.config, &who) {
        return Err(ApiError::forbidden(
            "reading the audit log needs membership in an admin group",
        ));
    }
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state.store.audit_after(page.after, limit).await?;
    let events: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            v["hash"] = r.hash.clone().into();
            v["prev_hash"] = r.prev_hash.clone().into();
            v
        })
        .collect();
    Ok(Json(json!({ "events": events })))
}
