//! Which request a backend answer belongs to, and what became of each
//! statement: rows, duration, error.
//!
//! The client half notes, in the order it writes them, the messages whose
//! answers carry an outcome ([`Inflight`]); the backend answers in the same
//! order, so the pump's [`Tracker`] pairs each CommandComplete,
//! EmptyQueryResponse, PortalSuspended or ErrorResponse with the front of
//! that queue. A simple Query may complete several statements before its
//! ReadyForQuery; an Execute completes exactly one. After an error the
//! backend skips to Sync, and so does the tracker: the Executes it passes
//! are reported as skipped. During COPY FROM STDIN the backend ignores Sync
//! (drivers send one with the Execute and one after CopyDone), so those
//! Syncs are dropped from the queue: they will get no ReadyForQuery.
//!
//! Limitation: an error from a Parse or Bind in a batch the client ended
//! with Flush rather than Sync, when that batch has no Execute, is paired
//! with whatever the client queued next. Drivers end batches with Sync.
//!
//! Nothing here does I/O: the pump hands the completions to the audit
//! writer ([`crate::completions`]).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::capture::{Capture, Results};
use crate::messages::error_fields;

/// Longest backend error message kept in an outcome.
const MAX_MESSAGE: usize = 1024;

/// A message sent to the backend whose answer is awaited.
#[derive(Debug)]
enum Expect {
    /// An allowed simple Query: any number of completions, then
    /// ReadyForQuery. `next` is the index of its next statement.
    Query { seq: u64, next: u32, sent: Instant },
    /// An Execute of an allowed batch: exactly one completion.
    Execute { seq: u64, index: u32, sent: Instant },
    /// A Sync: its ReadyForQuery. An error no Execute claims (a failed
    /// Parse in a prepare) goes to its batch, when it has one.
    Sync {
        batch: Option<(u64, u32)>,
        sent: Instant,
    },
    /// A denial sentinel's Query: its error and ReadyForQuery are not
    /// outcomes of anything the client ran.
    Quiet,
}

/// What the client half has sent and the backend not yet answered.
#[derive(Debug, Default)]
pub struct Inflight {
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    entries: VecDeque<Expect>,
    /// The backend is in COPY FROM STDIN: from its CopyInResponse until
    /// the client's CopyDone/CopyFail or the COPY's own end.
    copy_in: bool,
}

impl Inflight {
    /// An allowed simple Query (request `seq`).
    pub fn query(&self, seq: u64) {
        self.push(Expect::Query {
            seq,
            next: 0,
            sent: Instant::now(),
        });
    }

    /// The `index`-th Execute of allowed request `seq`.
    pub fn execute(&self, seq: u64, index: u32) {
        self.push(Expect::Execute {
            seq,
            index,
            sent: Instant::now(),
        });
    }

    /// A Sync; `batch` is the request it ends and how many Executes it had.
    pub fn sync(&self, batch: Option<(u64, u32)>) {
        let mut queue = self.lock();
        if !queue.copy_in {
            queue.entries.push_back(Expect::Sync {
                batch,
                sent: Instant::now(),
            });
        }
    }

    /// The client ended its COPY data (CopyDone or CopyFail): Syncs count
    /// again.
    pub fn copy_end(&self) {
        self.lock().copy_in = false;
    }

    /// A simple-protocol denial sentinel.
    pub fn quiet(&self) {
        self.push(Expect::Quiet);
    }

    fn push(&self, e: Expect) {
        self.lock().entries.push_back(e);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // Entries are pushed and popped whole: a poisoned queue is intact.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What became of one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// CommandComplete: its command word and row count, when it has one.
    Done {
        command: Option<String>,
        rows: Option<u64>,
    },
    /// An Execute stopped at its row limit (the portal stays open).
    Suspended { rows: u64 },
    /// An empty query string.
    Empty,
    /// The backend's SQLSTATE and primary message; never DETAIL, HINT or
    /// WHERE, which can quote row values.
    Failed {
        sqlstate: Option<String>,
        message: Option<String>,
    },
    /// Not run: an earlier message of its pipeline failed.
    Skipped,
}

/// One statement's outcome, for the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The request's sequence number, as in its `statement.allowed` event.
    pub seq: u64,
    /// The statement's place in its request: the statement of a
    /// multi-statement Query, or the Execute of a batch.
    pub index: u32,
    pub protocol: &'static str,
    pub outcome: Outcome,
    pub duration: Duration,
    /// Values masked in its result, by rule or detector label (counts only).
    pub masked: Vec<(String, u64)>,
    /// Its first result rows as the client received them, when the
    /// connection records rows (`record_results = "rows:N"`).
    pub results: Option<Results>,
}

