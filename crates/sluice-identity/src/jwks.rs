//! One issuer's signing keys: discovery, JWKS fetch, and the cache rules.
//!
//! - Keys are looked up by `kid` in an immutable snapshot, so verifications
//!   never wait on each other while the keys are known.
//! - A snapshot older than `REFRESH_AFTER` is refreshed in the background;
//!   one older than `jwks_max_age` is no longer used at all.
//! - A token naming an unknown `kid` triggers at most one refetch per
//!   `jwks_refetch_interval`. Refreshes are serialised by one async mutex, so
//!   concurrent requests for the same unknown key share one fetch.

use crate::config::is_http_url;
use crate::fetch::{FetchError, get_json};
use crate::keys::{KeySet, Lookup, VerifyKey};
use crate::rejection::Rejection;
use crate::token::loggable_kid;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use sluice_core::config::IssuerConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Known keys are re-read this often (in the background) so that keys the
/// issuer withdrew stop being accepted.
const REFRESH_AFTER: Duration = Duration::from_secs(10 * 60);
/// After a failed fetch, don't try again for this long: with the issuer down,
/// every request would otherwise wait on its own doomed fetch.
const FAILED_FETCH_BACKOFF: Duration = Duration::from_secs(2);

/// Keys as fetched at one moment.
struct Snapshot {
    keys: KeySet,
    fetched_at: Instant,
    /// Bumped on every successful fetch, so a waiter can tell whether the
    /// keys changed while it queued for the refresh lock.
    generation: u64,
}

/// State only the task holding the refresh lock touches.
#[derive(Default)]
struct RefreshState {
    /// From the discovery document; forgotten when a JWKS fetch fails, so
    /// the next refresh discovers again.
    jwks_uri: Option<String>,
    last_unknown_kid_fetch: Option<Instant>,
    last_failure: Option<Instant>,
    generation: u64,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// The key cache of one configured issuer.
pub(crate) struct IssuerKeys {
    name: String,
    issuer: String,
    discovery_url: String,
    refetch_interval: Duration,
    max_age: Duration,
    http: reqwest::Client,
    current: RwLock<Option<Arc<Snapshot>>>,
    refresh: tokio::sync::Mutex<RefreshState>,
    background_refresh: AtomicBool,
}

impl IssuerKeys {
    pub(crate) fn new(cfg: &IssuerConfig, http: reqwest::Client) -> Self {
        IssuerKeys {
            name: cfg.name.clone(),
            issuer: cfg.issuer.clone(),
            discovery_url: cfg.discovery_url(),
            refetch_interval: cfg.jwks_refetch_interval.0,
            max_age: cfg.jwks_max_age.0,
            http,
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            background_refresh: AtomicBool::new(false),
        }
    }

