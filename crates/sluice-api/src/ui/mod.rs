//! The approvers' web page at `/ui`: sign-in with the organisation's IdP,
//! the pending approvals (live, by server-sent events), one approval in
//! full, and Approve / Approve shape / Deny; and the recorded sessions,
//! each with its replay timeline.
//!
//! Security properties, each pinned by a test in `tests/ui*.rs`:
//! - the session cookie is `HttpOnly`, `SameSite=Lax`, and `Secure` with the
//!   `__Host-` prefix unless `[ui] cookie_secure = false` (loopback only);
//!   its value is 256 random bits, mapped to the session in memory;
//! - every POST carries the session's synchronizer token and a same-origin
//!   `Origin` (or, lacking it, `Referer`);
//! - every page is rendered by `maud`, which escapes every interpolation
//!   (statements and reasons are attacker-controlled);
//! - `Content-Security-Policy` allows only our own script and style files
//!   (no inline script), with `X-Frame-Options: DENY`,
//!   `Referrer-Policy: same-origin` and `nosniff`;
//! - votes go through `approvals::vote`: approver groups, no self-approval,
//!   N-of-M, audit.

mod assets;
mod handlers;
mod oidc;
mod operation_pages;
mod operations;
mod pages;
mod recording_pages;
mod recordings;
mod session;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sluice_core::config::{IssuerConfig, UiConfig};

use session::{Cookies, Session, Sessions};
use sluice_control::Shared;

/// What the web page's handlers share.
pub(crate) struct Ui {
    app: Shared,
    cfg: UiConfig,
    issuer: IssuerConfig,
    redirect_url: String,
    /// `scheme://host[:port]` of `server.public_url`: what `Origin` must say.
    origin: String,
    cookies: Cookies,
    sessions: Sessions,
    http: reqwest::Client,
    endpoints: tokio::sync::Mutex<Option<(oidc::Endpoints, std::time::Instant)>>,
}

type UiRef = Arc<Ui>;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The routes to nest at `/ui`. Without a `[ui]` section (or when its
/// issuer is not configured) every page says so.
pub fn router(app: Shared) -> Router {
    let Some(ui) = build(&app) else {
        return Router::new()
            .fallback(|| async {
                let body = maud::html! {
                    h1 { "The approvers' web page is not set up" }
                    p { "Add a " code { "[ui]" } " section to sluice.toml (see the README's Approvals section)." }
                };
                pages::plain(StatusCode::NOT_FOUND, "Not set up", body)
            })
            .layer(map_response(security_headers));
    };
    Router::new()
        .route("/", get(handlers::list))
        .route("/pending", get(handlers::pending_fragment))
        .route("/events", get(handlers::events))
        .route(
            "/approvals/{id}",
            get(handlers::detail).post(handlers::decide),
        )
        .route("/overview", get(operations::overview))
        .route("/history", get(operations::history))
        .route("/live", get(operations::live))
        .route("/fleet", get(operations::fleet))
        .route("/live/{id}/end", post(operations::end))
        .route("/sessions", get(recordings::list))
        .route("/sessions/{id}", get(recordings::show))
        .route("/sessions/{id}/cast", get(recordings::cast))
        .route("/login", get(oidc::login))
        .route("/callback", get(oidc::callback))
        .route("/logout", post(handlers::logout))
        .route("/signed-out", get(handlers::signed_out))
        .route("/app.js", get(assets::script))
        .route("/app.css", get(assets::style))
        .fallback(handlers::not_found)
        .layer(map_response(security_headers))
        .with_state(Arc::new(ui))
}

fn build(app: &Shared) -> Option<Ui> {
    let cfg = app.config.ui.clone()?;
    let issuer = app
        .config
        .issuers
        .iter()
        .find(|i| i.name == cfg.issuer)?
        .clone();
    let public = app.config.server.public_url();
    let origin = url::Url::parse(&public)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or(public);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .ok()?;
    Some(Ui {
        redirect_url: cfg.redirect_url(&app.config),
        cookies: Cookies::new(cfg.cookie_secure),
        app: app.clone(),
        cfg,
        issuer,
        origin,
        sessions: Sessions::new(app.store.clone()),
        http,
        endpoints: tokio::sync::Mutex::new(None),
    })
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// `s` as one URL path segment: unreserved characters as they are, every
/// other byte `%XX`, so an id can never reach into the rest of the path.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A 303 to `to`.
fn redirect(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

impl Ui {
    /// The request's session and its cookie value, if signed in.
    async fn session(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = session::cookie(headers, self.cookies.session)?;
        let s = self.sessions.get(id).await?;
        Some((id.to_string(), s))
    }

    fn is_approver(&self, s: &Session) -> bool {
        s.identity
            .in_any(&self.app.config.approvals.approver_groups)
    }

    /// True when a POST comes from one of our own pages: `Origin` equal to
    /// ours, or (browsers that omit it) a `Referer` on our origin.
    fn same_origin(&self, headers: &HeaderMap) -> bool {
        let get = |h| headers.get(h).and_then(|v: &HeaderValue| v.to_str().ok());
        match get(header::ORIGIN) {
            Some(o) => o == self.origin,
            None => get(header::REFERER).is_some_and(|r| {
                r.strip_prefix(self.origin.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }),
        }
    }
}
