//! Sluice's control API (`/v1`), health and metrics, and the approvers'
//! web page: HTTP over the control plane (`sluice-control`).
//!
//! Every handler takes the verified caller from the `Caller` extractor, so
//! no route can forget authentication; errors are JSON `{error, message}`.

mod approvals;
mod audit;
pub mod auth;
mod connections;
mod error;
mod fleet;
mod grants;
mod health;
mod json;
mod mcp;
mod sessions;
pub mod ui;

pub use error::ApiError;
pub use sluice_control::{AppState, GrantChange, Shared};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;

/// The whole HTTP surface.
pub fn router(state: Shared) -> Router {
    let api = Router::new()
        .route("/grants", get(grants::list).post(grants::create))
        .route("/grants/{id}", get(grants::show).delete(grants::revoke))
        .route("/connections", get(connections::list))
        .route("/whoami", get(connections::whoami))
        .route("/approvals", get(approvals::routes::list))
        .route("/approvals/{id}", get(approvals::routes::show))
        .route("/approvals/{id}/approve", post(approvals::routes::approve))
        .route("/approvals/{id}/deny", post(approvals::routes::deny))
        .route("/audit", get(audit::list))
        .route("/sessions", get(sessions::list))
        .route("/sessions/{id}", get(sessions::show))
        .route("/sessions/{id}/events", get(sessions::events))
        .route("/sessions/{id}/cast", get(sessions::cast))
        .route("/fleet", get(fleet::status))
        .fallback(|| async { ApiError::not_found("no such API route") });
    let mut app: Router = Router::new()
        .nest("/v1", api)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route(
            "/.well-known/oauth-protected-resource",
            get(mcp::protected_resource),
        )
        .with_state(state.clone());
    // The Model Context Protocol, for agents that speak it.
    let mcp = Router::new()
        .nest_service("/mcp", mcp::service(state.clone()))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            mcp::require_bearer,
        ));
    app = app.merge(mcp);
    if let Some(dev) = &state.dev_issuer {
        app = app.nest("/dev-issuer", dev.router());
    }
    // The approvers' web page (sign-in, pending list, decisions).
    app = app.nest("/ui", ui::router(state.clone()));
    // A nested router answers `/ui` but not `/ui/`, which people type.
    app = app.route(
        "/ui/",
        get(|| async { axum::response::Redirect::permanent("/ui") }),
    );
    app.layer(DefaultBodyLimit::max(state.config.server.max_body_bytes))
        // Long-polls wait at most 60 s; nothing should take longer than that.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(90),
        ))
}
