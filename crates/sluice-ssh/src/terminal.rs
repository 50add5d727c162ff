//! An interactive terminal's recording: what it showed and what was typed,
//! timed, in asciicast v2's event form, written as `session.terminal`
//! events of at most [`FLUSH_BYTES`] or [`FLUSH_EVERY`], so a replay can
//! play the session as it happened.

use std::time::{Duration, Instant};

use sluice_core::audit::EventKind;
use sluice_core::audit::detail::{self, Terminal};

use crate::session::Session;

/// A stretch is written once it holds this much…
const FLUSH_BYTES: usize = 16 * 1024;
/// …or is this old.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

pub struct Recorder {
    started: Instant,
    current: Terminal,
    bytes: usize,
    since: Instant,
    lost: u64,
}

impl Recorder {
    pub fn new(seq: u64, width: u32, height: u32, term: &str) -> Recorder {
        Recorder {
            started: Instant::now(),
            current: Terminal {
                seq,
                part: 0,
                width,
                height,
                term: term.to_string(),
                events: Vec::new(),
            },
            bytes: 0,
            since: Instant::now(),
            lost: 0,
        }
    }

    /// Notes `data` as `code` (`o`, `i`); writes the stretch when it is
    /// full.
    pub fn note(&mut self, session: &Session, code: &str, data: &[u8]) {
        let at = self.started.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(data).into_owned();
        self.bytes += text.len();
        self.current.events.push((at, code.to_string(), text));
        if self.bytes >= FLUSH_BYTES {
            self.flush(session);
        }
    }

    /// Notes a resize.
    pub fn resize(&mut self, cols: u32, rows: u32) {
        let at = self.started.elapsed().as_secs_f64();
        self.current
            .events
            .push((at, "r".to_string(), format!("{cols}x{rows}")));
    }

    /// Writes the stretch if it is old enough.
    pub fn tick(&mut self, session: &Session) {
        if self.since.elapsed() >= FLUSH_EVERY {
            self.flush(session);
        }
    }

    /// Writes what is held (nobody waits for it: the writer queues it).
    pub fn flush(&mut self, session: &Session) {
        self.since = Instant::now();
        if self.current.events.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.current.events);
        let part = Terminal {
            events,
            ..self.current.clone()
        };
        self.current.part += 1;
        self.bytes = 0;
        let event = session
            .event(EventKind::SessionTerminal)
            .detail(detail::to_value(&part));
        if session.shared.audit.record_later(event).is_err() {
            self.lost += 1;
            tracing::warn!(session.id = %session.id, lost = self.lost, "a terminal recording stretch was lost");
        }
    }
}
