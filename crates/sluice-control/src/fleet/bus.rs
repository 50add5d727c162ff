//! Changes one gateway makes reach the others at once: each is announced
//! on the store's change feed (PostgreSQL `NOTIFY`, sent after the change
//! is committed) and every other gateway re-broadcasts it to its own
//! waiters: live sessions under a revoked grant, statements held for an
//! approval, long-polls, the web page's event streams.
//!
//! A notification carries ids and statuses only; receivers read the
//! store for the rest, so a forged or stale one can wake a waiter early
//! but never decide anything. After a lost feed connection, notifications
//! may have been missed: the gateway reports not ready, reconnects, reads
//! the store again for what its waiters hold (every live session's grant;
//! held statements re-read their approval on any wake), and only then is
//! ready again. Polling stays underneath as the fallback.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_core::GrantStatus;
use sluice_core::approval::ApprovalStatus;
use sluice_store::Heard;

use crate::Shared;
use crate::approvals::ApprovalChange;
use crate::state::GrantChange;

/// Wait between attempts to reach the feed.
const RETRY: Duration = Duration::from_secs(1);

/// One change, as announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Grant {
        id: String,
        status: GrantStatus,
    },
    Approval {
        id: String,
        status: ApprovalStatus,
    },
    /// A gateway (re)loaded its configuration.
    Config {
        policy_hash: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Notice {
    /// The gateway that made the change (it applied it already).
    from: String,
    #[serde(flatten)]
    change: Change,
}

/// Announces `change` to the other gateways (in the background: the
/// caller has already applied it here).
pub fn publish(state: &Shared, change: Change) {
    let notice = Notice {
        from: state.fleet.id.clone(),
        change,
    };
    let Ok(payload) = serde_json::to_string(&notice) else {
        return;
    };
    let store = state.store.clone();
    tokio::spawn(async move {
        if let Err(e) = store.notify(&payload).await {
            // The others still see it by polling the store.
            tracing::warn!(error = %e, "change announcement failed");
        }
    });
}

/// Listens to the feed until the process stops.
pub async fn listen(state: Shared) {
    loop {
        let mut feed = match state.store.listen().await {
            Ok(Some(feed)) => feed,
            Ok(None) => {
                // A SQLite store: this gateway is alone.
                state.fleet.set_feed_ok(true);
                return;
            }
            Err(e) => {
                state.fleet.set_feed_ok(false);
                tracing::warn!(error = %e, "change feed unreachable; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        if let Err(e) = catch_up(&state).await {
            tracing::warn!(error = %e, "catching up from the store failed; retrying");
            tokio::time::sleep(RETRY).await;
            continue;
        }
        state.fleet.set_feed_ok(true);
        tracing::debug!("change feed connected");
        // A reconnect or an error may have lost announcements: catch up.
        while let Ok(Heard::Change(payload)) = feed.next().await {
            apply(&state, &payload);
        }
        state.fleet.set_feed_ok(false);
        tracing::warn!("change feed lost; catching up from the store");
    }
}

/// Re-broadcasts another gateway's change here.
fn apply(state: &Shared, payload: &str) {
    let Ok(notice) = serde_json::from_str::<Notice>(payload) else {
        tracing::debug!("unreadable change announcement ignored");
        return;
    };
    if notice.from == state.fleet.id {
        return;
    }
    match notice.change {
        Change::Grant { id, status } => {
            let _ = state.changes.send(GrantChange { id, status });
        }
        Change::Approval { id, status } => {
            let _ = state.approval_changes.send(ApprovalChange { id, status });
        }
        Change::Config { policy_hash } => {
            if policy_hash != state.fleet.policy_hash() {
                tracing::warn!(
                    gateway = %notice.from,
                    "a gateway sharing this store runs another policy (its configuration differs)"
                );
            }
        }
    }
}

/// What notifications may have been missed, read from the store: the
/// grant of every session open here (a grant that ended meanwhile ends
/// its sessions now).
async fn catch_up(state: &Shared) -> Result<(), sluice_store::StoreError> {
    let mut seen = std::collections::HashSet::new();
    for s in state.live.list() {
        if !seen.insert(s.grant_id.clone()) {
            continue;
        }
        let status = match state.store.grant(&s.grant_id).await? {
            Some(g) if g.usable_at(sluice_core::clock::now()) => continue,
            Some(g) if g.status.is_final() => g.status,
            _ => GrantStatus::Expired,
        };
        let _ = state.changes.send(GrantChange {
            id: s.grant_id,
            status,
        });
    }
    Ok(())
}
