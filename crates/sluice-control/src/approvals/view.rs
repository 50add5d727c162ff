//! Approvals as JSON.

use serde_json::{Value, json};
use sluice_core::approval::{Approval, Vote};

use crate::Shared;

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The approval with its votes and the page where an approver decides it.
pub fn approval_json(state: &Shared, a: &Approval, votes: &[Vote]) -> Value {
    let approvals = votes
        .iter()
        .filter(|v| v.decision == sluice_core::approval::Decision::Approve)
        .count();
    json!({
        "id": a.id,
        "kind": a.kind,
        "status": a.status,
        "grant_id": a.grant_id,
        "connection": a.connection,
        "requester": { "subject": a.requester_subject, "issuer": a.requester_issuer, "name": a.requester_name },
        "reason": a.reason,
        "session_id": a.session_id,
        "statement": a.statement,
        "parameters": a.parameters,
        "analysis": a.analysis,
        "fingerprint": a.fingerprint,
        "rule": a.rule,
        "min_approvals": a.min_approvals,
        "approvals": approvals,
        "votes": votes.iter().map(|v| json!({
            "approver": v.approver_name,
            "decision": v.decision,
            "reason": v.reason,
            "scope": v.scope,
            "at": rfc3339(v.created_at),
        })).collect::<Vec<_>>(),
        "created_at": rfc3339(a.created_at),
        "expires_at": rfc3339(a.expires_at),
        "decided_at": a.decided_at.map(rfc3339),
        "decided_by": a.decided_by,
        "decision_reason": a.decision_reason,
        "scope": a.scope,
        "url": format!("{}/ui/approvals/{}", state.config.server.public_url(), a.id),
    })
}
