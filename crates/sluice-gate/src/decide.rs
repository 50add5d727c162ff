//! The decision for one request, the same for every protocol: the
//! connection's guardrails under the grant's profile give a verdict; an
//! `approve` verdict holds the request for a human ([`crate::hold`]); the
//! decision is recorded, and a request is forwarded only with a
//! [`Permit`], which exists only once its record is durable.
//!
//! The protocol adapter says what a request does ([`Subject`]: facts per
//! statement or command, how each is shown in the record, the exact text
//! and shape an approver sees) and turns a [`Denial`] into its own error
//! (an ErrorResponse, an exit status). Refusals the adapter makes before
//! any verdict (a masked column it cannot protect, a request it cannot
//! read) go through [`Gate::refuse`], so they are recorded the same way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_core::Profile;
use sluice_core::audit::detail::{self, StatementRecord};
use sluice_core::audit::{AuditEvent, AuditSink, EventKind};
use sluice_core::guardrail::{Action, GuardrailRule, StatementFacts, Verdict, evaluate_all};

use crate::hold::{Held, Holds};
use crate::meter::Meter;

/// What a request does, as the adapter analysed it.
pub trait Subject: Send + Sync {
    /// Each statement as the audit record shows it (`text`, classes…).
    fn describe(&self) -> Vec<StatementRecord>;
    /// Exactly what will run, for an approver.
    fn text(&self) -> String;
    /// The shape a shape approval admits (with the bound values' kinds),
    /// and what it admits, in words for the approver.
    fn shape(&self, parameters: Option<&[Option<String>]>) -> (String, serde_json::Value);
}

/// A request the adapter refuses before any verdict, as its record shows it.
pub struct Refusal {
    pub protocol: String,
    pub statements: Vec<StatementRecord>,
    pub rule: String,
    pub reason: String,
    /// The masked column the refusal protects, if that is why.
    pub masked_column: Option<String>,
}

/// Whether a request runs anything yet.
pub enum Run {
    /// It only prepares (Postgres' Parse): nothing is held until it runs.
    PrepareOnly,
    /// It runs, with these bound values (shown to an approver).
    Executes(Option<Vec<Option<String>>>),
}

/// Why a request was refused, in words for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub kind: DenialKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialKind {
    /// A rule, a profile, an approver or the adapter refused it.
    Refused,
    /// Its record could not be written: nothing runs unrecorded.
    AuditUnavailable,
}

impl Denial {
    pub fn refused(message: impl Into<String>) -> Denial {
        Denial {
            kind: DenialKind::Refused,
            message: message.into(),
        }
    }

    fn audit_unavailable() -> Denial {
        Denial {
            kind: DenialKind::AuditUnavailable,
            message: "sluice: the audit log is unavailable, so the statement was not run".into(),
        }
    }
}

/// Leave to forward one request: its audit record is written.
pub struct Permit {
    seq: Option<u64>,
}

impl Permit {
    /// For requests that run nothing (Postgres' Describe, Close, Sync alone).
    pub fn nothing_runs() -> Self {
        Permit { seq: None }
    }

    /// The request's number in its `statement.allowed` event, when it runs
    /// something.
    pub fn seq(&self) -> Option<u64> {
        self.seq
    }
}

/// A request's fate.
pub enum Decision {
    Forward(Permit),
    Deny(Denial),
}

/// One session's decisions: who they are recorded for, the rules they
/// follow, and the count that numbers them.
pub struct Gate {
    pub audit: Arc<dyn AuditSink>,
    pub session_id: String,
    pub grant_id: String,
    pub connection: String,
    profile: Profile,
    rules: Arc<[GuardrailRule]>,
    /// The session's requests decided so far: each decision event carries
    /// its number as `seq`, and so do the request's outcome events, so the
    /// two can be joined.
    decided: u64,
    /// The session's counters on the gateway's metrics.
    pub meter: Meter,
    /// How long the last decision waited for an approval (not time the
    /// gateway added).
    pub held_for: Duration,
    /// Holding requests for approval; without it, `approve` refuses.
    holds: Option<Holds>,
}

