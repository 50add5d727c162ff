//! Statement analysis for Sluice: what a PostgreSQL query string does.
//!
//! [`analyze`] parses with the real PostgreSQL parser (`pg_query`) and walks
//! the whole parse tree of each statement, so that a statement is judged by
//! everything it does, through every wrapper: data-modifying CTEs,
//! `EXPLAIN ANALYZE`, `SELECT … INTO`, `CREATE TABLE AS`, `PREPARE`/`EXECUTE`
//! (with a [`PreparedTracker`]), `COPY … PROGRAM`, `DO`, `CALL`, row locks,
//! side-effecting functions anywhere in an expression, and settings that
//! change identity or turn read-only off. The result is one
//! [`StatementFacts`] per statement, which `sluice_core::guardrail` judges.
//!
//! It fails closed: a string that does not parse, a node type the analysis
//! does not know, a function or operator that is not a known built-in, and an
//! `EXECUTE` of an unknown name all make a statement `unknown`.
//!
//! Cost: one parse, one tree walk, and one fingerprint per statement (the
//! fingerprint re-parses; single-statement strings reuse the whole string's).
//! Results depend only on the text and the [`FunctionPolicy`], so they can be
//! cached by text.
//!
//! Known limits: a view, trigger, rule or default may call side-effecting
//! functions that the statement text does not show (the read-only backend
//! session is the wall behind that); a user-defined overload of a built-in
//! name in a schema on `search_path` may be picked for unusual argument
//! types; casts to user-defined types may run user functions.

pub mod approval;
pub mod cache;
pub mod catalog;
mod functions;
pub mod literals;
pub mod masked;
mod names;
mod prepared;
pub mod record;
mod resolve;
pub mod session;
pub mod shape;
mod statement;
#[rustfmt::skip]
mod visit_gen;
mod walk;

pub use catalog::Catalog;
pub use functions::FunctionPolicy;
pub use masked::{
    MaskViolation, MaskedColumns, OutputBinding, masked_uses, masked_uses_in, masked_uses_with,
};
pub use prepared::PreparedTracker;
pub use sluice_core::guardrail::{StatementClass, StatementFacts};

/// What a query string does, statement by statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// One entry per statement, in order; empty for an empty query.
    pub statements: Vec<StatementFacts>,
    /// The fingerprint (hex) of the whole string; empty if it did not parse.
    pub fingerprint: String,
    /// The parser's message when the string did not parse.
    pub error: Option<String>,
    /// Per statement: what a [`PreparedTracker`] needs.
    pub(crate) details: Vec<Detail>,
    /// Whether this analysis holds for every string of the same
    /// [`shape::shape_key`]: only plain DML (`SELECT`, `INSERT`, `UPDATE`,
    /// `DELETE`, `MERGE`, `VALUES`) whose analysis read no literal's value
    /// ([`literals`]). Utility statements carry options and file names as
    /// literals, so they are never shared.
    pub cacheable: bool,
}

/// Statement and portal names a query string creates or drops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameEffects {
    /// Prepared statements it prepares or deallocates, by name.
    pub statements: Vec<String>,
    /// It drops every prepared statement (`DEALLOCATE ALL`, `DISCARD ALL`).
    pub all_statements: bool,
    /// Portals (cursors) it declares or closes, by name.
    pub portals: Vec<String>,
    /// It closes every portal (`CLOSE ALL`, `DISCARD ALL`).
    pub all_portals: bool,
}

/// Per-statement facts a [`PreparedTracker`] needs beyond [`StatementFacts`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Detail {
    pub effects: walk::SessionEffects,
    pub without_execute: Option<StatementFacts>,
}

impl Analysis {
    /// The most severe class among the statements; `read` for an empty query.
    pub fn class(&self) -> StatementClass {
        self.statements
            .iter()
            .map(|s| s.class)
            .max()
            .unwrap_or(StatementClass::Read)
    }

    /// Whether the string holds more than one statement.
    pub fn is_multi(&self) -> bool {
        self.statements.len() > 1
    }

    /// Whether the string holds no statement at all (only blanks, comments
    /// and semicolons): PostgreSQL answers such a query with
    /// `EmptyQueryResponse`. The proxy then sends the backend an empty
    /// string, not the client's, so that nothing can run if the server's
    /// lexer ever disagreed.
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty() && self.error.is_none()
    }

    /// Whether any statement tries to turn read-only off.
    pub fn disables_read_only(&self) -> bool {
        self.statements.iter().any(|s| s.disables_read_only)
    }

    /// What the string does to the session's statement and portal names
    /// (`PREPARE`, `DEALLOCATE`, `DISCARD ALL`, `DECLARE`, `CLOSE`), for a
    /// proxy that tracks them.
    pub fn name_effects(&self) -> NameEffects {
        let mut out = NameEffects::default();
        for d in &self.details {
            let e = &d.effects;
            out.statements.extend(e.prepares.iter().cloned());
            match &e.deallocates {
                Some(Some(name)) => out.statements.push(name.clone()),
                Some(None) => out.all_statements = true,
                None => {}
            }
            out.all_statements |= e.discards_all;
            out.all_portals |= e.discards_all;
            out.portals.extend(e.declares.iter().cloned());
            match &e.closes {
                Some(Some(name)) => out.portals.push(name.clone()),
                Some(None) => out.all_portals = true,
                None => {}
            }
        }
        out
    }

    /// An analysis that could not be made (no catalog to resolve names
    /// against): one `unknown` statement with the reason.
    pub fn refused(reason: impl Into<String>) -> Self {
        let mut a = Self::failed(String::new());
        a.error = None;
        a.statements[0].reasons = vec![reason.into()];
        a
    }

    fn failed(error: String) -> Self {
        let facts = StatementFacts::unknown("statement", format!("does not parse: {error}"));
        Self {
            statements: vec![facts],
            fingerprint: String::new(),
            error: Some(error),
            details: vec![Detail::default()],
            cacheable: false,
        }
    }
}

