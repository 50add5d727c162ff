//! `statement.completed` events, written off the data path.
//!
//! A statement's durable record is its `statement.allowed` event, written
//! before it was forwarded. Its outcome is recorded after the fact, and must
//! never slow the results down: the pump queues each completion straight
//! into the audit writer's queue without waiting ([`AuditSink::record_later`]),
//! behind everything the session queued before it, and the writer stores it
//! with its next group commit (retrying a failed commit, as for journaled
//! decisions). Nobody waits for a reply, so an outcome costs no task
//! wake-up and no round trip to the writer.
//!
//! When the writer's queue is full the session keeps outcomes in a bounded
//! backlog of its own, offered again with the next one and, at the end of
//! the session, waited for. Outcomes beyond the backlog, or after the audit
//! log stopped, are lost with a warning and counted in the session's close
//! record.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_core::audit::detail as typed;
use sluice_core::audit::{AuditEvent, AuditSink, EventKind, LaterError};
use sluice_core::config::RecordResults;

use crate::capture::Results;
use crate::outcome::{Completion, Outcome};
use sluice_gate::Gate;

/// Outcomes a session keeps while the audit writer's queue is full.
const BACKLOG: usize = 1024;

/// The pump's handle: queues completions without waiting.
pub struct Completions {
    template: AuditEvent,
    /// `statement.results`, for statements whose rows were kept.
    results: AuditEvent,
    /// `record_results = "none"`: outcomes are not recorded at all.
    off: bool,
    queue: Arc<Queue>,
}

/// What is left at the end of the session: the backlog to wait for and
/// how many outcomes were lost.
pub struct Writer {
    queue: Arc<Queue>,
}

/// The audit sink, the session's backlog and its count of lost outcomes.
struct Queue {
    audit: Arc<dyn AuditSink>,
    state: Mutex<Backlog>,
}

#[derive(Default)]
struct Backlog {
    waiting: VecDeque<AuditEvent>,
    lost: u64,
}

/// Starts recording a session's outcomes through the gate's audit sink;
/// with `record` set to `none` nothing is ever queued.
pub fn start(recorder: &Gate, record: RecordResults) -> (Completions, Writer) {
    let queue = Arc::new(Queue {
        audit: recorder.audit.clone(),
        state: Mutex::new(Backlog::default()),
    });
    let handle = Completions {
        template: recorder.event(EventKind::StatementCompleted),
        results: recorder.event(EventKind::StatementResults),
        off: record == RecordResults::None,
        queue: queue.clone(),
    };
    (handle, Writer { queue })
}

impl Completions {
    /// Queues the completion's `statement.completed` (and, when its rows
    /// were kept, `statement.results`). Never waits.
    pub fn send(&self, c: Completion) {
        if self.off {
            return;
        }
        self.queue.offer(self.template.clone().detail(detail(&c)));
        if let Some(rows) = c.results.as_ref().map(|r| results(&c, r)) {
            self.queue.offer(self.results.clone().detail(rows));
        }
    }
}

impl Queue {
    /// Queues `event` behind the backlog, keeping order.
    fn offer(&self, event: AuditEvent) {
        let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(first) = b.waiting.pop_front() {
            match self.audit.record_later(first) {
                Ok(()) => {}
                Err(LaterError::Full(first)) => {
                    b.waiting.push_front(*first);
                    break;
                }
                Err(LaterError::Stopped) => b.lost(1),
            }
        }
        if !b.waiting.is_empty() {
            b.keep(event);
            return;
        }
        match self.audit.record_later(event) {
            Ok(()) => {}
            Err(LaterError::Full(event)) => b.keep(*event),
            Err(LaterError::Stopped) => b.lost(1),
        }
    }
}

impl Backlog {
    fn keep(&mut self, event: AuditEvent) {
        if self.waiting.len() < BACKLOG {
            self.waiting.push_back(event);
        } else {
            self.lost(1);
        }
    }

    fn lost(&mut self, n: u64) {
        if self.lost == 0 {
            tracing::warn!("statement outcomes are being lost: the audit log is full or stopped");
        }
        self.lost += n;
    }
}

