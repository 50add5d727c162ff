//! Prepared statements and portals as the backend knows them.
//!
//! A Bind is judged by the statement it names and an Execute by its
//! portal, so Sluice must know what each name holds *on the backend*. A
//! Parse, Bind or Close the backend refuses (42P05 for a statement name in
//! use, any error that makes it skip to Sync) changes nothing there, so a
//! change Sluice forwards is only *pending* until the backend answers:
//!
//! - ParseComplete, BindComplete and CloseComplete confirm the oldest
//!   pending change of their kind;
//! - an ErrorResponse discards the rest of its batch (the backend skips to
//!   Sync). A discarded Parse or Bind of the unnamed statement or portal
//!   may already have dropped the old one, so that name is forgotten;
//! - ReadyForQuery ends the batch; when no transaction is open any more,
//!   every portal is gone;
//! - a simple Query's SQL-level effects (`PREPARE`, `DEALLOCATE`, `DECLARE`,
//!   `CLOSE`) apply at its ReadyForQuery if it raised no error. If it did,
//!   every name it touched is forgotten, since some of its statements may
//!   have run: an `EXECUTE` or Bind of such a name is then unknown and
//!   refused (fail closed). A Query also drops the unnamed statement and
//!   portal, as PostgreSQL does.
//!
//! A request whose meaning depends on a name with a change still pending
//! waits for the backend's answer ([`Names::settle`]) rather than being
//! judged by a guess.
//!
//! During COPY FROM STDIN the backend ignores Sync, so Syncs queued then
//! get no ReadyForQuery and are dropped (as in [`crate::outcome`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::policy::Checked;

/// What a portal will run, and the parameters bound to it (shown to an
/// approver when its Execute is held).
#[derive(Clone)]
pub struct Portal {
    pub checked: Arc<Checked>,
    pub params: Option<Arc<Vec<Option<String>>>>,
}

/// A change to the names, in the order it was sent.
pub enum Change {
    Parse {
        name: String,
        checked: Arc<Checked>,
    },
    Bind {
        portal: String,
        entry: Portal,
    },
    CloseStatement(String),
    ClosePortal(String),
    /// A Sync: its ReadyForQuery ends a batch.
    Sync,
    /// A simple Query (also a denial sentinel or an emptied query), with
    /// its SQL-level effects on the names.
    Query(Effects),
}

/// What a simple Query does to statement and portal names.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    /// The analysis, for `PREPARE`/`DEALLOCATE` (`None` for a sentinel).
    pub analysis: Option<sluice_sql::Analysis>,
    /// Statement names it prepares or deallocates.
    pub statements: Vec<String>,
    /// Whether it deallocates every statement (`DEALLOCATE ALL`).
    pub all_statements: bool,
    /// Portal (cursor) names it declares or closes.
    pub portals: Vec<String>,
    /// Whether it closes every portal (`CLOSE ALL`).
    pub all_portals: bool,
}

impl Effects {
    /// The effects of an analysed Query string.
    pub fn of(analysis: &sluice_sql::Analysis) -> Self {
        let e = analysis.name_effects();
        Effects {
            analysis: Some(analysis.clone()),
            statements: e.statements,
            all_statements: e.all_statements,
            portals: e.portals,
            all_portals: e.all_portals,
        }
    }
}

/// The backend's statement and portal names as confirmed so far, and the
/// changes in flight. Shared by the two halves of a session.
#[derive(Default)]
pub struct Names {
    inner: Mutex<Inner>,
    settled: Notify,
}

#[derive(Default)]
struct Inner {
    statements: HashMap<String, Arc<Checked>>,
    portals: HashMap<String, Portal>,
    /// Facts by statement name, for SQL-level `EXECUTE` (statements
    /// prepared by `PREPARE` and by the protocol's Parse share one space).
    prepared: sluice_sql::PreparedTracker,
    pending: VecDeque<Change>,
    /// An error came and no Sync yet: the backend skips what follows.
    skipping: bool,
    /// The Query at the front raised an error.
    query_failed: bool,
    /// In COPY FROM STDIN: the backend ignores Sync.
    copy_in: bool,
}

/// The backend answered something that fits no change in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost;

