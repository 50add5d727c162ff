//! One SSH session after login: its grant, its gate, its backend
//! connection (opened on the first channel), its record and its place on
//! the live list, and its end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use russh::server::Handle;
use sluice_core::Grant;
use sluice_core::audit::detail::{SessionClosed, SessionOpened};
use sluice_core::config::ConnectionConfig;
use sluice_gate::{
    Decision, Denial, Gate, GateSpec, Holds, Meter, Presence, Seat, SessionRecord, Subject,
};
use tokio::sync::{Mutex, OnceCell};

use crate::Shared;
use crate::backend::{self, Backend};

/// A logged-in session.
pub struct Session {
    pub shared: Arc<Shared>,
    pub grant: Grant,
    pub conn: ConnectionConfig,
    pub id: String,
    pub record: SessionRecord,
    gate: Mutex<Gate>,
    backend: OnceCell<Result<Arc<Backend>, String>>,
    /// More connections to the host, opened when one holds as many
    /// channels as the host allows (sshd's MaxSessions, 10 by default).
    more: Mutex<Vec<Arc<Backend>>>,
    /// The connection's value detectors for command output, unless the
    /// grant's holder is exempt.
    pub masker: Option<Arc<sluice_mask::Masker>>,
    allowed: AtomicU64,
    denied: AtomicU64,
    started: Instant,
    closed: AtomicBool,
    _seat: Seat,
    presence: std::sync::Mutex<Option<Presence>>,
    /// The client's connection, for channels opened towards it (a remote
    /// forward's connections).
    pub client: Handle,
    /// Forwarded connections open now (see `forward::MAX_FORWARDS`).
    pub forwards: AtomicUsize,
    /// Remote forwards the host listens on for this session, with the
    /// request number of the listen that allowed each. Held while the host
    /// is asked to listen, so a connection arriving at once waits for it.
    pub listeners: Mutex<HashMap<(String, u32), u64>>,
    me: Weak<Session>,
}

impl Session {
    /// Opens the session of `grant` (its record, its place on the live
    /// list) and watches for its end, which disconnects `client`.
    pub async fn open(
        shared: Arc<Shared>,
        grant: Grant,
        conn: ConnectionConfig,
        seat: Seat,
        client_addr: String,
        client: Handle,
    ) -> Arc<Session> {
        let id = sluice_gate::new_session_id();
        let record = SessionRecord::new(shared.audit.clone(), &grant, &id);
        let tell: sluice_gate::Tell = {
            // A held command is announced on the session's first channel's
            // stderr by the exec runner; the gate's words go to the log.
            Box::new(|text: String| tracing::info!(notice = %text, "held"))
        };
        let gate = Gate::new(GateSpec {
            audit: shared.audit.clone(),
            session_id: id.clone(),
            grant_id: grant.id.clone(),
            connection: grant.connection.clone(),
            profile: grant.profile,
            rules: conn.guardrails.clone().into(),
            meter: Meter::new(&shared.metrics, &grant.connection, grant.profile),
            holds: Some(Holds::new(
                shared.control.clone(),
                grant.clone(),
                tell,
                shared.config.approvals.statement_timeout.0,
            )),
        });
        let masker = output_masker(&conn, &grant);
        let presence = Presence::enter(
            &shared.live,
            &shared.metrics,
            &grant,
            &id,
            "ssh",
            client_addr.clone(),
        );
        let terminated = presence.terminated();
        let session = Arc::new_cyclic(|me| Session {
            client: client.clone(),
            forwards: AtomicUsize::new(0),
            listeners: Mutex::new(HashMap::new()),
            me: me.clone(),
            shared: shared.clone(),
            grant: grant.clone(),
            conn,
            id,
            record,
            gate: Mutex::new(gate),
            backend: OnceCell::new(),
            more: Mutex::new(Vec::new()),
            masker,
            allowed: AtomicU64::new(0),
            denied: AtomicU64::new(0),
            started: Instant::now(),
            closed: AtomicBool::new(false),
            _seat: seat,
            presence: std::sync::Mutex::new(Some(presence)),
        });
        session
            .record
            .opened(&SessionOpened {
                seq: 0,
                client_addr,
                profile: grant.profile.as_str().to_string(),
                protocol: Some("ssh".into()),
            })
            .await;
        shared.metrics.login(&grant.connection, "ok");
        tracing::info!(session.id = %session.id, grant.id = %grant.id, conn.name = %grant.connection, "ssh session opened");
        let end = sluice_gate::end_signal(
            shared.control.clone(),
            &grant,
            shared.stopping.clone(),
            terminated,
        );
        let watched = Arc::downgrade(&session);
        tokio::spawn(async move {
            let reason = end.await;
            let Some(session) = watched.upgrade() else {
                return;
            };
            let message = reason.message(&session.grant.id);
            let _ = client
                .disconnect(russh::Disconnect::ByApplication, message, "en".into())
                .await;
            session.close(reason.as_str()).await;
        });
        session
    }

