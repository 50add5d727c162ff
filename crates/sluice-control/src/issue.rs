//! Issuing a grant: the one path every surface takes (`POST /v1/grants`,
//! and the Postgres listener's token login), so policy, audit and storage
//! happen the same way whoever asks.

use serde_json::json;
use sluice_core::access::{self, AccessDenied, AccessRequest};
use sluice_core::audit::{Actor, AuditEvent, EventKind};
use sluice_core::grant::new_grant_id;
use sluice_core::secret::{ScramVerifier, native_verifier, new_secret};
use sluice_core::{Grant, GrantStatus, Identity};

use crate::Shared;
use crate::error::Error;

/// A grant just issued, with its secret when it is active (shown once).
pub struct Issued {
    pub grant: Grant,
    pub secret: Option<String>,
}

/// Decides `ask` for `who`, records it, and stores the grant. Active
/// grants come with a fresh secret; pending ones get theirs when first
/// read after approval.
pub async fn issue(
    state: &Shared,
    who: &Identity,
    ask: &AccessRequest<'_>,
    reason: &str,
    ssh_key: Option<String>,
) -> Result<Issued, Error> {
    let decision = match access::decide(&state.config, who, ask) {
        Ok(d) => d,
        Err(denied) => return Err(refuse(state, who, ask, denied).await),
    };
    let now = sluice_core::clock::now();
    let pending = decision.needs_approval;
    let secret = (!pending).then(new_secret);
    let status = if pending {
        GrantStatus::Pending
    } else {
        GrantStatus::Active
    };
    let life = if pending {
        state.config.server.pending_grant_timeout.0
    } else {
        decision.ttl
    };
    let grant = Grant {
        id: new_grant_id(),
        subject: who.subject.clone(),
        issuer: who.issuer.clone(),
        identity_name: who.name.clone(),
        identity_kind: who.kind.as_str().into(),
        // As of issuance, for the grant's life (see `Grant::identity_groups`).
        identity_groups: who.groups.clone(),
        connection: ask.connection.to_string(),
        profile: decision.profile,
        rule: decision.rule.name.clone(),
        status,
        reason: reason.to_string(),
        ttl_secs: decision.ttl.as_secs() as i64,
        created_at: now,
        activated_at: (!pending).then_some(now),
        expires_at: now + chrono::Duration::from_std(life).map_err(Error::internal)?,
        decided_by: (!pending).then(|| format!("rule:{}", decision.rule.name)),
        scram_verifier: secret
            .as_deref()
            .map(|s| ScramVerifier::derive(s).to_text())
            .unwrap_or_default(),
        native_verifier: secret.as_deref().map(native_verifier).unwrap_or_default(),
        ssh_key,
    };
    // The record comes first: a grant whose record cannot be written is not issued.
    state
        .audit
        .append(
            AuditEvent::new(EventKind::GrantRequested)
                .actor(Actor::from(who))
                .grant(&grant.id)
                .connection(&grant.connection)
                .detail(json!({
                    "rule": grant.rule,
                    "profile": grant.profile,
                    "reason": grant.reason,
                    "ttl_secs": grant.ttl_secs,
                    "requested_ttl_secs": ask.ttl.map(|t| t.as_secs()),
                    "status": grant.status,
                })),
        )
        .await?;
    state.store.insert_grant(&grant).await?;
    if pending {
        state
            .metrics
            .grant(&grant.connection, grant.profile, "pending");
        crate::approvals::open_for_grant(state, &grant, ask.ttl, decision.rule.max_ttl.0).await?;
    } else {
        state
            .metrics
            .grant(&grant.connection, grant.profile, "active");
        state
            .audit
            .append(
                AuditEvent::new(EventKind::GrantActivated)
                    .actor(Actor::from(who))
                    .grant(&grant.id)
                    .connection(&grant.connection)
                    .detail(
                        json!({ "decided_by": grant.decided_by, "expires_at": grant.expires_at }),
                    ),
            )
            .await?;
    }
    tracing::info!(grant.id = %grant.id, conn.name = %grant.connection, status = grant.status.as_str(), "grant issued");
    Ok(Issued { grant, secret })
}

async fn refuse(
    state: &Shared,
    who: &Identity,
    ask: &AccessRequest<'_>,
    denied: AccessDenied,
) -> Error {
    let connection = ask.connection;
    // Only configured names become labels: a caller cannot grow the series.
    let label = match state.config.connection(connection) {
        Some(c) => c.name.as_str(),
        None => "unknown",
    };
    let profile = ask.profile.map_or("any", |p| p.as_str());
    state
        .metrics
        .grants
        .get_or_create(&sluice_core::metrics::GrantResult {
            connection: label.to_string(),
            profile,
            result: "refused",
        })
        .inc();
    let event = AuditEvent::new(EventKind::GrantDenied)
        .actor(Actor::from(who))
        .connection(connection)
        .detail(json!({ "reason": denied.to_string() }));
    if let Err(e) = state.audit.append(event).await {
        return Error::internal(e);
    }
    tracing::info!(subject = %who.subject, conn.name = label, reason = %denied, "grant refused");
    match denied {
        AccessDenied::UnknownConnection(_) => Error::new(
            crate::Kind::NotFound,
            "unknown_connection",
            denied.to_string(),
        ),
        AccessDenied::InvalidTtl(_) => Error::bad_request(denied.to_string()),
        _ => Error::forbidden(denied.to_string()),
    }
}
