//! The backend→client half of a session.
//!
//! Backend messages are streamed through as their original bytes, frame by
//! frame but without waiting for a whole frame: a 100 MB DataRow passes
//! through a 64 KiB buffer. Only ErrorResponses and CommandCompletes are
//! held until complete: a denial sentinel's error (see [`crate::deny`]) is
//! swapped for the denial, and both carry a statement's outcome (see
//! [`crate::outcome`]), handed to the audit writer without waiting.
//! Everything read is written before the next read, so the buffer is
//! bounded and a slow client slows the backend instead of filling memory;
//! writes are batched, one flush per read.
//!
//! In a masked session ([`crate::mask`]) every frame is held whole (up to
//! [`MAX_MASKED_FRAME`]) and offered to the session's
//! [`ResultMasker`], one at a time: a DataRow is rewritten as it passes,
//! so memory stays one row whatever the result size. A row larger than the
//! cap streams through only when its plan passes every column; otherwise
//! the session ends (FATAL 54000) rather than send it unmasked.
//!
//! When the connection records result rows (`record_results = "rows:N"`),
//! the first N DataRows of each statement and its RowDescription are held
//! whole too and handed to the tracker as sent ([`crate::capture`]).
//!
//! The pump also owns the end of the session: when the grant ends or the
//! client half fails, it writes the FATAL message and returns.
//!
//! ReadyForQuery and ParameterStatus are held whole too (a few bytes each)
//! and noted in [`Replies`]: whether the backend is idle when the client
//! leaves, and what it last reported, decide whether it can be reused.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::codec::ReadSize;
use crate::completions::Completions;
use crate::deny::Denials;
use crate::errors::ClientError;
use crate::mask::{ResultMasker, Step};
use crate::names::Names;
use crate::outcome::Tracker;
use crate::pool::Replies;

/// Bytes read from the backend at once.
const CHUNK: usize = 64 * 1024;
/// ErrorResponses and CommandCompletes longer than this are passed through
/// unexamined (a sentinel's error and a command tag are short).
const MAX_HELD: usize = 64 * 1024;
/// Largest frame a masked session holds whole to rewrite.
pub const MAX_MASKED_FRAME: usize = 16 << 20;

/// What a scan of the buffer came to.
enum Scan {
    /// Everything passable was moved; read more.
    Idle,
    /// A frame header no backend would send.
    Protocol,
    /// The masker needs a catalog lookup before the frame at hand.
    Need(crate::mask::Need),
    /// End the session (a row that cannot be masked).
    Fatal(ClientError),
}

/// Why the pump stopped.
#[derive(Debug)]
pub enum PumpEnd {
    /// The backend closed its connection (after Terminate, or it died).
    BackendClosed,
    /// The client went away or could not be written to.
    ClientGone,
    /// The session was ended (grant, shutdown, or a client-half error), and
    /// the client told so.
    Ended(Ending),
    /// The backend sent something that is not the protocol.
    BackendProtocol,
}

pub struct Pump<R, W> {
    backend: R,
    buf: BytesMut,
    client: W,
    out: BytesMut,
    /// Bytes of the current frame still to pass through.
    remaining: usize,
    denials: Arc<Denials>,
    tracker: Tracker,
    completions: Completions,
    /// NoticeResponses Sluice itself sends the client (held statements).
    notices: mpsc::Receiver<Bytes>,
    notices_open: bool,
    /// Notices waiting for a frame boundary.
    pending: Vec<Bytes>,
    /// The session's result masking; `None` when unmasked or exempt.
    mask: Option<ResultMasker>,
    /// What the backend's answers say about its state.
    replies: Replies,
    /// Room for the next read from the backend.
    size: ReadSize,
    /// Statement and portal names: the backend's answers confirm changes.
    names: Arc<Names>,
    /// An answer fit no change in flight: Sluice no longer knows what a
    /// name holds, so the session ends.
    lost: bool,
}

/// The session's end: resolves with what to tell the client.
pub type EndSignal = Pin<Box<dyn Future<Output = Ending> + Send>>;

/// Why Sluice ends a session: a word for the record (`expired`, `revoked`,
/// `shutdown`, …) and what the client is told.
#[derive(Debug)]
pub struct Ending {
    pub why: &'static str,
    pub error: ClientError,
}

