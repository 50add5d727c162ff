//! Approvals: opening them (for pending grants and held statements),
//! counting votes, applying the outcome, and waiting for it. The HTTP
//! routes, the Postgres listener and the sweeper all go through here.

mod view;

use std::time::Duration;

use serde_json::{Value, json};
use sluice_core::approval::{
    Approval, ApprovalKind, ApprovalStatus, Decision, NotAllowed, Scope, Tally, Vote, may_decide,
    new_approval_id, tally,
};
use sluice_core::audit::{Actor, AuditEvent, EventKind};
use sluice_core::{Grant, GrantStatus, Identity};

use crate::Shared;
use crate::error::Error;

pub use view::approval_json;

/// A statement held for approval, as the Postgres listener describes it.
#[derive(Debug, Clone)]
pub struct StatementRequest {
    pub grant: Grant,
    pub session_id: String,
    pub statement: String,
    pub parameters: Option<Vec<Option<String>>>,
    pub analysis: Value,
    pub fingerprint: String,
    pub rule: String,
}

/// How a wait for a statement approval ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Approved { by: String, scope: Scope },
    Denied { by: String, reason: String },
    TimedOut,
}

/// An approval's status changed; SSE streams and waiting sessions listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalChange {
    pub id: String,
    pub status: ApprovalStatus,
}

fn announce(state: &Shared, a: &Approval) {
    let _ = state.approval_changes.send(ApprovalChange {
        id: a.id.clone(),
        status: a.status,
    });
    crate::fleet::bus::publish(
        state,
        crate::fleet::bus::Change::Approval {
            id: a.id.clone(),
            status: a.status,
        },
    );
}

fn base(state: &Shared, kind: ApprovalKind, grant: &Grant, wait: Duration) -> Approval {
    let now = sluice_core::clock::now();
    Approval {
        id: new_approval_id(),
        kind,
        status: ApprovalStatus::Pending,
        grant_id: grant.id.clone(),
        connection: grant.connection.clone(),
        requester_subject: grant.subject.clone(),
        requester_issuer: grant.issuer.clone(),
        requester_name: grant.identity_name.clone(),
        reason: grant.reason.clone(),
        session_id: None,
        statement: None,
        parameters: None,
        analysis: None,
        fingerprint: None,
        rule: Some(grant.rule.clone()),
        min_approvals: state.config.approvals.min_approvals as i64,
        created_at: now,
        expires_at: now + chrono::Duration::from_std(wait).unwrap_or_default(),
        decided_at: None,
        decided_by: None,
        decision_reason: None,
        scope: None,
    }
}

/// Opens the approval of a pending grant; it lapses with the grant.
/// What an approver sees of the grant asked for: the profile, the life
/// asked for and the life it will have (the rule's cap).
pub async fn open_for_grant(
    state: &Shared,
    grant: &Grant,
    requested_ttl: Option<Duration>,
    max_ttl: Duration,
) -> Result<Approval, Error> {
    let mut a = base(state, ApprovalKind::Grant, grant, Duration::ZERO);
    a.expires_at = grant.expires_at;
    a.rule = Some(grant.rule.clone());
    a.analysis = Some(serde_json::json!({
        "profile": grant.profile.as_str(),
        "ttl_requested_secs": requested_ttl.map(|t| t.as_secs()),
        "ttl_secs": grant.ttl_secs,
        "max_ttl_secs": max_ttl.as_secs(),
    }));
    open(state, a).await
}

/// Opens the approval of one held statement, or returns the one already
/// open for exactly this statement and these parameters under this grant
/// (pending, or approved once and unused): a client that retries after a
/// timeout waits on, or runs on, the same approval. A statement approval
/// lives as long as its grant; the session waits for it at most
/// `statement_timeout`.
pub async fn open_for_statement(state: &Shared, req: StatementRequest) -> Result<Approval, Error> {
    if let Some(open) = state
        .store
        .open_statement_approval(&req.grant.id, &req.statement, req.parameters.as_deref())
        .await?
    {
        tracing::info!(approval.id = %open.id, grant.id = %open.grant_id, "statement approval reused by a retry");
        return Ok(open);
    }
    let mut a = base(state, ApprovalKind::Statement, &req.grant, Duration::ZERO);
    a.expires_at = req.grant.expires_at;
    a.session_id = Some(req.session_id);
    a.statement = Some(req.statement);
    a.parameters = req.parameters;
    a.analysis = Some(req.analysis);
    a.fingerprint = Some(req.fingerprint);
    a.rule = Some(req.rule);
    open(state, a).await
}

