//! `/healthz` (the process answers), `/readyz` (not draining, the change
//! feed caught up, the store answers),
//! `/metrics` (Prometheus text).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use sluice_control::Shared;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<Shared>) -> (StatusCode, &'static str) {
    let unavailable = StatusCode::SERVICE_UNAVAILABLE;
    if state.fleet.draining() {
        (unavailable, "draining\n")
    } else if !state.fleet.feed_ok() {
        (
            unavailable,
            "change feed down: catching up from the store\n",
        )
    } else if state.store.ping().await {
        (StatusCode::OK, "ready\n")
    } else {
        (unavailable, "store unavailable\n")
    }
}

pub async fn metrics(State(state): State<Shared>) -> impl IntoResponse {
    scraped(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// The gauges read when scraped rather than kept up to date: the store's
/// open approvals and each sink's lag behind the log, the audit writer's
/// queue and journal. One that cannot be read keeps its last value (a
/// store that does not answer shows in `/readyz`).
async fn scraped(state: &Shared) {
    let m = &state.metrics;
    if let Ok(n) = state
        .store
        .count_approvals(sluice_core::approval::ApprovalStatus::Pending)
        .await
    {
        m.approvals_open.set(n);
    }
    m.audit_queue.set(state.audit.queue_depth() as i64);
    m.journal_bytes.set(state.audit.journal_bytes() as i64);
    let head = match state.store.audit_tail().await {
        Ok(tail) => tail.map_or(0, |(seq, _)| seq),
        Err(_) => return,
    };
    for sink in &state.config.audit.sinks {
        if let Ok(cursor) = state.store.sink_cursor(&sink.name).await {
            let label = sluice_core::metrics::SinkLabel {
                sink: sink.name.clone(),
            };
            m.sink_lag
                .get_or_create(&label)
                .set((head - cursor.unwrap_or(0)).max(0));
        }
    }
}
