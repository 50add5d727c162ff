//! The protocol adapters' view of the control plane (the gate's `Control`
//! trait): grants from the store, token logins through the same
//! verification and issuing path as the API, approvals of held requests,
//! and the end of a grant as soon as any gateway records it.

use std::net::SocketAddr;
use std::time::Duration;

use crate::Shared;
use crate::approvals::{self, Outcome, StatementRequest};
use futures::future::BoxFuture;
use sluice_core::Grant;
use sluice_core::access::{self, AccessRequest};
use sluice_gate::{
    ApprovalOutcome, ApprovalRequest, ApprovalTicket, Control, ControlError, LoginRefused,
};

/// The control plane as the gate sees it.
pub struct GateControl {
    pub state: Shared,
}

/// How often a live session re-reads its grant while the change feed is
/// down (changes made here, and through the feed by other gateways,
/// arrive at once).
const RECHECK: Duration = Duration::from_secs(2);
/// The same while the feed is up: only a fallback.
const RECHECK_FED: Duration = Duration::from_secs(10);

/// Longest a login waits for its grant from the store.
const GRANT_LOOKUP: Duration = Duration::from_secs(4);

impl Control for GateControl {
    fn grant(&self, id: &str) -> BoxFuture<'_, Result<Option<Grant>, ControlError>> {
        let id = id.to_string();
        Box::pin(async move {
            // A login waits for this: a store that does not answer is a
            // clear refusal within the client's auth timeout, not a hang.
            match tokio::time::timeout(GRANT_LOOKUP, self.state.store.grant(&id)).await {
                Ok(found) => found.map_err(|e| ControlError(e.to_string())),
                Err(_) => Err(ControlError(format!(
                    "the store did not answer a grant lookup in {GRANT_LOOKUP:?}"
                ))),
            }
        })
    }

    fn grant_from_token(
        &self,
        token: &str,
        connection: &str,
        client_addr: SocketAddr,
    ) -> BoxFuture<'_, Result<Grant, LoginRefused>> {
        let token = token.to_string();
        let connection = connection.to_string();
        Box::pin(async move {
            let state = &self.state;
            let who = crate::auth::authenticate(state, &token)
                .await
                .map_err(|e| LoginRefused::new(e.message))?;
            let ask = AccessRequest {
                connection: &connection,
                ttl: None,
                profile: None,
            };
            // A token login never creates a pending grant: those need an
            // approver, so they go through `sluice grant request`.
            if let Ok(d) = access::decide(&state.config, &who, &ask)
                && d.needs_approval
            {
                return Err(LoginRefused::new(format!(
                    "connection {connection:?} needs an approved grant: request one with `sluice grant request {connection}`"
                )));
            }
            let reason = format!("token login from {client_addr}");
            crate::issue::issue(state, &who, &ask, &reason, None)
                .await
                .map(|issued| issued.grant)
                .map_err(|e| LoginRefused::new(e.message))
        })
    }

    fn ended(&self, grant_id: &str) -> BoxFuture<'static, ()> {
        let state = self.state.clone();
        let id = grant_id.to_string();
        Box::pin(async move {
            let mut changes = state.changes.subscribe();
            loop {
                tokio::select! {
                    change = changes.recv() => match change {
                        // The store decides: an announcement only wakes us
                        // (one forged on the feed cannot end a session).
                        Ok(c) if c.id == id && c.status.is_final() => {}
                        Ok(_) => continue,
                        // Missed some changes: fall through to a store read.
                        Err(_) => {}
                    },
                    _ = tokio::time::sleep(if state.fleet.feed_ok() { RECHECK_FED } else { RECHECK }) => {}
                }
                match state.store.grant(&id).await {
                    Ok(Some(g)) if g.usable_at(sluice_core::clock::now()) => {}
                    Ok(_) => return,
                    // Store unreachable: keep the session; the proxy still
                    // ends it at `expires_at` on its own.
                    Err(_) => {}
                }
            }
        })
    }

    fn shape_approved(&self, grant_id: &str, fingerprint: &str) -> BoxFuture<'_, bool> {
        let (grant_id, fingerprint) = (grant_id.to_string(), fingerprint.to_string());
        Box::pin(
            async move { approvals::shape_approved(&self.state, &grant_id, &fingerprint).await },
        )
    }

    fn request_approval(
        &self,
        r: ApprovalRequest,
    ) -> BoxFuture<'_, Result<ApprovalTicket, ControlError>> {
        Box::pin(async move {
            let request = StatementRequest {
                grant: r.grant,
                session_id: r.session_id,
                statement: r.statement,
                parameters: r.parameters,
                analysis: r.analysis,
                fingerprint: r.fingerprint,
                rule: r.rule,
            };
            let a = approvals::open_for_statement(&self.state, request)
                .await
                .map_err(|e| ControlError(e.message))?;
            let url = format!(
                "{}/ui/approvals/{}",
                self.state.config.server.public_url(),
                a.id
            );
            Ok(ApprovalTicket { id: a.id, url })
        })
    }

    fn withdraw_approval(&self, id: &str) -> BoxFuture<'_, ()> {
        let id = id.to_string();
        Box::pin(async move { approvals::withdraw(&self.state, &id).await })
    }

    fn await_approval(&self, id: &str, timeout: Duration) -> BoxFuture<'_, ApprovalOutcome> {
        let id = id.to_string();
        Box::pin(async move {
            match approvals::wait(&self.state, &id, timeout).await {
                Outcome::Approved { by, .. } => ApprovalOutcome::Approved { by },
                Outcome::Denied { by, reason } => ApprovalOutcome::Denied { by, reason },
                Outcome::TimedOut => ApprovalOutcome::TimedOut,
            }
        })
    }
}