/// Analyzes a query string against PostgreSQL 15's built-ins
/// ([`Catalog::bundled`]): for tests and offline use. Never panics; a
/// string that does not parse is one `unknown` statement.
pub fn analyze(sql: &str) -> Analysis {
    analyze_with(sql, &FunctionPolicy::default())
}

/// [`analyze`], with extra functions and procedures declared by
/// configuration.
pub fn analyze_with(sql: &str, policy: &FunctionPolicy) -> Analysis {
    analyze_in(sql, &Catalog::bundled(), policy)
}

/// Analyzes a query string against a backend's catalog, with extra
/// functions and procedures declared by configuration.
///
/// Whether a string is empty (only blanks, comments and semicolons) is the
/// parser's call too: a hand-written scan disagreed with PostgreSQL's lexer
/// (a `--` comment ends at `\r` as well as `\n`), and what it took for a
/// comment ran unchecked.
pub fn analyze_in(sql: &str, catalog: &Catalog, policy: &FunctionPolicy) -> Analysis {
    let parsed = match pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) {
        Ok(parsed) => parsed,
        Err(e) => return Analysis::failed(error_text(e)),
    };
    let stmts = &parsed.protobuf.stmts;
    let dml = stmts.iter().all(|raw| is_dml(raw.stmt.as_deref()));
    let (mut analysis, read_literals) = literals::track(|| walk_all(sql, stmts, policy, catalog));
    analysis.cacheable = dml && !read_literals;
    analysis
}

/// Plain DML at the top of a statement: the statements whose literals are
/// all values (no options, file names or settings spelled as literals).
fn is_dml(stmt: Option<&pg_query::protobuf::Node>) -> bool {
    use pg_query::protobuf::node::Node as N;
    matches!(
        stmt.and_then(|s| s.node.as_ref()),
        Some(
            N::SelectStmt(_)
                | N::InsertStmt(_)
                | N::UpdateStmt(_)
                | N::DeleteStmt(_)
                | N::MergeStmt(_)
        )
    )
}

fn walk_all(
    sql: &str,
    stmts: &[pg_query::protobuf::RawStmt],
    policy: &FunctionPolicy,
    catalog: &Catalog,
) -> Analysis {
    let fingerprint = fingerprint(sql);
    let mut statements = Vec::with_capacity(stmts.len());
    let mut details = Vec::with_capacity(stmts.len());
    for raw in stmts {
        let own_fingerprint = if stmts.len() == 1 {
            fingerprint.clone()
        } else {
            statement_text(sql, raw)
                .map(self::fingerprint)
                .unwrap_or_default()
        };
        let walked = match raw.stmt.as_deref() {
            Some(stmt) => walk::walk_statement(stmt, policy, catalog, own_fingerprint),
            None => walk::Walked {
                facts: StatementFacts::unknown("statement", "empty parse tree"),
                without_execute: None,
                effects: Default::default(),
            },
        };
        statements.push(walked.facts);
        details.push(Detail {
            effects: walked.effects,
            without_execute: walked.without_execute,
        });
    }
    Analysis {
        statements,
        fingerprint,
        error: None,
        details,
        cacheable: false,
    }
}

/// The text of one statement of a multi-statement string.
fn statement_text<'a>(sql: &'a str, raw: &pg_query::protobuf::RawStmt) -> Option<&'a str> {
    let start = usize::try_from(raw.stmt_location).ok()?;
    let end = match usize::try_from(raw.stmt_len).ok()? {
        0 => sql.len(), // 0 means "to the end of the string"
        len => start.checked_add(len)?,
    };
    sql.get(start..end)
}

/// The statement's fingerprint (hex), with relation names in full, schemas
/// significant and aliases ignored. pg_query's default fingerprints a
/// relation by its alias and ignores schemas and digit runs in names, so
/// `SELECT * FROM secrets s` and `SELECT * FROM orders s` would share one, and
/// a rule allowing one would allow the other. Constants are ignored either
/// way: a fingerprint is a statement's shape.
pub(crate) fn fingerprint(sql: &str) -> String {
    use pg_query::FingerprintOptions as F;
    pg_query::fingerprint(
        sql,
        pg_query::ParserOptions::DEFAULT,
        F::RANGEVAR_PG17_COMPAT | F::FULL_RELNAME,
    )
    .map(|f| f.hex)
    .unwrap_or_default()
}

/// The parser's message for the client. The tree decoder stops at a fixed
/// nesting depth (about 45 chained operators) and would otherwise name
/// every level it passed; that case fails closed with a short message.
fn error_text(e: pg_query::Error) -> String {
    match e {
        pg_query::Error::Parse(message) => message,
        pg_query::Error::Decode(_) => "statement nests too deeply to analyze".to_string(),
        pg_query::Error::Conversion(_) => "statement contains a NUL byte".to_string(),
        other => other.to_string(),
    }
}