impl Names {
    /// Notes a change as it is forwarded.
    pub fn push(&self, change: Change) {
        let mut inner = self.lock();
        let marker = matches!(change, Change::Sync | Change::Query(_));
        if matches!(change, Change::Sync) && inner.copy_in {
            return;
        }
        if inner.skipping && !marker {
            // The backend will skip it: it never happens.
            inner.discarded(&change);
            return;
        }
        inner.pending.push_back(change);
    }

    /// The client ended its COPY data: Syncs count again.
    pub fn copy_end(&self) {
        self.lock().copy_in = false;
    }

    /// Takes a backend answer: `tag` and, for ReadyForQuery, the
    /// transaction status.
    pub fn reply(&self, tag: u8, status: Option<u8>) -> Result<(), Lost> {
        let mut inner = self.lock();
        let result = match tag {
            b'1' | b'2' | b'3' => inner.confirm(tag),
            b'E' => {
                inner.error();
                Ok(())
            }
            b'Z' => inner.ready(status),
            b'G' => {
                inner.copy_in = true;
                inner.pending.retain(|c| !matches!(c, Change::Sync));
                Ok(())
            }
            _ => return Ok(()),
        };
        drop(inner);
        self.settled.notify_waiters();
        result
    }

    /// The statement a Bind of `name` uses, as confirmed.
    pub fn statement(&self, name: &str) -> Option<Arc<Checked>> {
        self.lock().statements.get(name).cloned()
    }

    /// The facts of a statement prepared with SQL `PREPARE`.
    pub fn sql_prepared(&self, name: &str) -> Option<sluice_core::guardrail::StatementFacts> {
        self.lock().prepared.get(name).cloned()
    }

    pub fn portal(&self, name: &str) -> Option<Portal> {
        self.lock().portals.get(name).cloned()
    }

    /// Resolves the `EXECUTE`s of an analysis against the statements
    /// prepared so far.
    pub fn resolve(&self, analysis: sluice_sql::Analysis) -> sluice_sql::Analysis {
        self.lock().prepared.resolve(analysis)
    }

    /// Whether a change in flight may change statement `name`.
    pub fn statement_pending(&self, name: &str) -> bool {
        self.lock().pending.iter().any(|c| match c {
            Change::Parse { name: n, .. } | Change::CloseStatement(n) => n == name,
            Change::Query(e) => {
                name.is_empty() || e.all_statements || e.statements.iter().any(|s| s == name)
            }
            _ => false,
        })
    }

    /// Whether a change in flight may change any statement (for SQL-level
    /// `EXECUTE`, whose names are resolved together).
    pub fn any_statement_pending(&self) -> bool {
        self.lock().pending.iter().any(|c| match c {
            Change::Parse { .. } | Change::CloseStatement(_) => true,
            Change::Query(e) => e.all_statements || !e.statements.is_empty(),
            _ => false,
        })
    }

    /// Whether a change in flight may change portal `name`.
    pub fn portal_pending(&self, name: &str) -> bool {
        self.lock().pending.iter().any(|c| match c {
            Change::Bind { portal, .. } | Change::ClosePortal(portal) => portal == name,
            // Any batch end may close portals (transaction end).
            Change::Sync => true,
            Change::Query(_) => true,
            _ => false,
        })
    }

