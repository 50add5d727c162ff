//! `/v1/grants`: request, read (with long-poll), list and revoke grants.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_core::access::{self, AccessRequest};
use sluice_core::audit::{Actor, AuditEvent, EventKind};
use sluice_core::config::parse_duration;
use sluice_core::secret::{ScramVerifier, native_verifier, new_secret};
use sluice_core::{Grant, GrantStatus, Identity, Profile};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::JsonBody;
use sluice_control::Shared;
use sluice_control::issue;

/// The longest TTL anyone may ask for; rules cap it further.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest `?wait=`.
const MAX_WAIT: Duration = Duration::from_secs(60);
const MAX_REASON: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    connection: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    ttl: Option<TtlValue>,
    #[serde(default)]
    profile: Option<Profile>,
    /// An SSH public key the holder may log in with (SSH connections).
    #[serde(default)]
    ssh_key: Option<String>,
}

/// `"10m"` or a number of seconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum TtlValue {
    Secs(u64),
    Text(String),
}

fn requested_ttl(ttl: Option<TtlValue>) -> Result<Option<Duration>, ApiError> {
    let ttl = match ttl {
        None => return Ok(None),
        Some(TtlValue::Secs(s)) => Duration::from_secs(s),
        Some(TtlValue::Text(t)) => parse_duration(&t).map_err(ApiError::bad_request)?,
    };
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(ApiError::bad_request(
            "ttl must be more than 0 and at most 24h (for example \"10m\")",
        ));
    }
    Ok(Some(ttl))
}

/// `POST /v1/grants`.
pub async fn create(
    State(state): State<Shared>,
    Caller(who): Caller,
    JsonBody(req): JsonBody<GrantRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if req.reason.chars().count() > MAX_REASON {
        return Err(ApiError::bad_request(
            "reason is longer than 1000 characters",
        ));
    }
    let ttl = requested_ttl(req.ttl)?;
    let ssh_key = match &req.ssh_key {
        None => None,
        Some(line) => {
            let ssh = state
                .config
                .connection(&req.connection)
                .is_some_and(|c| c.kind == sluice_core::config::ConnectionKind::Ssh);
            if !ssh {
                return Err(ApiError::bad_request(
                    "ssh_key is only for grants to SSH connections",
                ));
            }
            Some(sluice_core::grant::ssh_public_key(line).map_err(ApiError::bad_request)?)
        }
    };
    let ask = AccessRequest {
        connection: &req.connection,
        ttl,
        profile: req.profile,
    };
    let issued = issue::issue(&state, &who, &ask, &req.reason, ssh_key).await?;
    let mut body = view(&state, &issued.grant, issued.secret.as_deref());
    add_decision(&state, &issued.grant, &mut body).await?;
    // A TTL above the rule's cap is cut: say so.
    if let Some(asked) = ttl.map(|t| t.as_secs() as i64)
        && asked > issued.grant.ttl_secs
    {
        body["ttl_capped"] = json!({
            "asked_secs": asked,
            "max_secs": issued.grant.ttl_secs,
            "rule": issued.grant.rule,
        });
    }
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Deserialize)]
pub struct WaitQuery {
    wait: Option<String>,
}

