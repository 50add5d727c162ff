//! The recorded sessions on the web page: the list (filtered as
//! `sluice sessions list` is) and one session's timeline (the one
//! `sluice sessions replay` prints). Approvers only, as every other page;
//! approvers see every session, as they do through the API.

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::handlers::{Gate, approver, gate};
use super::{UiRef, pages, recording_pages};
use crate::sessions::{self, ListQuery};

/// Sessions shown at once (the API's own cap is higher; a page this long
/// is already more than anyone reads).
const PAGE: i64 = 200;
/// Session ids are short; a longer one is no session.
const MAX_ID: usize = 64;

/// `GET /ui/sessions?identity=&connection=&since=&until=`.
pub(crate) async fn list(
    State(ui): State<UiRef>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(mut q): Query<ListQuery>,
) -> Response {
    let (_, s) = approver!(ui, headers, uri, true);
    q.limit = Some(q.limit.unwrap_or(PAGE).clamp(1, PAGE));
    match sessions::find(&ui.app, &q, None).await {
        Ok(rows) => {
            let listed: Vec<_> = rows.iter().map(sessions::summary).collect();
            Html(recording_pages::list(&s, &q, &listed, None).into_string()).into_response()
        }
        // A filter the API would refuse (a bad time) is said on the page.
        Err(e) if e.status == StatusCode::BAD_REQUEST => (
            StatusCode::BAD_REQUEST,
            Html(recording_pages::list(&s, &q, &[], Some(&e.message)).into_string()),
        )
            .into_response(),
        Err(e) => pages::message_for(&s, e.status, "Unavailable", &e.message),
    }
}

/// `GET /ui/sessions/{id}`: the session's summary and whole timeline.
pub(crate) async fn show(
    State(ui): State<UiRef>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> Response {
    let (_, s) = approver!(ui, headers, uri, true);
    let missing = || {
        pages::message_for(
            &s,
            StatusCode::NOT_FOUND,
            "No such session",
            "There is no recorded session with this id.",
        )
    };
    if id.len() > MAX_ID {
        return missing();
    }
    match sessions::replayed(&ui.app, &id, None).await {
        Ok((row, timeline)) => {
            let summary = sessions::summary(&row);
            Html(recording_pages::session(&s, &summary, &timeline).into_string()).into_response()
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => missing(),
        Err(e) => pages::message_for(&s, e.status, "Unavailable", &e.message),
    }
}

/// `GET /ui/sessions/{id}/cast?shell=SEQ`: a recorded shell as an asciicast
/// v2 download, for `asciinema play`.
pub(crate) async fn cast(
    State(ui): State<UiRef>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    Query(q): Query<sessions::CastQuery>,
) -> Response {
    let (_, s) = approver!(ui, headers, uri, true);
    if id.len() > MAX_ID {
        return pages::message_for(
            &s,
            StatusCode::NOT_FOUND,
            "No recording",
            "No such session.",
        );
    }
    match sessions::cast_of(&ui.app, &id, None, q.shell).await {
        Ok(r) => r,
        Err(e) => pages::message_for(&s, e.status, "No recording", &e.message),
    }
}