    /// Waits until `done` holds, re-checked after each backend answer.
    pub async fn settle(&self, done: impl Fn(&Names) -> bool) {
        loop {
            let notified = self.settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(self) {
                return;
            }
            notified.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Changes are applied whole: a poisoned map is intact.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    /// ParseComplete, BindComplete or CloseComplete: the oldest pending
    /// change of that kind in the current batch took effect.
    fn confirm(&mut self, tag: u8) -> Result<(), Lost> {
        let at = self
            .pending
            .iter()
            .take_while(|c| !matches!(c, Change::Sync | Change::Query(_)))
            .position(|c| {
                matches!(
                    (tag, c),
                    (b'1', Change::Parse { .. })
                        | (b'2', Change::Bind { .. })
                        | (b'3', Change::CloseStatement(_) | Change::ClosePortal(_))
                )
            })
            .ok_or(Lost)?;
        // Changes before it got no answer of their own: none can precede a
        // confirmed one in a batch, so the state is not what we think.
        if at != 0 {
            return Err(Lost);
        }
        let change = self.pending.pop_front().ok_or(Lost)?;
        self.apply(change);
        Ok(())
    }

    fn apply(&mut self, change: Change) {
        match change {
            Change::Parse { name, checked } => {
                match checked.statements.first() {
                    Some(facts) if !name.is_empty() => self.prepared.record(&name, facts.clone()),
                    _ => self.prepared.forget(&name),
                }
                self.statements.insert(name, checked);
            }
            Change::Bind { portal, entry } => {
                self.portals.insert(portal, entry);
            }
            Change::CloseStatement(name) => {
                self.statements.remove(&name);
                self.prepared.forget(&name);
            }
            Change::ClosePortal(name) => {
                self.portals.remove(&name);
            }
            Change::Sync | Change::Query(_) => {}
        }
    }

    /// An ErrorResponse: a failing Query is noted for its ReadyForQuery;
    /// otherwise the rest of the batch is skipped by the backend.
    fn error(&mut self) {
        if let Some(Change::Query(_)) = self.pending.front() {
            self.query_failed = true;
            return;
        }
        while let Some(c) = self.pending.front() {
            if matches!(c, Change::Sync | Change::Query(_)) {
                return;
            }
            let c = self.pending.pop_front().expect("front exists");
            self.discarded(&c);
        }
        // No Sync sent yet: what the client sends until then is skipped.
        self.skipping = true;
    }

    /// A change the backend did not make. A Parse or Bind of the unnamed
    /// statement or portal drops the old one before it can fail, so that
    /// name is forgotten rather than kept.
    fn discarded(&mut self, c: &Change) {
        match c {
            Change::Parse { name, .. } if name.is_empty() => {
                self.statements.remove("");
            }
            Change::Bind { portal, .. } if portal.is_empty() => {
                self.portals.remove("");
            }
            _ => {}
        }
    }

    /// ReadyForQuery: the batch or Query at the front is over.
    fn ready(&mut self, status: Option<u8>) -> Result<(), Lost> {
        self.skipping = false;
        self.copy_in = false;
        let mut lost = false;
        let marker = loop {
            match self.pending.pop_front() {
                Some(c @ (Change::Sync | Change::Query(_))) => break Some(c),
                Some(c) => {
                    // Unanswered changes before the batch's end.
                    self.discarded(&c);
                    lost = true;
                }
                None => break None,
            }
        };
        let ended = marker.is_some();
        if let Some(Change::Query(effects)) = marker {
            let failed = std::mem::take(&mut self.query_failed);
            self.query_done(&effects, failed);
        }
        if status == Some(b'I') {
            // No transaction is open: every portal is gone.
            self.portals.clear();
        }
        match (ended, lost) {
            (true, false) => Ok(()),
            _ => Err(Lost),
        }
    }

    fn query_done(&mut self, e: &Effects, failed: bool) {
        // A Query drops the unnamed statement and portal.
        self.statements.remove("");
        self.portals.remove("");
        if failed {
            // Some of its statements may have run: forget what it touched.
            if e.all_statements {
                self.statements.clear();
                self.prepared = Default::default();
            }
            for name in &e.statements {
                self.statements.remove(name);
                self.prepared.forget(name);
            }
        } else if let Some(analysis) = &e.analysis {
            if e.all_statements {
                self.statements.clear();
            }
            for name in &e.statements {
                self.statements.remove(name);
            }
            self.prepared.observe(analysis);
        }
        if e.all_portals {
            self.portals.clear();
        }
        for name in &e.portals {
            self.portals.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(sql: &str) -> Arc<Checked> {
        Checked::for_test(sql)
    }

    fn parse(names: &Names, name: &str, sql: &str) {
        names.push(Change::Parse {
            name: name.into(),
            checked: checked(sql),
        });
    }

    fn sql_of(names: &Names, name: &str) -> Option<String> {
        names.statement(name).map(|c| c.sql.clone())
    }

    #[test]
    fn a_refused_parse_leaves_the_old_statement() {
        let n = Names::default();
        parse(&n, "s", "UPDATE t SET a = 1");
        n.push(Change::Sync);
        assert!(n.statement_pending("s"));
        n.reply(b'1', None).unwrap();
        n.reply(b'Z', Some(b'I')).unwrap();
        assert!(!n.statement_pending("s"));
        // The second Parse of "s" fails with 42P05.
        parse(&n, "s", "SELECT 1");
        n.push(Change::Sync);
        n.reply(b'E', None).unwrap();
        n.reply(b'Z', Some(b'I')).unwrap();
        assert_eq!(sql_of(&n, "s").as_deref(), Some("UPDATE t SET a = 1"));
    }

    #[test]
    fn an_error_skips_the_rest_of_the_batch_even_past_a_flush() {
        let n = Names::default();
        parse(&n, "a", "SELECT 1");
        parse(&n, "b", "SELECT 2");
        n.reply(b'E', None).unwrap();
        // Sent after the error, before the Sync: skipped too.
        parse(&n, "c", "SELECT 3");
        n.push(Change::Sync);
        n.reply(b'Z', Some(b'I')).unwrap();
        for name in ["a", "b", "c"] {
            assert_eq!(sql_of(&n, name), None, "{name}");
        }
        parse(&n, "d", "SELECT 4");
        n.reply(b'1', None).unwrap();
        assert_eq!(sql_of(&n, "d").as_deref(), Some("SELECT 4"));
    }

    #[test]
    fn a_failed_unnamed_parse_forgets_the_old_unnamed_statement() {
        let n = Names::default();
        parse(&n, "", "SELECT 1");
        n.push(Change::Sync);
        n.reply(b'1', None).unwrap();
        n.reply(b'Z', Some(b'I')).unwrap();
        assert!(sql_of(&n, "").is_some());
        parse(&n, "", "SELECT nonsense(");
        n.push(Change::Sync);
        n.reply(b'E', None).unwrap();
        n.reply(b'Z', Some(b'I')).unwrap();
        assert_eq!(sql_of(&n, ""), None);
    }

    #[test]
    fn portals_end_with_their_transaction() {
        let n = Names::default();
        let entry = Portal {
            checked: checked("SELECT 1"),
            params: None,
        };
        n.push(Change::Bind {
            portal: "p".into(),
            entry: entry.clone(),
        });
        n.push(Change::Sync);
        n.reply(b'2', None).unwrap();
        n.reply(b'Z', Some(b'T')).unwrap();
        assert!(n.portal("p").is_some(), "open transaction keeps it");
        n.push(Change::Sync);
        n.reply(b'Z', Some(b'I')).unwrap();
        assert!(n.portal("p").is_none());
    }

    #[test]
    fn sql_prepare_counts_only_when_its_query_succeeded() {
        let n = Names::default();
        let ok = sluice_sql::analyze("PREPARE s AS SELECT 1");
        n.push(Change::Query(Effects::of(&ok)));
        assert!(n.statement_pending("s") && n.any_statement_pending());
        n.reply(b'Z', Some(b'I')).unwrap();
        assert!(n.sql_prepared("s").is_some());
        // DEALLOCATE then PREPARE in a Query that fails later: forgotten.
        let a = sluice_sql::analyze("DEALLOCATE s; PREPARE s AS DELETE FROM t; SELECT 1/0");
        n.push(Change::Query(Effects::of(&a)));
        n.reply(b'E', None).unwrap();
        n.reply(b'Z', Some(b'I')).unwrap();
        assert!(n.sql_prepared("s").is_none());
        assert!(!n.any_statement_pending());
    }

    #[test]
    fn answers_that_fit_nothing_are_lost_state() {
        let n = Names::default();
        assert_eq!(n.reply(b'1', None), Err(Lost));
        n.push(Change::Bind {
            portal: "".into(),
            entry: Portal {
                checked: checked("SELECT 1"),
                params: None,
            },
        });
        assert_eq!(n.reply(b'1', None), Err(Lost), "a ParseComplete for a Bind");
    }

    #[tokio::test]
    async fn settle_waits_for_the_answer() {
        let n = Arc::new(Names::default());
        parse(&n, "s", "SELECT 1");
        let waiter = {
            let n = n.clone();
            tokio::spawn(async move { n.settle(|n| !n.statement_pending("s")).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        n.reply(b'1', None).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
