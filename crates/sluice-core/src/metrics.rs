//! What `/metrics` reports, in Prometheus text (OpenMetrics) form, built
//! on `prometheus-client`.
//!
//! One [`Metrics`] per gateway, shared by the control API, the protocol
//! listeners and the audit log. Label values come only from the
//! configuration (connection, profile and sink names) or from short fixed
//! sets (results, decisions): a client never chooses one, so it cannot
//! grow the series without bound.
//!
//! The README's "Metrics" section lists every family; a new one goes there
//! and on the dashboard in `docs/grafana-dashboard.json`.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::Profile;

/// A connection and a profile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnProfile {
    pub connection: String,
    pub profile: &'static str,
}

impl ConnProfile {
    pub fn new(connection: &str, profile: Profile) -> Self {
        ConnProfile {
            connection: connection.to_string(),
            profile: profile.as_str(),
        }
    }
}

/// A connection alone.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Conn {
    pub connection: String,
}

/// A connection and how something about it went.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnResult {
    pub connection: String,
    pub result: &'static str,
}

/// A statement's decision under a connection and profile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Decided {
    pub connection: String,
    pub profile: &'static str,
    /// `allowed`, `denied`, `held` or `approved`.
    pub decision: &'static str,
}

/// A grant request's result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrantResult {
    pub connection: String,
    pub profile: &'static str,
    /// `active`, `pending`, `refused` (requests) or `revoked`, `expired`
    /// (ends).
    pub result: &'static str,
}

/// A result alone.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

/// An export sink.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabel {
    pub sink: String,
}

/// Pooled backend sessions by state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabel {
    pub connection: String,
    pub profile: &'static str,
    /// `idle` (parked) or `busy` (serving a client).
    pub state: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Statement-scale latencies: 50µs to ~1.6s.
pub fn fast_seconds() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.000_05, 2.0, 16,
    ))
}

/// Human-scale waits: 1s to ~2h.
fn slow_seconds() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        1.0, 2.0, 13,
    ))
}

/// Every metric a gateway keeps. Cheap to clone handles out of: counters,
/// gauges and histograms share their value with the registry.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Client sessions open now.
    pub sessions_live: Family<ConnProfile, Gauge>,
    /// Listener logins by result (`ok`, `refused`, `limit`,
    /// `backend_unavailable`, `masking_unavailable`).
    pub logins: Family<ConnResult, Counter>,
    /// Statements (requests) by decision.
    pub statements: Family<Decided, Counter>,
    /// How long held statements waited for their decision.
    pub hold_wait: Histograms<ConnProfile>,
    /// Time a statement spent in the gateway on its way to the backend:
    /// reading, analysis, policy and the decision's record.
    pub added_latency: Histograms<ConnProfile>,
    /// Group commits of the audit log.
    pub audit_commit: Histogram,
    /// Events waiting for the audit writer (set when scraped).
    pub audit_queue: Gauge,
    /// Bytes of the local audit journal (set when scraped).
    pub journal_bytes: Gauge,
    /// Events stored but not yet delivered, per sink (set when scraped).
    pub sink_lag: Family<SinkLabel, Gauge>,
    /// Failed backend logins and connects.
    pub backend_connect_errors: Family<Conn, Counter>,
    /// Backend sessions in the pool.
    pub pool: Family<PoolLabel, Gauge>,
    /// Bearer tokens verified, by result (`ok` or the rejection code).
    pub tokens: Family<ResultLabel, Counter>,
    /// Approvals waiting for a decision (set when scraped).
    pub approvals_open: Gauge,
    /// Grant requests by result, and grant ends by cause.
    pub grants: Family<GrantResult, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Self::with_audit_commit(fast_seconds())
    }

    /// With the audit log's own commit histogram (the log starts first).
    pub fn with_audit_commit(audit_commit: Histogram) -> Metrics {
        let m = Metrics {
            registry: Mutex::new(Registry::with_prefix("sluice")),
            sessions_live: Family::default(),
            logins: Family::default(),
            statements: Family::default(),
            hold_wait: Family::new_with_constructor(slow_seconds),
            added_latency: Family::new_with_constructor(fast_seconds),
            audit_commit,
            audit_queue: Gauge::default(),
            journal_bytes: Gauge::default(),
            sink_lag: Family::default(),
            backend_connect_errors: Family::default(),
            pool: Family::default(),
            tokens: Family::default(),
            approvals_open: Gauge::default(),
            grants: Family::default(),
        };
        m.register_all();
        m
    }

    fn register_all(&self) {
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        r.register(
            "sessions_live",
            "Client sessions open now",
            self.sessions_live.clone(),
        );
        r.register("logins", "Listener logins by result", self.logins.clone());
        r.register(
            "statements",
            "Requests decided, by decision (allowed, denied, held, approved)",
            self.statements.clone(),
        );
        r.register_with_unit(
            "hold_wait",
            "Time held statements waited for a decision",
            Unit::Seconds,
            self.hold_wait.clone(),
        );
        r.register_with_unit(
            "gateway_added",
            "Time a request spent in the gateway before it was forwarded",
            Unit::Seconds,
            self.added_latency.clone(),
        );
        r.register_with_unit(
            "audit_commit",
            "Audit log group commits",
            Unit::Seconds,
            self.audit_commit.clone(),
        );
        r.register(
            "audit_queue_depth",
            "Audit events waiting for the writer",
            self.audit_queue.clone(),
        );
        r.register_with_unit(
            "audit_journal",
            "Size of the local audit journal",
            Unit::Bytes,
            self.journal_bytes.clone(),
        );
        r.register(
            "audit_sink_lag_events",
            "Audit events stored but not yet delivered to the sink",
            self.sink_lag.clone(),
        );
        r.register(
            "backend_connect_errors",
            "Failed backend logins and connects",
            self.backend_connect_errors.clone(),
        );
        r.register(
            "pool_sessions",
            "Backend sessions held by the pool, by state",
            self.pool.clone(),
        );
        r.register(
            "token_verifications",
            "Bearer tokens verified, by result",
            self.tokens.clone(),
        );
        r.register(
            "approvals_open",
            "Approvals waiting for a decision",
            self.approvals_open.clone(),
        );
        r.register(
            "grants",
            "Grant requests by result and grant ends by cause",
            self.grants.clone(),
        );
    }

    /// The Prometheus text of every metric.
    pub fn render(&self) -> String {
        let r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        out
    }

    /// Counts a statement's decision.
    pub fn decided(&self, at: &ConnProfile, decision: &'static str) {
        self.statements
            .get_or_create(&Decided {
                connection: at.connection.clone(),
                profile: at.profile,
                decision,
            })
            .inc();
    }

    /// Counts a grant request's result or a grant's end.
    pub fn grant(&self, connection: &str, profile: Profile, result: &'static str) {
        self.grants
            .get_or_create(&GrantResult {
                connection: connection.to_string(),
                profile: profile.as_str(),
                result,
            })
            .inc();
    }

    /// Counts a listener login's result.
    pub fn login(&self, connection: &str, result: &'static str) {
        self.logins
            .get_or_create(&ConnResult {
                connection: connection.to_string(),
                result,
            })
            .inc();
    }
}

