//! Audit events: what happened, to whom, decided by which rule. The chain,
//! storage and verification live in `sluice-audit`; this is only the noun
//! and the sink every layer writes through.

pub mod detail;

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

use crate::identity::Identity;

/// What kind of thing happened. The dotted names are stable: exports and
/// SIEM searches depend on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "config.loaded")]
    ConfigLoaded,
    #[serde(rename = "token.rejected")]
    TokenRejected,
    #[serde(rename = "grant.requested")]
    GrantRequested,
    #[serde(rename = "grant.denied")]
    GrantDenied,
    #[serde(rename = "grant.activated")]
    GrantActivated,
    #[serde(rename = "grant.expired")]
    GrantExpired,
    #[serde(rename = "grant.revoked")]
    GrantRevoked,
    #[serde(rename = "session.rejected")]
    SessionRejected,
    #[serde(rename = "session.opened")]
    SessionOpened,
    #[serde(rename = "session.closed")]
    SessionClosed,
    /// An operator ended a live session (the web page's live view).
    #[serde(rename = "session.terminated")]
    SessionTerminated,
    #[serde(rename = "statement.allowed")]
    StatementAllowed,
    #[serde(rename = "statement.denied")]
    StatementDenied,
    /// The outcome of a statement that was allowed and forwarded: rows,
    /// duration, and the backend's error code and primary message if any.
    #[serde(rename = "approval.requested")]
    ApprovalRequested,
    #[serde(rename = "approval.voted")]
    ApprovalVoted,
    #[serde(rename = "approval.approved")]
    ApprovalApproved,
    #[serde(rename = "approval.denied")]
    ApprovalDenied,
    #[serde(rename = "approval.expired")]
    ApprovalExpired,
    /// A held statement's session ended before a decision.
    #[serde(rename = "approval.withdrawn")]
    ApprovalWithdrawn,
    #[serde(rename = "approval.notified")]
    ApprovalNotified,
    #[serde(rename = "statement.completed")]
    StatementCompleted,
    /// The first rows of a statement's result exactly as the client
    /// received them (after masking), when the connection's
    /// `record_results` asks for rows: `{seq, index, columns, rows,
    /// truncated}`. Replay shows them as the client saw them.
    #[serde(rename = "statement.results")]
    StatementResults,
    /// What an interactive terminal session showed and was sent, in
    /// timed chunks (asciicast v2 events): `{seq, width, height, term,
    /// events: [[seconds, "o"|"i"|"r", data]…]}`.
    #[serde(rename = "session.terminal")]
    SessionTerminal,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ConfigLoaded => "config.loaded",
            EventKind::TokenRejected => "token.rejected",
            EventKind::GrantRequested => "grant.requested",
            EventKind::GrantDenied => "grant.denied",
            EventKind::GrantActivated => "grant.activated",
            EventKind::GrantExpired => "grant.expired",
            EventKind::GrantRevoked => "grant.revoked",
            EventKind::SessionRejected => "session.rejected",
            EventKind::SessionOpened => "session.opened",
            EventKind::SessionClosed => "session.closed",
            EventKind::SessionTerminated => "session.terminated",
            EventKind::StatementAllowed => "statement.allowed",
            EventKind::StatementDenied => "statement.denied",
            EventKind::ApprovalRequested => "approval.requested",
            EventKind::ApprovalVoted => "approval.voted",
            EventKind::ApprovalApproved => "approval.approved",
            EventKind::ApprovalDenied => "approval.denied",
            EventKind::ApprovalExpired => "approval.expired",
            EventKind::ApprovalWithdrawn => "approval.withdrawn",
            EventKind::ApprovalNotified => "approval.notified",
            EventKind::StatementCompleted => "statement.completed",
            EventKind::StatementResults => "statement.results",
            EventKind::SessionTerminal => "session.terminal",
        }
    }
}

/// Who caused an event: a verified identity, or Sluice itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub subject: String,
    pub issuer: String,
    pub name: String,
    pub kind: String,
}

impl Actor {
    /// Sluice's own processes (the sweeper, config loading).
    pub fn system(process: &str) -> Self {
        Actor {
            subject: process.into(),
            issuer: "sluice".into(),
            name: process.into(),
            kind: "system".into(),
        }
    }
}

impl From<&Identity> for Actor {
    fn from(i: &Identity) -> Self {
        Actor {
            subject: i.subject.clone(),
            issuer: i.issuer.clone(),
            name: i.name.clone(),
            kind: i.kind.as_str().into(),
        }
    }
}

/// One event before it is given a place in the chain. `detail` must never
/// hold a credential, a grant secret or a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub kind: EventKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default)]
    pub detail: serde_json::Value,
}

impl AuditEvent {
    pub fn new(kind: EventKind) -> Self {
        AuditEvent {
            kind,
            actor: None,
            grant_id: None,
            connection: None,
            session_id: None,
            detail: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = Some(actor);
        self
    }

    pub fn grant(mut self, id: &str) -> Self {
        self.grant_id = Some(id.into());
        self
    }

    pub fn connection(mut self, name: &str) -> Self {
        self.connection = Some(name.into());
        self
    }

    pub fn session(mut self, id: &str) -> Self {
        self.session_id = Some(id.into());
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// The detail as one of the typed details of [`detail`].
    pub fn with(self, detail: &impl Serialize) -> Self {
        self.detail(detail::to_value(detail))
    }
}

/// The failure of an audit write. Callers fail closed on it: an action whose
/// record cannot be written does not happen.
#[derive(Debug, thiserror::Error)]
#[error("audit log unavailable: {0}")]
pub struct AuditError(pub String);

/// Where every layer sends its events. `record` returns once the event is
/// durable, with its sequence number.
pub trait AuditSink: Send + Sync {
    fn record(
        &self,
        event: AuditEvent,
    ) -> Pin<Box<dyn Future<Output = Result<i64, AuditError>> + Send + '_>>;

    /// Records an event that gates an action (a statement about to be
    /// forwarded): returns once the event is durable, which may be before
    /// it is in the store (the audit log's journal). By default, `record`.
    fn record_durable(
        &self,
        event: AuditEvent,
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + '_>> {
        Box::pin(async move { self.record(event).await.map(|_| ()) })
    }

    /// Queues an event nobody waits for (a statement's outcome, written
    /// after the fact): it is stored with a later group commit, after every
    /// event queued before it, and kept and retried if that commit fails.
    /// Never waits; a full queue hands the event back.
    fn record_later(&self, event: AuditEvent) -> Result<(), LaterError>;
}

/// Why [`AuditSink::record_later`] did not queue an event.
#[derive(Debug)]
pub enum LaterError {
    /// The queue is full; the caller may keep the event and try again.
    Full(Box<AuditEvent>),
    /// The audit log has stopped; the event is lost.
    Stopped,
}
