//! The writer: events arrive over a channel, are chained, and are written
//! in group commits. A caller's `append` returns only once its event is
//! durable, so an action is never taken before its record exists; batching
//! makes that cost one transaction per burst instead of one per event.
//!
//! Statement decisions that gate forwarding take a shorter path when the log
//! has a journal ([`crate::journal`]): `append_journaled` returns once the
//! event is a line in the local journal, and the writer stores it with the
//! next group commit. A journaled event is never dropped: a failed commit
//! is retried, with backoff, before anything newer.
//!
//! Records written after the fact (a statement's outcome) are queued with
//! `record_later` and nobody waits for them; they are retried like
//! journaled events but are not in the journal, so a crash loses those of
//! the last commit window, never a decision. A batch holding only events
//! nobody waits for gathers for up to [`GATHER`] before its commit.

use sluice_core::audit::{AuditError, AuditEvent, AuditSink, LaterError};
use sluice_core::metrics::Histogram;
use sluice_store::Store;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::commit::{Unsure, commit};
use crate::journal::{self, Journal};
use crate::recent::{Commits, Recent};

/// Largest group commit.
const MAX_BATCH: usize = 512;
/// How long the writer gathers events nobody waits for into one commit.
const GATHER: Duration = Duration::from_millis(20);
/// Queue depth before callers wait (backpressure, not loss).
const QUEUE: usize = 4096;
/// How long a journaled append may wait for room in the writer's queue (a
/// store that stopped answering) before the statement is refused.
const JOURNAL_WAIT: Duration = Duration::from_secs(5);

type Ack = oneshot::Sender<Result<i64, AuditError>>;

/// Who waits for an event's commit.
pub(crate) enum Reply {
    /// A caller of `append`, told the sequence number or the failure.
    Ack(Ack),
    /// Nobody: the event is in the journal and must reach the store.
    Journaled,
    /// Nobody: an after-the-fact record (`record_later`), kept and retried
    /// like a journaled one but not in the journal.
    Later,
    /// Not an event: answered once everything queued before it is stored
    /// ([`AuditLog::flush`]).
    Flush(oneshot::Sender<()>),
}

pub(crate) type Item = (AuditEvent, Reply);

/// A handle on the audit log; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Item>,
    committed: Arc<Notify>,
    recent: Arc<Recent>,
    journal: Option<Arc<tokio::sync::Mutex<Journal>>>,
    journal_dir: Option<Arc<Path>>,
    /// Every group commit's time, for `/metrics`.
    commit_seconds: Histogram,
}

impl AuditLog {
    /// Starts the writer task over `store`.
    pub fn start(store: Store) -> AuditLog {
        Self::spawn(store, None, None)
    }

    /// Spawns the writer, appending after `tail` (read from the store when
    /// `None`), with the journal when there is one.
    fn spawn(
        store: Store,
        tail: Option<(i64, String)>,
        journal: Option<(Journal, journal::Closed)>,
    ) -> AuditLog {
        let (tx, rx) = mpsc::channel(QUEUE);
        let committed = Arc::new(Notify::new());
        let recent = Arc::new(Recent::default());
        let (journal, closed) = match journal {
            Some((j, closed)) => (Some(Arc::new(tokio::sync::Mutex::new(j))), Some(closed)),
            None => (None, None),
        };
        let commit_seconds = sluice_core::metrics::fast_seconds();
        tokio::spawn(writer(
            store,
            rx,
            (committed.clone(), recent.clone(), commit_seconds.clone()),
            closed,
            tail,
        ));
        AuditLog {
            tx,
            committed,
            recent,
            journal,
            journal_dir: None,
            commit_seconds,
        }
    }