/// `GET /v1/grants/{id}`; `?wait=30s` holds the answer until the status
/// changes or the wait ends.
pub async fn show(
    State(state): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Json<Value>, ApiError> {
    let wait = match q.wait.as_deref() {
        None => Duration::ZERO,
        Some(w) => parse_duration(w)
            .map_err(ApiError::bad_request)?
            .min(MAX_WAIT),
    };
    let mut changes = state.changes.subscribe();
    let mut grant = visible_grant(&state, &who, &id).await?;
    let first = grant.status;
    let deadline = tokio::time::Instant::now() + wait;
    while grant.status == first && tokio::time::Instant::now() < deadline {
        // Wake on a local change, or re-read every second for changes made
        // by another gateway sharing the store.
        let tick = tokio::time::sleep_until(
            deadline.min(tokio::time::Instant::now() + Duration::from_secs(1)),
        );
        tokio::select! {
            _ = changes.recv() => {}
            _ = tick => {}
        }
        grant = visible_grant(&state, &who, &id).await?;
    }
    let secret = deliver_secret_once(&state, &who, &mut grant).await?;
    let mut body = view(&state, &grant, secret.as_deref());
    add_decision(&state, &grant, &mut body).await?;
    Ok(Json(body))
}

/// For a grant that needed approval: its approval (id, page, who may
/// decide) and, once decided, who decided and why, so a requester whose
/// grant was denied learns the approver's reason.
async fn add_decision(state: &Shared, g: &Grant, body: &mut Value) -> Result<(), ApiError> {
    if !matches!(g.status, GrantStatus::Pending | GrantStatus::Denied)
        && g.decided_by
            .as_deref()
            .is_none_or(|d| d.starts_with("rule:"))
    {
        return Ok(());
    }
    let Some(a) = state.store.grant_approval(&g.id).await? else {
        return Ok(());
    };
    body["approval"] = json!({
        "id": a.id,
        "status": a.status,
        "url": format!("{}/ui/approvals/{}", state.config.server.public_url(), a.id),
        "approver_groups": state.config.approvals.approver_groups,
        "decided_by": a.decided_by,
        "reason": a.decision_reason,
    });
    Ok(())
}

/// A grant approved after it was requested gets its secret here, once,
/// for its owner only.
async fn deliver_secret_once(
    state: &Shared,
    who: &Identity,
    grant: &mut Grant,
) -> Result<Option<String>, ApiError> {
    if grant.status != GrantStatus::Active
        || !grant.scram_verifier.is_empty()
        || !grant.belongs_to(who)
    {
        return Ok(None);
    }
    let secret = new_secret();
    let verifier = ScramVerifier::derive(&secret).to_text();
    let native = native_verifier(&secret);
    if state
        .store
        .set_verifiers_once(&grant.id, &verifier, &native)
        .await?
    {
        grant.scram_verifier = verifier;
        grant.native_verifier = native;
        Ok(Some(secret))
    } else {
        Ok(None)
    }
}

/// `GET /v1/grants`: the caller's own grants, newest first.
pub async fn list(
    State(state): State<Shared>,
    Caller(who): Caller,
) -> Result<Json<Value>, ApiError> {
    let grants = state
        .store
        .grants_of(&who.subject, &who.issuer, 100)
        .await?;
    let items: Vec<Value> = grants.iter().map(|g| view(&state, g, None)).collect();
    Ok(Json(json!({ "grants": items })))
}

/// `DELETE /v1/grants/{id}`: revoke now; live sessions end at once.
pub async fn revoke(
    State(state): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let grant = visible_grant(&state, &who, &id).await?;
    if grant.status.is_final() {
        return Err(ApiError::conflict(format!(
            "grant {id} is already {}",
            grant.status.as_str()
        )));
    }
    state
        .audit
        .append(
            AuditEvent::new(EventKind::GrantRevoked)
                .actor(Actor::from(&who))
                .grant(&id)
                .connection(&grant.connection)
                .detail(json!({ "was": grant.status })),
        )
        .await?;
    let from = [GrantStatus::Active, GrantStatus::Pending];
    if !state
        .store
        .transition_grant(&id, &from, GrantStatus::Revoked, &who.name)
        .await?
    {
        return Err(ApiError::conflict(format!(
            "grant {id} changed meanwhile; read it again"
        )));
    }
    sluice_control::announce(&state, &id, GrantStatus::Revoked);
    let grant = visible_grant(&state, &who, &id).await?;
    state
        .metrics
        .grant(&grant.connection, grant.profile, "revoked");
    Ok(Json(view(&state, &grant, None)))
}

/// The grant, if `who` may see it: its owner, or an admin. Anyone else gets
/// the same answer as for a grant that does not exist.
async fn visible_grant(state: &Shared, who: &Identity, id: &str) -> Result<Grant, ApiError> {
    let not_found = || ApiError::not_found(format!("no grant {id} that you may see"));
    if id.len() > 64 {
        return Err(not_found());
    }
    let grant = state.store.grant(id).await?.ok_or_else(not_found)?;
    if grant.belongs_to(who) || access::is_admin(&state.config, who) {
        Ok(grant)
    } else {
        Err(not_found())
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The grant as JSON; `secret` adds the credentials (shown once).
fn view(state: &Shared, g: &Grant, secret: Option<&str>) -> Value {
    let mut v = json!({
        "id": g.id,
        "status": g.status,
        "connection": g.connection,
        "profile": g.profile,
        "rule": g.rule,
        "reason": g.reason,
        "identity": { "subject": g.subject, "issuer": g.issuer, "name": g.identity_name, "kind": g.identity_kind },
        "ttl_secs": g.ttl_secs,
        "created_at": rfc3339(g.created_at),
        "activated_at": g.activated_at.map(rfc3339),
        "expires_at": rfc3339(g.expires_at),
        "decided_by": g.decided_by,
    });
    if let Some(secret) = secret {
        v["credentials"] = credentials(state, g, secret);
    }
    v
}

/// How the grant's holder connects, by the connection's protocol.
fn credentials(state: &Shared, g: &Grant, secret: &str) -> Value {
    let conn = state.config.connection(&g.connection);
    let kind = conn.map(|c| c.kind);
    if kind == Some(sluice_core::config::ConnectionKind::Mysql) {
        let (host, port) = state.config.mysql.endpoint();
        let database = conn.map(|c| c.database.as_str()).unwrap_or_default();
        return json!({
            "host": host,
            "port": port,
            "user": g.id,
            "password": secret,
            "database": database,
            "mysql": format!("mysql -h {host} -P {port} -u {} -p {database}", g.id),
            "dsn": format!("mysql://{}:{secret}@{host}:{port}/{database}", g.id),
            "tls_fingerprint": pin(state.config.mysql.tls_cert.as_deref()),
        });
    }
    if kind == Some(sluice_core::config::ConnectionKind::Ssh) {
        let (host, port) = state.config.ssh.endpoint();
        return json!({
            "host": host,
            "port": port,
            "user": g.id,
            "password": secret,
            "ssh": format!("ssh -p {port} {}@{host}", g.id),
            // Pin it: `ssh-keygen -lf` of the key in known_hosts must say
            // this; `host_key` is the line for known_hosts itself.
            "host_key_fingerprint": state.ssh_fingerprint,
            "host_key": state.ssh_host_key,
        });
    }
    let (host, port) = state.config.postgres.endpoint();
    json!({
        "host": host,
        "port": port,
        "user": g.id,
        "password": secret,
        "database": g.connection,
        "dsn": format!("postgresql://{}:{secret}@{host}:{port}/{}", g.id, g.connection),
        "tls_fingerprint": pin(state.config.postgres.tls_cert.as_deref()),
    })
}

/// The SHA-256 (hex) of the listener's certificate, when it has one: the
/// grant's holder pins it (`sluice connect` does), as SSH grants name the
/// host key.
fn pin(cert: Option<&std::path::Path>) -> Option<String> {
    sluice_tls::fingerprint_of(cert?).ok()
}
