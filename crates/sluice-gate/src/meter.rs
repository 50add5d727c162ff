//! A session's handles on the gateway's metrics, looked up once when it
//! opens so a statement's counting is a few atomic adds, not a label
//! lookup.

use std::time::Duration;

use sluice_core::Profile;
use sluice_core::metrics::{ConnProfile, Counter, Decided, Histogram, Metrics};

pub struct Meter {
    allowed: Counter,
    denied: Counter,
    held: Counter,
    approved: Counter,
    hold_wait: Histogram,
    added: Histogram,
}

impl Meter {
    pub fn new(metrics: &Metrics, connection: &str, profile: Profile) -> Meter {
        let at = ConnProfile::new(connection, profile);
        let decided = |decision| {
            metrics.statements.get_or_create_owned(&Decided {
                connection: at.connection.clone(),
                profile: at.profile,
                decision,
            })
        };
        Meter {
            allowed: decided("allowed"),
            denied: decided("denied"),
            held: decided("held"),
            approved: decided("approved"),
            hold_wait: metrics.hold_wait.get_or_create_owned(&at),
            added: metrics.added_latency.get_or_create_owned(&at),
        }
    }

    pub fn allowed(&self) {
        self.allowed.inc();
    }

    pub fn denied(&self) {
        self.denied.inc();
    }

    pub fn held(&self) {
        self.held.inc();
    }

    /// A held request was approved after `waited`.
    pub fn approved(&self, waited: Duration) {
        self.approved.inc();
        self.hold_wait.observe(waited.as_secs_f64());
    }

    /// A held request was refused (denied, expired, withdrawn) after
    /// `waited`.
    pub fn refused_after(&self, waited: Duration) {
        self.denied.inc();
        self.hold_wait.observe(waited.as_secs_f64());
    }

    /// The time a forwarded request spent in the gateway.
    pub fn added(&self, spent: Duration) {
        self.added.observe(spent.as_secs_f64());
    }
}
