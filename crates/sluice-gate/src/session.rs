//! A session's record and its place in the gateway: the events that open,
//! close or refuse it (the same for every protocol), its place on the live
//! list and in `sluice_sessions_live`, and its id.

use std::sync::Arc;

use rand::RngCore;
use sluice_core::Grant;
use sluice_core::audit::detail::{SessionClosed, SessionOpened, SessionRejected};
use sluice_core::audit::{AuditEvent, AuditSink, EventKind};
use sluice_core::live::{LiveSession, LiveSessions, Open};
use sluice_core::metrics::{ConnProfile, LiveSession as Counted, Metrics};

/// Longest cause kept in a `session.rejected` event.
const MAX_CAUSE: usize = 500;

/// A random session id: `s_` and 32 hex characters (128 bits).
pub fn new_session_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("s_{hex}")
}

/// Writes one session's lifecycle events.
#[derive(Clone)]
pub struct SessionRecord {
    audit: Arc<dyn AuditSink>,
    grant_id: String,
    connection: String,
    session_id: String,
}

impl SessionRecord {
    pub fn new(audit: Arc<dyn AuditSink>, grant: &Grant, session_id: &str) -> SessionRecord {
        SessionRecord {
            audit,
            grant_id: grant.id.clone(),
            connection: grant.connection.clone(),
            session_id: session_id.to_string(),
        }
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// An event about this session.
    pub fn event(&self, kind: EventKind) -> AuditEvent {
        AuditEvent::new(kind)
            .grant(&self.grant_id)
            .connection(&self.connection)
            .session(&self.session_id)
    }

    /// `session.opened`, durable before the session reads its first
    /// request. Its `seq` is 0 (the journal recognises events by session,
    /// kind and number).
    pub async fn opened(&self, detail: &SessionOpened) {
        self.durable(self.event(EventKind::SessionOpened).with(detail))
            .await;
    }

    /// `session.closed`, after the session's outcomes: a `seq` after its
    /// requests', and how it ended.
    pub async fn closed(&self, detail: &SessionClosed) {
        self.durable(self.event(EventKind::SessionClosed).with(detail))
            .await;
    }

    /// `session.rejected`: the session did not open, for `reason` (client
    /// words) and, for the operator, `cause` (never a credential).
    pub async fn rejected(&self, reason: &str, cause: Option<&str>) {
        let detail = SessionRejected {
            reason: reason.to_string(),
            cause: cause.map(|c| truncated(c, MAX_CAUSE)),
            ..SessionRejected::default()
        };
        let event = self.event(EventKind::SessionRejected).with(&detail);
        if let Err(e) = self.audit.record(event).await {
            tracing::error!(error = %e, event = "session.rejected", "audit write failed");
        }
    }

    async fn durable(&self, event: AuditEvent) {
        let kind = event.kind.as_str();
        if let Err(e) = self.audit.record_durable(event).await {
            tracing::error!(error = %e, event = kind, "audit write failed");
        }
    }
}

fn truncated(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// A session's place on the live list and in the live gauge, for as long
/// as it is held.
pub struct Presence {
    listed: Open,
    _counted: Counted,
}

impl Presence {
    /// Lists an open session of `grant` served by `protocol`.
    pub fn enter(
        live: &Arc<LiveSessions>,
        metrics: &Metrics,
        grant: &Grant,
        session_id: &str,
        protocol: &'static str,
        client_addr: String,
    ) -> Presence {
        let counted = Counted::open(metrics, &ConnProfile::new(&grant.connection, grant.profile));
        let listed = live.open(LiveSession {
            id: session_id.to_string(),
            grant_id: grant.id.clone(),
            connection: grant.connection.clone(),
            profile: grant.profile,
            identity: grant.identity_name.clone(),
            client_addr,
            protocol,
            opened_at: sluice_core::clock::now(),
        });
        Presence {
            listed,
            _counted: counted,
        }
    }

    /// Resolves with who asked, once an operator ends this session.
    pub fn terminated(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        self.listed.ended()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_cut_on_a_character_boundary() {
        let s = "é".repeat(300);
        let t = truncated(&s, 501);
        assert!(t.len() <= 501 && s.starts_with(&t));
        assert_eq!(truncated("short", 500), "short");
    }

    #[test]
    fn session_ids_are_128_random_bits() {
        let a = new_session_id();
        assert_eq!(a.len(), 34);
        assert!(a.starts_with("s_"));
        assert_ne!(a, new_session_id());
    }
}
