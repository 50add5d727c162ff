//! What every handler shares.

use std::sync::Arc;

use sluice_audit::AuditLog;
use sluice_core::GrantStatus;
use sluice_core::config::Config;
use sluice_identity::Verifier;
use sluice_identity::dev::DevIssuer;
use sluice_store::Store;
use tokio::sync::broadcast;

use sluice_core::live::LiveSessions;
use sluice_core::metrics::Metrics;

/// A grant's status changed (activated, revoked, expired, …). Long-polls and
/// live sessions listen for these; gateways sharing a store also poll it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantChange {
    pub id: String,
    pub status: GrantStatus,
}

pub struct AppState {
    pub config: Arc<Config>,
    pub verifier: Verifier,
    pub store: Store,
    pub audit: AuditLog,
    pub changes: broadcast::Sender<GrantChange>,
    /// Approval status changes (opened, decided, expired).
    pub approval_changes: broadcast::Sender<crate::approvals::ApprovalChange>,
    /// Shared with the listeners and the audit log.
    pub metrics: Arc<Metrics>,
    /// Sessions open on this gateway, shared with the listeners.
    pub live: Arc<LiveSessions>,
    /// The SSH listener's host key fingerprint, when it runs: grants for
    /// SSH connections carry it so agents can pin it.
    pub ssh_fingerprint: Option<String>,
    /// The same key as an OpenSSH public key line (`ssh-ed25519 AAAA…`),
    /// for a `known_hosts` entry.
    pub ssh_host_key: Option<String>,
    /// The playground's issuer, served under `/dev-issuer` (dev mode only).
    pub dev_issuer: Option<DevIssuer>,
    /// Webhook deliveries for new approvals.
    pub notifier: crate::notify::Notifier,
    /// This gateway's place among those sharing the store.
    pub fleet: Arc<crate::fleet::Fleet>,
}

impl AppState {
    pub fn new(config: Arc<Config>, verifier: Verifier, store: Store, audit: AuditLog) -> Self {
        let fleet = Arc::new(crate::fleet::Fleet::new(&config));
        // Alone on SQLite: there is no feed to wait for.
        fleet.set_feed_ok(store.backend() == sluice_store::Backend::Sqlite);
        AppState {
            fleet,
            config,
            verifier,
            store,
            audit,
            changes: broadcast::channel(1024).0,
            approval_changes: broadcast::channel(1024).0,
            metrics: Arc::new(Metrics::new()),
            live: Arc::default(),
            ssh_fingerprint: None,
            ssh_host_key: None,
            dev_issuer: None,
            notifier: crate::notify::Notifier::new(),
        }
    }

    /// The state a configuration reload serves new requests with: `config`
    /// and its `verifier`, and everything else shared with `self` (store,
    /// audit log, change channels, live sessions, metrics, the gateway's
    /// place in the fleet), so sessions begun before the reload still hear
    /// every change.
    /// The fleet's policy hash is the caller's to change, once the new
    /// state serves.
    pub fn reloaded(&self, config: Arc<Config>, verifier: Verifier) -> Self {
        AppState {
            config,
            verifier,
            store: self.store.clone(),
            audit: self.audit.clone(),
            changes: self.changes.clone(),
            approval_changes: self.approval_changes.clone(),
            metrics: self.metrics.clone(),
            live: self.live.clone(),
            ssh_fingerprint: self.ssh_fingerprint.clone(),
            ssh_host_key: self.ssh_host_key.clone(),
            dev_issuer: self.dev_issuer.clone(),
            notifier: self.notifier.clone(),
            fleet: self.fleet.clone(),
        }
    }

    /// The gateway's metrics, shared with its listeners.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Names the SSH listener's host key (its OpenSSH public key line and
    /// SHA-256 fingerprint) in grants for SSH connections.
    pub fn with_ssh_host_key(mut self, public_key: String, fingerprint: String) -> Self {
        self.ssh_host_key = Some(public_key);
        self.ssh_fingerprint = Some(fingerprint);
        self
    }

    pub fn with_dev_issuer(mut self, issuer: DevIssuer) -> Self {
        self.dev_issuer = Some(issuer);
        self
    }
}

/// Tells this gateway's waiters, and the other gateways sharing the
/// store, that grant `id` is now `status`.
pub fn announce(state: &Shared, id: &str, status: GrantStatus) {
    // No receivers is fine: nobody is waiting on this grant.
    let _ = state.changes.send(GrantChange {
        id: id.to_string(),
        status,
    });
    crate::fleet::bus::publish(
        state,
        crate::fleet::bus::Change::Grant {
            id: id.to_string(),
            status,
        },
    );
}

pub type Shared = Arc<AppState>;
