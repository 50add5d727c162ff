//! What `/v1/fleet`, `sluice fleet status` and the web page show: the
//! gateways sharing the store, the policy each runs, and who holds each
//! lease.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::LOST_AFTER;
use crate::Shared;

/// Gateways unheard for longer than this are left off the list.
const SHOWN_FOR: chrono::Duration = chrono::Duration::minutes(10);

#[derive(Debug, Clone, Serialize)]
pub struct FleetStatus {
    /// The gateway that answered.
    pub this: String,
    /// The policy most live gateways run (this one's on a tie).
    pub policy_hash: String,
    /// True when every live gateway runs that policy.
    pub consistent: bool,
    pub members: Vec<MemberStatus>,
    pub leases: Vec<LeaseStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberStatus {
    pub id: String,
    pub host: String,
    pub version: String,
    pub api: String,
    /// `serving`, `draining`, `stopped`, or `lost` (no heartbeat lately).
    pub state: String,
    pub policy_hash: String,
    /// False for a live gateway whose policy differs from the fleet's.
    pub policy_matches: bool,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeaseStatus {
    pub name: String,
    pub holder: String,
    pub expires_at: DateTime<Utc>,
    /// False once lapsed (its holder died or stopped): the next gateway to
    /// try takes it.
    pub held: bool,
}

/// The fleet as the store knows it now.
pub async fn status(state: &Shared) -> Result<FleetStatus, sluice_store::StoreError> {
    let now = sluice_core::clock::now();
    let lost = chrono::Duration::from_std(LOST_AFTER).unwrap_or_default();
    let rows = state.store.members(now - SHOWN_FOR).await?;
    let live_state = |m: &sluice_store::Member| {
        if m.state != "stopped" && now - m.heartbeat_at > lost {
            "lost".to_string()
        } else {
            m.state.clone()
        }
    };
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for m in &rows {
        if matches!(live_state(m).as_str(), "serving" | "draining") {
            *counts.entry(m.policy_hash.as_str()).or_default() += 1;
        }
    }
    let own = state.fleet.policy_hash();
    let own = own.as_str();
    let fleet_hash = counts
        .iter()
        .max_by_key(|(h, n)| (**n, **h == own))
        .map(|(h, _)| h.to_string())
        .unwrap_or_else(|| own.to_string());
    let members: Vec<MemberStatus> = rows
        .iter()
        .map(|m| {
            let state = live_state(m);
            let live = matches!(state.as_str(), "serving" | "draining");
            MemberStatus {
                id: m.id.clone(),
                host: m.host.clone(),
                version: m.version.clone(),
                api: m.api_url.clone(),
                policy_matches: !live || m.policy_hash == fleet_hash,
                policy_hash: m.policy_hash.clone(),
                state,
                started_at: m.started_at,
                heartbeat_at: m.heartbeat_at,
            }
        })
        .collect();
    let leases = state
        .store
        .leases()
        .await?
        .into_iter()
        .map(|l| LeaseStatus {
            held: l.expires_at > now,
            name: l.name,
            holder: l.holder,
            expires_at: l.expires_at,
        })
        .collect();
    Ok(FleetStatus {
        this: state.fleet.id.clone(),
        consistent: members.iter().all(|m| m.policy_matches),
        policy_hash: fleet_hash,
        members,
        leases,
    })
}
