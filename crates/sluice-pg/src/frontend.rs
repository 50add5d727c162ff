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
//! A Bind is judged by the statement it names and an Execute by its
//! portal, as the backend holds them: changes to names count once the
//! backend confirms them ([`Names`]), and a message that depends on a name
//! whose change is still in flight waits for the backend's answer. An
//! Execute of a portal Sluice does not know is refused.
//!
//! A client's Terminate is not forwarded: the session decides whether the
//! backend is closed or reset for reuse ([`crate::pool`]), from what this
//! half notes in [`Sent`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::backend_catalog::BackendCatalog;
use crate::codec::{Frame, FrameReader};
use crate::deny::Denials;
use crate::errors::{ClientError, PgError};
use crate::mask::{Expect, MaskQueue, StatementMask};
use crate::messages::{self, Frontend};
use crate::names::{Change, Effects, Names, Portal};
use crate::outcome::Inflight;
use crate::policy::{Checked, Decision, Permit, Policy, Run};
use crate::pool::Sent;
use sluice_gate::Gate;

/// A pipeline longer than this (bytes) before Sync is decided in parts, as
/// if the client had sent Flush: memory stays bounded.
const MAX_BATCH: usize = 1 << 20;
/// Statements up to this size are analysed on the async worker; larger
/// ones on a blocking thread.
const INLINE_ANALYSIS: usize = 32 * 1024;

/// Large analyses one grant may run at once, across its sessions.
pub const ANALYSIS_SLOTS: usize = 2;

/// What a session may ask the analysis for.
pub struct AnalysisLimits {
    /// Largest SQL text analysed.
    pub max_statement: usize,
    /// The grant's slots for large analyses.
    pub slots: Option<Arc<tokio::sync::Semaphore>>,
}

impl Default for AnalysisLimits {
    fn default() -> Self {
        AnalysisLimits {
            max_statement: 1024 * 1024,
            slots: None,
        }
    }
}

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
    /// Writing to the backend failed: it went away.
    BackendGone,
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
    /// Its Parses, Binds and Closes, in order: what it would change.
    changes: Vec<Change>,
    /// Each Execute's portal as it stood at that Execute, in order.
    executed: Vec<Portal>,
}

impl Batch {
    /// What the batch itself last did to statement `name`: `Some(None)`
    /// when it closed it.
    fn statement(&self, name: &str) -> Option<Option<Arc<Checked>>> {
        self.changes.iter().rev().find_map(|c| match c {
            Change::Parse { name: n, checked } if n == name => Some(Some(checked.clone())),
            Change::CloseStatement(n) if n == name => Some(None),
            _ => None,
        })
    }

