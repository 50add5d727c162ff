//! What the last group commits stored, kept in memory for the export
//! runners of the same gateway.
//!
//! A runner that has caught up would otherwise read back from the store the
//! rows the writer has just written: a second SQLite connection re-reading
//! pages the writer changed, for every burst of statements. Instead the
//! writer leaves each committed batch here and a runner takes the rows
//! right after its cursor from memory; when they are not here (another
//! gateway sharing the store appended in between, the runner fell behind
//! further than this keeps, or the gateway just started) it reads the store
//! as before. Rows are here only once their commit succeeded, and a
//! sequence number is unique in the store, so a row taken from memory is
//! the stored row.

use sluice_store::AuditRow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Rows kept: twice what a gateway at 20,000 events a second commits
/// while a runner lingers ([`crate::runner::LINGER`]); a few megabytes.
const KEEP: usize = 4096;

/// The rows of the last commits, in sequence order.
#[derive(Default)]
pub(crate) struct Recent {
    /// Set once a runner reads from here; until then nothing is kept.
    wanted: AtomicBool,
    rows: Mutex<VecDeque<AuditRow>>,
}

impl Recent {
    /// Keeps a committed batch (ascending sequence numbers, each above
    /// everything kept before: the writer's tail only moves forward).
    pub(crate) fn committed(&self, batch: Vec<AuditRow>) {
        if !self.wanted.load(Ordering::Relaxed) {
            return;
        }
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        rows.extend(batch);
        let excess = rows.len().saturating_sub(KEEP);
        rows.drain(..excess);
    }

    /// Up to `limit` rows from `after + 1` on without a gap, or `None` when
    /// row `after + 1` is not kept here.
    pub(crate) fn after(&self, after: i64, limit: usize) -> Option<Vec<AuditRow>> {
        self.wanted.store(true, Ordering::Relaxed);
        let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let start = rows.binary_search_by_key(&(after + 1), |r| r.seq).ok()?;
        let mut next = after + 1;
        let out: Vec<AuditRow> = rows
            .range(start..)
            .take(limit)
            .take_while(|r| {
                let contiguous = r.seq == next;
                next += 1;
                contiguous
            })
            .cloned()
            .collect();
        Some(out)
    }
}

/// What the audit log tells export runners about its commits: a ping after
/// each one, and the rows it stored.
#[derive(Clone)]
pub struct Commits {
    pub(crate) notify: Arc<Notify>,
    pub(crate) recent: Arc<Recent>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64) -> AuditRow {
        AuditRow {
            seq,
            ts: 0,
            kind: "statement.allowed".into(),
            grant_id: None,
            session_id: None,
            body: format!("{{\"seq\":{seq}}}"),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn seqs(rows: Option<Vec<AuditRow>>) -> Option<Vec<i64>> {
        rows.map(|r| r.into_iter().map(|r| r.seq).collect())
    }

    #[test]
    fn gives_only_what_follows_the_cursor_without_a_gap() {
        let recent = Recent::default();
        recent.committed((1..=3).map(row).collect());
        assert_eq!(
            seqs(recent.after(0, 10)),
            None,
            "nothing kept before a reader asked"
        );
        recent.committed((4..=6).map(row).collect());
        // Another gateway appended 7 and 8.
        recent.committed((9..=10).map(row).collect());
        assert_eq!(seqs(recent.after(3, 10)), Some(vec![4, 5, 6]));
        assert_eq!(seqs(recent.after(4, 1)), Some(vec![5]));
        assert_eq!(seqs(recent.after(6, 10)), None, "7 is only in the store");
        assert_eq!(seqs(recent.after(8, 10)), Some(vec![9, 10]));
        assert_eq!(seqs(recent.after(10, 10)), None);
        assert_eq!(
            seqs(recent.after(2, 10)),
            None,
            "3 was committed before anyone read"
        );
    }

    #[test]
    fn keeps_a_bounded_tail() {
        let recent = Recent::default();
        let _ = recent.after(0, 1);
        recent.committed((1..=KEEP as i64 + 100).map(row).collect());
        assert_eq!(seqs(recent.after(99, 1)), None);
        assert_eq!(seqs(recent.after(100, 2)), Some(vec![101, 102]));
        assert_eq!(recent.rows.lock().unwrap().len(), KEEP);
    }
}