    /// A new channel on the host, and the connection it is on: on the
    /// first connection with room, else on a new one (at most
    /// [`MAX_BACKENDS`] per session).
    pub async fn channel(
        &self,
    ) -> Result<(Arc<Backend>, russh::Channel<russh::client::Msg>), String> {
        let first = self.backend().await?;
        if let Ok(ch) = first.handle.channel_open_session().await {
            return Ok((first, ch));
        }
        let mut more = self.more.lock().await;
        for b in more.iter() {
            if let Ok(ch) = b.handle.channel_open_session().await {
                return Ok((b.clone(), ch));
            }
        }
        if more.len() + 1 >= MAX_BACKENDS {
            return Err(format!(
                "sluice: this session already holds {MAX_BACKENDS} connections' worth of channels to the host"
            ));
        }
        let b = Arc::new(backend::connect(&self.conn, None).await.map_err(|e| {
            tracing::warn!(conn.name = %self.conn.name, error = %e, "another ssh backend connection failed");
            "sluice: the host did not open a channel".to_string()
        })?);
        let ch = b
            .handle
            .channel_open_session()
            .await
            .map_err(|_| "sluice: the host did not open a channel".to_string())?;
        more.push(b.clone());
        Ok((b, ch))
    }

    /// The backend connection, opened on first use; connections the host
    /// accepts on this session's remote forwards arrive on it.
    pub async fn backend(&self) -> Result<Arc<Backend>, String> {
        self.backend
            .get_or_init(|| async {
                match backend::connect(&self.conn, Some(self.me.clone())).await {
                    Ok(b) => Ok(Arc::new(b)),
                    Err(e) => {
                        tracing::warn!(conn.name = %self.conn.name, error = %e, "ssh backend login failed");
                        self.shared
                            .metrics
                            .backend_connect_errors
                            .get_or_create(&sluice_core::metrics::Conn {
                                connection: self.conn.name.clone(),
                            })
                            .inc();
                        self.record
                            .rejected("backend unavailable", Some(&e.to_string()))
                            .await;
                        Err(format!(
                            "sluice: the host behind connection {:?} is unavailable",
                            self.conn.name
                        ))
                    }
                }
            })
            .await
            .clone()
    }

    /// Decides a request through the gate (the verdict of the rules and
    /// the profile over what it does).
    pub async fn decide(
        &self,
        request: &dyn Subject,
        facts: &[sluice_core::guardrail::StatementFacts],
        protocol: &str,
    ) -> Result<Option<u64>, Denial> {
        let mut gate = self.gate.lock().await;
        let verdict = gate.verdict(facts);
        let decision = gate
            .decide(
                request,
                &verdict,
                protocol,
                sluice_gate::Run::Executes(None),
            )
            .await;
        match decision {
            Decision::Forward(permit) => {
                self.allowed.fetch_add(1, Ordering::Relaxed);
                Ok(permit.seq())
            }
            Decision::Deny(d) => {
                self.denied.fetch_add(1, Ordering::Relaxed);
                Err(d)
            }
        }
    }

