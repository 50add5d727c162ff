//! Prometheus counters, rendered by hand: a handful of atomics does not
//! need a metrics framework.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    pub grants_requested: AtomicU64,
    pub grants_active: AtomicU64,
    pub grants_pending: AtomicU64,
    pub grants_refused: AtomicU64,
    pub grants_revoked: AtomicU64,
    pub grants_expired: AtomicU64,
    pub tokens_rejected: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let rows = [
            (
                "sluice_grants_requested_total",
                "Grant requests received.",
                &self.grants_requested,
            ),
            (
                "sluice_grants_activated_total",
                "Grants issued active.",
                &self.grants_active,
            ),
            (
                "sluice_grants_pending_total",
                "Grants left pending approval.",
                &self.grants_pending,
            ),
            (
                "sluice_grants_refused_total",
                "Grant requests refused by policy.",
                &self.grants_refused,
            ),
            (
                "sluice_grants_revoked_total",
                "Grants revoked.",
                &self.grants_revoked,
            ),
            (
                "sluice_grants_expired_total",
                "Grants expired by the sweeper.",
                &self.grants_expired,
            ),
            (
                "sluice_tokens_rejected_total",
                "Bearer tokens rejected.",
                &self.tokens_rejected,
            ),
        ];
        let mut out = String::new();
        for (name, help, v) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out
    }
}