/// The pump's side: pairs backend answers with [`Inflight`] entries.
pub struct Tracker {
    inflight: std::sync::Arc<Inflight>,
    /// DataRows since the last completion, for PortalSuspended.
    rows: u64,
    /// When the backend last finished something: a statement queued behind
    /// another starts then, not when it was sent.
    idle_since: Instant,
    done: Vec<Completion>,
    /// Masked-value counts for the next completion.
    masked: Vec<(String, u64)>,
    /// Result rows kept for the recording; `None` unless `rows:N`.
    capture: Option<Capture>,
}

impl Tracker {
    pub fn new(inflight: std::sync::Arc<Inflight>) -> Self {
        Tracker {
            inflight,
            rows: 0,
            idle_since: Instant::now(),
            done: Vec::new(),
            masked: Vec::new(),
            capture: None,
        }
    }

    /// Keeps the first `rows` result rows of each statement (0: none),
    /// masked by `mask` when the session itself is exempt from masking.
    pub fn recording(mut self, rows: u32, mask: Option<crate::mask::RecordingMask>) -> Self {
        self.capture = match (Capture::new(rows), mask) {
            (Some(c), Some(m)) => Some(c.masked_by(m)),
            (c, _) => c,
        };
        self
    }

    /// Whether a frame with `tag` and `total` length should be held whole
    /// and given to [`Tracker::captured`] instead of only observed.
    pub fn wants(&self, tag: u8, total: usize) -> bool {
        self.capture.as_ref().is_some_and(|c| c.wants(tag, total))
    }

    /// A whole RowDescription or DataRow (body only) as the client gets it.
    pub fn captured(&mut self, tag: u8, body: &[u8]) {
        let Some(c) = &mut self.capture else { return };
        match tag {
            b'T' => c.describe(body),
            b'D' => {
                self.rows += 1;
                c.row(body);
            }
            _ => {}
        }
    }

    /// Completions found since the last call.
    pub fn take(&mut self) -> Vec<Completion> {
        std::mem::take(&mut self.done)
    }

    /// Counts of values masked in the result about to complete.
    pub fn masked(&mut self, counts: Vec<(String, u64)>) {
        self.masked = counts;
    }

    pub fn data_row(&mut self) {
        self.rows += 1;
        if let Some(c) = &mut self.capture {
            c.skipped_row();
        }
    }

    /// CopyInResponse: until the client's CopyDone/CopyFail the backend
    /// ignores Sync. Every Sync already queued behind the COPY was sent
    /// before that (clients send data only after this answer), so none
    /// will be answered.
    pub fn copy_in(&mut self) {
        let mut queue = self.inflight.lock();
        queue.copy_in = true;
        let mut first = true;
        queue.entries.retain(|e| {
            let keep = first || !matches!(e, Expect::Sync { .. });
            first = false;
            keep
        });
    }

    /// CommandComplete with its tag (`None` if it was too long to hold).
    pub fn command_complete(&mut self, tag: Option<&str>) {
        let (command, rows) = tag.map(split_tag).unwrap_or_default();
        self.answer(Answer::Completion, Outcome::Done { command, rows });
    }

    pub fn empty_query(&mut self) {
        self.answer(Answer::EmptyQuery, Outcome::Empty);
    }

    pub fn portal_suspended(&mut self) {
        let rows = self.rows;
        self.answer(Answer::Completion, Outcome::Suspended { rows });
    }

    /// A backend ErrorResponse body (`None` if it was too long to hold).
    pub fn error(&mut self, body: Option<&[u8]>) {
        self.answer(Answer::Error, failure(body));
    }

