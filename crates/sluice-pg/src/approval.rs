//! Statements held for a human's approval.
//!
//! A guardrail whose action is `approve` holds the request: Sluice opens an
//! approval (with the exact statement, its bound parameters and its
//! analysis), tells the client with a NOTICE where to approve it, and waits.
//! Only this session waits: its backend connection stays idle and other
//! sessions go on. Approved, the request is forwarded as if allowed; denied
//! or timed out, it is refused like any denial (42501, the session stays
//! usable, transaction semantics as for a denial).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_core::Grant;
use sluice_core::guardrail::Verdict;
use tokio::sync::mpsc;

use crate::authority::{ApprovalOutcome, Authority, StatementApproval};
use crate::errors::ClientError;
use crate::messages;
use crate::policy::{Checked, describe};

/// What a session needs to hold statements.
pub struct Approvals {
    pub authority: Arc<dyn Authority>,
    pub grant: Grant,
    /// NoticeResponses to the client, written by the pump between frames.
    pub notices: mpsc::Sender<Bytes>,
    pub timeout: Duration,
}

/// How a held request ended.
pub enum Held {
    /// Run it. `approval` names the approval (or the shape approval) for the record.
    Approved { approval: serde_json::Value },
    /// Refuse it with this error.
    Refused {
        error: ClientError,
        approval: serde_json::Value,
    },
}

impl Approvals {
    /// Holds the request until an approver decides, or the wait ends.
    pub async fn hold(
        &self,
        session_id: &str,
        items: &[Arc<Checked>],
        verdict: &Verdict,
        parameters: Option<Vec<Option<String>>>,
    ) -> Held {
        let fingerprint = fingerprint(items);
        if self
            .authority
            .shape_approved(&self.grant.id, &fingerprint)
            .await
        {
            return Held::Approved {
                approval: serde_json::json!({ "shape": fingerprint }),
            };
        }
        let request = StatementApproval {
            grant: self.grant.clone(),
            session_id: session_id.to_string(),
            statement: items
                .iter()
                .map(|c| c.sql.as_str())
                .collect::<Vec<_>>()
                .join(";\n"),
            parameters,
            analysis: serde_json::json!({
                "statements": items.iter().map(|c| describe(c)).collect::<Vec<_>>(),
                "reason": verdict.reason,
            }),
            fingerprint,
            rule: verdict.rule.clone(),
        };
        let ticket = match self.authority.request_approval(request).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "could not open an approval; statement refused");
                return Held::Refused {
                    error: ClientError::permission_denied(format!(
                        "{} (approval required, but no approval could be opened)",
                        verdict.client_message()
                    )),
                    approval: serde_json::Value::Null,
                };
            }
        };
        let wait = humantime::format_duration(self.timeout);
        let notice = format!(
            "sluice: statement held for approval {id} ({rule}); approve at {url} or with `sluice approvals approve {id}`; waiting up to {wait}",
            id = ticket.id,
            rule = verdict.rule,
            url = ticket.url,
        );
        // The client may not read notices at all; never wait on it.
        let _ = self.notices.try_send(messages::notice_response(&notice));
        let outcome = self
            .authority
            .await_approval(&ticket.id, self.timeout)
            .await;
        held(&ticket.id, outcome, wait)
    }
}

fn held(id: &str, outcome: ApprovalOutcome, wait: humantime::FormattedDuration) -> Held {
    match outcome {
        ApprovalOutcome::Approved { by } => Held::Approved {
            approval: serde_json::json!({ "id": id, "by": by, "outcome": "approved" }),
        },
        ApprovalOutcome::Denied { by, reason } => Held::Refused {
            error: ClientError::permission_denied(format!(
                "sluice: statement denied by approver {by}: {reason}"
            )),
            approval: serde_json::json!({ "id": id, "by": by, "outcome": "denied", "reason": reason }),
        },
        ApprovalOutcome::TimedOut => Held::Refused {
            error: ClientError::permission_denied(format!(
                "sluice: approval {id} was not granted within {wait}; the statement did not run"
            )),
            approval: serde_json::json!({ "id": id, "outcome": "timed out" }),
        },
    }
}

/// The request's shape: its statements' fingerprints.
fn fingerprint(items: &[Arc<Checked>]) -> String {
    items
        .iter()
        .map(|c| c.fingerprint.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