    /// The key for a token's `kid` and `alg`, fetching or refetching as the
    /// cache rules allow.
    pub(crate) async fn key_for(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyKey, Rejection> {
        let seen = self.usable_snapshot();
        if let Some(snap) = &seen {
            match snap.keys.find(kid, alg) {
                Lookup::Found(key) => {
                    if snap.fetched_at.elapsed() >= REFRESH_AFTER.min(self.max_age / 2) {
                        self.spawn_background_refresh();
                    }
                    return Ok(key.clone());
                }
                Lookup::Mismatch => return Err(Rejection::AlgorithmKeyMismatch),
                Lookup::NotFound => {}
            }
        }

        let mut st = self.refresh.lock().await;
        match self.usable_snapshot() {
            // Someone refreshed while we queued: their keys answer us, and a
            // kid they lack is unknown without a second fetch.
            Some(snap) if Some(snap.generation) != seen.as_ref().map(|s| s.generation) => {
                lookup(&snap, kid, alg)
            }
            // Fresh keys that lack this kid: perhaps the issuer rotated.
            Some(_) => {
                let throttled = st
                    .last_unknown_kid_fetch
                    .is_some_and(|t| t.elapsed() < self.refetch_interval);
                if throttled {
                    tracing::debug!(issuer = %self.name, kid = loggable_kid(kid), "unknown kid; refetch throttled");
                    return Err(Rejection::UnknownKey);
                }
                st.last_unknown_kid_fetch = Some(Instant::now());
                tracing::info!(issuer = %self.name, kid = loggable_kid(kid), "unknown kid; refetching the issuer's keys");
                match self.refresh_locked(&mut st).await {
                    Ok(snap) => lookup(&snap, kid, alg),
                    Err(e) => {
                        tracing::warn!(issuer = %self.name, kid = loggable_kid(kid), error = %e,
                            "unknown kid and the issuer's keys could not be refreshed");
                        Err(Rejection::UnknownKey)
                    }
                }
            }
            // Nothing usable: never fetched, or aged out past jwks_max_age.
            None => {
                if st
                    .last_failure
                    .is_some_and(|t| t.elapsed() < FAILED_FETCH_BACKOFF)
                {
                    return Err(Rejection::IssuerUnreachable);
                }
                match self.refresh_locked(&mut st).await {
                    Ok(snap) => lookup(&snap, kid, alg),
                    Err(e) => {
                        tracing::warn!(issuer = %self.name, error = %e, "no usable signing keys and the issuer could not be reached");
                        Err(Rejection::IssuerUnreachable)
                    }
                }
            }
        }
    }

    /// Fetches the keys now; a failure is logged and otherwise ignored.
    pub(crate) async fn warm(&self) {
        let mut st = self.refresh.lock().await;
        if let Err(e) = self.refresh_locked(&mut st).await {
            tracing::warn!(issuer = %self.name, error = %e, "could not fetch the issuer's signing keys at startup");
        }
    }

    /// The current snapshot unless it is older than `jwks_max_age`.
    fn usable_snapshot(&self) -> Option<Arc<Snapshot>> {
        let guard = self.current.read().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .filter(|s| s.fetched_at.elapsed() < self.max_age)
            .cloned()
    }

    /// Refreshes known-good keys off the request path, once at a time.
    fn spawn_background_refresh(self: &Arc<Self>) {
        if self.background_refresh.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            if let Ok(mut st) = this.refresh.try_lock() {
                let backing_off = st
                    .last_failure
                    .is_some_and(|t| t.elapsed() < FAILED_FETCH_BACKOFF);
                if !backing_off && let Err(e) = this.refresh_locked(&mut st).await {
                    tracing::warn!(issuer = %this.name, error = %e, "background refresh of signing keys failed; keeping cached keys");
                }
            }
            this.background_refresh.store(false, Ordering::Release);
        });
    }

    /// Fetches and installs a new snapshot. Caller holds the refresh lock.
    async fn refresh_locked(&self, st: &mut RefreshState) -> Result<Arc<Snapshot>, FetchError> {
        match self.fetch_keys(st).await {
            Ok(keys) => {
                st.generation += 1;
                st.last_failure = None;
                tracing::info!(issuer = %self.name, keys = keys.len(), "fetched the issuer's signing keys");
                let snap = Arc::new(Snapshot {
                    keys,
                    fetched_at: Instant::now(),
                    generation: st.generation,
                });
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&snap));
                Ok(snap)
            }
            Err(e) => {
                st.last_failure = Some(Instant::now());
                Err(e)
            }
        }
    }

    async fn fetch_keys(&self, st: &mut RefreshState) -> Result<KeySet, FetchError> {
        let jwks_uri = match &st.jwks_uri {
            Some(u) => u.clone(),
            None => {
                let u = self.discover().await?;
                st.jwks_uri = Some(u.clone());
                u
            }
        };
        let doc: serde_json::Value = match get_json(&self.http, &jwks_uri).await {
            Ok(doc) => doc,
            Err(e) => {
                st.jwks_uri = None;
                return Err(e);
            }
        };
        KeySet::from_jwks(&doc).map_err(FetchError::Invalid)
    }

    /// Reads the discovery document and returns its `jwks_uri`.
    async fn discover(&self) -> Result<String, FetchError> {
        let doc: Discovery = get_json(&self.http, &self.discovery_url).await?;
        // OIDC Discovery §4.3: the document must name exactly the issuer we
        // trust, or its keys could be another issuer's.
        if doc.issuer != self.issuer {
            return Err(FetchError::Invalid(format!(
                "the discovery document names issuer {:?}, not the configured {:?}",
                doc.issuer, self.issuer
            )));
        }
        if !is_http_url(&doc.jwks_uri) {
            return Err(FetchError::Invalid(
                "the discovery document's jwks_uri is not an http(s) URL".into(),
            ));
        }
        Ok(doc.jwks_uri)
    }
}

fn lookup(snap: &Snapshot, kid: Option<&str>, alg: Algorithm) -> Result<VerifyKey, Rejection> {
    match snap.keys.find(kid, alg) {
        Lookup::Found(key) => Ok(key.clone()),
        Lookup::Mismatch => Err(Rejection::AlgorithmKeyMismatch),
        Lookup::NotFound => Err(Rejection::UnknownKey),
    }
}
