//! Backend session reuse (session pooling, issue 7).
//!
//! A client session that ends cleanly (Terminate, idle, outside any
//! transaction; see [`track`]) hands its backend session back; it is reset
//! ([`reset`]) and parked under its connection and profile, so that the
//! next client of the same connection and profile skips TCP, TLS, SCRAM and
//! the server's fork. Profiles never share (a `read` session is read-only
//! and may log in with another credential), and a parked session belongs
//! to nobody: two live clients never share one.
//!
//! Bounded per connection (`[connections.pool]`): at most `max_idle`
//! parked per profile, closed after `idle_timeout` unused or when older
//! than `max_lifetime`. A parked session that died meanwhile is noticed
//! before it is handed out; one that fails while taking the new client's
//! settings is closed and a fresh one opened instead, all before the client
//! has sent anything.

mod reset;
pub mod track;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use sluice_core::Profile;
use sluice_core::config::PoolConfig;
use sluice_core::metrics::{Family, Gauge, PoolLabel};
use tokio::io::{AsyncRead, ReadBuf};

use crate::backend::{self, Backend, Target};
use crate::errors::PgError;
use crate::settings::{self, ApplyError};

pub use track::{Replies, Sent};

/// How often parked sessions are checked against their timeouts.
pub const REAP_INTERVAL: Duration = Duration::from_secs(1);

type Key = (String, Profile);

struct Parked {
    backend: Backend,
    since: Instant,
}

impl Parked {
    fn expired(&self, limits: &PoolConfig, now: Instant) -> bool {
        now.duration_since(self.since) >= limits.idle_timeout.0
            || now.duration_since(self.backend.opened) >= limits.max_lifetime.0
    }
}

/// Parked backend sessions by connection and profile.
#[derive(Default)]
pub struct Pool {
    parked: Mutex<HashMap<Key, Vec<Parked>>>,
    /// Shutting down: nothing more is parked.
    closed: AtomicBool,
    /// `sluice_pool_sessions{state="idle"}`, kept as sessions are parked
    /// and taken.
    gauges: Family<PoolLabel, Gauge>,
}

/// A backend session ready for one client, with that client's settings.
pub struct Checkout {
    pub backend: Backend,
    /// Taken from the pool rather than opened.
    pub reused: bool,
}

impl Pool {
    /// Reports parked sessions into these gauges.
    pub fn with_gauges(mut self, gauges: Family<PoolLabel, Gauge>) -> Self {
        self.gauges = gauges;
        self
    }

