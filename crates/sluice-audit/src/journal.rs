//! The write-ahead journal of statement decisions (and session openings).
//!
//! A statement may reach the database only once its `statement.allowed`
//! record is durable (DESIGN.md §3); a session reads its first statement
//! only once its `session.opened` is (that event carries request number 0). Waiting for the store's group commit
//! puts a database round trip (for SQLite, two thread hand-offs and an
//! insert) on every statement's path. Instead the session appends the event
//! to a local journal, one `write(2)` of one JSON line, and forwards; the
//! audit writer chains and stores journaled events in large batches.
//!
//! Durability: a line written is in the kernel's page cache and survives a
//! crash or `kill -9` of the gateway, exactly as SQLite's WAL with
//! `synchronous = NORMAL` (the store's setting) does; neither survives the
//! machine losing power before the kernel writes back.
//!
//! Order: journal writes and the writer's queue share one lock, so the
//! journal holds events in the order the writer stores them, and the count
//! of journaled events stored so far says which journal segments are fully
//! in the store and can go.
//!
//! Recovery: at start, segments left by a previous run are read back; every
//! event the store does not already hold (matched by session, kind and the
//! request's `seq`) is appended before anything else, and the segments are
//! removed. A torn last line is a write that never completed, so its
//! statement was never forwarded: it is dropped.

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sluice_core::audit::AuditEvent;
use sluice_store::Store;

/// A segment is closed once it holds this many bytes.
const SEGMENT_BYTES: u64 = 8 << 20;

pub(crate) struct Journal {
    dir: PathBuf,
    current: Segment,
    closed: Closed,
}

/// Closed segments, oldest first, with the journaled-event count at their
/// end: removable once that many journaled events are stored. Shared with
/// the writer, which must never wait on the journal's own lock (a session
/// holds it while waiting for room in the writer's queue).
#[derive(Clone, Default)]
pub(crate) struct Closed(Arc<Mutex<VecDeque<(PathBuf, u64)>>>);

struct Segment {
    file: File,
    path: PathBuf,
    index: u64,
    bytes: u64,
    /// Journaled events written so far, this run.
    written: u64,
    /// A failed write's part could not be cut off: the next write opens a
    /// new segment, so the part stays a torn last line (which recovery
    /// drops) and never sits in the middle of a segment.
    torn: bool,
}

impl Journal {
    /// Opens the journal directory: a fresh segment for this run, and the
    /// paths of segments a previous run left (to recover, then remove).
    pub(crate) fn open(dir: &Path) -> std::io::Result<(Journal, Vec<PathBuf>)> {
        fs::create_dir_all(dir)?;
        // Statement texts are as sensitive as the store: owner only.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        let mut left: Vec<(u64, PathBuf)> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| segment_index(&e.path()).map(|i| (i, e.path())))
            .collect();
        left.sort();
        let index = left.last().map_or(1, |(i, _)| i + 1);
        let current = Segment::create(dir, index, 0)?;
        let journal = Journal {
            dir: dir.to_path_buf(),
            current,
            closed: Closed::default(),
        };
        Ok((journal, left.into_iter().map(|(_, p)| p).collect()))
    }

    /// Appends one event as one line. The caller holds the writer-queue
    /// lock (this is `&mut self` behind it).
    pub(crate) fn write(&mut self, event: &AuditEvent) -> std::io::Result<()> {
        if self.current.bytes >= SEGMENT_BYTES || self.current.torn {
            let next = Segment::create(&self.dir, self.current.index + 1, self.current.written)?;
            let old = std::mem::replace(&mut self.current, next);
            self.closed.lock().push_back((old.path, old.written));
        }
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if let Err(e) = self.current.file.write_all(&line) {
            self.current.cut_back();
            return Err(e);
        }
        self.current.bytes += line.len() as u64;
        self.current.written += 1;
        Ok(())
    }

    /// The closed segments, for the writer to retire.
    pub(crate) fn closed(&self) -> Closed {
        self.closed.clone()
    }
}