impl Ending {
    pub fn new(why: &'static str, error: ClientError) -> Self {
        Ending { why, error }
    }
}

impl<R, W> Pump<R, W>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    pub fn new(
        backend: R,
        leftover: BytesMut,
        client: W,
        denials: Arc<Denials>,
        tracker: Tracker,
        completions: Completions,
        notices: mpsc::Receiver<Bytes>,
    ) -> Self {
        Pump {
            backend,
            buf: leftover,
            client,
            out: BytesMut::new(),
            size: ReadSize::up_to(CHUNK),
            remaining: 0,
            denials,
            tracker,
            completions,
            notices,
            notices_open: true,
            pending: Vec::new(),
            mask: None,
            replies: Replies::default(),
            names: Arc::default(),
            lost: false,
        }
    }

    /// Confirms the client half's statement and portal changes as the
    /// backend answers them.
    pub fn with_names(mut self, names: Arc<Names>) -> Self {
        self.names = names;
        self
    }

    /// Masks this session's results.
    pub fn with_masking(mut self, mask: Option<ResultMasker>) -> Self {
        self.mask = mask;
        self
    }

    /// True when the pump stopped between two backend messages, with
    /// nothing read that is not passed on.
    pub fn between_messages(&self) -> bool {
        self.remaining == 0 && self.buf.is_empty() && self.out.is_empty()
    }

    /// What the backend's answers said so far.
    pub fn replies(&self) -> &Replies {
        &self.replies
    }

    /// The backend's read half, and what its answers said.
    pub fn into_parts(self) -> (R, Replies) {
        (self.backend, self.replies)
    }

    /// Pumps until the backend closes, the client goes, or `end`/`fatal`
    /// fires (a dropped `fatal` sender means the client left: the pump
    /// stops at its next read, between messages).
    pub async fn run(
        &mut self,
        mut end: EndSignal,
        mut fatal: oneshot::Receiver<ClientError>,
    ) -> PumpEnd {
        loop {
            match self.scan() {
                Scan::Idle => {}
                Scan::Protocol => return self.lost(PumpEnd::BackendProtocol).await,
                Scan::Need(need) => {
                    if let Some(m) = &mut self.mask {
                        m.resolve(need).await;
                    }
                    continue;
                }
                Scan::Fatal(reason) => {
                    // What was masked so far goes first: the FATAL lands
                    // on a frame boundary.
                    let out = self.out.split().freeze();
                    if write_flush(&mut self.client, &out).await.is_err() {
                        return PumpEnd::ClientGone;
                    }
                    return self.finish(Ending::new("refused by sluice", reason)).await;
                }
            }
            for completion in self.tracker.take() {
                self.completions.send(completion);
            }
            // Sluice's own notices go between whole frames, never inside one.
            if self.remaining == 0 {
                for notice in self.pending.drain(..) {
                    self.out.extend_from_slice(&notice);
                }
            }
            if !self.out.is_empty() {
                let out = self.out.split().freeze();
                tokio::select! {
                    r = write_flush(&mut self.client, &out) => if r.is_err() {
                        return PumpEnd::ClientGone;
                    },
                    // A client that stops reading cannot keep an ended session.
                    reason = &mut end => return PumpEnd::Ended(reason),
                }
            }
            let room = self.size.reserve(&mut self.buf);
            tokio::select! {
                n = self.backend.read_buf(&mut self.buf) => match n {
                    Ok(0) | Err(_) => return self.lost(PumpEnd::BackendClosed).await,
                    Ok(n) => self.size.read(room, n),
                },
                notice = self.notices.recv(), if self.notices_open => match notice {
                    Some(n) => self.pending.push(n),
                    None => self.notices_open = false,
                },
                reason = &mut end => return self.finish(reason).await,
                reason = &mut fatal => match reason {
                    Ok(reason) => return self.finish(Ending::new("client protocol error", reason)).await,
                    Err(_) => return PumpEnd::ClientGone,
                },
            }
        }
    }

    /// Moves every passable byte from `buf` to `out`.
    fn scan(&mut self) -> Scan {
        loop {
            if self.lost {
                return Scan::Fatal(ClientError::names_lost());
            }
            if self.remaining > 0 {
                let n = self.remaining.min(self.buf.len());
                if n == 0 {
                    return Scan::Idle;
                }
                let chunk = self.buf.split_to(n);
                self.out.extend_from_slice(&chunk);
                self.remaining -= n;
                continue;
            }
            if self.buf.len() < 5 {
                return Scan::Idle;
            }
            let len = i32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
            if len < 4 {
                return Scan::Protocol;
            }
            let total = len as usize + 1;
            let tag = self.buf[0];
            if tag == b'S'
                && self.buf.len() >= total
                && let Some(reason) = unpinned(&self.buf[5..total])
            {
                return Scan::Fatal(reason);
            }
            if let Some(m) = &self.mask {
                if total <= MAX_MASKED_FRAME {
                    if self.buf.len() < total {
                        self.buf.reserve(total - self.buf.len());
                        return Scan::Idle;
                    }
                    match self.masked(tag, total) {
                        Some(stop) => return stop,
                        None => continue,
                    }
                }
                if !m.can_stream(tag) {
                    return Scan::Fatal(ClientError::row_too_large_to_mask(MAX_MASKED_FRAME));
                }
            }
            if self.tracker.wants(tag, total) {
                // A row or description the session recording keeps.
                if self.buf.len() < total {
                    self.buf.reserve(total - self.buf.len());
                    return Scan::Idle;
                }
                let frame = self.buf.split_to(total);
                self.tracker.captured(tag, &frame[5..]);
                self.out.extend_from_slice(&frame);
                continue;
            }
            if matches!(tag, b'E' | b'C' | b'Z' | b'S') && total <= MAX_HELD {
                if self.buf.len() < total {
                    self.buf.reserve(total - self.buf.len());
                    return Scan::Idle;
                }
                let frame = self.buf.split_to(total);
                self.held(tag, &frame);
                continue;
            }
            self.observe(tag);
            self.name_reply(tag, None);
            self.remaining = total;
        }
    }

    /// Hands an answer to the names tracker (each frame exactly once, where
    /// it is consumed).
    fn name_reply(&mut self, tag: u8, body: Option<&[u8]>) {
        self.name_reply_status(tag, body.and_then(|b| b.first().copied()));
    }

    fn name_reply_status(&mut self, tag: u8, status: Option<u8>) {
        if self.names.reply(tag, status).is_err() {
            tracing::error!(tag = %(tag as char), "backend answer fits no statement or portal change in flight; session ended");
            self.lost = true;
        }
    }

    /// Offers the whole frame at the front of `buf` to the masker and
    /// passes, drops or replaces it; `Some` when the scan must stop.
    fn masked(&mut self, tag: u8, total: usize) -> Option<Scan> {
        let m = self.mask.as_mut()?;
        let before = self.out.len();
        let step = m.on_frame(tag, &self.buf[..total], &mut self.out);
        if matches!(tag, b'C' | b's' | b'E' | b'I')
            && let Some(counts) = m.take_counts()
        {
            self.tracker.masked(counts);
        }
        match step {
            Step::Need(need) => return Some(Scan::Need(need)),
            Step::Fatal(reason) => return Some(Scan::Fatal(reason)),
            _ => {}
        }
        if matches!(tag, b'Z' | b'S') {
            // What the backend said, whatever the client is shown (every
            // step below consumes the frame).
            self.replies.saw(tag, &self.buf[5..total]);
        }
        if !(matches!(step, Step::Pass) && matches!(tag, b'E' | b'C')) {
            // (Passed E and C reach the tracker through `held`.)
            let status = (tag == b'Z').then(|| self.buf.get(5).copied()).flatten();
            self.name_reply_status(tag, status);
        }
        match step {
            Step::Pass if matches!(tag, b'E' | b'C') => {
                let frame = self.buf.split_to(total);
                self.held(tag, &frame);
            }
            Step::Pass if matches!(tag, b'N' | b'A') => {
                let scrubbed = self.mask.as_mut().and_then(|m| m.scrub(&self.buf[..total]));
                match scrubbed {
                    Some(notice) => self.out.extend_from_slice(&notice),
                    None => self.out.extend_from_slice(&self.buf[..total]),
                }
                self.buf.advance(total);
            }
            Step::Pass => {
                let frame = &self.buf[..total];
                note(&mut self.tracker, tag, frame);
                self.out.extend_from_slice(frame);
                self.buf.advance(total);
            }
            // The recording keeps the masked row, as the client gets it.
            Step::Written => {
                note(&mut self.tracker, tag, &self.out[before..]);
                self.buf.advance(total);
            }
            // Sluice's own Describe of a portal: the columns an Execute
            // without a client Describe returns.
            Step::Swallow if tag == b'T' && self.tracker.wants(tag, total) => {
                self.tracker.captured(tag, &self.buf[5..total]);
                self.buf.advance(total);
            }
            _ => self.buf.advance(total),
        }
        None
    }

    /// A whole ErrorResponse, CommandComplete, ReadyForQuery or
    /// ParameterStatus: noted, and passed on (a sentinel's error as its
    /// denial).
    fn held(&mut self, tag: u8, frame: &[u8]) {
        let body = &frame[5..];
        self.name_reply(tag, Some(body));
        if matches!(tag, b'Z' | b'S') {
            self.replies.saw(tag, body);
            observe(&mut self.tracker, tag);
            self.out.extend_from_slice(frame);
            return;
        }
        if tag == b'C' {
            let text = body
                .strip_suffix(&[0])
                .and_then(|t| std::str::from_utf8(t).ok());
            self.tracker.command_complete(text);
            self.out.extend_from_slice(frame);
            return;
        }
        match self.denials.replacement(body) {
            Some(denial) => {
                self.tracker.sentinel_error();
                self.out.extend_from_slice(&denial);
            }
            None => {
                // A masked session's errors may quote masked values.
                let scrubbed = self.mask.as_mut().and_then(|m| m.scrub(frame));
                let frame = scrubbed.as_deref().unwrap_or(frame);
                self.tracker.error(Some(&frame[5..]));
                self.out.extend_from_slice(frame);
            }
        }
    }

    /// Notes a streamed message by its tag alone.
    fn observe(&mut self, tag: u8) {
        observe(&mut self.tracker, tag);
    }

    /// Tells the client why the session ends. Only at a frame boundary, so
    /// the FATAL is not spliced into a half-sent message.
    /// The backend went away or broke the protocol: the client is told
    /// so (when between messages) rather than left with a closed socket.
    async fn lost(&mut self, end: PumpEnd) -> PumpEnd {
        if self.remaining == 0 {
            let _ = write_flush(&mut self.client, &ClientError::backend_lost().to_bytes()).await;
        }
        let _ = self.client.shutdown().await;
        end
    }

    async fn finish(&mut self, ending: Ending) -> PumpEnd {
        if self.remaining == 0 {
            let _ = write_flush(&mut self.client, &ending.error.to_bytes()).await;
        }
        let _ = self.client.shutdown().await;
        PumpEnd::Ended(ending)
    }
}

