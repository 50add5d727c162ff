//! Requests held for a human's approval.
//!
//! A guardrail whose action is `approve` holds the request: the gate opens
//! an approval (with exactly what will run, its bound values and its
//! analysis), tells the client where to approve it (a NOTICE on Postgres,
//! a line on stderr over SSH) and waits. Only this session waits; others
//! go on. Approved, the request is forwarded as if allowed; denied or timed
//! out, it is refused like any denial and the session stays usable. A rule
//! with `hold = "fail"` does not wait: the request fails at once naming the
//! approval, and passes when run again once approved. If the session ends
//! while an approval it opened is undecided, the approval is withdrawn:
//! nothing runs without the client that asked for it.

use std::sync::Arc;
use std::time::Duration;

use sluice_core::Grant;
use sluice_core::guardrail::{Hold, Verdict};

use crate::control::{ApprovalOutcome, ApprovalRequest, ApprovalTicket, Control};
use crate::decide::{Denial, Subject};

/// Tells the client something while its request waits (never blocks).
pub type Tell = Box<dyn Fn(String) + Send + Sync>;

/// What a session needs to hold requests.
pub struct Holds {
    pub control: Arc<dyn Control>,
    pub grant: Grant,
    /// How the client is told a request is held.
    pub tell: Tell,
    /// How long a held request waits (`[approvals] statement_timeout`).
    pub timeout: Duration,
    /// Approvals this session opened (or joined), withdrawn when it ends.
    opened: std::sync::Mutex<Vec<String>>,
}

/// How a held request ended.
pub enum Held {
    /// Run it. `approval` names the approval (or the shape approval) for the record.
    Approved { approval: serde_json::Value },
    /// Refuse it.
    Refused {
        denial: Denial,
        approval: serde_json::Value,
    },
}

impl Holds {
    pub fn new(control: Arc<dyn Control>, grant: Grant, tell: Tell, timeout: Duration) -> Holds {
        Holds {
            control,
            grant,
            tell,
            timeout,
            opened: Default::default(),
        }
    }

    /// Holds the request until an approver decides, or the wait ends.
    pub async fn hold(
        &self,
        session_id: &str,
        subject: &dyn Subject,
        verdict: &Verdict,
        parameters: Option<Vec<Option<String>>>,
    ) -> Held {
        let (fingerprint, admits) = subject.shape(parameters.as_deref());
        if self
            .control
            .shape_approved(&self.grant.id, &fingerprint)
            .await
        {
            return Held::Approved {
                approval: serde_json::json!({ "shape": fingerprint }),
            };
        }
        let request = ApprovalRequest {
            grant: self.grant.clone(),
            session_id: session_id.to_string(),
            statement: subject.text(),
            parameters,
            analysis: serde_json::json!({
                "statements": subject
                    .describe()
                    .iter()
                    .map(sluice_core::audit::detail::to_value)
                    .collect::<Vec<_>>(),
                "reason": verdict.reason,
                "shape": admits,
            }),
            fingerprint,
            rule: verdict.rule.clone(),
        };
        let ticket = match self.control.request_approval(request).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "could not open an approval; request refused");
                return Held::Refused {
                    denial: Denial::refused(format!(
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
        (self.tell)(format!(
            "sluice: statement held for approval {id} ({rule}); approve at {url} or with `sluice approvals approve {id}`; waiting up to {wait}",
            id = ticket.id,
            rule = verdict.rule,
            url = ticket.url,
        ));
        self.opened
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ticket.id.clone());
        let outcome = self.control.await_approval(&ticket.id, self.timeout).await;
        held(&ticket.id, outcome, wait)
    }

    /// A rule with `hold = "fail"`: no wait. An approval already given (to
    /// this request, on an earlier try) lets it run now; otherwise it is
    /// refused at once with the approval's id and where to decide it. The
    /// approval outlives this session (it belongs to the grant), so the same
    /// request run again, from any session of the grant, passes once
    /// approved.
    async fn fail_at_once(&self, ticket: &ApprovalTicket, verdict: &Verdict) -> Held {
        let outcome = self
            .control
            .await_approval(&ticket.id, Duration::ZERO)
            .await;
        match outcome {
            ApprovalOutcome::TimedOut => Held::Refused {
                denial: Denial::refused(format!(
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

impl Drop for Holds {
    /// The session ended: approvals it opened that nobody decided are
    /// withdrawn, so an approver's later "yes" runs nothing, and approvers
    /// see that the requester is gone.
    fn drop(&mut self) {
        let opened = std::mem::take(self.opened.get_mut().unwrap_or_else(|e| e.into_inner()));
        if opened.is_empty() {
            return;
        }
        let control = self.control.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for id in opened {
                    control.withdraw_approval(&id).await;
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
            denial: Denial::refused(format!(
                "sluice: statement denied by approver {by}: {reason}"
            )),
            approval: serde_json::json!({ "id": id, "by": by, "outcome": "denied", "reason": reason }),
        },
        ApprovalOutcome::TimedOut => Held::Refused {
            denial: Denial::refused(format!(
                "sluice: approval {id} was not granted within {wait}; the statement did not run. \
                 The approval stays open while this session lasts: run the same statement \
                 again to wait for it, or to run it once approved"
            )),
            approval: serde_json::json!({ "id": id, "outcome": "timed out" }),
        },
    }
}
