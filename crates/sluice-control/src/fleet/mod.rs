//! Several gateways on one PostgreSQL store behave as one: each announces
//! itself (a heartbeat with its version and policy hash), what one changes
//! reaches the others at once through the store's change feed ([`bus`]),
//! and what must run once per fleet runs under a lease ([`lease`]).
//!
//! On a SQLite store the gateway is alone: the feed is a no-op and every
//! lease is its own, so the same code serves both.

pub mod bus;
pub mod lease;
mod status;

pub use status::{FleetStatus, LeaseStatus, MemberStatus, status};

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_core::config::Config;
use sluice_store::Member;

use crate::Shared;

/// How often a gateway says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A gateway unheard for this long is shown as lost.
pub const LOST_AFTER: Duration = Duration::from_secs(10);
/// Gateways unheard for this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

/// This gateway's place in the fleet.
pub struct Fleet {
    /// A fresh id per process: a restarted gateway is a new member.
    pub id: String,
    pub host: String,
    pub started_at: DateTime<Utc>,
    /// The hash of the configuration's policy (see [`policy_hash`]);
    /// replaced by a reload.
    policy: std::sync::Mutex<String>,
    /// Set once SIGTERM arrives: readiness turns false first.
    draining: AtomicBool,
    /// True while the change feed is connected and caught up (always on a
    /// SQLite store). Readiness is false while it is not, so a load
    /// balancer prefers gateways that hear changes at once.
    feed_ok: AtomicBool,
}

impl Fleet {
    pub fn new(config: &Config) -> Self {
        let mut bytes = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Fleet {
            id: format!("gw_{}", hex::encode(bytes)),
            host: host_name(),
            started_at: sluice_core::clock::now(),
            policy: std::sync::Mutex::new(policy_hash(config)),
            draining: AtomicBool::new(false),
            feed_ok: AtomicBool::new(false),
        }
    }

    /// The hash of the policy this gateway serves new sessions with.
    pub fn policy_hash(&self) -> String {
        self.policy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A reload changed the policy.
    pub fn set_policy(&self, config: &Config) {
        *self.policy.lock().unwrap_or_else(|e| e.into_inner()) = policy_hash(config);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn feed_ok(&self) -> bool {
        self.feed_ok.load(Ordering::SeqCst)
    }

    pub(crate) fn set_feed_ok(&self, ok: bool) {
        self.feed_ok.store(ok, Ordering::SeqCst);
    }

    fn member(&self, config: &Config, state: &str) -> Member {
        Member {
            id: self.id.clone(),
            host: self.host.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            policy_hash: self.policy_hash(),
            api_url: format!("http://{}", config.server.api_listen),
            state: state.into(),
            started_at: self.started_at,
            heartbeat_at: sluice_core::clock::now(),
        }
    }
}

/// The SHA-256 of what decides who may do what: issuers, connections,
/// rules, approvals, audit export and the web page's sign-in, as
/// canonical JSON. Listener addresses, TLS files and the data directory
/// are each gateway's own and left out. Secrets are configured by
/// reference (`*_env`, `*_file`), so none is hashed.
pub fn policy_hash(config: &Config) -> String {
    let policy = json!({
        "issuers": config.issuers,
        "connections": config.connections,
        "rules": config.rules,
        "approvals": config.approvals,
        "audit": config.audit,
        "ui": config.ui,
    });
    hex::encode(Sha256::digest(policy.to_string()))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Heartbeats until the process stops: `serving`, or `draining` once
/// SIGTERM arrived.
pub async fn heartbeat(state: Shared) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut beats = 0u64;
    loop {
        tick.tick().await;
        if let Err(e) = beat(&state).await {
            tracing::warn!(error = %e, "fleet heartbeat failed; retrying");
        }
        beats += 1;
        if beats.is_multiple_of(1800) {
            let before = sluice_core::clock::now()
                - chrono::Duration::from_std(FORGET_AFTER).unwrap_or_default();
            let _ = state.store.forget_members(before).await;
        }
    }
}

/// Says this gateway is alive: `serving`, or `draining` once SIGTERM came.
pub async fn beat(state: &Shared) -> Result<(), sluice_store::StoreError> {
    let fleet = &state.fleet;
    let now = if fleet.draining() {
        "draining"
    } else {
        "serving"
    };
    state
        .store
        .heartbeat(&fleet.member(&state.config, now))
        .await
}

/// The last word of a gateway that stops on purpose.
pub async fn stopped(state: &Shared) {
    let _ = state
        .store
        .heartbeat(&state.fleet.member(&state.config, "stopped"))
        .await;
}