    /// The verdict of the connection's guardrails and the grant's profile
    /// over `facts`.
    pub async fn verdict(
        &self,
        facts: &[sluice_core::guardrail::StatementFacts],
    ) -> sluice_core::guardrail::Verdict {
        self.gate.lock().await.verdict(facts)
    }

    /// Decides a request by a verdict the adapter gives (an interactive
    /// shell under its profile, a forward).
    pub async fn decide_with(
        &self,
        request: &dyn Subject,
        verdict: &sluice_core::guardrail::Verdict,
        protocol: &str,
    ) -> Result<Option<u64>, Denial> {
        let mut gate = self.gate.lock().await;
        match gate
            .decide(request, verdict, protocol, sluice_gate::Run::Executes(None))
            .await
        {
            Decision::Forward(permit) => {
                self.allowed.fetch_add(1, Ordering::Relaxed);
                Ok(permit.seq())
            }
            Decision::Deny(d) => {
                self.denied.fetch_add(1, Ordering::Relaxed);
                Err(d)
            }
        }
    }

    /// Records a request Sluice refuses without a verdict (forwarding,
    /// environment variables…).
    pub async fn refuse(&self, request: &crate::subject::Request, rule: &str, reason: &str) {
        let refusal = sluice_gate::Refusal {
            protocol: "ssh".into(),
            statements: request.describe(),
            rule: rule.into(),
            reason: reason.into(),
            masked_column: None,
        };
        self.gate.lock().await.refuse(refusal, String::new()).await;
        self.denied.fetch_add(1, Ordering::Relaxed);
    }

    /// Closes the session's record once, with how it ended.
    pub async fn close(&self, why: &str) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.presence
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let (allowed, denied) = (
            self.allowed.load(Ordering::Relaxed),
            self.denied.load(Ordering::Relaxed),
        );
        self.record
            .closed(&SessionClosed {
                seq: allowed + denied + 1,
                duration_ms: self.started.elapsed().as_millis() as u64,
                statements_allowed: allowed,
                statements_denied: denied,
                outcomes_lost: 0,
                end: why.to_string(),
            })
            .await;
        tracing::info!(session.id = %self.id, end = why, "ssh session closed");
    }

    /// An event about this session.
    pub fn event(&self, kind: sluice_core::audit::EventKind) -> sluice_core::audit::AuditEvent {
        self.record.event(kind)
    }

    /// Records how something this session did ended (joined to its
    /// decision by `done.seq`).
    pub fn completed(&self, done: &sluice_core::audit::detail::Completed) {
        let event = self
            .event(sluice_core::audit::EventKind::StatementCompleted)
            .detail(sluice_core::audit::detail::to_value(done));
        if self.shared.audit.record_later(event).is_err() {
            tracing::warn!(session.id = %self.id, protocol = %done.protocol, "an outcome could not be recorded");
        }
    }
}

/// The value detectors a session's command output goes through: the
/// connection's masking, unless none is configured or the grant's holder
/// is in an exempt group. A masking that does not compile (a hash key that
/// cannot be read) masks with the detectors' safe default instead.
fn output_masker(conn: &ConnectionConfig, grant: &Grant) -> Option<Arc<sluice_mask::Masker>> {
    let config = conn.masking.as_ref()?;
    let masker = match sluice_mask::Masker::from_config(config) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, conn.name = %conn.name, "masking unavailable; using the default detectors");
            sluice_mask::Masker::from_config(&Default::default()).ok()?
        }
    };
    if masker.is_exempt(&grant.identity_groups) {
        return None;
    }
    Some(Arc::new(masker))
}

/// Connections to the host one session may hold.
const MAX_BACKENDS: usize = 8;