impl Closed {
    /// `stored` journaled events of this run are in the store: removes the
    /// closed segments they cover.
    pub(crate) fn stored(&self, stored: u64) {
        let mut closed = self.lock();
        while closed.front().is_some_and(|(_, end)| *end <= stored) {
            if let Some((path, _)) = closed.pop_front()
                && let Err(e) = fs::remove_file(&path)
            {
                tracing::warn!(error = %e, path = %path.display(), "could not remove a stored journal segment");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(PathBuf, u64)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Segment {
    fn create(dir: &Path, index: u64, written: u64) -> std::io::Result<Segment> {
        let path = dir.join(format!("{index:012}.jsonl"));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)?;
        Ok(Segment {
            file,
            path,
            index,
            bytes: 0,
            written,
            torn: false,
        })
    }

    /// After a failed write (a full disk writes part of a line, then
    /// fails): cuts the segment back to its last whole line. Shrinking
    /// needs no space; should it fail anyway, the segment is closed.
    fn cut_back(&mut self) {
        if let Err(e) = self.file.set_len(self.bytes) {
            tracing::warn!(error = %e, path = %self.path.display(), "could not cut a failed journal write off; starting a new segment");
            self.torn = true;
        }
    }
}

fn segment_index(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(".jsonl")?.parse().ok()
}

/// The events in a previous run's segments that the store lacks, oldest
/// first. A line that does not parse is a torn final write (dropped); one
/// in the middle of a segment means the journal was damaged, which is an
/// error: the operator must look before the gateway starts.
pub(crate) async fn unstored(store: &Store, paths: &[PathBuf]) -> Result<Vec<AuditEvent>, String> {
    let mut events = Vec::new();
    for path in paths {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        let complete = if text.ends_with('\n') {
            lines.len()
        } else {
            lines.len().saturating_sub(1)
        };
        for (n, line) in lines[..complete].iter().enumerate() {
            let event: AuditEvent = serde_json::from_str(line).map_err(|e| {
                format!(
                    "{} line {}: damaged journal entry ({e}); move the file aside to start",
                    path.display(),
                    n + 1
                )
            })?;
            events.push(event);
        }
    }
    let sessions: HashSet<&str> = events
        .iter()
        .filter_map(|e| e.session_id.as_deref())
        .collect();
    let mut present: HashSet<(String, String, i64)> = HashSet::new();
    for id in sessions {
        for row in store.session_events(id).await.map_err(|e| e.to_string())? {
            if let Some(key) = stored_key(&row.body) {
                present.insert(key);
            }
        }
    }
    Ok(events
        .into_iter()
        .filter(|e| event_key(e).is_none_or(|k| !present.contains(&k)))
        .collect())
}

/// Removes recovered segments once their events are stored.
pub(crate) fn remove(paths: &[PathBuf]) {
    for path in paths {
        if let Err(e) = fs::remove_file(path) {
            tracing::warn!(error = %e, path = %path.display(), "could not remove a recovered journal segment");
        }
    }
}

/// Whether recovery can tell if the store already holds `e`: only such
/// events are journaled.
pub(crate) fn recognisable(e: &AuditEvent) -> bool {
    // Exactly when `event_key` is `Some`, without its copies: this runs for
    // every statement.
    e.session_id.is_some() && e.detail.get("seq").and_then(|s| s.as_i64()).is_some()
}

/// (session, kind, request seq) of an event, which identifies a decision.
fn event_key(e: &AuditEvent) -> Option<(String, String, i64)> {
    Some((
        e.session_id.clone()?,
        e.kind.as_str().to_string(),
        e.detail.get("seq")?.as_i64()?,
    ))
}

fn stored_key(body: &str) -> Option<(String, String, i64)> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    Some((
        v.get("session_id")?.as_str()?.to_string(),
        v.get("kind")?.as_str()?.to_string(),
        v.get("detail")?.get("seq")?.as_i64()?,
    ))
}