impl Writer {
    /// Waits (at most `limit`) for the backlog to reach the audit log and
    /// returns how many outcomes were lost in all.
    pub async fn finish(self, limit: Duration) -> u64 {
        let queue = self.queue;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let waiting = {
                let mut b = queue.state.lock().unwrap_or_else(|p| p.into_inner());
                match b.waiting.pop_front() {
                    Some(event) => event,
                    None => return b.lost,
                }
            };
            // Waiting for room is fine now: the session is over.
            let recorded = tokio::time::timeout_at(deadline, queue.audit.record(waiting)).await;
            let mut b = queue.state.lock().unwrap_or_else(|p| p.into_inner());
            match recorded {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not record a statement outcome");
                    b.lost(1);
                }
                Err(_) => {
                    tracing::warn!("statement outcomes still queued at session close");
                    let left = b.waiting.len() as u64 + 1;
                    b.waiting.clear();
                    b.lost(left);
                    return b.lost;
                }
            }
        }
    }
}

fn results(c: &Completion, r: &Results) -> serde_json::Value {
    typed::to_value(&typed::Results {
        seq: c.seq,
        index: c.index as u64,
        columns: r.columns.clone(),
        rows: r.rows.clone(),
        truncated: r.truncated,
        values_cut_at: r.cut.then_some(crate::capture::MAX_VALUE),
    })
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
            Some(typed::Failure {
                sqlstate: sqlstate.clone(),
                message: message.clone(),
            }),
        ),
    };
    typed::to_value(&typed::Completed {
        seq: c.seq,
        index: c.index as u64,
        protocol: c.protocol.to_string(),
        outcome: outcome.to_string(),
        command: command.map(str::to_string),
        rows,
        // Microsecond precision: most statements take well under a millisecond.
        duration_ms: (c.duration.as_micros() as f64) / 1000.0,
        error,
        // How many values were masked, by rule or detector; never the values.
        masked: c.masked.iter().map(|(k, n)| (k.clone(), *n)).collect(),
        ..typed::Completed::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::audit::AuditError;
    use std::future::Future;
    use std::pin::Pin;

    /// A log whose queue is full while `full` is set; records in order.
    #[derive(Default)]
    struct Log {
        full: std::sync::atomic::AtomicBool,
        stopped: std::sync::atomic::AtomicBool,
        got: Mutex<Vec<i64>>,
    }

    fn n(e: &AuditEvent) -> i64 {
        e.detail["n"].as_i64().unwrap()
    }

    impl AuditSink for Log {
        fn record(
            &self,
            event: AuditEvent,
        ) -> Pin<Box<dyn Future<Output = Result<i64, AuditError>> + Send + '_>> {
            self.got.lock().unwrap().push(n(&event));
            Box::pin(async { Ok(0) })
        }

        fn record_later(&self, event: AuditEvent) -> Result<(), LaterError> {
            use std::sync::atomic::Ordering::SeqCst;
            if self.stopped.load(SeqCst) {
                return Err(LaterError::Stopped);
            }
            if self.full.load(SeqCst) {
                return Err(LaterError::Full(Box::new(event)));
            }
            self.got.lock().unwrap().push(n(&event));
            Ok(())
        }
    }

    fn queue(log: &Arc<Log>) -> Arc<Queue> {
        Arc::new(Queue {
            audit: log.clone(),
            state: Mutex::new(Backlog::default()),
        })
    }

    fn event(n: usize) -> AuditEvent {
        AuditEvent::new(EventKind::StatementCompleted).detail(serde_json::json!({ "n": n }))
    }

    #[tokio::test]
    async fn a_full_queue_keeps_outcomes_in_order_and_the_end_waits_for_them() {
        use std::sync::atomic::Ordering::SeqCst;
        let log = Arc::new(Log::default());
        let q = queue(&log);
        q.offer(event(0));
        log.full.store(true, SeqCst);
        for i in 1..4 {
            q.offer(event(i));
        }
        assert_eq!(*log.got.lock().unwrap(), vec![0]);
        log.full.store(false, SeqCst);
        // The backlog goes first, then the new one.
        q.offer(event(4));
        assert_eq!(*log.got.lock().unwrap(), vec![0, 1, 2, 3, 4]);

        log.full.store(true, SeqCst);
        for i in 5..(5 + BACKLOG + 2) {
            q.offer(event(i));
        }
        let lost = Writer { queue: q }.finish(Duration::from_secs(5)).await;
        assert_eq!(lost, 2, "beyond the backlog");
        let got = log.got.lock().unwrap().clone();
        assert_eq!(
            got,
            (0..(5 + BACKLOG)).map(|i| i as i64).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn a_stopped_log_loses_and_counts() {
        let log = Arc::new(Log::default());
        log.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        let q = queue(&log);
        for i in 0..3 {
            q.offer(event(i));
        }
        assert_eq!(Writer { queue: q }.finish(Duration::from_secs(1)).await, 3);
        assert!(log.got.lock().unwrap().is_empty());
    }
}
