//! The page handlers: list, live updates, detail, decisions, sign-out.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Form, OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use sluice_core::approval::{
    Approval, ApprovalStatus, Decision, NotAllowed, Scope, Vote, may_decide,
};
use tokio::sync::broadcast::error::RecvError;

use super::session::{Session, same_secret};
use super::{Ui, UiRef, pages, redirect};
use sluice_control::approvals;

/// Reasons longer than this are refused (as by the API).
const MAX_REASON: usize = 1000;
/// Pending approvals shown at once.
const LIST_LIMIT: i64 = 200;

/// The signed-in approver, or the response to send instead: a redirect to
/// sign in (pages), 401 (fragments), or the "not an approver" page.
pub(super) enum Gate {
    Approver(String, Session),
    Stop(Response),
}

pub(super) async fn gate(ui: &Ui, headers: &HeaderMap, uri: &Uri, page: bool) -> Gate {
    let Some((id, s)) = ui.session(headers).await else {
        if !page {
            return Gate::Stop((StatusCode::UNAUTHORIZED, "sign in at /ui").into_response());
        }
        let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/ui");
        let to = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", next)
            .finish();
        return Gate::Stop(redirect(&format!("/ui/login?{to}")));
    };
    if !ui.is_approver(&s) {
        return Gate::Stop(pages::not_approver(ui, &s));
    }
    Gate::Approver(id, s)
}

macro_rules! approver {
    ($ui:expr, $headers:expr, $uri:expr, $page:expr) => {
        match gate(&$ui, &$headers, &$uri, $page).await {
            Gate::Approver(id, s) => (id, s),
            Gate::Stop(r) => return r,
        }
    };
}
pub(super) use approver;

async fn pending(ui: &Ui) -> Result<Vec<(Approval, Vec<Vote>)>, Response> {
    let store = &ui.app.store;
    let unavailable = |e: sluice_store::StoreError| {
        tracing::error!(error = %e, "listing approvals for the web page");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the store is unavailable; try again",
        )
            .into_response()
    };
    let mut out = Vec::new();
    for a in store
        .approvals(Some(ApprovalStatus::Pending), LIST_LIMIT)
        .await
        .map_err(unavailable)?
    {
        let votes = store.votes(&a.id).await.map_err(unavailable)?;
        out.push((a, votes));
    }
    Ok(out)
}

/// `GET /ui`.
pub(crate) async fn list(
    State(ui): State<UiRef>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let (_, s) = approver!(ui, headers, uri, true);
    match pending(&ui).await {
        Ok(items) => Html(pages::list(&s, &items).into_string()).into_response(),
        Err(r) => r,
    }
}

/// `GET /ui/pending`: the list's rows, for `app.js` to swap in.
pub(crate) async fn pending_fragment(
    State(ui): State<UiRef>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let _ = approver!(ui, headers, uri, false);
    match pending(&ui).await {
        Ok(items) => Html(pages::rows(&items).into_string()).into_response(),
        Err(r) => r,
    }
}