/// An event about approval `a`, naming its grant, connection and (for a
/// held statement) session, so a replay and a SIEM can join every step of
/// an approval to the session that waited on it.
fn event_about(kind: EventKind, a: &Approval) -> AuditEvent {
    let event = AuditEvent::new(kind)
        .grant(&a.grant_id)
        .connection(&a.connection);
    match &a.session_id {
        Some(s) => event.session(s),
        None => event,
    }
}

async fn open(state: &Shared, a: Approval) -> Result<Approval, Error> {
    let event = event_about(EventKind::ApprovalRequested, &a)
        .actor(Actor {
            subject: a.requester_subject.clone(),
            issuer: a.requester_issuer.clone(),
            name: a.requester_name.clone(),
            kind: "requester".into(),
        })
        .detail(json!({
            "approval_id": a.id,
            "kind": a.kind,
            "rule": a.rule,
            "statement": a.statement,
            "fingerprint": a.fingerprint,
            "analysis": a.analysis,
            "min_approvals": a.min_approvals,
            "expires_at": a.expires_at,
        }));
    state.audit.append(event).await?;
    state.store.insert_approval(&a).await?;
    announce(state, &a);
    crate::notify::approval_opened(state, &a);
    tracing::info!(approval.id = %a.id, grant.id = %a.grant_id, kind = a.kind.as_str(), "approval requested");
    Ok(a)
}

/// True when statements of this shape were approved for the grant.
pub async fn shape_approved(state: &Shared, grant_id: &str, fingerprint: &str) -> bool {
    state
        .store
        .shape_approved(grant_id, fingerprint)
        .await
        .unwrap_or(false)
}

/// Waits until the approval is decided or `timeout` passes. The approval
/// stays open after a timeout (a retry waits on it again); an approval of
/// one statement, once, is used by the first session that runs on it.
pub async fn wait(state: &Shared, id: &str, timeout: Duration) -> Outcome {
    let mut changes = state.approval_changes.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(Some(a)) = state.store.approval(id).await
            && let Some(outcome) = outcome_of(&a)
        {
            return use_once(state, &a, outcome).await;
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        // A local decision wakes us at once; decisions made by another
        // gateway sharing the store are seen within a second.
        let tick = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
        tokio::select! {
            _ = changes.recv() => {}
            _ = tokio::time::sleep_until(tick) => {}
        }
    }
    match state.store.approval(id).await {
        Ok(Some(a)) => match outcome_of(&a) {
            Some(outcome) => use_once(state, &a, outcome).await,
            None => Outcome::TimedOut,
        },
        _ => Outcome::TimedOut,
    }
}

/// An approval of one statement, once, runs once: the session that would
/// run on it marks it used first, and a second session is refused.
async fn use_once(state: &Shared, a: &Approval, outcome: Outcome) -> Outcome {
    let once = matches!(
        outcome,
        Outcome::Approved {
            scope: Scope::Once,
            ..
        }
    ) && a.kind == ApprovalKind::Statement;
    if !once {
        return outcome;
    }
    match state
        .store
        .use_approval(&a.id, sluice_core::clock::now())
        .await
    {
        Ok(true) => outcome,
        _ => Outcome::Denied {
            by: a.decided_by.clone().unwrap_or_default(),
            reason: format!(
                "approval {} was for one run, and another session used it; ask again",
                a.id
            ),
        },
    }
}

fn outcome_of(a: &Approval) -> Option<Outcome> {
    let by = a.decided_by.clone().unwrap_or_default();
    match a.status {
        ApprovalStatus::Pending => None,
        ApprovalStatus::Approved => Some(Outcome::Approved {
            by,
            scope: a.scope.unwrap_or(Scope::Once),
        }),
        ApprovalStatus::Denied => Some(Outcome::Denied {
            by,
            reason: a.decision_reason.clone().unwrap_or_default(),
        }),
        ApprovalStatus::Expired | ApprovalStatus::Withdrawn => Some(Outcome::TimedOut),
    }
}

