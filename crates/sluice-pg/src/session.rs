//! One client session under one grant: take a backend session (parked or
//! fresh, see [`crate::pool`]), finish the client's startup, run the two
//! halves, end it when the grant ends, hand the backend back when the
//! client left it idle, and record open and close.

mod halves;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sluice_core::Grant;
use sluice_core::audit::detail::{SessionClosed, SessionOpened};
use sluice_gate::{EndReason, Presence, SessionRecord, end_signal, new_session_id};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tracing::Instrument;

use crate::backend::{self, Backend, Target};
use crate::codec::FrameReader;
use crate::errors::{ClientError, PgError};
use crate::frontend::Stats;
use crate::mask::{ConnMasking, Opener};
use crate::messages;
use crate::params::Parameters;
use crate::proxy::Shared;
use crate::pump::{EndSignal, Ending};
use crate::settings;
use crate::startup::Login;
use halves::{Returned, pump_session};
use sluice_tls::Stream;

/// How long a closing session may take to tell the client why.
const FAREWELL: Duration = Duration::from_secs(2);

/// Runs a logged-in client's session to its end.
pub async fn run(shared: Arc<Shared>, login: Login, shutdown: watch::Receiver<bool>) {
    let session_id = new_session_id();
    let span = tracing::info_span!("session", session.id = %session_id, grant.id = %login.grant.id,
        conn.name = %login.grant.connection, client.addr = %login.addr);
    run_session(shared, login, shutdown, session_id)
        .instrument(span)
        .await
}

async fn run_session(
    shared: Arc<Shared>,
    login: Login,
    shutdown: watch::Receiver<bool>,
    session_id: String,
) {
    let grant = login.grant.clone();
    let mut client = login.reader;
    let record = SessionRecord::new(shared.audit.clone(), &grant, &session_id);
    let limits = shared
        .config
        .connection(&grant.connection)
        .map(|c| c.limits)
        .unwrap_or_default();
    let seat = match shared.seats.take(&grant, &limits) {
        Ok(seat) => seat,
        Err(e) => {
            tracing::info!(reason = %e.message, "session refused by a session limit");
            shared.metrics.login(&grant.connection, "limit");
            record.rejected("session limit", None).await;
            let refusal = ClientError::too_many_sessions(&e.message);
            let _ = client.get_mut().write_all(&refusal.to_bytes()).await;
            return;
        }
    };
    let opened = match open_backend(&shared, &grant, &login.params).await {
        Ok(opened) => opened,
        Err(e) => {
            // The client learns only that the backend is unavailable; the
            // operator gets the cause (never a credential: Sluice's own
            // words, or the backend's error text).
            tracing::warn!(conn.name = %grant.connection, error = %e, "backend login failed");
            shared
                .metrics
                .login(&grant.connection, "backend_unavailable");
            shared
                .metrics
                .backend_connect_errors
                .get_or_create(&sluice_core::metrics::Conn {
                    connection: grant.connection.clone(),
                })
                .inc();
            record
                .rejected("backend unavailable", Some(&e.to_string()))
                .await;
            let _ = client.get_mut().write_all(&e.to_client().to_bytes()).await;
            return;
        }
    };
    let (target, backend) = opened;
    let masking = match session_masking(&shared, &grant) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "masking unavailable; session refused");
            shared
                .metrics
                .login(&grant.connection, "masking_unavailable");
            record.rejected("masking unavailable", None).await;
            let _ = client.get_mut().write_all(&e.to_client().to_bytes()).await;
            backend.close().await;
            return;
        }
    };
    // The side session reads the catalog with the client session's own
    // credential and profile.
    let opener = Opener {
        target: target.clone(),
        grant_id: grant.id.clone(),
        profile: grant.profile,
    };
    let backend_key = backend.key;
    let key = shared.cancels.register(target.clone(), backend_key);
    if let Err(e) = greet(&mut client, &backend.parameters, key.pid, key.secret).await {
        tracing::debug!(error = %e, "client left during startup");
        backend.close().await;
        return;
    }
    let started = Instant::now();
    shared.metrics.login(&grant.connection, "ok");
    let presence = Presence::enter(
        &shared.live,
        &shared.metrics,
        &grant,
        &session_id,
        "postgres",
        login.addr.to_string(),
    );
    // Request number 0, before the client's first: with the session id it
    // names the event, so it can go through the audit journal (whose
    // recovery recognises events by session, kind and number) and the
    // client's first statement does not wait for a store commit.
    record
        .opened(&SessionOpened {
            seq: 0,
            client_addr: login.addr.to_string(),
            profile: grant.profile.as_str().to_string(),
            protocol: Some("postgres".into()),
        })
        .await;
    tracing::info!("session opened");
    let stats = Arc::new(Stats::default());
    let end = ending(
        shared.control.clone(),
        &grant,
        shutdown,
        presence.terminated(),
    );
    let (why, outcomes, returned) = pump_session(
        &shared,
        &grant,
        &session_id,
        client,
        backend,
        stats.clone(),
        end,
        opener,
        masking,
        seat,
    )
    .await;
    drop(key);
    drop(presence);
    if matches!(why, "expired" | "revoked" | "shutdown" | "terminated") {
        // Closing the socket does not stop a running statement (pg_sleep
        // notices only when it next writes): cancel it so the grant's end
        // is the end of its work.
        if let Err(e) = backend::cancel(&target, backend_key).await {
            tracing::warn!(error = %e, "cancelling the ended session's statement failed");
        }
    }
    // The close record comes after the session's outcomes, and after its
    // backend is parked or closed.
    let (outcomes_lost, ()) = tokio::join!(
        outcomes.finish(FAREWELL),
        release(&shared, &grant, &target, returned)
    );
    let (allowed, denied) = (
        stats.allowed.load(Ordering::Relaxed),
        stats.denied.load(Ordering::Relaxed),
    );
    // Journaled like the opening, so a session's end does not force a store
    // commit of its own (under connect-per-statement that was one commit per
    // connection). `seq` after the session's requests names it for the
    // journal's recovery; once per session, it cannot collide.
    let detail = SessionClosed {
        seq: allowed + denied + 1,
        duration_ms: started.elapsed().as_millis() as u64,
        statements_allowed: allowed,
        statements_denied: denied,
        outcomes_lost,
        end: why.to_string(),
    };
    tracing::info!(end = why, "session closed");
    record.closed(&detail).await;
}

