//! Work that must run once per fleet (the sweeper, audit export to sinks,
//! checkpoint signing, retention) runs under a lease in the store. Every
//! gateway tries to take it; the holder renews it every [`RENEW`] and
//! gives it up when it stops; when the holder dies, the lease lapses after
//! [`LIFE`] and another gateway takes it over.

use std::future::Future;
use std::time::Duration;

use sluice_store::Store;
use tokio::sync::watch;

/// How long a lease lasts unrenewed: a dead holder's work resumes
/// elsewhere within this (plus one [`RENEW`]).
pub const LIFE: Duration = Duration::from_secs(6);
/// How often the holder renews, and others try to take it.
pub const RENEW: Duration = Duration::from_secs(2);

/// Runs `work` while `holder` holds lease `name`, until `stopped`.
/// `work` is called each time the lease is (re)gained and is given a stop
/// signal that turns true when the lease is lost or the process stops; it
/// should then finish promptly.
pub async fn run<F, Fut>(
    store: Store,
    name: &'static str,
    holder: String,
    mut stopped: watch::Receiver<bool>,
    work: F,
) where
    F: Fn(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut tick = tokio::time::interval(RENEW);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut running: Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.wait_for(|s| *s) => break,
        }
        let now = sluice_core::clock::now();
        let until = now + chrono::Duration::from_std(LIFE).unwrap_or_default();
        // Bounded well inside the lease's life: a renewal that hangs must
        // not let the work run on after another gateway took over.
        let taking = store.take_lease(name, &holder, now, until);
        let held = match tokio::time::timeout(LIFE - RENEW * 2, taking).await {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                // Unsure: stop, as if lost, rather than risk two holders
                // once the lease lapses.
                tracing::warn!(lease = name, error = %e, "lease renewal failed");
                false
            }
            Err(_) => {
                tracing::warn!(lease = name, "lease renewal timed out");
                false
            }
        };
        match (held, running.is_some()) {
            (true, false) => {
                tracing::info!(lease = name, "lease taken: this gateway runs it");
                let (tx, rx) = watch::channel(false);
                running = Some((tx, tokio::spawn(work(rx))));
            }
            (false, true) => {
                tracing::warn!(lease = name, "lease lost: another gateway runs it");
                if let Some((tx, task)) = running.take() {
                    let _ = tx.send(true);
                    let _ = task.await;
                }
            }
            _ => {}
        }
    }
    if let Some((tx, task)) = running.take() {
        let _ = tx.send(true);
        let _ = task.await;
        let _ = store.release_lease(name, &holder).await;
    }
}
