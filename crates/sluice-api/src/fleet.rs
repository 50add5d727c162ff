//! `/v1/fleet`: the gateways sharing this store, their versions and policy
//! hashes, last heartbeats, and who holds each lease. Admins and approvers
//! only.

use axum::Json;
use axum::extract::State;
use sluice_control::Shared;
use sluice_control::fleet::FleetStatus;
use sluice_core::access;

use crate::auth::Caller;
use crate::error::ApiError;

pub async fn status(
    State(state): State<Shared>,
    Caller(who): Caller,
) -> Result<Json<FleetStatus>, ApiError> {
    let operator = access::is_admin(&state.config, &who)
        || who.in_any(&state.config.approvals.approver_groups);
    if !operator {
        return Err(ApiError::forbidden(
            "the fleet's status is for admins and approvers",
        ));
    }
    Ok(Json(sluice_control::fleet::status(&state).await?))
}
