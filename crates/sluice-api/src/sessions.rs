//! `/v1/sessions`: recorded sessions, read back from the audit chain.
//!
//! Admins and approvers see every session; anyone else only sessions under
//! their own grants (same subject at the same issuer). A session one may
//! not see answers 404, as if it did not exist.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_audit::replay::{self, Timeline, Who};
use sluice_core::config::parse_duration;
use sluice_core::{Identity, access};
use sluice_store::{SessionFilter, SessionRow};

use crate::auth::Caller;
use crate::error::ApiError;
use sluice_control::Shared;

/// The most sessions one list returns.
const MAX_LIST: i64 = 1000;
/// The most events one session's replay reads.
const MAX_EVENTS: usize = 100_000;

/// The list's filters, as the API and the web page take them.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Subject or display name.
    pub identity: Option<String>,
    pub connection: Option<String>,
    /// RFC 3339 time, or a duration meaning "that long ago" (`1h`).
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<i64>,
}

fn sees_all(state: &Shared, who: &Identity) -> bool {
    access::is_admin(&state.config, who) || who.in_any(&state.config.approvals.approver_groups)
}

/// `None` for those who see everything; their own principal otherwise.
fn owner(state: &Shared, who: &Identity) -> Option<(String, String)> {
    (!sees_all(state, who)).then(|| (who.subject.clone(), who.issuer.clone()))
}

pub async fn list(
    State(state): State<Shared>,
    Caller(who): Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let rows = find(&state, &q, owner(&state, &who)).await?;
    let sessions: Vec<Value> = rows.iter().map(summary).collect();
    Ok(Json(json!({ "sessions": sessions })))
}

/// The sessions matching `q`, newest first; only `owner`'s when given.
pub(crate) async fn find(
    state: &Shared,
    q: &ListQuery,
    owner: Option<(String, String)>,
) -> Result<Vec<SessionRow>, ApiError> {
    let given = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
    let filter = SessionFilter {
        identity: given(&q.identity),
        connection: given(&q.connection),
        since: given(&q.since).map(|s| when("since", &s)).transpose()?,
        until: given(&q.until).map(|s| when("until", &s)).transpose()?,
        owner,
        session_id: None,
        limit: q.limit.unwrap_or(100).clamp(1, MAX_LIST),
    };
    Ok(state.store.sessions(&filter).await?)
}

/// One session: its summary and its timeline.
pub async fn show(
    State(state): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (row, timeline) = replayed(&state, &id, owner(&state, &who)).await?;
    let mut body = summary(&row);
    body["timeline"] = serde_json::to_value(&timeline).map_err(ApiError::internal)?;
    Ok(Json(body))
}

/// A session (only `owner`'s, when given) and its replay timeline; 404
/// when there is none to see.
pub(crate) async fn replayed(
    state: &Shared,
    id: &str,
    owner: Option<(String, String)>,
) -> Result<(SessionRow, Timeline), ApiError> {
    let row = visible(state, id, owner).await?;
    let events = bodies(state, id).await?;
    let mut timeline = replay::timeline(id, &events);
    timeline.identity = who_of(&row);
    Ok((row, timeline))
}

/// One session's audit events as stored (with their hashes), in order.
pub async fn events(
    State(state): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    visible(&state, &id, owner(&state, &who)).await?;
    let rows = state.store.session_events(&id).await?;
    let events: Vec<Value> = rows
        .iter()
        .take(MAX_EVENTS)
        .map(|r| {
            let mut v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            v["hash"] = r.hash.clone().into();
            v["prev_hash"] = r.prev_hash.clone().into();
            v
        })
        .collect();
    Ok(Json(json!({ "session_id": id, "events": events })))
}

/// `?shell=SEQ`: which recorded shell of the session (default the first).
#[derive(Debug, Default, Deserialize)]
pub struct CastQuery {
    pub shell: Option<u64>,
}

/// `GET /v1/sessions/{id}/cast`: a recorded shell as an asciicast v2 file.
pub async fn cast(
    State(state): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
    Query(q): Query<CastQuery>,
) -> Result<Response, ApiError> {
    cast_of(&state, &id, owner(&state, &who), q.shell).await
}

/// The asciicast of session `id`'s shell `shell` (or its first), as a
/// download; 404 when the session recorded no such terminal.
pub(crate) async fn cast_of(
    state: &Shared,
    id: &str,
    owner: Option<(String, String)>,
    shell: Option<u64>,
) -> Result<Response, ApiError> {
    visible(state, id, owner).await?;
    let events = bodies(state, id).await?;
    let found = sluice_audit::cast::casts(&events)
        .into_iter()
        .find(|c| shell.is_none_or(|s| s == c.seq))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "session {id} recorded no interactive terminal{}",
                shell.map(|s| format!(" numbered {s}")).unwrap_or_default()
            ))
        })?;
    let name = format!("attachment; filename=\"{id}-{}.cast\"", found.seq);
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-asciicast".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        found.text,
    )
        .into_response())
}

async fn visible(
    state: &Shared,
    id: &str,
    owner: Option<(String, String)>,
) -> Result<SessionRow, ApiError> {
    state
        .store
        .session(id, owner)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no session {id} that you may see")))
}

async fn bodies(state: &Shared, id: &str) -> Result<Vec<Value>, ApiError> {
    let rows = state.store.session_events(id).await?;
    Ok(rows
        .iter()
        .take(MAX_EVENTS)
        .filter_map(|r| serde_json::from_str(&r.body).ok())
        .collect())
}

fn who_of(r: &SessionRow) -> Option<Who> {
    Some(Who {
        subject: r.subject.clone()?,
        issuer: r.issuer.clone().unwrap_or_default(),
        name: r.identity_name.clone().unwrap_or_default(),
        kind: r.identity_kind.clone().unwrap_or_default(),
    })
}

/// A session's summary as the API lists it.
pub(crate) fn summary(r: &SessionRow) -> Value {
    let opened: Value = serde_json::from_str(&r.opened).unwrap_or(Value::Null);
    let closed: Value = r
        .closed
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or(Value::Null);
    let d = &closed["detail"];
    json!({
        "id": r.session_id,
        "grant_id": r.grant_id,
        "connection": r.connection.clone().or_else(|| opened["connection"].as_str().map(str::to_string)),
        "identity": who_of(r),
        "client_addr": opened["detail"]["client_addr"],
        "profile": opened["detail"]["profile"],
        "opened_at": rfc3339(r.opened_at),
        "closed_at": r.closed_at.map(rfc3339),
        "state": if r.closed_at.is_some() { "closed" } else { "open" },
        "duration_ms": d["duration_ms"],
        "end": d["end"],
        "statements_allowed": d["statements_allowed"],
        "statements_denied": d["statements_denied"],
    })
}

fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A time bound in Unix ms: RFC 3339, or a duration before now.
fn when(name: &str, s: &str) -> Result<i64, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    match parse_duration(s) {
        Ok(d) => {
            let ago = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
            Ok(sluice_core::clock::now()
                .checked_sub_signed(ago)
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
                .timestamp_millis())
        }
        Err(_) => Err(ApiError::bad_request(format!(
            "{name} must be an RFC 3339 time (2024-05-01T12:00:00Z) or a duration ago (30m, 2h, 7d)"
        ))),
    }
}
