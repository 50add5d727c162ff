//! The two halves of one client session, wired and raced: the client
//! half (requests, decided and forwarded) and the pump (answers, masked and
//! recorded). When the client says Terminate the pump is stopped at its
//! next read and the backend session is put back together, with what the
//! halves saw to say whether it is idle (see [`crate::pool::track`]).

use std::sync::Arc;

use sluice_core::Grant;
use sluice_gate::Seat;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::sync::oneshot;

use super::FAREWELL;
use crate::backend::Backend;
use crate::codec::FrameReader;
use crate::completions::{self, Writer};
use crate::deny::Denials;
use crate::errors::ClientError;
use crate::frontend::{ClientEnd, ClientHalf, Stats};
use crate::mask::{MaskQueue, Opener, ResultMasker};
use crate::names::Names;
use crate::outcome::{Inflight, Tracker};
use crate::policy::Policy;
use crate::pool::track;
use crate::proxy::Shared;
use crate::pump::{EndSignal, Pump, PumpEnd};
use sluice_gate::{Gate, GateSpec, Holds, Meter};
use sluice_tls::Stream;

type Half = ClientHalf<ReadHalf<Stream>, WriteHalf<Stream>>;
type BackendPump = Pump<ReadHalf<Stream>, WriteHalf<Stream>>;

/// A backend session whose client said Terminate, and whether it was idle
/// then (or why not).
pub struct Returned {
    pub backend: Backend,
    pub idle: Result<(), String>,
}

/// Runs both halves until one ends; returns why, for the close record, the
/// writer still recording the session's statement outcomes, and the
/// backend session when the client said Terminate.
#[allow(clippy::too_many_arguments)] // the session's parts, handed over once
pub async fn pump_session(
    shared: &Arc<Shared>,
    grant: &Grant,
    session_id: &str,
    client: FrameReader<Stream>,
    backend: Backend,
    stats: Arc<Stats>,
    end: EndSignal,
    opener: Opener,
    session_masking: crate::session::SessionMasking,
    seat: Seat,
) -> (&'static str, Writer, Option<Returned>) {
    let masking = session_masking.results.map(|m| (m, opener.clone()));
    let recording_mask = session_masking
        .recording
        .map(|m| crate::mask::RecordingMask::new(m, opener.clone()));
    let queue = masking.as_ref().map(|_| Arc::new(MaskQueue::default()));
    let (client_stream, client_buf) = client.into_parts();
    let (client_read, client_write) = tokio::io::split(client_stream);
    let Backend {
        reader,
        parameters,
        key,
        opened,
    } = backend;
    let (backend_stream, backend_buf) = reader.into_parts();
    let (backend_read, backend_write) = tokio::io::split(backend_stream);
    let denials = Arc::new(Denials::new());
    let rules = shared.rules(&grant.connection);
    let (notices, notices_rx) = tokio::sync::mpsc::channel(8);
    // A held statement is announced by a NoticeResponse, written by the
    // pump between frames; a client that reads none never blocks us.
    let tell: sluice_gate::Tell = Box::new(move |text: String| {
        let _ = notices.try_send(crate::messages::notice_response(&text));
    });
    let recorder = Gate::new(GateSpec {
        audit: shared.audit.clone(),
        session_id: session_id.to_string(),
        grant_id: grant.id.clone(),
        connection: grant.connection.clone(),
        profile: grant.profile,
        rules: rules.clone(),
        meter: Meter::new(&shared.metrics, &grant.connection, grant.profile),
        holds: Some(Holds::new(
            shared.control.clone(),
            grant.clone(),
            tell,
            shared.config.approvals.statement_timeout.0,
        )),
    });
    let record = shared
        .config
        .connection(&grant.connection)
        .map(|c| c.record_results)
        .unwrap_or_default();
    let (completions, writer) = completions::start(&recorder, record);
    let inflight = Arc::new(Inflight::default());
    let names = Arc::new(Names::default());
    let reader = FrameReader::with_buffer(
        client_read,
        client_buf,
        shared.config.postgres.max_message_bytes,
    );
    let mut half = ClientHalf::new(
        reader,
        backend_write,
        Policy::new(
            grant.profile,
            rules,
            masking.clone(),
            shared.shapes.clone(),
            shared
                .config
                .connection(&grant.connection)
                .and_then(|c| c.limits.statement_timeout.of(grant.profile)),
        ),
        recorder,
        denials.clone(),
        inflight.clone(),
        stats,
    )
    .with_names(names.clone())
    .with_catalog(shared.catalog(&grant.connection), opener)
    .with_limits(crate::frontend::AnalysisLimits {
        max_statement: shared.config.postgres.max_statement_bytes,
        slots: Some(shared.analysis_slots(&grant.id)),
    })
    .with_masking(queue.clone());
    let result_masker = masking
        .zip(queue)
        .map(|((m, opener), q)| ResultMasker::new(m, opener, q));
    let tracker = Tracker::new(inflight).recording(record.rows(), recording_mask);
    let mut pump = Pump::new(
        backend_read,
        backend_buf,
        client_write,
        denials,
        tracker,
        completions,
        notices_rx,
    )
    .with_names(names)
    .with_masking(result_masker);
    let (why, stopped) = race(&mut half, &mut pump, end).await;
    // The client's session is over: its place is free before its socket
    // closes, so a client that sees the close can log straight back in
    // (recording the end and parking the backend come after).
    drop(seat);
    let returned = stopped.then(|| {
        let idle = match pump.between_messages() {
            true => track::idle(half.sent(), pump.replies()),
            false => Err("left inside a backend message".to_string()),
        };
        let (read, replies) = pump.into_parts();
        let mut parameters = parameters;
        parameters.merge(&replies.parameters);
        let stream = read.unsplit(half.into_backend());
        Returned {
            backend: Backend::rejoin(stream, parameters, key, opened),
            idle,
        }
    });
    (why, writer, returned)
}

/// Runs both halves until one ends: why, and whether the client said
/// Terminate and the pump then stopped at its next read (so the backend
/// can be taken back).
async fn race(half: &mut Half, pump: &mut BackendPump, end: EndSignal) -> (&'static str, bool) {
    let (fatal_tx, fatal_rx) = oneshot::channel();
    let client_side = half.run();
    let backend_side = pump.run(end, fatal_rx);
    tokio::pin!(client_side, backend_side);
    tokio::select! {
        end = &mut client_side => match end {
            ClientEnd::Terminated => {
                // A dropped sender stops the pump at its next read.
                drop(fatal_tx);
                let stopped = tokio::time::timeout(FAREWELL, &mut backend_side).await;
                ("client closed", matches!(stopped, Ok(PumpEnd::ClientGone)))
            }
            ClientEnd::Gone => ("client closed", false),
            ClientEnd::BackendGone => {
                // The pump tells the client, between messages.
                let _ = fatal_tx.send(ClientError::backend_lost());
                let _ = tokio::time::timeout(FAREWELL, &mut backend_side).await;
                ("backend closed", false)
            }
            ClientEnd::Fatal(error) => {
                let _ = fatal_tx.send(error);
                let _ = tokio::time::timeout(FAREWELL, &mut backend_side).await;
                ("client protocol error", false)
            }
        },
        end = &mut backend_side => match end {
            PumpEnd::BackendClosed => ("backend closed", false),
            PumpEnd::ClientGone => ("client closed", false),
            PumpEnd::BackendProtocol => ("backend protocol error", false),
            PumpEnd::Ended(ending) => {
                tracing::info!(reason = %ending.error.message, end = ending.why, "session ended by sluice");
                (ending.why, false)
            }
        },
    }
}
