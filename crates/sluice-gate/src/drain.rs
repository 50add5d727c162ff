//! How a listener stops: it has stopped accepting; its sessions may finish
//! on their own for `grace` (a load balancer has meanwhile sent new
//! clients elsewhere), then the rest are told the gateway is shutting
//! down and get [`CLOSE`] to close; whatever still runs after that is cut.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

/// Time sessions get to close once told to.
pub const CLOSE: Duration = Duration::from_secs(5);

/// Drains `sessions`: `grace` to finish, then `stop` and [`CLOSE`].
pub async fn drain(sessions: &mut JoinSet<()>, grace: Duration, stop: &watch::Sender<bool>) {
    let left = sessions.len();
    if left > 0 && !grace.is_zero() {
        tracing::info!(sessions = left, grace = ?grace, "draining: waiting for sessions to finish");
    }
    let _ = tokio::time::timeout(grace, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if !sessions.is_empty() {
        tracing::info!(sessions = sessions.len(), "ending the sessions still open");
    }
    let _ = stop.send(true);
    let _ = tokio::time::timeout(CLOSE, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    sessions.abort_all();
}