/// Who a gate records for and what it follows.
pub struct GateSpec {
    pub audit: Arc<dyn AuditSink>,
    pub session_id: String,
    pub grant_id: String,
    pub connection: String,
    pub profile: Profile,
    pub rules: Arc<[GuardrailRule]>,
    pub meter: Meter,
    pub holds: Option<Holds>,
}

impl Gate {
    pub fn new(spec: GateSpec) -> Gate {
        Gate {
            audit: spec.audit,
            session_id: spec.session_id,
            grant_id: spec.grant_id,
            connection: spec.connection,
            profile: spec.profile,
            rules: spec.rules,
            decided: 0,
            meter: spec.meter,
            held_for: Duration::ZERO,
            holds: spec.holds,
        }
    }

    /// The verdict of the rules and the profile over every fact of a
    /// request, judged as a whole.
    pub fn verdict(&self, facts: &[StatementFacts]) -> Verdict {
        evaluate_all(self.profile, &self.rules, facts)
    }

    /// Whether a verdict may hold its request: worth watching the client
    /// while it waits.
    pub fn may_hold(&self, verdict: &Verdict) -> bool {
        verdict.action == Action::Approve
            && self
                .rules
                .iter()
                .any(|r| r.action == Action::Approve && r.applies_to(self.profile))
    }

    /// The grant's profile.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Decides a request by `verdict` and records the decision; a request
    /// whose record cannot be written is denied (fail closed).
    pub async fn decide(
        &mut self,
        subject: &dyn Subject,
        verdict: &Verdict,
        protocol: &str,
        run: Run,
    ) -> Decision {
        self.held_for = Duration::ZERO;
        if verdict.action == Action::Approve {
            return self.decide_held(subject, verdict, protocol, run).await;
        }
        let allowed = verdict.action == Action::Allow;
        let kind = if allowed {
            EventKind::StatementAllowed
        } else {
            EventKind::StatementDenied
        };
        let seq = self.next_seq();
        let recorded = self
            .record(
                kind,
                seq,
                subject,
                verdict,
                protocol,
                serde_json::Value::Null,
            )
            .await;
        match (allowed, recorded) {
            (true, true) => {
                self.meter.allowed();
                Decision::Forward(Permit { seq: Some(seq) })
            }
            (true, false) => {
                self.meter.denied();
                Decision::Deny(Denial::audit_unavailable())
            }
            (false, _) => {
                self.meter.denied();
                tracing::info!(seq, rule = %verdict.rule, "statement denied");
                Decision::Deny(denial(verdict))
            }
        }
    }

    /// A request a guardrail holds for approval: waits for the decision,
    /// then records and forwards or refuses it.
    async fn decide_held(
        &mut self,
        subject: &dyn Subject,
        verdict: &Verdict,
        protocol: &str,
        run: Run,
    ) -> Decision {
        let waiting = Instant::now();
        let holds = self.holds.is_some() && matches!(run, Run::Executes(_));
        let held = match (&self.holds, run) {
            // Preparing runs nothing: the request is held when it runs,
            // with its values bound, so the approver sees what will run.
            (_, Run::PrepareOnly) => Held::Approved {
                approval: serde_json::json!({ "deferred": "held when executed" }),
            },
            (Some(h), Run::Executes(parameters)) => {
                h.hold(&self.session_id, subject, verdict, parameters).await
            }
            (None, _) => Held::Refused {
                denial: denial(verdict),
                approval: serde_json::Value::Null,
            },
        };
        let seq = self.next_seq();
        if holds {
            self.held_for = waiting.elapsed();
            self.meter.held();
        }
        match held {
            Held::Approved { approval } => {
                match holds {
                    true => self.meter.approved(self.held_for),
                    false => self.meter.allowed(),
                }
                let kind = EventKind::StatementAllowed;
                if self
                    .record(kind, seq, subject, verdict, protocol, approval)
                    .await
                {
                    Decision::Forward(Permit { seq: Some(seq) })
                } else {
                    Decision::Deny(Denial::audit_unavailable())
                }
            }
            Held::Refused { denial, approval } => {
                match holds {
                    true => self.meter.refused_after(self.held_for),
                    false => self.meter.denied(),
                }
                tracing::info!(seq, rule = %verdict.rule, "held statement refused");
                let kind = EventKind::StatementDenied;
                self.record(kind, seq, subject, verdict, protocol, approval)
                    .await;
                Decision::Deny(denial)
            }
        }
    }