    /// Starts the writer with a journal in `dir`. Events a previous run
    /// journaled but did not store (it crashed) are stored first; the
    /// gateway must not start when that fails.
    pub async fn start_with_journal(store: Store, dir: &Path) -> Result<AuditLog, String> {
        let (journal, left) =
            Journal::open(dir).map_err(|e| format!("audit journal {}: {e}", dir.display()))?;
        let missing = journal::unstored(&store, &left).await?;
        let mut tail = None;
        if !missing.is_empty() {
            let items: Vec<Item> = missing.into_iter().map(|e| (e, Reply::Journaled)).collect();
            let mut unsure = None;
            for chunk in items.chunks(MAX_BATCH) {
                commit(&store, &mut tail, &mut unsure, chunk).await.result?;
            }
            tracing::warn!(
                events = items.len(),
                "stored statement decisions journaled before the last run stopped"
            );
        }
        journal::remove(&left);
        let closed = journal.closed();
        let mut log = Self::spawn(store, tail, Some((journal, closed)));
        log.journal_dir = Some(dir.into());
        Ok(log)
    }

    /// The group-commit time histogram, for the gateway's metrics.
    pub fn commit_seconds(&self) -> Histogram {
        self.commit_seconds.clone()
    }

    /// Events waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Bytes in the journal's files (0 without a journal).
    pub fn journal_bytes(&self) -> u64 {
        let Some(dir) = &self.journal_dir else {
            return 0;
        };
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Pinged after every group commit, so export sinks and the
    /// checkpointer wake at once instead of waiting for their next poll.
    /// Pinging never waits, so readers can never slow the writer down.
    pub fn committed(&self) -> Arc<Notify> {
        self.committed.clone()
    }

    /// For export runners: the commit ping and the rows just stored, so a
    /// runner that keeps up does not read them back from the store.
    pub fn commits(&self) -> Commits {
        Commits {
            notify: self.committed.clone(),
            recent: self.recent.clone(),
        }
    }

    /// Returns once every event queued before the call is in the store
    /// (journaled ones included): a gateway stopping calls it after its
    /// sessions closed, before the final checkpoint and export.
    pub async fn flush(&self) -> Result<(), AuditError> {
        let (ack, done) = oneshot::channel();
        let marker = AuditEvent::new(sluice_core::audit::EventKind::ConfigLoaded);
        self.tx
            .send((marker, Reply::Flush(ack)))
            .await
            .map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())
    }

    /// Appends one event; returns its sequence number once it is durable.
    pub async fn append(&self, event: AuditEvent) -> Result<i64, AuditError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send((event, Reply::Ack(ack)))
            .await
            .map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?
    }

    /// Appends one event and returns once it is durable: in the journal
    /// when the log has one (stored with the next group commit), otherwise
    /// as [`AuditLog::append`].
    pub async fn append_journaled(&self, event: AuditEvent) -> Result<(), AuditError> {
        // Recovery recognises a journaled event by its session and request
        // number; an event without them could be stored twice.
        let Some(journal) = self
            .journal
            .as_ref()
            .filter(|_| journal::recognisable(&event))
        else {
            return self.append(event).await.map(|_| ());
        };
        let journaled = async {
            // One lock over the journal write and the queue slot: the
            // journal's order is the order the writer stores.
            let mut journal = journal.lock().await;
            let slot = self.tx.reserve().await.map_err(|_| stopped())?;
            journal
                .write(&event)
                .map_err(|e| AuditError(format!("audit journal: {e}")))?;
            slot.send((event, Reply::Journaled));
            Ok(())
        };
        tokio::time::timeout(JOURNAL_WAIT, journaled)
            .await
            .map_err(|_| AuditError("the audit writer is not keeping up".into()))?
    }
}

fn stopped() -> AuditError {
    AuditError("the audit writer has stopped".into())
}

impl AuditSink for AuditLog {
    fn record(
        &self,
        event: AuditEvent,
    ) -> Pin<Box<dyn Future<Output = Result<i64, AuditError>> + Send + '_>> {
        Box::pin(self.append(event))
    }

    fn record_durable(
        &self,
        event: AuditEvent,
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + '_>> {
        Box::pin(self.append_journaled(event))
    }

    fn record_later(&self, event: AuditEvent) -> Result<(), LaterError> {
        self.tx
            .try_send((event, Reply::Later))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full((event, _)) => LaterError::Full(Box::new(event)),
                mpsc::error::TrySendError::Closed(_) => LaterError::Stopped,
            })
    }
}