/// A ParameterStatus saying a setting Sluice pins changed: the backend
/// would read the next statement differently from the analysis, so the
/// session ends. (Statements that would change them are refused; this is
/// the wall behind that.)
fn unpinned(body: &[u8]) -> Option<ClientError> {
    let mut parts = body.split(|b| *b == 0);
    let name = std::str::from_utf8(parts.next()?).ok()?;
    let value = std::str::from_utf8(parts.next()?).ok()?;
    let (_, pinned) = sluice_sql::session::PINNED
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))?;
    if value.eq_ignore_ascii_case(pinned) {
        return None;
    }
    tracing::error!(
        setting = name,
        value,
        "backend reports a pinned setting changed; session ended"
    );
    Some(ClientError::setting_changed(name))
}

/// Notes a streamed message by its tag alone.
fn observe(tracker: &mut Tracker, tag: u8) {
    match tag {
        b'D' => tracker.data_row(),
        b'G' => tracker.copy_in(),
        b'Z' => tracker.ready(),
        b'I' => tracker.empty_query(),
        b's' => tracker.portal_suspended(),
        b'C' => tracker.command_complete(None),
        b'E' => tracker.error(None),
        _ => {}
    }
}

/// Notes a whole frame the client gets: kept by the recording when it
/// wants it, otherwise observed by its tag.
fn note(tracker: &mut Tracker, tag: u8, frame: &[u8]) {
    if tracker.wants(tag, frame.len()) {
        tracker.captured(tag, &frame[5..]);
    } else {
        observe(tracker, tag);
    }
}

async fn write_flush<W: AsyncWrite + Unpin>(w: &mut W, bytes: &Bytes) -> std::io::Result<()> {
    w.write_all(bytes).await?;
    w.flush().await
}