    /// A refusal the adapter made before any verdict (a masked column it
    /// cannot protect, a message it does not pass): recorded as denied by
    /// `refusal.rule` with its reason; the client is told `message`.
    pub async fn refuse(&mut self, refusal: Refusal, message: String) -> Denial {
        let seq = self.next_seq();
        let rule = refusal.rule.clone();
        let detail = detail::Decision {
            seq,
            protocol: refusal.protocol,
            statements: refusal.statements,
            decision: "deny".into(),
            rule: Some(refusal.rule),
            reason: refusal.reason,
            approval: None,
            masked_column: refusal.masked_column,
        };
        let event = self.event(EventKind::StatementDenied).with(&detail);
        if let Err(e) = self.audit.record(event).await {
            tracing::error!(error = %e, "could not audit a refusal");
        }
        self.meter.denied();
        tracing::info!(seq, rule = %rule, "statement denied");
        Denial::refused(message)
    }

    fn next_seq(&mut self) -> u64 {
        self.decided += 1;
        self.decided
    }

    /// An event about this session.
    pub fn event(&self, kind: EventKind) -> AuditEvent {
        AuditEvent::new(kind)
            .grant(&self.grant_id)
            .connection(&self.connection)
            .session(&self.session_id)
    }

    async fn record(
        &self,
        kind: EventKind,
        seq: u64,
        subject: &dyn Subject,
        verdict: &Verdict,
        protocol: &str,
        approval: serde_json::Value,
    ) -> bool {
        let detail = detail::Decision {
            seq,
            protocol: protocol.to_string(),
            statements: subject.describe(),
            decision: verdict.action.as_str().to_string(),
            rule: Some(verdict.rule.clone()),
            reason: verdict.reason.clone(),
            approval: (!approval.is_null()).then_some(approval),
            masked_column: None,
        };
        let event = self.event(kind).with(&detail);
        // An allowed request is forwarded as soon as its record is durable
        // (the audit journal); a denial waits for the store.
        let recorded = if kind == EventKind::StatementAllowed {
            self.audit.record_durable(event).await
        } else {
            self.audit.record(event).await.map(|_| ())
        };
        match recorded {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, session.id = %self.session_id, "audit write failed; statement refused");
                false
            }
        }
    }
}

/// What a denied request's client is told. `approve` without a way to hold
/// the request is answered as a denial that says approval is required.
fn denial(verdict: &Verdict) -> Denial {
    let message = match verdict.action {
        Action::Approve => format!(
            "{} (approval required, but this session cannot wait for one)",
            verdict.client_message()
        ),
        _ => verdict.client_message(),
    };
    Denial::refused(message)
}

/// The longest request text kept in a record; past it the text is cut
/// and the full text's SHA-256 kept.
pub const MAX_RECORDED_TEXT: usize = 8 * 1024;

/// How a request of one text is shown in the record: the text (cut at
/// [`MAX_RECORDED_TEXT`]), its classes, commands and tables.
pub fn record_of(text: &str, facts: &[StatementFacts], fingerprint: &str) -> StatementRecord {
    use sha2::Digest;
    let truncated = text.len() > MAX_RECORDED_TEXT;
    let mut shown = text.to_string();
    if truncated {
        let mut end = MAX_RECORDED_TEXT;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        shown.truncate(end);
    }
    let mut tables: Vec<String> = facts
        .iter()
        .flat_map(|f| f.tables().map(str::to_string))
        .collect();
    tables.sort();
    tables.dedup();
    StatementRecord {
        text: shown,
        truncated,
        sha256: truncated.then(|| hex::encode(sha2::Sha256::digest(text.as_bytes()))),
        fingerprint: fingerprint.to_string(),
        classes: facts.iter().map(|f| f.class.as_str().to_string()).collect(),
        commands: facts.iter().map(|f| f.command.clone()).collect(),
        tables,
    }
}
