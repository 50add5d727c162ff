//! The API's HTTP server: the axum router on hyper's HTTP/1.1, with what
//! `axum::serve` leaves out. It caps connections ([`MAX_CONNECTIONS`];
//! more wait in the accept backlog) and gives a client [`HEADER_TIMEOUT`]
//! to send a request's headers, so a slowloris or a connection flood on
//! the API port cannot take the file descriptors and memory the data path
//! shares the process with. Long-polls and event streams, which send their
//! answer slowly, are unaffected: the deadline is for the request's head.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// API connections served at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// Time a client has to send a request's headers, on a new or a reused
/// connection.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `stop`, then lets requests in flight
/// finish (each connection closes after its current response).
pub async fn serve(listener: TcpListener, app: axum::Router, stop: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (closing, closed) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s.expect("never closed"),
            _ = &mut stop => break,
        };
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let mut closed = closed.clone();
        conns.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { drop(closed.wait_for(|c| *c).await) } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(slot);
        });
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = closing.send(true);
    while conns.join_next().await.is_some() {}
}
