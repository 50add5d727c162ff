//! How a listener stops: it has stopped accepting; its sessions may finish
//! on their own until `end` resolves (on shutdown: the drain timeout, while
//! a load balancer sends new clients elsewhere; after a configuration
//! reload: the gateway's own shutdown, so sessions keep the policy they
//! started with to their end). Then the rest are told the gateway is
//! shutting down and get [`CLOSE`] to close; whatever still runs is cut.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

/// Time sessions get to close once told to.
pub const CLOSE: Duration = Duration::from_secs(5);

/// Drains `sessions`: until they are done or `end` resolves, then `stop`
/// and [`CLOSE`].
pub async fn drain(
    sessions: &mut JoinSet<()>,
    end: impl Future<Output = ()>,
    stop: &watch::Sender<bool>,
) {
    if !sessions.is_empty() {
        tracing::info!(
            sessions = sessions.len(),
            "draining: waiting for sessions to finish"
        );
    }
    tokio::select! {
        _ = async { while sessions.join_next().await.is_some() {} } => {}
        _ = end => {}
    }
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

/// The usual pair for a listener's `serve`: stop accepting when `shutdown`
/// resolves, end the sessions `grace` later.
pub fn on_shutdown(
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> (
    impl Future<Output = ()> + Send + 'static,
    impl Future<Output = ()> + Send + 'static,
) {
    let (tx, mut rx) = watch::channel(false);
    let stop_accepting = async move {
        shutdown.await;
        let _ = tx.send(true);
    };
    let end = async move {
        if rx.wait_for(|s| *s).await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            // The accept loop was dropped without a shutdown: end now.
        }
    };
    (stop_accepting, end)
}
