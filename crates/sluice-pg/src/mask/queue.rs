//! Which backend answer belongs to which request, for the result path.
//!
//! The client half notes, in send order, every message whose answer the
//! masking pump must recognise: each Query (with its statements' masking
//! facts), each Describe (the client's, whose RowDescription passes, or
//! Sluice's own portal Describe before a masked Execute, whose answer is
//! swallowed and planned from), each Execute and each Sync. The backend
//! answers in the same order. After an error in the extended protocol the
//! backend skips to Sync, and so does the queue. During COPY FROM STDIN the
//! backend ignores Sync: those are dropped, as in [`crate::outcome`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::StatementMask;

/// A message awaiting its answer.
#[derive(Debug, Clone)]
pub enum Expect {
    /// A simple Query: result sets until ReadyForQuery.
    Query(Arc<StatementMask>),
    /// A Describe: one RowDescription or NoData. `ours` when Sluice sent it.
    Describe {
        ours: bool,
    },
    /// An Execute: one result.
    Execute(Arc<StatementMask>),
    Sync,
}

/// The queue shared by the two halves.
#[derive(Debug, Default)]
pub struct MaskQueue {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: VecDeque<Expect>,
    copy_in: bool,
}

impl MaskQueue {
    pub fn push(&self, e: Expect) {
        let mut q = self.lock();
        if matches!(e, Expect::Sync) && q.copy_in {
            return;
        }
        q.entries.push_back(e);
    }

    /// The client ended its COPY data: Syncs count again.
    pub fn copy_end(&self) {
        self.lock().copy_in = false;
    }

    /// The front entry (cloned: the pump decides, then pops).
    pub fn front(&self) -> Option<Expect> {
        self.lock().entries.front().cloned()
    }

    /// The entry after the front one.
    pub fn second(&self) -> Option<Expect> {
        self.lock().entries.get(1).cloned()
    }

    pub fn pop(&self) {
        self.lock().entries.pop_front();
    }

    /// An extended-protocol error: the backend skips to Sync.
    pub fn skip_to_sync(&self) {
        let mut q = self.lock();
        while matches!(
            q.entries.front(),
            Some(Expect::Describe { .. } | Expect::Execute(_))
        ) {
            q.entries.pop_front();
        }
    }

    /// ReadyForQuery: everything up to and including its Query or Sync.
    pub fn ready(&self) {
        let mut q = self.lock();
        while let Some(e) = q.entries.pop_front() {
            if matches!(e, Expect::Query(_) | Expect::Sync) {
                break;
            }
        }
    }

    /// CopyInResponse: the backend ignores Syncs until the COPY ends.
    pub fn copy_in(&self) {
        let mut q = self.lock();
        q.copy_in = true;
        let mut first = true;
        q.entries.retain(|e| {
            let keep = first || !matches!(e, Expect::Sync);
            first = false;
            keep
        });
    }

    /// A completion or error ends any COPY the backend was in.
    pub fn copy_over(&self) {
        self.lock().copy_in = false;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