/// `GET /ui/events`: one `approval` event per status change (opened,
/// decided, expired); `resync` when this stream fell behind. The stream
/// ends when the session does.
pub(crate) async fn events(
    State(ui): State<UiRef>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let (sid, _) = approver!(ui, headers, uri, false);
    let rx = ui.app.approval_changes.subscribe();
    let stream = changes(ui.clone(), sid, rx);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn changes(
    ui: UiRef,
    sid: String,
    rx: tokio::sync::broadcast::Receiver<approvals::ApprovalChange>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold((ui, sid, rx), |(ui, sid, mut rx)| async move {
        let event = match rx.recv().await {
            Ok(c) => Event::default()
                .event("approval")
                .data(json!({ "id": c.id, "status": c.status }).to_string()),
            Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
            Err(RecvError::Closed) => return None,
        };
        // A signed-out or expired session hears nothing more.
        ui.sessions.get(&sid).await?;
        Some((Ok(event), (ui, sid, rx)))
    })
}

#[derive(Deserialize)]
pub(crate) struct DetailQuery {
    voted: Option<String>,
}

/// `GET /ui/approvals/{id}`.
pub(crate) async fn detail(
    State(ui): State<UiRef>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let (_, s) = approver!(ui, headers, uri, true);
    let (a, votes) = match load(&ui, &s, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let cannot_vote = match may_decide(&ui.app.config, &s.identity, &a) {
        Ok(())
            if votes.iter().any(|v| {
                v.approver_subject == s.identity.subject && v.approver_issuer == s.identity.issuer
            }) =>
        {
            Some("You have voted on this approval; it waits for other approvers.".to_string())
        }
        Ok(()) => None,
        Err(NotAllowed::OwnRequest) => {
            Some("You made this request: someone else must decide it.".to_string())
        }
        Err(e) => Some(e.to_string()),
    };
    let flash = match q.voted.as_deref() {
        Some("approve") => Some("Your approval was recorded."),
        Some("deny") => Some("Your denial was recorded."),
        _ => None,
    };
    let viewer = pages::Viewer {
        session: &s,
        cannot_vote,
        flash,
    };
    Html(pages::detail(&viewer, &a, &votes).into_string()).into_response()
}

async fn load(ui: &Ui, s: &Session, id: &str) -> Result<(Approval, Vec<Vote>), Response> {
    let missing = || {
        pages::message_for(
            s,
            StatusCode::NOT_FOUND,
            "No such approval",
            "There is no approval with this id.",
        )
    };
    if id.len() > 64 {
        return Err(missing());
    }
    let store = &ui.app.store;
    let unavailable = |e: sluice_store::StoreError| {
        tracing::error!(error = %e, "reading an approval for the web page");
        pages::message_for(
            s,
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "The store could not be read; try again shortly.",
        )
    };
    let a = store
        .approval(id)
        .await
        .map_err(unavailable)?
        .ok_or_else(missing)?;
    let votes = store.votes(id).await.map_err(unavailable)?;
    Ok((a, votes))
}

#[derive(Deserialize)]
pub(crate) struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
}

/// The refusal of a POST that did not come from our own page of this
/// session, if it did not.
pub(super) fn refuse_post(
    ui: &Ui,
    headers: &HeaderMap,
    s: &Session,
    csrf: &str,
) -> Option<Response> {
    if !ui.same_origin(headers) {
        tracing::warn!(subject = %s.identity.subject, "web page POST refused: foreign or missing Origin");
        return Some(pages::message_for(
            s,
            StatusCode::FORBIDDEN,
            "Refused",
            "This form was not sent from Sluice's own page (Origin check).",
        ));
    }
    if !same_secret(csrf, &s.csrf) {
        tracing::warn!(subject = %s.identity.subject, "web page POST refused: bad CSRF token");
        return Some(pages::message_for(
            s,
            StatusCode::FORBIDDEN,
            "Refused",
            "This form is stale or was not sent from Sluice's own page. Reload and try again.",
        ));
    }
    None
}

/// `POST /ui/approvals/{id}`: a vote.
pub(crate) async fn decide(
    State(ui): State<UiRef>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    Form(f): Form<DecideForm>,
) -> Response {
    let (_, s) = approver!(ui, headers, uri, false);
    if let Some(r) = refuse_post(&ui, &headers, &s, &f.csrf) {
        return r;
    }
    let (decision, scope) = match f.decision.as_str() {
        "approve" => (Decision::Approve, Scope::Once),
        "shape" => (Decision::Approve, Scope::Shape),
        "deny" => (Decision::Deny, Scope::Once),
        _ => {
            return pages::message_for(
                &s,
                StatusCode::BAD_REQUEST,
                "Unknown decision",
                "Choose Approve, Approve this shape or Deny.",
            );
        }
    };
    let reason = f.reason.trim();
    if reason.chars().count() > MAX_REASON {
        return pages::message_for(
            &s,
            StatusCode::BAD_REQUEST,
            "Reason too long",
            "A reason is at most 1000 characters.",
        );
    }
    match approvals::vote(&ui.app, &s.identity, &id, decision, reason, scope).await {
        Ok(_) => redirect(&format!(
            "/ui/approvals/{}?voted={}",
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>(),
            decision.as_str()
        )),
        Err(e) => {
            let e = crate::ApiError::from(e);
            pages::message_for(&s, e.status, "Your vote was not recorded", &e.message)
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/logout`.
pub(crate) async fn logout(
    State(ui): State<UiRef>,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Response {
    let Some((sid, s)) = ui.session(&headers).await else {
        return redirect("/ui/signed-out");
    };
    if let Some(r) = refuse_post(&ui, &headers, &s, &f.csrf) {
        return r;
    }
    super::oidc::logout(&ui, &sid).await
}

/// `GET /ui/signed-out`.
pub(crate) async fn signed_out(State(ui): State<UiRef>) -> Response {
    let _ = &ui;
    pages::plain(
        StatusCode::OK,
        "Signed out",
        maud::html! {
            h1 { "Signed out" }
            p { a href="/ui/login" { "Sign in again" } }
        },
    )
}

pub(crate) async fn not_found(State(ui): State<UiRef>) -> Response {
    pages::message(
        &ui,
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page.",
    )
}