    /// Sets the idle gauge of `key` (called with the map locked).
    fn count(&self, key: &Key, idle: usize) {
        let label = PoolLabel {
            connection: key.0.clone(),
            profile: key.1.as_str(),
            state: "idle",
        };
        self.gauges.get_or_create(&label).set(idle as i64);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Vec<Parked>>> {
        // A poisoned map is still a valid map: entries move in and out whole.
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A backend session of `connection` under `profile` with `wanted`
    /// applied: a parked one when one is alive, else a fresh one.
    pub async fn checkout(
        &self,
        connection: &str,
        profile: Profile,
        target: &Target,
        limits: &PoolConfig,
        wanted: &[(String, String)],
    ) -> Result<Checkout, PgError> {
        if let Some(mut backend) = self.take(connection, profile, limits).await {
            match prepare(&mut backend, profile, wanted).await {
                // The client's own settings are at fault: a fresh session
                // would refuse them too, and this one is still good.
                Err(ApplyError::Refused(e)) => {
                    self.checkin(connection, profile, backend, &target.user, limits)
                        .await;
                    return Err(e);
                }
                Ok(()) => {
                    tracing::debug!(
                        backend.age_ms = backend.opened.elapsed().as_millis() as u64,
                        "backend session reused"
                    );
                    return Ok(Checkout {
                        backend,
                        reused: true,
                    });
                }
                // It may have died just now: nothing of the client's has
                // been sent, so a fresh session can take its place.
                Err(ApplyError::Broken(e)) => {
                    tracing::info!(error = %e, "parked backend session failed; opening a fresh one");
                    backend.close().await;
                }
            }
        }
        let mut backend = backend::connect(target, profile).await?;
        if let Err(e) = prepare(&mut backend, profile, wanted).await {
            backend.close().await;
            return Err(e.into());
        }
        Ok(Checkout {
            backend,
            reused: false,
        })
    }

    /// The most recently parked live session, if any; expired and dead
    /// ones met on the way are closed.
    async fn take(
        &self,
        connection: &str,
        profile: Profile,
        limits: &PoolConfig,
    ) -> Option<Backend> {
        let now = Instant::now();
        let mut dead = Vec::new();
        let found = {
            let mut parked = self.lock();
            let key = (connection.to_string(), profile);
            let list = parked.get_mut(&key)?;
            let found = loop {
                let Some(mut p) = list.pop() else { break None };
                if !p.expired(limits, now) && quiet(&mut p.backend) {
                    break Some(p.backend);
                }
                dead.push(p.backend);
            };
            self.count(&key, list.len());
            found
        };
        for backend in dead {
            backend.close().await;
        }
        found
    }

    /// Takes back the session of a client that left idle: reset and parked,
    /// or closed when it is too old, the pool is full, or the reset fails.
    /// `user` is the role the session's credential logs in as.
    pub async fn checkin(
        &self,
        connection: &str,
        profile: Profile,
        mut backend: Backend,
        user: &str,
        limits: &PoolConfig,
    ) {
        let unwanted = limits.max_idle == 0 || self.closed.load(Ordering::Acquire);
        if unwanted || backend.opened.elapsed() >= limits.max_lifetime.0 {
            backend.close().await;
            return;
        }
        if let Err(e) = reset::reset(&mut backend, user).await {
            tracing::warn!(error = %e, "backend session reset failed; closing it");
            backend.close().await;
            return;
        }
        let refused = {
            let mut parked = self.lock();
            let key = (connection.to_string(), profile);
            let list = parked.entry(key.clone()).or_default();
            if list.len() < limits.max_idle && !self.closed.load(Ordering::Acquire) {
                list.push(Parked {
                    backend,
                    since: Instant::now(),
                });
                self.count(&key, list.len());
                None
            } else {
                Some(backend)
            }
        };
        if let Some(backend) = refused {
            backend.close().await;
        }
    }

    /// Closes parked sessions past their connection's timeouts; `limits`
    /// gives each connection's bounds (`None`: no longer configured).
    pub async fn reap(&self, limits: impl Fn(&str) -> Option<PoolConfig>) {
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut parked = self.lock();
            for (key, list) in parked.iter_mut() {
                let bounds = limits(&key.0);
                let (old, kept) = std::mem::take(list)
                    .into_iter()
                    .partition(|p| bounds.is_none_or(|b| p.expired(&b, now)));
                *list = kept;
                self.count(key, list.len());
                expired.extend(old.into_iter().map(|p: Parked| p.backend));
            }
            parked.retain(|_, list| !list.is_empty());
        }
        for backend in expired {
            backend.close().await;
        }
    }

    /// Closes every parked session (shutdown).
    pub async fn close_all(&self) {
        self.closed.store(true, Ordering::Release);
        let all: Vec<Parked> = self
            .lock()
            .drain()
            .flat_map(|(key, list)| {
                self.count(&key, 0);
                list
            })
            .collect();
        for p in all {
            p.backend.close().await;
        }
    }
}

/// Applies a client's settings, and checks that a `read` session is still
/// read-only where the server reports it.
async fn prepare(
    backend: &mut Backend,
    profile: Profile,
    wanted: &[(String, String)],
) -> Result<(), ApplyError> {
    settings::apply(backend, wanted).await?;
    let read_only = backend.parameters.get("default_transaction_read_only");
    if profile == Profile::Read && read_only.is_some_and(|v| v != "on") {
        let e = PgError::Backend("read session is not read-only".into());
        return Err(ApplyError::Broken(e));
    }
    Ok(())
}

/// True when nothing waits to be read from a parked session: a session the
/// server ended (an administrator's `pg_terminate_backend`, a restart) has
/// sent its FATAL and closed, and anything at all unread is unexpected.
/// Never waits: one poll with a waker that does nothing.
fn quiet(backend: &mut Backend) -> bool {
    if backend.reader.buffered() != 0 {
        return false;
    }
    let mut cx = Context::from_waker(Waker::noop());
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    let stream = Pin::new(backend.reader.get_mut());
    matches!(stream.poll_read(&mut cx, &mut buf), Poll::Pending)
}
