//! Approvals: a paused request — a pending grant, or one exact statement —
//! waiting for humans. Who may decide, and what the votes add up to.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::identity::Identity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalKind {
    /// A grant whose access rule says `approval = "grant"`.
    Grant,
    /// One statement held by a guardrail whose action is `approve`.
    Statement,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    Expired,
    /// The requester's session ended before anyone decided.
    Withdrawn,
}

/// How far an approval of a statement reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// This statement, this once.
    Once,
    /// Every statement of the same shape (fingerprint) for the rest of the grant.
    Shape,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approve,
    Deny,
}

macro_rules! text_enum {
    ($t:ty { $($v:ident => $s:literal),+ }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)+ _ => None }
            }
        }
    };
}
text_enum!(ApprovalKind { Grant => "grant", Statement => "statement" });
text_enum!(ApprovalStatus { Pending => "pending", Approved => "approved", Denied => "denied", Expired => "expired", Withdrawn => "withdrawn" });
text_enum!(Scope { Once => "once", Shape => "shape" });
text_enum!(Decision { Approve => "approve", Deny => "deny" });

/// One approval request as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub kind: ApprovalKind,
    pub status: ApprovalStatus,
    pub grant_id: String,
    pub connection: String,
    pub requester_subject: String,
    pub requester_issuer: String,
    pub requester_name: String,
    /// The grant's stated reason.
    pub reason: String,
    pub session_id: Option<String>,
    /// The exact statement text (statement approvals).
    pub statement: Option<String>,
    /// Bound parameters in text form, extended protocol only.
    pub parameters: Option<Vec<Option<String>>>,
    /// The statement's analysis (class, tables, functions, reasons).
    pub analysis: Option<serde_json::Value>,
    pub fingerprint: Option<String>,
    /// The guardrail or access rule that asked for approval.
    pub rule: Option<String>,
    pub min_approvals: i64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub scope: Option<Scope>,
}

/// One approver's vote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vote {
    pub approver_subject: String,
    pub approver_issuer: String,
    pub approver_name: String,
    pub decision: Decision,
    pub reason: String,
    pub scope: Scope,
    pub created_at: DateTime<Utc>,
}

/// What the votes so far add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tally {
    /// Not enough approvals yet: `have` of `need`.
    Waiting {
        have: usize,
        need: usize,
    },
    Approved {
        scope: Scope,
    },
    Denied {
        reason: String,
    },
}

/// Counts votes: any deny denies; `need` distinct approvals approve. A shape
/// approval needs every approving vote to say shape (the narrowest wins).
pub fn tally(need: usize, votes: &[Vote]) -> Tally {
    if let Some(deny) = votes.iter().find(|v| v.decision == Decision::Deny) {
        return Tally::Denied {
            reason: deny.reason.clone(),
        };
    }
    let approvals: Vec<&Vote> = votes
        .iter()
        .filter(|v| v.decision == Decision::Approve)
        .collect();
    if approvals.len() < need.max(1) {
        return Tally::Waiting {
            have: approvals.len(),
            need: need.max(1),
        };
    }
    let scope = if approvals.iter().all(|v| v.scope == Scope::Shape) {
        Scope::Shape
    } else {
        Scope::Once
    };
    Tally::Approved { scope }
}

/// Why someone may not vote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAllowed {
    #[error("approving needs membership in an approver group ({0})")]
    NotApprover(String),
    #[error("nobody approves their own request")]
    OwnRequest,
    #[error("approval {id} is already {status}")]
    Closed { id: String, status: &'static str },
}

/// Checks that `who` may vote on `a` now.
pub fn may_decide(config: &Config, who: &Identity, a: &Approval) -> Result<(), NotAllowed> {
    if a.status != ApprovalStatus::Pending {
        return Err(NotAllowed::Closed {
            id: a.id.clone(),
            status: a.status.as_str(),
        });
    }
    if !who.in_any(&config.approvals.approver_groups) {
        return Err(NotAllowed::NotApprover(
            config.approvals.approver_groups.join(", "),
        ));
    }
    if who.same_principal(&a.requester_subject, &a.requester_issuer) {
        return Err(NotAllowed::OwnRequest);
    }
    Ok(())
}

/// A fresh approval id: `a_` and 26 base32 characters.
pub fn new_approval_id() -> String {
    format!("a_{}", &crate::grant::new_grant_id()[2..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(sub: &str, decision: Decision, scope: Scope) -> Vote {
        Vote {
            approver_subject: sub.into(),
            approver_issuer: "i".into(),
            approver_name: sub.into(),
            decision,
            reason: format!("{sub} says so"),
            scope,
            created_at: crate::clock::now(),
        }
    }

    #[test]
    fn n_of_m_and_any_deny() {
        let a = vote("a", Decision::Approve, Scope::Shape);
        let b = vote("b", Decision::Approve, Scope::Once);
        let c = vote("c", Decision::Deny, Scope::Once);
        assert_eq!(
            tally(2, std::slice::from_ref(&a)),
            Tally::Waiting { have: 1, need: 2 }
        );
        assert_eq!(
            tally(2, &[a.clone(), b.clone()]),
            Tally::Approved { scope: Scope::Once }
        );
        assert_eq!(
            tally(1, std::slice::from_ref(&a)),
            Tally::Approved {
                scope: Scope::Shape
            }
        );
        assert_eq!(
            tally(2, &[a, c]),
            Tally::Denied {
                reason: "c says so".into()
            }
        );
        assert_eq!(tally(0, &[]), Tally::Waiting { have: 0, need: 1 });
    }

    #[test]
    fn ids_and_names() {
        let id = new_approval_id();
        assert!(id.starts_with("a_") && id.len() == 28);
        assert_eq!(
            ApprovalStatus::parse("denied"),
            Some(ApprovalStatus::Denied)
        );
        assert_eq!(Scope::Shape.as_str(), "shape");
    }
}
