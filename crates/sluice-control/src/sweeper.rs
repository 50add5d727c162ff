//! Ends grants on time: active grants at `expires_at`, pending ones when
//! their approval window lapses. Each expiry is recorded once, even when
//! several gateways sweep the same store (the status change is conditional);
//! in a fleet it runs on the gateway holding the `sweeper` lease.

use serde_json::json;
use sluice_core::GrantStatus;
use sluice_core::audit::{Actor, AuditEvent, EventKind};

use crate::Shared;

/// Runs until `stop` turns true (never, when its sender is dropped).
pub async fn run(state: Shared, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.config.server.sweep_interval.0);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopping = async move {
        if stop.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stopping => return,
        }
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = %e, "grant sweep failed; retrying next tick");
        }
        if let Err(e) = crate::approvals::expire_due(&state).await {
            tracing::warn!(error = %e.message, "approval sweep failed; retrying next tick");
        }
    }
}

/// One pass; returns how many grants it expired.
pub async fn sweep(state: &Shared) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let mut n = 0;
    for g in state.store.due_grants(sluice_core::clock::now()).await? {
        let was = g.status;
        if !state
            .store
            .transition_grant(&g.id, &[was], GrantStatus::Expired, "sweeper")
            .await?
        {
            continue; // another gateway or a revocation got there first
        }
        state
            .audit
            .append(
                AuditEvent::new(EventKind::GrantExpired)
                    .actor(Actor::system("sweeper"))
                    .grant(&g.id)
                    .connection(&g.connection)
                    .detail(json!({ "was": was, "expires_at": g.expires_at })),
            )
            .await?;
        state.metrics.grant(&g.connection, g.profile, "expired");
        crate::state::announce(state, &g.id, GrantStatus::Expired);
        tracing::info!(grant.id = %g.id, was = was.as_str(), "grant expired");
        n += 1;
    }
    Ok(n)
}