/// Closes a pending statement approval whose session ended before anyone
/// decided: approvers see that nobody waits for it any more.
pub async fn withdraw(state: &Shared, id: &str) {
    let reason = "the requester's session ended before a decision";
    let closing = Closing {
        status: ApprovalStatus::Withdrawn,
        kind: EventKind::ApprovalWithdrawn,
        by: "requester",
        actor: "gateway",
        reason,
    };
    if close_unanswered(state, id, closing).await {
        tracing::info!(approval.id = %id, "statement approval withdrawn: its session ended");
    }
}

/// Closes a pending approval as expired; records it once.
pub async fn expire(state: &Shared, id: &str) {
    let closing = Closing {
        status: ApprovalStatus::Expired,
        kind: EventKind::ApprovalExpired,
        by: "sweeper",
        actor: "sweeper",
        reason: "nobody decided in time",
    };
    close_unanswered(state, id, closing).await;
}

/// How an approval nobody decided is closed.
struct Closing {
    status: ApprovalStatus,
    kind: EventKind,
    by: &'static str,
    actor: &'static str,
    reason: &'static str,
}

/// Closes a pending approval without a decision and records it once;
/// false when it was no longer pending.
async fn close_unanswered(state: &Shared, id: &str, c: Closing) -> bool {
    let closed = state
        .store
        .close_approval(
            id,
            c.status,
            c.by,
            c.reason,
            None,
            sluice_core::clock::now(),
        )
        .await
        .unwrap_or(false);
    if !closed {
        return false;
    }
    if let Ok(Some(a)) = state.store.approval(id).await {
        let _ = state
            .audit
            .append(
                event_about(c.kind, &a)
                    .actor(Actor::system(c.actor))
                    .detail(json!({ "approval_id": a.id, "kind": a.kind, "reason": c.reason })),
            )
            .await;
        announce(state, &a);
    }
    true
}

/// Expires every pending approval whose time is up (the sweeper's pass).
pub async fn expire_due(state: &Shared) -> Result<usize, Error> {
    let due = state.store.due_approvals(sluice_core::clock::now()).await?;
    for a in &due {
        expire(state, &a.id).await;
    }
    Ok(due.len())
}

