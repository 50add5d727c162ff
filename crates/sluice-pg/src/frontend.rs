//! The client→backend half of a session: requests are buffered until they
//! are complete (a Query; in the extended protocol everything up to Sync or
//! Flush), decided once, recorded, and only then forwarded as the client's
//! own bytes. COPY data passes straight through: it belongs to a COPY the
//! policy already allowed.
//!
//! In a masked session the half also tells the result path what each
//! answer belongs to ([`MaskQueue`]), and sends its own Describe of the
//! portal before each Execute, so that the result is planned with the
//! formats the Bind asked for (see [`crate::mask`]).
//!
//! A client's Terminate is not forwarded: the session decides whether the
//! backend is closed or reset for reuse ([`crate::pool`]), from what this
//! half notes in [`Sent`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::codec::{Frame, FrameReader};
use crate::deny::Denials;
use crate::errors::{ClientError, PgError};
use crate::mask::{Expect, MaskQueue, StatementMask};
use crate::messages::{self, Frontend};
use crate::outcome::Inflight;
use crate::policy::{Checked, Decision, Permit, Policy, Recorder, Run};
use crate::pool::Sent;

/// A pipeline longer than this (bytes) before Sync is decided in parts, as
/// if the client had sent Flush: memory stays bounded.
const MAX_BATCH: usize = 1 << 20;
/// Small writes are gathered up to this before a write call.
const WRITE_BUFFER: usize = 64 * 1024;

/// Counters reported when the session closes.
#[derive(Default)]
pub struct Stats {
    pub allowed: AtomicU64,
    pub denied: AtomicU64,
}

/// How the client half ended.
pub enum ClientEnd {
    /// The client said Terminate (not forwarded).
    Terminated,
    /// The connection closed.
    Gone,
    /// A protocol error: tell the client and close.
    Fatal(ClientError),
}

/// The extended-protocol messages since the last Sync/Flush.
#[derive(Default)]
struct Batch {
    frames: Vec<Frame>,
    bytes: usize,
    /// What the batch would run: every Parse, and every Execute's statement.
    checks: Vec<Arc<Checked>>,
    parsed: Vec<(String, Arc<Checked>)>,
    bound: Vec<(String, Arc<Checked>)>,
    closed: Vec<String>,
}

/// What ends a batch.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Sync,
    Flush,
    /// Too big, or interrupted by a simple Query: no terminator sent.
    Early,
}

pub struct ClientHalf<R, W> {
    reader: FrameReader<R>,
    backend: W,
    out: BytesMut,
    policy: Policy,
    recorder: Recorder,
    denials: Arc<Denials>,
    /// What the pump should pair backend answers with, in send order.
    inflight: Arc<Inflight>,
    stats: Arc<Stats>,
    batch: Batch,
    statements: HashMap<String, Arc<Checked>>,
    portals: HashMap<String, Arc<Checked>>,
    /// After a denial not ended by Sync the backend skips to Sync; so do we.
    skipping: bool,
    /// The result path's queue, in a masked session.
    mask: Option<Arc<MaskQueue>>,
    /// What was sent to the backend, for the decision to reuse it.
    sent: Sent,
}