    /// What the batch itself last did to portal `name`.
    fn portal(&self, name: &str) -> Option<Option<Portal>> {
        self.changes.iter().rev().find_map(|c| match c {
            Change::Bind { portal, entry } if portal == name => Some(Some(entry.clone())),
            Change::ClosePortal(n) if n == name => Some(None),
            _ => None,
        })
    }
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
    gate: Gate,
    denials: Arc<Denials>,
    /// What the pump should pair backend answers with, in send order.
    inflight: Arc<Inflight>,
    stats: Arc<Stats>,
    batch: Batch,
    /// Statement and portal names as the backend confirmed them.
    names: Arc<Names>,
    /// The connection's catalog, and how to read it: names in statements
    /// are resolved against it.
    catalog: Option<(Arc<BackendCatalog>, crate::side::Opener)>,
    /// How much analysis this session may ask for.
    limits: AnalysisLimits,
    /// After a denial not ended by Sync the backend skips to Sync; so do we.
    skipping: bool,
    /// The result path's queue, in a masked session.
    mask: Option<Arc<MaskQueue>>,
    /// What was sent to the backend, for the decision to reuse it.
    sent: Sent,
    /// Time spent handling the request being gathered (its frames, their
    /// analysis, its decision and forwarding), for `gateway_added`.
    spent: Duration,
    /// A request was forwarded by the last message: its time is reported.
    forwarded: bool,
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
        gate: Gate,
        denials: Arc<Denials>,
        inflight: Arc<Inflight>,
        stats: Arc<Stats>,
    ) -> Self {
        ClientHalf {
            reader,
            backend,
            out: BytesMut::new(),
            policy,
            gate,
            denials,
            inflight,
            stats,
            batch: Batch::default(),
            names: Arc::default(),
            catalog: None,
            limits: AnalysisLimits::default(),
            skipping: false,
            spent: Duration::ZERO,
            forwarded: false,
            mask: None,
            sent: Sent::default(),
        }
    }

    /// Shares the statement and portal names with the pump, which confirms
    /// changes as the backend answers.
    pub fn with_names(mut self, names: Arc<Names>) -> Self {
        self.names = names;
        self
    }

    /// Resolves names against the connection's catalog (without one,
    /// every statement is refused).
    pub fn with_catalog(
        mut self,
        catalog: Arc<BackendCatalog>,
        opener: crate::side::Opener,
    ) -> Self {
        self.catalog = Some((catalog, opener));
        self
    }

    /// Caps what this session's statements may cost to analyse.
    pub fn with_limits(mut self, limits: AnalysisLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Brings the policy's catalog up to date before an analysis.
    async fn refresh_catalog(&mut self) {
        let current = match &self.catalog {
            Some((catalog, opener)) => match catalog.current(opener).await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "the backend's catalog could not be read; statements are refused");
                    None
                }
            },
            None => None,
        };
        self.policy.use_catalog(current);
    }

    /// A statement's analysis. Small ones are analysed here; a large one on
    /// a blocking thread, at most [`ANALYSIS_SLOTS`] at a time per grant,
    /// so one agent's big statements cannot stall the workers every other
    /// session runs on. Above the listener's `max_statement_bytes` nothing
    /// is analysed: the statement is refused.
    async fn analysed(&self, sql: &str) -> crate::policy::Analysed {
        let limits = &self.limits;
        if sql.len() > limits.max_statement {
            return crate::policy::Analyser::refused(format!(
                "the statement is {} bytes, more than this gateway analyses \
                 (max_statement_bytes = {}); send bulk data with COPY",
                sql.len(),
                limits.max_statement
            ));
        }
        let analyser = self.policy.analyser();
        if sql.len() <= INLINE_ANALYSIS {
            return analyser.run(sql);
        }
        let _slot = match &limits.slots {
            Some(slots) => slots.clone().acquire_owned().await.ok(),
            None => None,
        };
        let sql = sql.to_string();
        tokio::task::spawn_blocking(move || analyser.run(&sql))
            .await
            .unwrap_or_else(|_| {
                crate::policy::Analyser::refused("the statement could not be analysed".into())
            })
    }

    /// After a statement that may change names is forwarded, the next one
    /// is judged against a new catalog.
    fn names_may_change(&self, checked: &Checked) {
        let ddl = checked
            .statements
            .iter()
            .any(|s| s.class >= sluice_core::guardrail::StatementClass::Ddl);
        if let (true, Some((catalog, _))) = (ddl, &self.catalog) {
            catalog.mark_stale();
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
            let started = Instant::now();
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
                return ClientEnd::BackendGone;
            }
            self.spent += started.elapsed();
            self.report_spent();
        }
    }

    /// Reports the time a forwarded request spent here, less any wait for
    /// an approval; a request that was not forwarded keeps gathering (its
    /// batch is not over) or is dropped (it was denied).
    fn report_spent(&mut self) {
        if self.forwarded {
            let spent = self.spent.saturating_sub(self.gate.held_for);
            self.gate.meter.added(spent);
        }
        if self.forwarded || self.batch.frames.is_empty() {
            self.spent = Duration::ZERO;
        }
        self.forwarded = false;
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
                self.names.push(Change::Sync);
                self.push(frame).await?;
            }
            return Ok(true);
        }
        match msg {
            Frontend::Query { sql } => {
                self.end_batch(End::Early).await?;
                // Its EXECUTEs are resolved against confirmed names only.
                self.settle(|n| !n.any_statement_pending()).await?;
                self.refresh_catalog().await;
                let analysed = self.analysed(sql).await;
                let checked = self.policy.check_query(sql, analysed, &self.names);
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
                self.gate
                    .refuse(
                        sluice_gate::Refusal {
                            protocol: "function-call".into(),
                            statements: Vec::new(),
                            rule: "default:function-call".into(),
                            reason: "function-call message".into(),
                            masked_column: None,
                        },
                        String::new(),
                    )
                    .await;
                self.deny_simple(ClientError::function_call_denied());
            }
            Frontend::Parse { name, sql } => {
                self.refresh_catalog().await;
                let analysed = self.analysed(sql).await;
                let checked = self.policy.check_parse(sql, analysed);
                let name = name.to_string();
                self.batch.checks.push(checked.clone());
                let frame = match checked.is_empty() {
                    true => messages::parse_emptied(&frame)
                        .ok_or(crate::messages::Malformed { what: "Parse" })?,
                    false => frame,
                };
                self.batch.changes.push(Change::Parse { name, checked });
                self.add(frame);
            }
            Frontend::Bind { portal, statement } => {
                let checked = self.bound_statement(statement).await?;
                let params = messages::bind_parameters(&frame).map(Arc::new);
                self.batch.changes.push(Change::Bind {
                    portal: portal.to_string(),
                    entry: Portal { checked, params },
                });
                self.add(frame);
            }
            Frontend::Execute { portal } => {
                let entry = self.executed_portal(portal).await?;
                self.batch.checks.push(entry.checked.clone());
                self.batch.executed.push(entry);
                self.add(frame);
            }
            Frontend::Close { portal, name } => {
                let name = name.to_string();
                self.batch.changes.push(match portal {
                    true => Change::ClosePortal(name),
                    false => Change::CloseStatement(name),
                });
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
                self.names.copy_end();
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

    /// The statement a Bind of `name` uses: as this batch left it, else as
    /// the backend holds it once any change in flight is answered. A name
    /// Sluice never saw prepared (or saw fail) is unknown: fail closed.
    async fn bound_statement(&mut self, name: &str) -> Result<Arc<Checked>, PgError> {
        if let Some(local) = self.batch.statement(name) {
            return Ok(local.unwrap_or_else(|| Policy::unknown_statement(name)));
        }
        self.settle(|n| !n.statement_pending(name)).await?;
        Ok(self
            .names
            .statement(name)
            .or_else(|| {
                self.names
                    .sql_prepared(name)
                    .map(|f| Policy::sql_prepared(name, f))
            })
            .unwrap_or_else(|| Policy::unknown_statement(name)))
    }

    /// The portal an Execute runs, the same way.
    async fn executed_portal(&mut self, name: &str) -> Result<Portal, PgError> {
        let unknown = || Portal {
            checked: Policy::unknown_portal(name),
            params: None,
        };
        if let Some(local) = self.batch.portal(name) {
            return Ok(local.unwrap_or_else(unknown));
        }
        self.settle(|n| !n.portal_pending(name)).await?;
        Ok(self.names.portal(name).unwrap_or_else(unknown))
    }

    /// Waits until `done` holds of the confirmed names: first forwards
    /// what is queued and asks the backend to flush its answers.
    async fn settle(&mut self, done: impl Fn(&Names) -> bool) -> Result<(), PgError> {
        if done(&self.names) {
            return Ok(());
        }
        self.sent.frame(b'H');
        self.out.extend_from_slice(&messages::flush());
        self.flush().await?;
        let names = self.names.clone();
        names.settle(done).await;
        Ok(())
    }

    /// Decides a request. While a statement is held for approval the
    /// client is watched too: if it goes away the wait ends (and the
    /// approval is withdrawn), so nothing runs for a client that left.
    async fn decide(
        &mut self,
        items: &[Arc<Checked>],
        protocol: &str,
        run: Run,
    ) -> Result<Decision, PgError> {
        let verdict = self.policy.verdict(items);
        let may_hold = self.gate.may_hold(&verdict);
        let decide = self
            .policy
            .decide(&mut self.gate, items, &verdict, protocol, run);
        if !may_hold {
            return Ok(decide.await);
        }
        tokio::select! {
            d = decide => Ok(d),
            () = self.reader.closed() => Err(PgError::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "the client left while its statement was held for approval",
            ))),
        }
    }

    /// A simple-protocol Query: decided alone.
    async fn simple(&mut self, frame: Frame, checked: Arc<Checked>) -> Result<(), PgError> {
        let items = std::slice::from_ref(&checked);
        match self.decide(items, "simple", Run::Executes(None)).await? {
            Decision::Forward(permit) => {
                self.stats.allowed.fetch_add(1, Ordering::Relaxed);
                self.forwarded = true;
                self.sent.statements(&checked.statements);
                self.names_may_change(&checked);
                let effects = checked.analysis().map(Effects::of).unwrap_or_default();
                self.names.push(Change::Query(effects));
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
        self.names.push(Change::Query(Effects::default()));
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
            let run = run_of(&batch);
            Some(self.decide(&batch.checks, "extended", run).await?)
        };
        match decision {
            Some(Decision::Deny(error)) => {
                self.stats.denied.fetch_add(1, Ordering::Relaxed);
                let sentinel = self.denials.sentinel(error.to_bytes());
                self.sent.frame(b'P');
                self.out
                    .extend_from_slice(&messages::parse_unnamed(&sentinel));
                // The sentinel's Parse fails, dropping the unnamed statement.
                self.names.push(Change::Parse {
                    name: String::new(),
                    checked: Policy::unknown_statement(""),
                });
                match end {
                    End::Sync | End::Flush => {
                        if end == End::Sync {
                            self.inflight.sync(None);
                            self.note(Expect::Sync);
                            self.names.push(Change::Sync);
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
                self.forwarded = true;
                for c in &batch.checks {
                    self.sent.statements(&c.statements);
                    self.names_may_change(c);
                }
                self.commit(permit, batch, end).await
            }
            None => self.commit(Permit::nothing_runs(), batch, end).await,
        }
    }

    /// Forwards an allowed batch; its changes to names are pending until
    /// the backend answers them.
    async fn commit(&mut self, permit: Permit, batch: Batch, end: End) -> Result<(), PgError> {
        for change in batch.changes {
            self.names.push(change);
        }
        if end == End::Sync {
            self.names.push(Change::Sync);
        }
        let mut executes = 0;
        let mut executed = batch.executed.iter();
        for frame in batch.frames {
            self.expect(permit.seq(), &frame, &mut executes);
            if self.mask.is_some() {
                let portal = match frame.tag {
                    b'E' => executed.next(),
                    _ => None,
                };
                self.note_masked(&frame, portal);
            }
            self.push(frame).await?;
        }
        Ok(())
    }

    /// In a masked session: notes the frame's answer and, before an
    /// Execute, sends Sluice's own Describe of the portal.
    fn note_masked(&mut self, frame: &Frame, executed: Option<&Portal>) {
        match Frontend::parse(frame) {
            Ok(Frontend::Describe) => self.note(Expect::Describe { ours: false }),
            Ok(Frontend::Execute { portal }) => {
                let ctx = executed
                    .map(|p| statement_mask(&p.checked))
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
/// its Executes' portals (bound in this batch or earlier) for an approver
/// to see. Only a held statement's approval shows them; audit events never
/// carry them.
fn run_of(batch: &Batch) -> Run {
    if batch.executed.is_empty() {
        return Run::PrepareOnly;
    }
    let values: Vec<Option<String>> = batch
        .executed
        .iter()
        .filter_map(|p| p.params.as_deref())
        .flat_map(|p| p.iter().cloned())
        .collect();
    Run::Executes((!values.is_empty()).then_some(values))
}