    /// A denial sentinel's error, which Sluice answered itself.
    pub fn sentinel_error(&mut self) {
        self.rows = 0;
    }

    /// ReadyForQuery: ends a Query or a Sync. Executes still ahead of it
    /// were skipped by the backend after an error.
    pub fn ready(&mut self) {
        let now = Instant::now();
        let mut queue = self.inflight.lock();
        while let Some(e) = queue.entries.pop_front() {
            match e {
                Expect::Execute { seq, index, .. } => self.done.push(Completion {
                    seq,
                    index,
                    protocol: "extended",
                    outcome: Outcome::Skipped,
                    duration: Duration::ZERO,
                    masked: Vec::new(),
                    results: None,
                }),
                Expect::Query { .. } | Expect::Sync { .. } | Expect::Quiet => break,
            }
        }
        self.rows = 0;
        self.idle_since = now;
    }

    fn answer(&mut self, answer: Answer, outcome: Outcome) {
        let now = Instant::now();
        let slot = {
            let mut queue = self.inflight.lock();
            // A completion or an error ends any COPY the backend was in.
            queue.copy_in = false;
            claim(&mut queue.entries, answer)
        };
        let suspended = matches!(outcome, Outcome::Suspended { .. });
        let results = self.capture.as_mut().and_then(|c| c.take(suspended));
        if let Some(slot) = slot {
            // A statement runs from when it was sent or when the backend
            // finished the one before it, whichever is later.
            let start = slot.sent.max(self.idle_since);
            self.done.push(Completion {
                seq: slot.seq,
                index: slot.index,
                protocol: slot.protocol,
                outcome,
                duration: now.saturating_duration_since(start),
                masked: std::mem::take(&mut self.masked),
                results,
            });
        }
        self.masked.clear();
        self.rows = 0;
        self.idle_since = now;
    }
}

/// Kinds of backend answers that may end a statement.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    Completion,
    EmptyQuery,
    Error,
}

/// The statement an answer belongs to.
struct Slot {
    seq: u64,
    index: u32,
    protocol: &'static str,
    sent: Instant,
}

/// Takes the statement `answer` is for from the front of the queue: the
/// next statement of a Query (an empty Query string ran none), an Execute,
/// or for an error no Execute claims, the batch its Sync ends.
fn claim(queue: &mut VecDeque<Expect>, answer: Answer) -> Option<Slot> {
    match queue.front_mut()? {
        Expect::Query { seq, next, sent } if answer != Answer::EmptyQuery => {
            let slot = Slot {
                seq: *seq,
                index: *next,
                protocol: "simple",
                sent: *sent,
            };
            *next += 1;
            Some(slot)
        }
        Expect::Execute { seq, index, sent } => {
            let slot = Slot {
                seq: *seq,
                index: *index,
                protocol: "extended",
                sent: *sent,
            };
            queue.pop_front();
            Some(slot)
        }
        Expect::Sync {
            batch: Some((seq, index)),
            sent,
        } if answer == Answer::Error => Some(Slot {
            seq: *seq,
            index: *index,
            protocol: "extended",
            sent: *sent,
        }),
        _ => None,
    }
}

/// `SELECT 42` → (`SELECT`, 42); `INSERT 0 5` → (`INSERT`, 5);
/// `CREATE TABLE` → (`CREATE TABLE`, none).
pub fn split_tag(tag: &str) -> (Option<String>, Option<u64>) {
    let words: Vec<&str> = tag.split_whitespace().collect();
    let numeric = words
        .iter()
        .rposition(|w| w.parse::<u64>().is_err())
        .map_or(0, |i| i + 1);
    let rows = words.last().and_then(|w| w.parse().ok());
    let command = words[..numeric].join(" ");
    ((!command.is_empty()).then_some(command), rows)
}

/// The SQLSTATE and primary message of an ErrorResponse body, and nothing
/// else of it.
fn failure(body: Option<&[u8]>) -> Outcome {
    let fields = body.map(error_fields).unwrap_or_default();
    let get = |code: u8| {
        fields
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.to_string())
    };
    Outcome::Failed {
        sqlstate: get(b'C'),
        message: get(b'M').map(|m| truncate(m, MAX_MESSAGE)),
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests;
