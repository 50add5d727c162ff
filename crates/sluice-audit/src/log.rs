//! The writer: events arrive over a channel, are chained, and are written
//! in group commits. A caller's `record` returns only once its event is
//! durable, so an action is never taken before its record exists; batching
//! makes that cost one transaction per burst instead of one per event.

use chrono::Utc;
use sluice_core::audit::{AuditError, AuditEvent, AuditSink};
use sluice_store::{AuditRow, Store, StoreError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::chain::{GENESIS, canonical_body, chain_hash};

/// Largest group commit.
const MAX_BATCH: usize = 512;
/// Queue depth before callers wait (backpressure, not loss).
const QUEUE: usize = 4096;

type Ack = oneshot::Sender<Result<i64, AuditError>>;

/// A handle on the audit log; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<(AuditEvent, Ack)>,
    committed: Arc<Notify>,
}

impl AuditLog {
    /// Starts the writer task over `store`.
    pub fn start(store: Store) -> AuditLog {
        let (tx, rx) = mpsc::channel(QUEUE);
        let committed = Arc::new(Notify::new());
        tokio::spawn(writer(store, rx, committed.clone()));
        AuditLog { tx, committed }
    }

    /// Pinged after every group commit, so export sinks and the
    /// checkpointer wake at once instead of waiting for their next poll.
    /// Pinging never waits, so readers can never slow the writer down.
    pub fn committed(&self) -> Arc<Notify> {
        self.committed.clone()
    }

    /// Appends one event; returns its sequence number once it is durable.
    pub async fn append(&self, event: AuditEvent) -> Result<i64, AuditError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send((event, ack))
            .await
            .map_err(|_| AuditError("the audit writer has stopped".into()))?;
        done.await
            .map_err(|_| AuditError("the audit writer has stopped".into()))?
    }
}

impl AuditSink for AuditLog {
    fn record(
        &self,
        event: AuditEvent,
    ) -> Pin<Box<dyn Future<Output = Result<i64, AuditError>> + Send + '_>> {
        Box::pin(self.append(event))
    }
}

async fn writer(store: Store, mut rx: mpsc::Receiver<(AuditEvent, Ack)>, committed: Arc<Notify>) {
    let mut tail: Option<(i64, String)> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let result = commit(&store, &mut tail, &batch).await;
        if result.is_ok() {
            committed.notify_waiters();
        }
        for (i, (_, ack)) in batch.into_iter().enumerate() {
            let _ = ack.send(match &result {
                Ok(first_seq) => Ok(first_seq + i as i64),
                Err(e) => Err(AuditError(e.clone())),
            });
        }
    }
}

/// Chains and writes a batch; retries when another gateway sharing the
/// store appended first. Returns the first event's sequence number.
async fn commit(
    store: &Store,
    tail: &mut Option<(i64, String)>,
    batch: &[(AuditEvent, Ack)],
) -> Result<i64, String> {
    for _ in 0..20 {
        let (mut seq, mut prev) = match tail.take() {
            Some(t) => t,
            None => store
                .audit_tail()
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or((0, GENESIS.to_string())),
        };
        let first = seq + 1;
        let now = Utc::now();
        let mut rows = Vec::with_capacity(batch.len());
        for (event, _) in batch {
            seq += 1;
            let body = canonical_body(seq, now, event);
            let hash = chain_hash(&prev, &body);
            rows.push(AuditRow {
                seq,
                ts: now.timestamp_millis(),
                kind: event.kind.as_str().to_string(),
                grant_id: event.grant_id.clone(),
                session_id: event.session_id.clone(),
                body,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            });
        }
        match store.audit_append(&rows).await {
            Ok(()) => {
                *tail = Some((seq, prev));
                return Ok(first);
            }
            // Another writer took our place: reload the tail and rechain.
            Err(StoreError::SeqTaken(_)) => continue,
            Err(e) => {
                tracing::error!(error = %e, "audit append failed");
                return Err(e.to_string());
            }
        }
    }
    Err("audit append kept colliding with other writers".into())
}
