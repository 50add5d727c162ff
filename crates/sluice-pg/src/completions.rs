//! `statement.completed` events, written off the data path.
//!
//! A statement's durable record is its `statement.allowed` event, written
//! before it was forwarded. Its outcome is recorded after the fact, and must
//! never slow the results down: the pump hands completions to a bounded
//! queue without waiting, and a per-session writer task records them, many
//! in flight at once so group commit can batch them. If the queue is full
//! or the audit log is down, the outcome is lost with a warning and counted
//! in the session's close record.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use sluice_core::audit::{AuditEvent, AuditSink, EventKind};
use sluice_core::config::RecordResults;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::capture::Results;
use crate::outcome::{Completion, Outcome};
use crate::policy::Recorder;

/// Completions waiting for the writer, per session.
const QUEUE: usize = 1024;
/// Records the writer keeps in flight at once.
const IN_FLIGHT: usize = 64;

/// The pump's handle: queues completions without waiting.
pub struct Completions {
    tx: mpsc::Sender<AuditEvent>,
    template: AuditEvent,
    /// `statement.results`, for statements whose rows were kept.
    results: AuditEvent,
    lost: Arc<AtomicU64>,
    /// `record_results = "none"`: outcomes are not recorded at all.
    off: bool,
}

/// The writer task; resolves once the handle is dropped and the queue is
/// drained, with how many completions were lost in all.
pub struct Writer {
    task: JoinHandle<()>,
    lost: Arc<AtomicU64>,
}

/// Starts a session's writer over the recorder's audit sink; with
/// `record` set to `none` nothing is ever queued.
pub fn start(recorder: &Recorder, record: RecordResults) -> (Completions, Writer) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let lost = Arc::new(AtomicU64::new(0));
    let task = tokio::spawn(write(recorder.audit.clone(), rx, lost.clone()));
    let template = recorder.event(EventKind::StatementCompleted);
    let results = recorder.event(EventKind::StatementResults);
    let handle = Completions {
        tx,
        template,
        results,
        lost: lost.clone(),
        off: record == RecordResults::None,
    };
    (handle, Writer { task, lost })
}

impl Completions {
    /// Queues `c` for the audit log, and its kept rows after it; never
    /// waits.
    pub fn send(&self, c: Completion) {
        if self.off {
            return;
        }
        self.queue(self.template.clone().detail(detail(&c)));
        if let Some(rows) = c.results.as_ref().map(|r| results(&c, r)) {
            self.queue(self.results.clone().detail(rows));
        }
    }

    fn queue(&self, event: AuditEvent) {
        if let Err(e) = self.tx.try_send(event) {
            let lost = self.lost.fetch_add(1, Ordering::Relaxed);
            if lost == 0 {
                tracing::warn!(error = %e, "statement outcomes are being lost: audit queue full");
            }
        }
    }
}

impl Writer {
    /// Waits for the queue to drain, for up to `limit`; the number of
    /// completions lost (including any still queued at the limit).
    pub async fn finish(self, limit: std::time::Duration) -> u64 {
        let Writer { task, lost } = self;
        if tokio::time::timeout(limit, task).await.is_err() {
            tracing::warn!("statement outcomes still queued at session close");
        }
        lost.load(Ordering::Relaxed)
    }
}

async fn write(
    audit: Arc<dyn AuditSink>,
    mut rx: mpsc::Receiver<AuditEvent>,
    lost: Arc<AtomicU64>,
) {
    let events = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut results = events.map(|event| audit.record(event)).buffered(IN_FLIGHT);
    while let Some(result) = results.next().await {
        if let Err(e) = result {
            // The statement has its durable pre-record; only its outcome is
            // missing. Warn once per session, count the rest.
            if lost.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(error = %e, "could not record a statement outcome");
            }
        }
    }
}

/// A `statement.results` detail (shape in `sluice_audit::replay`):
/// the rows as the client received them, after masking.
fn results(c: &Completion, r: &Results) -> serde_json::Value {
    let mut detail = serde_json::json!({
        "seq": c.seq,
        "index": c.index,
        "columns": r.columns,
        "rows": r.rows,
        "truncated": r.truncated,
    });
    if r.cut {
        detail["values_cut_at"] = serde_json::json!(crate::capture::MAX_VALUE);
    }
    detail
}

/// The event's detail: the request's `seq` (as in `statement.allowed`),
/// the statement's `index` in it, and what became of it.
fn detail(c: &Completion) -> serde_json::Value {
    let (outcome, command, rows, error) = match &c.outcome {
        Outcome::Done { command, rows } => ("ok", command.as_deref(), *rows, None),
        Outcome::Suspended { rows } => ("suspended", None, Some(*rows), None),
        Outcome::Empty => ("empty", None, None, None),
        Outcome::Skipped => ("skipped", None, None, None),
        Outcome::Failed { sqlstate, message } => (
            "error",
            None,
            None,
            Some(serde_json::json!({ "sqlstate": sqlstate, "message": message })),
        ),
    };
    // Microsecond precision: most statements take well under a millisecond.
    let duration_ms = (c.duration.as_micros() as f64) / 1000.0;
    let mut detail = serde_json::json!({
        "seq": c.seq,
        "index": c.index,
        "protocol": c.protocol,
        "outcome": outcome,
        "command": command,
        "rows": rows,
        "duration_ms": duration_ms,
        "error": error,
    });
    // How many values were masked, by rule or detector; never the values.
    if !c.masked.is_empty() {
        let masked: serde_json::Map<String, serde_json::Value> = c
            .masked
            .iter()
            .map(|(label, n)| (label.clone(), serde_json::json!(n)))
            .collect();
        detail["masked"] = serde_json::Value::Object(masked);
    }
    detail
}