impl<R, W> ClientHalf<R, W>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    pub fn new(
        reader: FrameReader<R>,
        backend: W,
        policy: Policy,
        recorder: Recorder,
        denials: Arc<Denials>,
        inflight: Arc<Inflight>,
        stats: Arc<Stats>,
    ) -> Self {
        ClientHalf {
            reader,
            backend,
            out: BytesMut::new(),
            policy,
            recorder,
            denials,
            inflight,
            stats,
            batch: Batch::default(),
            statements: HashMap::new(),
            portals: HashMap::new(),
            skipping: false,
            mask: None,
            sent: Sent::default(),
        }
    }

    /// Masks this session's results: notes answers in `queue`.
    pub fn with_masking(mut self, queue: Option<Arc<MaskQueue>>) -> Self {
        self.mask = queue;
        self
    }

    /// Notes an answer the result path must recognise.
    fn note(&self, e: Expect) {
        if let Some(q) = &self.mask {
            q.push(e);
        }
    }

    /// What was sent to the backend so far.
    pub fn sent(&self) -> &Sent {
        &self.sent
    }

    /// The backend's write half.
    pub fn into_backend(self) -> W {
        self.backend
    }

    pub async fn run(&mut self) -> ClientEnd {
        loop {
            let frame = match self.reader.next().await {
                Ok(Some(frame)) => frame,
                Ok(None) => return ClientEnd::Gone,
                Err(e) => return self.fail(PgError::from(e)),
            };
            match self.handle(frame).await {
                Ok(true) => {}
                Ok(false) => return ClientEnd::Terminated,
                Err(e) => return self.fail(e),
            }
            // Write when the client has nothing more queued: pipelined
            // requests share one write.
            if (!self.reader.has_frame() || self.out.len() >= WRITE_BUFFER)
                && self.flush().await.is_err()
            {
                return ClientEnd::Gone;
            }
        }
    }

    fn fail(&self, e: PgError) -> ClientEnd {
        match e {
            PgError::Io(_) => ClientEnd::Gone,
            e => {
                tracing::info!(error = %e, "closing a session on a client protocol error");
                ClientEnd::Fatal(e.to_client())
            }
        }
    }

    /// Handles one message; false once the client said Terminate.
    async fn handle(&mut self, frame: Frame) -> Result<bool, PgError> {
        let msg = Frontend::parse(&frame)?;
        if self.skipping {
            if msg == Frontend::Sync {
                self.skipping = false;
                self.inflight.sync(None);
                self.note(Expect::Sync);
                self.push(frame).await?;
            }
            return Ok(true);
        }
        match msg {
            Frontend::Query { sql } => {
                let checked = self.policy.check_query(sql);
                self.end_batch(End::Early).await?;
                let frame = if checked.is_empty() {
                    Frame {
                        tag: b'Q',
                        bytes: messages::query(""),
                    }
                } else {
                    frame
                };
                self.simple(frame, checked).await?;
            }
            Frontend::FunctionCall => {
                self.end_batch(End::Early).await?;
                self.recorder.record_refusal("function-call message").await;
                self.deny_simple(ClientError::function_call_denied());
            }
            Frontend::Parse { name, sql } => {
                let checked = self.policy.check_parse(sql);
                let name = name.to_string();
                self.batch.checks.push(checked.clone());
                self.batch.parsed.push((name, checked.clone()));
                let frame = match checked.is_empty() {
                    true => messages::parse_emptied(&frame)
                        .ok_or(crate::messages::Malformed { what: "Parse" })?,
                    false => frame,
                };
                self.add(frame);
            }
            Frontend::Bind { portal, statement } => {
                // A name we never saw parsed (SQL-level PREPARE shares the
                // namespace) is judged as unknown: fail closed.
                let checked = self
                    .statement(statement)
                    .or_else(|| self.policy.sql_prepared(statement))
                    .unwrap_or_else(|| Policy::unknown_statement(statement));
                self.batch.bound.push((portal.to_string(), checked));
                self.add(frame);
            }
            Frontend::Execute { portal } => {
                if let Some(checked) = self.portal(portal) {
                    self.batch.checks.push(checked);
                }
                self.add(frame);
            }
            Frontend::Close { statement } => {
                if let Some(name) = statement {
                    self.batch.closed.push(name.to_string());
                }
                self.add(frame);
            }
            Frontend::Describe => self.add(frame),
            Frontend::Sync => {
                self.add(frame);
                self.end_batch(End::Sync).await?;
            }
            Frontend::Flush => {
                self.add(frame);
                self.end_batch(End::Flush).await?;
            }
            Frontend::CopyData => self.push(frame).await?,
            Frontend::CopyDone | Frontend::CopyFail => {
                self.inflight.copy_end();
                if let Some(q) = &self.mask {
                    q.copy_end();
                }
                self.push(frame).await?
            }
            Frontend::Terminate => {
                self.batch = Batch::default();
                self.flush().await?;
                return Ok(false);
            }
        }
        if self.batch.bytes > MAX_BATCH {
            self.end_batch(End::Early).await?;
        }
        Ok(true)
    }

    /// A simple-protocol Query: decided alone.
    async fn simple(&mut self, frame: Frame, checked: Arc<Checked>) -> Result<(), PgError> {
        match self
            .recorder
            .decide(
                &self.policy,
                std::slice::from_ref(&checked),
                "simple",
                Run::Executes(None),
            )
            .await
        {
            Decision::Forward(permit) => {
                self.stats.allowed.fetch_add(1, Ordering::Relaxed);
                self.sent.statements(&checked.statements);
                self.policy.sent_query(&checked);
                self.note(Expect::Query(statement_mask(&checked)));
                self.forward(permit, frame).await
            }
            Decision::Deny(error) => {
                self.stats.denied.fetch_add(1, Ordering::Relaxed);
                self.deny_simple(error);
                Ok(())
            }
        }
    }

    fn deny_simple(&mut self, error: ClientError) {
        let sentinel = self.denials.sentinel(error.to_bytes());
        self.inflight.quiet();
        self.note(Expect::Query(Arc::default()));
        self.sent.frame(b'Q');
        self.out.extend_from_slice(&messages::query(&sentinel));
    }

    /// Decides and forwards (or denies) the batch so far.
    async fn end_batch(&mut self, end: End) -> Result<(), PgError> {
        let mut batch = std::mem::take(&mut self.batch);
        if batch.frames.is_empty() {
            return Ok(());
        }
        // Parse+Bind+Execute names one statement twice: judge and record it once.
        let mut unique: Vec<Arc<Checked>> = Vec::with_capacity(batch.checks.len());
        for c in batch.checks.drain(..) {
            if !unique.iter().any(|u| Arc::ptr_eq(u, &c)) {
                unique.push(c);
            }
        }
        batch.checks = unique;
        let decision = if batch.checks.is_empty() {
            // Describe/Close/Sync only: nothing runs.
            None
        } else {
            Some(
                self.recorder
                    .decide(
                        &self.policy,
                        &batch.checks,
                        "extended",
                        run_of(&batch.frames),
                    )
                    .await,
            )
        };
        match decision {
            Some(Decision::Deny(error)) => {
                self.stats.denied.fetch_add(1, Ordering::Relaxed);
                let sentinel = self.denials.sentinel(error.to_bytes());
                self.sent.frame(b'P');
                self.out
                    .extend_from_slice(&messages::parse_unnamed(&sentinel));
                match end {
                    End::Sync | End::Flush => {
                        if end == End::Sync {
                            self.inflight.sync(None);
                            self.note(Expect::Sync);
                        }
                        let last = batch.frames.last().expect("non-empty batch");
                        self.sent.frame(last.tag);
                        self.out.extend_from_slice(&last.bytes);
                    }
                    End::Early => {}
                }
                self.skipping = end != End::Sync;
                Ok(())
            }
            Some(Decision::Forward(permit)) => {
                self.stats.allowed.fetch_add(1, Ordering::Relaxed);
                for c in &batch.checks {
                    self.sent.statements(&c.statements);
                }
                self.commit(permit, batch).await
            }
            None => self.commit(Permit::nothing_runs(), batch).await,
        }
    }

    /// Forwards an allowed batch and keeps its statement and portal names.
    async fn commit(&mut self, permit: Permit, batch: Batch) -> Result<(), PgError> {
        for (name, checked) in batch.parsed {
            self.policy.sent_parse(&name, &checked);
            self.statements.insert(name, checked);
        }
        for (portal, checked) in batch.bound {
            self.portals.insert(portal, checked);
        }
        for name in batch.closed {
            self.policy.sent_close(&name);
            self.statements.remove(&name);
        }
        let mut executes = 0;
        for frame in batch.frames {
            self.expect(permit.seq(), &frame, &mut executes);
            if self.mask.is_some() {
                self.note_masked(&frame);
            }
            self.push(frame).await?;
        }
        Ok(())
    }

    /// In a masked session: notes the frame's answer and, before an
    /// Execute, sends Sluice's own Describe of the portal.
    fn note_masked(&mut self, frame: &Frame) {
        match Frontend::parse(frame) {
            Ok(Frontend::Describe) => self.note(Expect::Describe { ours: false }),
            Ok(Frontend::Execute { portal }) => {
                let ctx = self
                    .portals
                    .get(portal)
                    .map(|c| statement_mask(c))
                    .unwrap_or_default();
                self.sent.frame(b'D');
                self.out
                    .extend_from_slice(&messages::describe_portal(portal));
                self.note(Expect::Describe { ours: true });
                self.note(Expect::Execute(ctx));
            }
            Ok(Frontend::Sync) => self.note(Expect::Sync),
            _ => {}
        }
    }

    /// Notes the answer of a batch message that carries an outcome: each
    /// Execute of a request that runs something, and each Sync.
    fn expect(&self, seq: Option<u64>, frame: &Frame, executes: &mut u32) {
        match (Frontend::parse(frame), seq) {
            (Ok(Frontend::Execute { .. }), Some(seq)) => {
                self.inflight.execute(seq, *executes);
                *executes += 1;
            }
            (Ok(Frontend::Sync), _) => self.inflight.sync(seq.map(|s| (s, *executes))),
            _ => {}
        }
    }

    async fn forward(&mut self, permit: Permit, frame: Frame) -> Result<(), PgError> {
        if let Some(seq) = permit.seq() {
            self.inflight.query(seq);
        }
        self.push(frame).await
    }

    /// A statement by name: parsed earlier in this batch, or before.
    fn statement(&self, name: &str) -> Option<Arc<Checked>> {
        let pending = self.batch.parsed.iter().rev().find(|(n, _)| n == name);
        match pending {
            Some((_, c)) => Some(c.clone()),
            None => self.statements.get(name).cloned(),
        }
    }

    fn portal(&self, name: &str) -> Option<Arc<Checked>> {
        let pending = self.batch.bound.iter().rev().find(|(n, _)| n == name);
        match pending {
            Some((_, c)) => Some(c.clone()),
            None => self.portals.get(name).cloned(),
        }
    }

    fn add(&mut self, frame: Frame) {
        self.batch.bytes += frame.bytes.len();
        self.batch.frames.push(frame);
    }

    /// Queues bytes for the backend; large frames are written directly
    /// rather than copied.
    async fn push(&mut self, frame: Frame) -> Result<(), PgError> {
        self.sent.frame(frame.tag);
        if frame.bytes.len() >= WRITE_BUFFER {
            self.flush().await?;
            self.write(&frame.bytes).await?;
        } else {
            self.out.extend_from_slice(&frame.bytes);
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), PgError> {
        if !self.out.is_empty() {
            let out = self.out.split().freeze();
            self.write(&out).await?;
        }
        self.backend.flush().await?;
        Ok(())
    }

    async fn write(&mut self, bytes: &Bytes) -> Result<(), PgError> {
        self.backend.write_all(bytes).await?;
        Ok(())
    }
}

/// A checked statement's masking facts (none known: nothing forced).
fn statement_mask(c: &Checked) -> Arc<StatementMask> {
    c.mask.clone().unwrap_or_default()
}

/// Whether a batch executes anything and, if so, the parameter values of
/// its Binds for an approver to see (only a held statement's approval shows
/// them; audit events never carry them).
fn run_of(frames: &[Frame]) -> Run {
    if !frames.iter().any(|f| f.tag == b'E') {
        return Run::PrepareOnly;
    }
    let values: Vec<Option<String>> = frames
        .iter()
        .filter(|f| f.tag == b'B')
        .filter_map(messages::bind_parameters)
        .flatten()
        .collect();
    Run::Executes((!values.is_empty()).then_some(values))
}
