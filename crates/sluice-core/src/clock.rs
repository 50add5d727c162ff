//! The gateway's idea of now, for everything that ends: grants, approvals,
//! leases, tokens it issues, and the timestamps of audit events.
//!
//! A grant's end is a wall-clock time (`expires_at`), because a fleet's
//! gateways share it through the store and only the wall clock is common
//! to them. But a wall clock can be stepped: back (NTP correcting a clock
//! that ran fast, or an operator), which on its own would give every grant
//! the step as extra life, and forward, which ends grants early.
//!
//! [`now`] is never earlier than the wall clock, and never earlier than
//! where the monotonic clock says time has got to since the process first
//! asked (the wall clock then, plus the monotonic time elapsed). A step
//! back therefore changes nothing: time goes on by the monotonic clock
//! until the wall clock catches up. A step forward is taken at once, which
//! ends grants early: the safe side. The monotonic clock is only slewed,
//! never stepped, and it stops while the machine is suspended (the wall
//! clock is then ahead, and wins).
//!
//! What this does not cover: a wall clock already wrong (ahead) when the
//! process starts keeps this process's time ahead until it restarts, so
//! its grants end early; a clock behind at start is behind for everyone
//! reading it, which only a correct clock source fixes.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};

/// The wall clock and the monotonic clock at the first call.
static ANCHOR: OnceLock<(Instant, DateTime<Utc>)> = OnceLock::new();

/// The largest step back told to the operator so far, in seconds.
static STEP_TOLD: AtomicI64 = AtomicI64::new(0);

/// A step back smaller than this is jitter, not worth a log line.
const TELL_AFTER_SECS: i64 = 2;

/// Now, as the later of the wall clock and the monotonic clock's count
/// since the first call (see the module documentation).
pub fn now() -> DateTime<Utc> {
    #[allow(clippy::disallowed_methods)] // the one place the wall clock is read
    let wall = Utc::now();
    let (at, then) = *ANCHOR.get_or_init(|| (Instant::now(), wall));
    let steady = then + chrono::Duration::from_std(at.elapsed()).unwrap_or_default();
    if steady > wall {
        tell_step_back((steady - wall).num_seconds());
        return steady;
    }
    wall
}

/// Logs a step back once per new largest step.
fn tell_step_back(secs: i64) {
    if secs < TELL_AFTER_SECS || secs <= STEP_TOLD.fetch_max(secs, Ordering::Relaxed) {
        return;
    }
    tracing::warn!(
        behind_secs = secs,
        "the wall clock is behind the monotonic clock (stepped back?); grants, \
         approvals and audit times keep to the monotonic clock until it catches up"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_behind_the_wall_clock_and_never_goes_back() {
        let mut last = now();
        for _ in 0..1000 {
            #[allow(clippy::disallowed_methods)]
            let wall = Utc::now();
            let n = now();
            assert!(n >= wall - chrono::Duration::milliseconds(1));
            assert!(n >= last);
            last = n;
        }
    }
}