/// The connection's masking for this session: for its results, `None`
/// when the connection has none or the grant's holder is in an exempt
/// group; for its recording, the connection's masking whenever there is one
/// (an exemption is for the live results, not for what audit sinks get).
/// The groups are the grant's own, recorded when it was issued (see
/// `Grant::identity_groups` for why issuance, not now); a grant without
/// groups exempts nobody.
fn session_masking(shared: &Shared, grant: &Grant) -> Result<SessionMasking, PgError> {
    let Some(m) = shared.masking(&grant.connection)? else {
        return Ok(SessionMasking::default());
    };
    if m.masker.is_exempt(&grant.identity_groups) {
        tracing::info!("masking exempt by group");
        return Ok(SessionMasking {
            results: None,
            recording: Some(m),
        });
    }
    Ok(SessionMasking {
        results: Some(m.clone()),
        recording: None,
    })
}

/// Which masks a session's results and its recording go through.
#[derive(Default)]
pub struct SessionMasking {
    /// The live results (and the statement checks that protect them).
    pub results: Option<Arc<ConnMasking>>,
    /// Only the recording's rows (an exempt session).
    pub recording: Option<Arc<ConnMasking>>,
}

/// A backend session with this client's settings: parked or fresh.
async fn open_backend(
    shared: &Shared,
    grant: &Grant,
    params: &[(String, String)],
) -> Result<(Arc<Target>, Backend), PgError> {
    let target = shared.target(&grant.connection, grant.profile)?;
    let wanted = settings::wanted(params, &grant.id, grant.profile, target.statement_timeout);
    let limits = shared.pool_limits(&grant.connection);
    let checkout = shared
        .pool
        .checkout(&grant.connection, grant.profile, &target, &limits, &wanted)
        .await?;
    tracing::debug!(reused = checkout.reused, "backend session ready");
    Ok((target, checkout.backend))
}

/// Parks a backend session its client left idle, or closes it.
async fn release(shared: &Shared, grant: &Grant, target: &Target, returned: Option<Returned>) {
    let Some(Returned { backend, idle }) = returned else {
        return;
    };
    match idle {
        Ok(()) => {
            let limits = shared.pool_limits(&grant.connection);
            shared
                .pool
                .checkin(
                    &grant.connection,
                    grant.profile,
                    backend,
                    &target.user,
                    &limits,
                )
                .await;
        }
        Err(why) => {
            tracing::info!(reason = %why, "backend session closed, not reused");
            backend.close().await;
        }
    }
}

/// AuthenticationOk, the backend's parameters, the client's own cancel key,
/// and ReadyForQuery: the client's startup is done.
async fn greet(
    client: &mut FrameReader<Stream>,
    parameters: &Parameters,
    pid: i32,
    secret: i32,
) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    out.extend_from_slice(&messages::authentication(messages::AUTH_OK, &[]));
    parameters.write_to(&mut out);
    out.extend_from_slice(&messages::backend_key_data(pid, secret));
    out.extend_from_slice(&messages::ready_for_query(b'I'));
    let stream = client.get_mut();
    stream.write_all(&out).await?;
    stream.flush().await
}

/// When the session must end, and what its client is told then.
fn ending(
    control: Arc<dyn sluice_gate::Control>,
    grant: &Grant,
    shutdown: watch::Receiver<bool>,
    terminated: impl std::future::Future<Output = String> + Send + 'static,
) -> EndSignal {
    let id = grant.id.clone();
    let end = end_signal(control, grant, shutdown, terminated);
    Box::pin(async move {
        let reason = end.await;
        let error = match &reason {
            EndReason::Expired => ClientError::grant_expired(&id),
            EndReason::Revoked => ClientError::grant_revoked(&id),
            EndReason::Terminated { by } => ClientError::terminated(by),
            EndReason::Shutdown => ClientError::shutting_down(),
        };
        Ending::new(reason.as_str(), error)
    })
}
