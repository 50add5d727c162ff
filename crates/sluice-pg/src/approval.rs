//! Statements held for a human's approval.
//!
//! A guardrail whose action is `approve` holds the request: Sluice opens an
//! approval (with the exact statement, its bound parameters and its
//! analysis), tells the client with a NOTICE where to approve it, and waits.
//! Only this session waits: its backend connection stays idle and other
//! sessions go on. Approved, the request is forwarded as if allowed; denied
//! or timed out, it is refused like any denial (42501, the session stays
//! usable, transaction semantics as for a denial). If the session ends
//! while it waits (its client goes, the grant ends), the approval is
//! withdrawn: nothing runs without the client that asked for it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_core::Grant;
use sluice_core::guardrail::{Hold, Verdict};
use tokio::sync::mpsc;

use crate::authority::{ApprovalOutcome, ApprovalTicket, Authority, StatementApproval};
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
    /// Approvals this session opened (or joined), withdrawn when it ends.
    pub opened: std::sync::Mutex<Vec<String>>,
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
        let fingerprint = fingerprint(items, parameters.as_deref());
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
                "shape": shape_note(items),
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
        tracing::info!(approval.id = %ticket.id, rule = %verdict.rule,
            fail_at_once = verdict.hold == Hold::Fail, "statement held for approval");
        if verdict.hold == Hold::Fail {
            return self.fail_at_once(&ticket, verdict).await;
        }
        let wait = humantime::format_duration(self.timeout);
        let notice = format!(
            "sluice: statement held for approval {id} ({rule}); approve at {url} or with `sluice approvals approve {id}`; waiting up to {wait}",
            id = ticket.id,
            rule = verdict.rule,
            url = ticket.url,
        );
        // The client may not read notices at all; never wait on it.
        let _ = self.notices.try_send(messages::notice_response(&notice));
        self.opened
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ticket.id.clone());
        let outcome = self
            .authority
            .await_approval(&ticket.id, self.timeout)
            .await;
        held(&ticket.id, outcome, wait)
    }

    /// A rule with `hold = "fail"`: no wait. An approval already given (to
    /// this statement, on an earlier try) lets it run now; otherwise it is
    /// refused at once with the approval's id and where to decide it. The
    /// approval outlives this session (it belongs to the grant), so the same
    /// statement run again, from any session of the grant, passes once
    /// approved.
    async fn fail_at_once(&self, ticket: &ApprovalTicket, verdict: &Verdict) -> Held {
        let outcome = self
            .authority
            .await_approval(&ticket.id, Duration::ZERO)
            .await;
        match outcome {
            ApprovalOutcome::TimedOut => Held::Refused {
                error: ClientError::permission_denied(format!(
                    "sluice: statement held for approval {id} ({rule}); it did not run. \
                     Approve at {url} or with `sluice approvals approve {id}`; once approved, \
                     run the same statement again and it passes (`sluice approvals wait {id}` \
                     waits for the decision)",
                    id = ticket.id,
                    rule = verdict.rule,
                    url = ticket.url,
                )),
                approval: serde_json::json!({ "id": ticket.id, "outcome": "pending", "url": ticket.url }),
            },
            decided => held(
                &ticket.id,
                decided,
                humantime::format_duration(Duration::ZERO),
            ),
        }
    }
}

impl Drop for Approvals {
    /// The session ended: approvals it opened that nobody decided are
    /// withdrawn, so an approver's later "yes" runs nothing, and approvers
    /// see that the requester is gone.
    fn drop(&mut self) {
        let opened = std::mem::take(self.opened.get_mut().unwrap_or_else(|e| e.into_inner()));
        if opened.is_empty() {
            return;
        }
        let authority = self.authority.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for id in opened {
                    authority.withdraw_approval(&id).await;
                }
            });
        }
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
                "sluice: approval {id} was not granted within {wait}; the statement did not run. \
                 The approval stays open while this session lasts: run the same statement \
                 again to wait for it, or to run it once approved"
            )),
            approval: serde_json::json!({ "id": id, "outcome": "timed out" }),
        },
    }
}

/// The request's shape, as a shape approval admits it: each statement's
/// fingerprint and the kinds of its constants (list and array lengths,
/// NULLs), and the kinds of its bound parameters.
fn fingerprint(items: &[Arc<Checked>], parameters: Option<&[Option<String>]>) -> String {
    let mut parts: Vec<String> = items
        .iter()
        .map(|c| match sluice_sql::approval::shape(&c.sql) {
            Some(s) => s.key,
            None => c.fingerprint.clone(),
        })
        .collect();
    if let Some(params) = parameters {
        let kinds: Vec<String> = params
            .iter()
            .map(|p| sluice_sql::approval::parameter_kind(p.as_deref()))
            .collect();
        parts.push(format!("params:{}", kinds.join(",")));
    }
    parts.join(";")
}

/// What approving the shape would admit, in words for the approver.
fn shape_note(items: &[Arc<Checked>]) -> serde_json::Value {
    let shapes: Vec<_> = items
        .iter()
        .filter_map(|c| sluice_sql::approval::shape(&c.sql))
        .collect();
    let normalized: Vec<&str> = shapes.iter().map(|s| s.normalized.as_str()).collect();
    serde_json::json!({
        "normalized": normalized.join(";\n"),
        "admits": "approving the shape lets this grant run this statement again, without \
                   asking, with other values in the $n places: of the same kinds, with lists \
                   and arrays of the same lengths and NULLs in the same places",
    })
}
