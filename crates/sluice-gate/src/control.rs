//! What a protocol adapter asks of the control plane: grants, the token
//! fallback, the news that a grant has ended, and approvals of held
//! requests. The control plane implements it over the store and the
//! identity verifier; tests use the fake in `sluice-testkit`.

use std::net::SocketAddr;

use futures::future::BoxFuture;
use sluice_core::Grant;

/// The control plane could not answer (the login or request fails closed).
#[derive(Debug, thiserror::Error)]
#[error("the control plane could not answer: {0}")]
pub struct ControlError(pub String);

/// The token fallback was refused. `message` is shown to the client, so it
/// must be client-safe (no token, no internals).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct LoginRefused {
    pub message: String,
}

impl LoginRefused {
    pub fn new(message: impl Into<String>) -> Self {
        LoginRefused {
            message: message.into(),
        }
    }
}

/// A request (a statement, a command, a file operation) a guardrail holds
/// for approval.
#[derive(Debug, Clone)]
pub struct ApprovalRequest {
    pub grant: Grant,
    pub session_id: String,
    /// Exactly what will run: the statement or command text.
    pub statement: String,
    /// Values bound apart from the text (Postgres' extended protocol), as
    /// text for the approver.
    pub parameters: Option<Vec<Option<String>>>,
    /// The analysis: classes, commands, resources, and what approving the
    /// shape admits.
    pub analysis: serde_json::Value,
    /// The shape a shape approval admits.
    pub fingerprint: String,
    /// The guardrail that asked for approval.
    pub rule: String,
}

/// An opened approval: its id and the page where an approver decides.
#[derive(Debug, Clone)]
pub struct ApprovalTicket {
    pub id: String,
    pub url: String,
}

/// How the wait for an approval ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalOutcome {
    Approved { by: String },
    Denied { by: String, reason: String },
    TimedOut,
}

/// A protocol adapter's view of the control plane.
pub trait Control: Send + Sync + 'static {
    /// The grant named by a login's user name (grant ids look like `g_` and
    /// 26 base32 characters), or `None`.
    fn grant(&self, id: &str) -> BoxFuture<'_, Result<Option<Grant>, ControlError>>;

    /// Fallback login: the OIDC token given as the password (over TLS only).
    /// Verifies it and creates an active grant on the fly for `connection`
    /// when the access rule needs no approval; a client-safe refusal
    /// otherwise.
    fn grant_from_token(
        &self,
        token: &str,
        connection: &str,
        client_addr: SocketAddr,
    ) -> BoxFuture<'_, Result<Grant, LoginRefused>>;

    /// Resolves when the grant stops being usable (revoked, expired, …). The
    /// session also sleeps until `expires_at` itself.
    fn ended(&self, grant_id: &str) -> BoxFuture<'static, ()>;

    /// True when statements of this shape were approved for the rest of the
    /// grant. Without approvals, never.
    fn shape_approved(&self, _grant_id: &str, _fingerprint: &str) -> BoxFuture<'_, bool> {
        Box::pin(async { false })
    }

    /// Opens an approval for a held request. Without approvals, an error:
    /// the request is then refused as "approval required".
    fn request_approval(
        &self,
        _request: ApprovalRequest,
    ) -> BoxFuture<'_, Result<ApprovalTicket, ControlError>> {
        Box::pin(async { Err(ControlError("approvals are not available".into())) })
    }

    /// Waits for the approval's decision, at most `timeout`.
    fn await_approval(
        &self,
        _id: &str,
        _timeout: std::time::Duration,
    ) -> BoxFuture<'_, ApprovalOutcome> {
        Box::pin(async { ApprovalOutcome::TimedOut })
    }

    /// Closes a pending approval whose session ended before a decision, so
    /// that it can never run later and approvers see nobody waits for it.
    fn withdraw_approval(&self, _id: &str) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// True when `user` has the shape of a grant id: `g_` and 26 base32 chars.
pub fn is_grant_id(user: &str) -> bool {
    user.len() == 28
        && user.starts_with("g_")
        && user[2..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_id_shape() {
        assert!(is_grant_id(&sluice_core::grant::new_grant_id()));
        assert!(!is_grant_id("postgres"));
        assert!(!is_grant_id("g_ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
        assert!(!is_grant_id("g_abc"));
    }
}