/// Records `who`'s vote and applies the outcome once enough votes are in.
pub async fn vote(
    state: &Shared,
    who: &Identity,
    id: &str,
    decision: Decision,
    reason: &str,
    scope: Scope,
) -> Result<Approval, Error> {
    let a = state
        .store
        .approval(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no approval {id}")))?;
    may_decide(&state.config, who, &a).map_err(|e| match e {
        NotAllowed::Closed { .. } => Error::conflict(e.to_string()),
        _ => Error::forbidden(e.to_string()),
    })?;
    if decision == Decision::Deny && reason.trim().is_empty() {
        return Err(Error::bad_request(
            "a denial needs a reason for the requester",
        ));
    }
    let already = state
        .store
        .votes(&a.id)
        .await?
        .iter()
        .any(|v| v.approver_subject == who.subject && v.approver_issuer == who.issuer);
    if already {
        return Err(Error::conflict(format!(
            "you already voted on approval {id}"
        )));
    }
    // A grant has one shape: itself.
    let scope = if a.kind == ApprovalKind::Grant {
        Scope::Once
    } else {
        scope
    };
    let v = Vote {
        approver_subject: who.subject.clone(),
        approver_issuer: who.issuer.clone(),
        approver_name: who.name.clone(),
        decision,
        reason: reason.to_string(),
        scope,
        created_at: sluice_core::clock::now(),
    };
    state
        .audit
        .append(
            event_about(EventKind::ApprovalVoted, &a)
                .actor(Actor::from(who))
                .detail(json!({ "approval_id": a.id, "decision": decision, "reason": reason, "scope": scope })),
        )
        .await?;
    if !state.store.add_vote(&a.id, &v).await? {
        return Err(Error::conflict(format!(
            "you already voted on approval {id}"
        )));
    }
    tracing::info!(approval.id = %a.id, grant.id = %a.grant_id, by = %who.subject,
        decision = decision.as_str(), "approval vote recorded");
    let votes = state.store.votes(&a.id).await?;
    match tally(a.min_approvals.max(1) as usize, &votes) {
        Tally::Waiting { .. } => {}
        Tally::Approved { scope } => {
            settle(
                state,
                &a,
                &votes,
                ApprovalStatus::Approved,
                reason,
                Some(scope),
            )
            .await?
        }
        Tally::Denied { reason } => {
            settle(state, &a, &votes, ApprovalStatus::Denied, &reason, None).await?
        }
    }
    state
        .store
        .approval(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no approval {id}")))
}

/// Closes the approval with its outcome and applies it to the grant.
async fn settle(
    state: &Shared,
    a: &Approval,
    votes: &[Vote],
    status: ApprovalStatus,
    reason: &str,
    scope: Option<Scope>,
) -> Result<(), Error> {
    let by: Vec<&str> = votes
        .iter()
        .filter(|v| match status {
            ApprovalStatus::Approved => v.decision == Decision::Approve,
            _ => v.decision == Decision::Deny,
        })
        .map(|v| v.approver_name.as_str())
        .collect();
    let by = by.join(", ");
    let now = sluice_core::clock::now();
    let kind = if status == ApprovalStatus::Approved {
        EventKind::ApprovalApproved
    } else {
        EventKind::ApprovalDenied
    };
    state
        .audit
        .append(
            event_about(kind, a)
                .actor(Actor::system("approvals"))
                .detail(json!({ "approval_id": a.id, "kind": a.kind, "by": by, "reason": reason, "scope": scope })),
        )
        .await?;
    if !state
        .store
        .close_approval(&a.id, status, &by, reason, scope, now)
        .await?
    {
        return Ok(()); // someone else settled it first
    }
    tracing::info!(approval.id = %a.id, grant.id = %a.grant_id, kind = a.kind.as_str(),
        status = status.as_str(), by = %by, "approval decided");
    match (a.kind, status) {
        (ApprovalKind::Grant, ApprovalStatus::Approved) => activate_grant(state, a, &by).await?,
        (ApprovalKind::Grant, _) => deny_grant(state, a, &by, reason).await?,
        (ApprovalKind::Statement, ApprovalStatus::Approved) if scope == Some(Scope::Shape) => {
            if let Some(fp) = &a.fingerprint {
                state.store.approve_shape(&a.grant_id, fp, &a.id).await?;
            }
        }
        _ => {}
    }
    if let Ok(Some(closed)) = state.store.approval(&a.id).await {
        announce(state, &closed);
    }
    Ok(())
}

async fn activate_grant(state: &Shared, a: &Approval, by: &str) -> Result<(), Error> {
    let now = sluice_core::clock::now();
    state
        .audit
        .append(
            AuditEvent::new(EventKind::GrantActivated)
                .actor(Actor::system("approvals"))
                .grant(&a.grant_id)
                .connection(&a.connection)
                .detail(json!({ "decided_by": by, "approval_id": a.id })),
        )
        .await?;
    if state.store.activate_grant(&a.grant_id, now, by).await? {
        crate::state::announce(state, &a.grant_id, GrantStatus::Active);
    }
    Ok(())
}

async fn deny_grant(state: &Shared, a: &Approval, by: &str, reason: &str) -> Result<(), Error> {
    state
        .audit
        .append(
            AuditEvent::new(EventKind::GrantDenied)
                .actor(Actor::system("approvals"))
                .grant(&a.grant_id)
                .connection(&a.connection)
                .detail(json!({ "decided_by": by, "reason": reason, "approval_id": a.id })),
        )
        .await?;
    if state
        .store
        .transition_grant(
            &a.grant_id,
            &[GrantStatus::Pending],
            GrantStatus::Denied,
            by,
        )
        .await?
    {
        crate::state::announce(state, &a.grant_id, GrantStatus::Denied);
    }
    Ok(())
}
