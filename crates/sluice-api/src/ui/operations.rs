//! The operator's pages beside the approvals: the overview (sessions and
//! decisions per hour, the rules that denied most), the history of decided
//! approvals, and the live sessions with a button to end one. Approvers
//! only, like every page.

use axum::extract::{Form, OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use sluice_core::approval::{ApprovalKind, ApprovalStatus};
use sluice_core::audit::{Actor, AuditEvent, EventKind};
use sluice_store::ApprovalFilter;

use super::handlers::{Gate, approver, gate, refuse_post};
use super::{UiRef, operation_pages, pages, redirect};

/// Decided approvals shown at once.
const HISTORY_PAGE: i64 = 200;
/// The overview's window.
const OVERVIEW_HOURS: i64 = 24;

/// `GET /ui/overview`.
pub(crate) async fn overview(
    State(ui): State<UiRef>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let (_, s) = approver!(ui, headers, uri, true);
    let now = sluice_core::clock::now().timestamp_millis();
    let since = now - OVERVIEW_HOURS * 3_600_000;
    match ui.app.store.overview(since).await {
        Ok(o) => {
            let live = ui.app.live.list().len();
            Html(operation_pages::overview(&s, &o, since, now, live).into_string()).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "reading the overview for the web page");
            pages::message_for(
                &s,
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The store is unavailable; try again.",
            )
        }
    }
}

/// The history page's filters, as typed in its form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct HistoryQuery {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub connection: String,
    #[serde(default)]
    pub requester: String,
    #[serde(default)]
    pub decided_by: String,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.chars().take(200).collect())
}

/// `GET /ui/history?status=&kind=&connection=&requester=&decided_by=`.
pub(crate) async fn history(
    State(ui): State<UiRef>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let (_, s) = approver!(ui, headers, uri, true);
    let status = match q.status.as_str() {
        "" => None,
        "approved" => Some(ApprovalStatus::Approved),
        "denied" => Some(ApprovalStatus::Denied),
        "expired" => Some(ApprovalStatus::Expired),
        "withdrawn" => Some(ApprovalStatus::Withdrawn),
        _ => {
            return pages::message_for(
                &s,
                StatusCode::BAD_REQUEST,
                "Unknown status",
                "Choose approved, denied, expired or withdrawn.",
            );
        }
    };
    let kind = match q.kind.as_str() {
        "" => None,
        "grant" => Some(ApprovalKind::Grant),
        "statement" => Some(ApprovalKind::Statement),
        _ => {
            return pages::message_for(
                &s,
                StatusCode::BAD_REQUEST,
                "Unknown kind",
                "Choose grant or statement.",
            );
        }
    };
    let filter = ApprovalFilter {
        status,
        kind,
        connection: some(&q.connection),
        requester: some(&q.requester),
        decided_by: some(&q.decided_by),
        limit: HISTORY_PAGE,
    };
    match ui.app.store.decided_approvals(&filter).await {
        Ok(rows) => Html(operation_pages::history(&s, &q, &rows).into_string()).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "listing decided approvals for the web page");
            pages::message_for(
                &s,
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The store is unavailable; try again.",
            )
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct LiveQuery {
    #[serde(default)]
    ended: String,
}

/// `GET /ui/live`: the sessions open on this gateway now.
pub(crate) async fn live(
    State(ui): State<UiRef>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<LiveQuery>,
) -> Response {
    let (_, s) = approver!(ui, headers, uri, true);
    let open = ui.app.live.list();
    let ended = some(&q.ended);
    Html(operation_pages::live(&s, &open, ended.as_deref()).into_string()).into_response()
}

/// `GET /ui/fleet`: the gateways sharing the store, their policy and the
/// leases.
pub(crate) async fn fleet(
    State(ui): State<UiRef>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let (_, s) = approver!(ui, headers, uri, true);
    match sluice_control::fleet::status(&ui.app).await {
        Ok(f) => Html(operation_pages::fleet(&s, &f).into_string()).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading the fleet for the web page");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the store is unavailable; try again",
            )
                .into_response()
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct EndForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// `POST /ui/live/{id}/end`: ends one open session. Recorded before it is
/// done, with who asked and why; the grant stays as it was (revoking it is
/// the requester's or an admin's call, through the API).
pub(crate) async fn end(
    State(ui): State<UiRef>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    Form(f): Form<EndForm>,
) -> Response {
    let (_, s) = approver!(ui, headers, uri, false);
    if let Some(r) = refuse_post(&ui, &headers, &s, &f.csrf) {
        return r;
    }
    let Some(session) = ui.app.live.get(&id) else {
        return pages::message_for(
            &s,
            StatusCode::NOT_FOUND,
            "Not open",
            "This session is not open on this gateway (it ended meanwhile).",
        );
    };
    let reason: String = f.reason.trim().chars().take(1000).collect();
    let event = AuditEvent::new(EventKind::SessionTerminated)
        .actor(Actor::from(&s.identity))
        .grant(&session.grant_id)
        .connection(&session.connection)
        .session(&session.id)
        .with(&sluice_core::audit::detail::SessionTerminated {
            reason,
            identity: session.identity.clone(),
        });
    if let Err(e) = ui.app.audit.append(event).await {
        tracing::error!(error = %e, "could not record ending a session; not ended");
        return pages::message_for(
            &s,
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ended",
            "The audit log could not record this; the session was left open. Try again.",
        );
    }
    ui.app.live.end(&id, &s.identity.name);
    tracing::info!(session.id = %id, grant.id = %session.grant_id, by = %s.identity.subject, "session ended from the web page");
    let to = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("ended", &id)
        .finish();
    redirect(&format!("/ui/live?{to}"))
}