async fn writer(
    store: Store,
    mut rx: mpsc::Receiver<Item>,
    (committed, recent, commit_seconds): (Arc<Notify>, Arc<Recent>, Histogram),
    journal: Option<journal::Closed>,
    mut tail: Option<(i64, String)>,
) {
    // Events of a failed commit nobody waits for (journaled, later), first
    // in the next batch.
    let mut retry: Vec<Item> = Vec::new();
    let mut backoff = Duration::from_millis(50);
    let mut stored_journaled: u64 = 0;
    // A failed commit that may have been stored (see `commit`).
    let mut unsure: Option<Unsure> = None;
    // Flushes waiting for everything queued before them to be stored.
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let mut batch = std::mem::take(&mut retry);
        if batch.is_empty() {
            match rx.recv().await {
                Some(item) => batch.push(item),
                None => return,
            }
        }
        gather(&mut rx, &mut batch).await;
        // Flush markers are not events: they are answered once this batch
        // (and any retry it leaves) is stored.
        batch.retain_mut(|(_, reply)| match std::mem::replace(reply, Reply::Later) {
            Reply::Flush(ack) => {
                flushes.push(ack);
                false
            }
            other => {
                *reply = other;
                true
            }
        });
        if batch.is_empty() {
            for ack in flushes.drain(..) {
                let _ = ack.send(());
            }
            continue;
        }
        let started = std::time::Instant::now();
        let outcome = commit(&store, &mut tail, &mut unsure, &batch).await;
        commit_seconds.observe(started.elapsed().as_secs_f64());
        if !outcome.landed.is_empty() {
            recent.committed(outcome.landed);
            committed.notify_waiters();
        }
        let result = match outcome.result {
            Ok((first, rows)) => {
                recent.committed(rows);
                committed.notify_waiters();
                backoff = Duration::from_millis(50);
                Ok(first)
            }
            Err(e) => Err(e),
        };
        let mut items = batch.into_iter();
        // Retried events an earlier commit had stored after all.
        for (_, reply) in items.by_ref().take(outcome.already) {
            if matches!(reply, Reply::Journaled) {
                stored_journaled += 1;
            }
        }
        for (i, (event, reply)) in items.enumerate() {
            match (reply, &result) {
                (Reply::Ack(ack), Ok(first_seq)) => {
                    let _ = ack.send(Ok(first_seq + i as i64));
                }
                (Reply::Ack(ack), Err(e)) => {
                    let _ = ack.send(Err(AuditError(e.clone())));
                }
                (Reply::Journaled, Ok(_)) => stored_journaled += 1,
                (Reply::Later, Ok(_)) => {}
                (reply @ (Reply::Journaled | Reply::Later), Err(_)) => retry.push((event, reply)),
                (Reply::Flush(_), _) => unreachable!("taken out of the batch"),
            }
        }
        if let (Some(closed), Ok(_)) = (&journal, &result) {
            closed.stored(stored_journaled);
        }
        if retry.is_empty() {
            for ack in flushes.drain(..) {
                let _ = ack.send(());
            }
        } else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// Fills `batch` from the queue. While nobody waits for any event in it
/// (journaled decisions, statement outcomes) it keeps gathering for up to
/// [`GATHER`]: a busy gateway then writes a few large commits instead of
/// many small ones, each of which rewrites the same table and index pages.
/// An event someone waits for (`append`) ends the gathering at once.
async fn gather(rx: &mut mpsc::Receiver<Item>, batch: &mut Vec<Item>) {
    let deadline = tokio::time::Instant::now() + GATHER;
    let mut awaited = batch
        .iter()
        .any(|(_, r)| matches!(r, Reply::Ack(_) | Reply::Flush(_)));
    loop {
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => {
                    awaited |= matches!(item.1, Reply::Ack(_) | Reply::Flush(_));
                    batch.push(item);
                }
                Err(_) => break,
            }
        }
        if awaited || batch.len() >= MAX_BATCH {
            return;
        }
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(item)) => {
                awaited |= matches!(item.1, Reply::Ack(_) | Reply::Flush(_));
                batch.push(item);
            }
            // Closed (the next receive says so) or time is up.
            Ok(None) | Err(_) => return,
        }
    }
}