/// A live session's place in `sessions_live`: counted while it exists.
pub struct LiveSession {
    gauge: Gauge,
}

impl LiveSession {
    pub fn open(metrics: &Metrics, at: &ConnProfile) -> LiveSession {
        let gauge = metrics.sessions_live.get_or_create_owned(at);
        gauge.inc();
        LiveSession { gauge }
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn families_render_with_their_labels_and_units() {
        let m = Metrics::new();
        let at = ConnProfile::new("orders", Profile::Read);
        m.decided(&at, "denied");
        m.decided(&at, "denied");
        m.added_latency
            .get_or_create(&at)
            .observe(Duration::from_micros(120).as_secs_f64());
        let live = LiveSession::open(&m, &at);
        let text = m.render();
        assert!(
            text.contains(
                "sluice_statements_total{connection=\"orders\",profile=\"read\",decision=\"denied\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("# TYPE sluice_gateway_added_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("sluice_sessions_live{connection=\"orders\",profile=\"read\"} 1"),
            "{text}"
        );
        drop(live);
        assert!(
            m.render()
                .contains("sluice_sessions_live{connection=\"orders\",profile=\"read\"} 0")
        );
    }

    /// The metric families a page holds (`# TYPE name kind`), with the
    /// names as queried (`_total`, `_bucket`… added as the type implies).
    fn families(page: &str) -> Vec<String> {
        let mut out = Vec::new();
        for l in page.lines() {
            let Some(rest) = l.strip_prefix("# TYPE ") else {
                continue;
            };
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            match kind {
                "counter" => out.push(format!("{name}_total")),
                "histogram" => {
                    for s in ["_bucket", "_sum", "_count"] {
                        out.push(format!("{name}{s}"));
                    }
                }
                _ => out.push(name.to_string()),
            }
        }
        out
    }

    /// Every `sluice_…` name the README's table and the Grafana dashboard
    /// use is one this registry serves, and the README lists every family.
    #[test]
    fn the_readme_and_the_dashboard_name_only_real_metrics() {
        let m = Metrics::new();
        // Families with labels appear once they have a series.
        let at = ConnProfile::new("c", Profile::Read);
        m.decided(&at, "allowed");
        m.login("c", "ok");
        m.grant("c", Profile::Read, "active");
        let _ = LiveSession::open(&m, &at);
        m.hold_wait.get_or_create(&at).observe(1.0);
        m.added_latency.get_or_create(&at).observe(0.001);
        m.sink_lag
            .get_or_create(&SinkLabel { sink: "s".into() })
            .set(0);
        m.backend_connect_errors
            .get_or_create(&Conn {
                connection: "c".into(),
            })
            .inc();
        m.pool
            .get_or_create(&PoolLabel {
                connection: "c".into(),
                profile: "read",
                state: "idle",
            })
            .set(0);
        m.tokens.get_or_create(&ResultLabel { result: "ok" }).inc();
        let served = families(&m.render());
        let names = |text: &str| -> Vec<String> {
            let mut found = Vec::new();
            let mut rest = text;
            while let Some(i) = rest.find("sluice_") {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                    .unwrap_or(tail.len());
                found.push(tail[..end].to_string());
                rest = &tail[end..];
            }
            found
        };
        let readme = include_str!("../../../README.md");
        let dashboard = include_str!("../../../docs/grafana-dashboard.json");
        for name in names(dashboard) {
            assert!(
                served.contains(&name),
                "the dashboard uses {name}, which is not served"
            );
        }
        let section = readme
            .split("**Metrics.**")
            .nth(1)
            .and_then(|s| s.split("**Logs.**").next())
            .expect("the README's Metrics section");
        let listed = names(section);
        for name in &listed {
            assert!(
                served.iter().any(|s| s.starts_with(name.as_str())),
                "the README lists {name}, which is not served"
            );
        }
        for family in m.render().lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let name = family.split_whitespace().next().unwrap();
            assert!(
                listed.iter().any(|l| l.starts_with(name)),
                "{name} is served but not in the README's Metrics section"
            );
        }
    }
}
