//! Fakes of the control plane and the audit log, for protocol adapters'
//! tests: grants in memory (revocable, with accepted tokens), and audit
//! events collected in memory (able to fail or be slow, by kind). The real
//! ones are tested on their own; a protocol's suite tests the protocol.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::Duration;
use futures::future::BoxFuture;
use sluice_core::audit::{AuditError, AuditEvent, AuditSink, EventKind, LaterError};
use sluice_core::secret::{ScramVerifier, native_verifier};
use sluice_core::{Grant, GrantStatus, Profile};
use sluice_gate::{Control, ControlError, LoginRefused};
use tokio::sync::watch;

/// Grants in memory; `ended` fires on revoke.
#[derive(Default)]
pub struct FakeControl {
    grants: Mutex<HashMap<String, Grant>>,
    tokens: Mutex<HashMap<String, Grant>>,
    ended: Mutex<HashMap<String, watch::Sender<bool>>>,
}

impl FakeControl {
    pub fn insert(&self, grant: Grant) {
        self.ended
            .lock()
            .unwrap()
            .entry(grant.id.clone())
            .or_insert_with(|| watch::channel(false).0);
        self.grants.lock().unwrap().insert(grant.id.clone(), grant);
    }

    pub fn revoke(&self, id: &str) {
        if let Some(g) = self.grants.lock().unwrap().get_mut(id) {
            g.status = GrantStatus::Revoked;
        }
        if let Some(tx) = self.ended.lock().unwrap().get(id) {
            let _ = tx.send(true);
        }
    }

    pub fn accept_token(&self, token: &str, grant: Grant) {
        self.insert(grant.clone());
        self.tokens.lock().unwrap().insert(token.to_string(), grant);
    }
}

impl Control for FakeControl {
    fn grant(&self, id: &str) -> BoxFuture<'_, Result<Option<Grant>, ControlError>> {
        let g = self.grants.lock().unwrap().get(id).cloned();
        Box::pin(async move { Ok(g) })
    }

    fn grant_from_token(
        &self,
        token: &str,
        _connection: &str,
        _client_addr: SocketAddr,
    ) -> BoxFuture<'_, Result<Grant, LoginRefused>> {
        let g = self.tokens.lock().unwrap().get(token).cloned();
        Box::pin(async move { g.ok_or_else(|| LoginRefused::new("the token is not valid")) })
    }

    fn ended(&self, grant_id: &str) -> BoxFuture<'static, ()> {
        let rx = self
            .ended
            .lock()
            .unwrap()
            .entry(grant_id.to_string())
            .or_insert_with(|| watch::channel(false).0)
            .subscribe();
        Box::pin(async move {
            let mut rx = rx;
            let _ = rx.wait_for(|e| *e).await;
            // A dropped sender would resolve at once: never end for that.
            if !*rx.borrow() {
                std::future::pending::<()>().await;
            }
        })
    }
}

/// Audit events in memory; can be made to fail, or to be slow, for all
/// events or for one kind.
#[derive(Default)]
pub struct MemAudit {
    pub events: Arc<Mutex<Vec<AuditEvent>>>,
    pub fail: AtomicBool,
    /// Events of this kind fail.
    pub fail_kind: Mutex<Option<EventKind>>,
    /// Events of this kind take this long to record.
    pub slow_kind: Mutex<Option<(EventKind, StdDuration)>>,
}

impl MemAudit {
    /// Waits (up to 10 s) until `n` events of `kind` are recorded.
    pub async fn wait_for(&self, kind: EventKind, n: usize) -> Vec<AuditEvent> {
        let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
        loop {
            let events = self.of_kind(kind);
            if events.len() >= n || std::time::Instant::now() > deadline {
                return events;
            }
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
    }

    pub fn of_kind(&self, kind: EventKind) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == kind)
            .cloned()
            .collect()
    }

    pub fn all_json(&self) -> String {
        serde_json::to_string(&*self.events.lock().unwrap()).unwrap()
    }
}

impl AuditSink for MemAudit {
    fn record(
        &self,
        event: AuditEvent,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<i64, AuditError>> + Send + '_>>
    {
        let fails = *self.fail_kind.lock().unwrap() == Some(event.kind);
        let slow = match *self.slow_kind.lock().unwrap() {
            Some((kind, delay)) if kind == event.kind => Some(delay),
            _ => None,
        };
        Box::pin(async move {
            if let Some(delay) = slow {
                tokio::time::sleep(delay).await;
            }
            if fails || self.fail.load(Ordering::SeqCst) {
                return Err(AuditError("disk full".into()));
            }
            let mut events = self.events.lock().unwrap();
            events.push(event);
            Ok(events.len() as i64)
        })
    }

    /// Never waits, as the real log's queue: a slow kind lands later, a
    /// failing kind is reported as a stopped log (the outcome is lost).
    fn record_later(&self, event: AuditEvent) -> Result<(), LaterError> {
        if *self.fail_kind.lock().unwrap() == Some(event.kind) || self.fail.load(Ordering::SeqCst) {
            return Err(LaterError::Stopped);
        }
        let slow = match *self.slow_kind.lock().unwrap() {
            Some((kind, delay)) if kind == event.kind => Some(delay),
            _ => None,
        };
        let events = self.events.clone();
        match slow {
            Some(delay) => {
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    events.lock().unwrap().push(event);
                });
            }
            None => events.lock().unwrap().push(event),
        }
        Ok(())
    }
}

/// A grant of "agent-1" for `connection`, with `secret`'s verifier.
pub fn make_grant(
    id: &str,
    secret: &str,
    connection: &str,
    profile: Profile,
    status: GrantStatus,
    ttl: Duration,
) -> Grant {
    let now = sluice_core::clock::now();
    Grant {
        id: id.to_string(),
        subject: "agent-1".into(),
        issuer: "https://issuer.test".into(),
        identity_name: "Agent One".into(),
        identity_kind: "agent".into(),
        identity_groups: Vec::new(),
        connection: connection.to_string(),
        profile,
        rule: "test-rule".into(),
        status,
        reason: "testing".into(),
        ttl_secs: ttl.num_seconds(),
        created_at: now,
        activated_at: Some(now),
        expires_at: now + ttl,
        decided_by: None,
        scram_verifier: ScramVerifier::derive(secret).to_text(),
        native_verifier: native_verifier(secret),
        ssh_key: None,
    }
}
