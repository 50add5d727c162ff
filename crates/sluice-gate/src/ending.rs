//! Why a live session must end, and the future that says when: its grant
//! runs out or is ended (revoked, expired early), an operator ends the
//! session, or the gateway shuts down. Every protocol's session races its
//! traffic against [`end_signal`] and closes with its own words for the
//! reason.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sluice_core::{Grant, GrantStatus};
use tokio::sync::watch;

use crate::control::Control;

/// Why a session was ended from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The grant's time is up.
    Expired,
    /// The grant was ended before its time.
    Revoked,
    /// An operator ended this session (by name).
    Terminated { by: String },
    /// The gateway is stopping.
    Shutdown,
}

impl EndReason {
    /// The word the session's close record carries (`end`).
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::Expired => "expired",
            EndReason::Revoked => "revoked",
            EndReason::Terminated { .. } => "terminated",
            EndReason::Shutdown => "shutdown",
        }
    }

    /// What the client is told, for a session of grant `grant`.
    pub fn message(&self, grant: &str) -> String {
        match self {
            EndReason::Expired => format!("sluice: grant {grant} expired; request a new one"),
            EndReason::Revoked => format!("sluice: grant {grant} was revoked"),
            EndReason::Terminated { by } => {
                format!("sluice: this session was ended by {by}; the grant itself is unchanged")
            }
            EndReason::Shutdown => {
                "sluice: this gateway is shutting down; connect again to reach another".into()
            }
        }
    }
}

/// Resolves when a session must end.
pub type EndSignal = Pin<Box<dyn Future<Output = EndReason> + Send>>;

/// The end of a session of `grant`: expiry, the control plane's news that
/// the grant ended (then re-read to tell revoked from expired), `terminated`
/// (an operator, see `sluice_core::live`), or `shutdown` turning true.
pub fn end_signal(
    control: Arc<dyn Control>,
    grant: &Grant,
    mut shutdown: watch::Receiver<bool>,
    terminated: impl Future<Output = String> + Send + 'static,
) -> EndSignal {
    let id = grant.id.clone();
    let left = (grant.expires_at - sluice_core::clock::now())
        .to_std()
        .unwrap_or_default();
    let ended = control.ended(&id);
    Box::pin(async move {
        let stopping = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        tokio::select! {
            _ = tokio::time::sleep(left) => return EndReason::Expired,
            _ = stopping => return EndReason::Shutdown,
            by = terminated => {
                tracing::info!(by = %by, "session ended by an operator");
                return EndReason::Terminated { by };
            }
            _ = ended => {}
        }
        // Ended early: say whether it ran out or was revoked.
        match control.grant(&id).await {
            Ok(Some(g))
                if g.status == GrantStatus::Expired
                    || g.expires_at <= sluice_core::clock::now() =>
            {
                EndReason::Expired
            }
            _ => EndReason::Revoked,
        }
    })
}
