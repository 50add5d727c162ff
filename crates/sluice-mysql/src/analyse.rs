//! What a MySQL statement does, from `sqlparser`'s MySQL dialect: the same
//! protocol-neutral facts the gate judges for every protocol (class,
//! command, tables read and written, functions called, reasons).
//!
//! The analysis fails closed. Text the parser cannot parse, several
//! statements in one query, statement kinds not listed here and functions
//! not known to be built-in and harmless are `unknown` (denied unless a
//! rule allows them by name). Text that would make the server read the
//! statement differently from this analysis is refused whatever the rules
//! say ([`StatementFacts::refused`]):
//!
//! - executable comments (`/*! … */`, `/*!50000 … */`, MariaDB's
//!   `/*M! … */`), which the server runs as code depending on its version;
//! - settings that change how later text is lexed or parsed (`sql_mode`,
//!   which holds `ANSI_QUOTES`, `NO_BACKSLASH_ESCAPES`, `IGNORE_SPACE` and
//!   MariaDB's `ORACLE`; `SET NAMES`, `character_set_*`, `collation_*`),
//!   and `SET STATEMENT … FOR`;
//! - changes to what identifies the session or its database (`USE` of
//!   another database, `SET ROLE`, `SET PASSWORD`).
//!
//! MySQL's own dangers are named in the reasons: `INTO OUTFILE/DUMPFILE`,
//! `LOAD_FILE()`, `LOAD DATA`, `SET GLOBAL`, `sql_log_bin`, `HANDLER`,
//! `DO`, `SLEEP()`/`BENCHMARK()`, `CALL`, turning a read-only session
//! read-write.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sha2::{Digest, Sha256};
use sluice_core::guardrail::{StatementClass as C, StatementFacts};
use sqlparser::ast::{
    self, Expr, FunctionArguments, ObjectName, Query, SetExpr, Statement, TableFactor,
    TransactionAccessMode, TransactionMode, Visit, Visitor,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

/// Analyses one query text for a session on database `db`.
pub fn analyse(sql: &str, db: &str) -> StatementFacts {
    if let Some(why) = executable_comment(sql).or_else(|| lexer_hazard(sql)) {
        let mut f = StatementFacts::unknown(command_word(sql), why);
        f.refused = Some(why.to_string());
        return f;
    }
    let statements = match Parser::parse_sql(&MySqlDialect {}, sql) {
        Ok(s) => s,
        Err(e) => return unparsed(sql, &e.to_string()),
    };
    let mut facts = match statements.as_slice() {
        [] => StatementFacts::unknown("", "an empty query"),
        [one] => statement(one, db),
        _ => {
            let mut f = StatementFacts::unknown(
                command_word(sql),
                "several statements in one query (send them one at a time)",
            );
            f.refused = Some("several statements in one query".into());
            f
        }
    };
    facts.fingerprint = fingerprint(sql);
    dedup(&mut facts.tables_read);
    dedup(&mut facts.tables_written);
    dedup(&mut facts.functions);
    facts
}

/// Text the parser could not read: unknown, with MySQL's own dangers
/// named where the first word shows them.
fn unparsed(sql: &str, error: &str) -> StatementFacts {
    let word = command_word(sql);
    let named = match word.as_str() {
        "HANDLER" => Some("HANDLER reads and walks tables outside SQL"),
        "DO" => Some("DO evaluates expressions for their side effects"),
        "LOAD" => Some("LOAD DATA/LOAD XML reads a file into a table"),
        "SHUTDOWN" | "RESTART" => Some("stops the server"),
        "BINLOG" | "PURGE" | "CHANGE" | "START" | "STOP" | "RESET" => {
            Some("acts on the server or its replication")
        }
        _ => None,
    };
    let mut f = StatementFacts::unknown(&word, format!("could not be parsed as MySQL: {error}"));
    if let Some(why) = named {
        f.reasons.push(why.to_string());
    }
    match word.as_str() {
        // It may change how the server reads what follows (`SET
        // CHARACTER SET`, `SET STATEMENT … FOR`): refused outright.
        "SET" => {
            f.refused =
                Some("a SET Sluice cannot parse may change how the server reads statements".into())
        }
        "PREPARE" | "EXECUTE" | "DEALLOCATE" => {
            f.refused = Some(
                "SQL-level PREPARE/EXECUTE hides the text that runs; use the driver's prepared statements, which Sluice judges".into(),
            )
        }
        "USE" => f.refused = Some("USE of a database Sluice cannot read".into()),
        _ => {}
    }
    f
}

/// `/*!`, `/*M!` anywhere: the server may run what follows as code. A
/// string holding those characters is refused too (rare, and safe).
fn executable_comment(sql: &str) -> Option<&'static str> {
    let b = sql.as_bytes();
    let found = b.windows(3).enumerate().any(|(i, w)| {
        w == b"/*!" || (w[..2] == *b"/*" && (w[2] | 0x20) == b'm' && b.get(i + 3) == Some(&b'!'))
    });
    found.then_some(
        "an executable comment (/*! ... */): the server runs it as code, depending on its version",
    )
}

/// Characters on which the server's lexer and the parser's may disagree
/// about where a comment starts or ends, anywhere in the text (a string
/// holding them is refused too: rare, and safe):
///
/// - a NUL byte (the server may end a comment, or the text, there);
/// - `--` followed by a control character other than tab, newline,
///   vertical tab, form feed or carriage return (the server starts a
///   comment, the parser does not), or by non-ASCII whitespace such as a
///   no-break space (the parser starts a comment, the server reads code).
fn lexer_hazard(sql: &str) -> Option<&'static str> {
    if sql.contains('\0') {
        return Some("a NUL byte in the statement text");
    }
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '-' || chars.peek() != Some(&'-') {
            continue;
        }
        chars.next();
        let Some(&next) = chars.peek() else { break };
        let agreed = matches!(next, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ');
        let control = next.is_control() && next.is_ascii();
        let wide_space = next.is_whitespace() && !next.is_ascii();
        if !agreed && (control || wide_space) {
            return Some(
                "`--` followed by a character the server and Sluice's parser read differently",
            );
        }
    }
    None
}

/// The first word, upper-cased, for the record of text that did not parse.
fn command_word(sql: &str) -> String {
    sql.split_whitespace()
        .next()
        .unwrap_or("")
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase()
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
}

/// Equal for statements of the same shape, whatever their constants: the
/// tokens with every literal replaced, hashed.
pub fn fingerprint(sql: &str) -> String {
    let mut h = Sha256::new();
    if let Ok(tokens) = Tokenizer::new(&MySqlDialect {}, sql).tokenize() {
        for t in tokens {
            match t {
                Token::Whitespace(_) => continue,
                Token::Number(..)
                | Token::SingleQuotedString(_)
                | Token::DoubleQuotedString(_)
                | Token::HexStringLiteral(_)
                | Token::NationalStringLiteral(_)
                | Token::SingleQuotedByteStringLiteral(_) => h.update(b"?"),
                other => h.update(other.to_string().to_ascii_lowercase().as_bytes()),
            }
            h.update(b" ");
        }
    } else {
        h.update(sql.as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

/// The facts of one parsed statement.
fn statement(s: &Statement, db: &str) -> StatementFacts {
    let mut f = match s {
        Statement::Query(q) => query(q),
        Statement::Insert(i) => {
            let mut f =
                StatementFacts::new(C::Write, if i.replace_into { "REPLACE" } else { "INSERT" });
            if let ast::TableObject::TableName(name) = &i.table {
                f.tables_written.push(table_name(name));
            } else {
                f.class = C::Unknown;
                f.reasons.push("inserts into a table function".into());
            }
            f
        }
        Statement::Update(_) => StatementFacts::new(C::Write, "UPDATE"),
        Statement::Delete(_) => StatementFacts::new(C::Write, "DELETE"),
        Statement::CreateTable(t) => {
            let mut f = StatementFacts::new(C::Ddl, "CREATE TABLE");
            f.tables_written.push(table_name(&t.name));
            f
        }
        Statement::CreateView(v) => {
            let mut f = StatementFacts::new(C::Ddl, "CREATE VIEW");
            f.tables_written.push(table_name(&v.name));
            f
        }
        Statement::CreateIndex(i) => {
            let mut f = StatementFacts::new(C::Ddl, "CREATE INDEX");
            f.tables_written.push(table_name(&i.table_name));
            f
        }
        Statement::AlterTable(a) => {
            let mut f = StatementFacts::new(C::Ddl, "ALTER TABLE");
            f.tables_written.push(table_name(&a.name));
            f
        }
        Statement::Drop {
            object_type, names, ..
        } => {
            let mut f = StatementFacts::new(C::Ddl, format!("DROP {object_type}"));
            if matches!(object_type, ast::ObjectType::Table | ast::ObjectType::View) {
                f.tables_written.extend(names.iter().map(table_name));
            }
            f
        }
        Statement::Truncate(t) => {
            let mut f = StatementFacts::new(C::Ddl, "TRUNCATE");
            f.tables_written
                .extend(t.table_names.iter().map(|n| table_name(&n.name)));
            f
        }
        Statement::RenameTable(r) => {
            let mut f = StatementFacts::new(C::Ddl, "RENAME TABLE");
            for t in r {
                f.tables_written.push(table_name(&t.old_name));
                f.tables_written.push(table_name(&t.new_name));
            }
            f
        }
        Statement::Grant(_) | Statement::Revoke(_) => StatementFacts::new(C::Dcl, "GRANT"),
        Statement::CreateUser(_) | Statement::AlterUser(_) | Statement::CreateRole(_) => {
            StatementFacts::new(C::Dcl, "CREATE USER")
        }
        Statement::StartTransaction { modes, .. } => {
            let mut f = StatementFacts::new(C::Tcl, "START TRANSACTION");
            read_write(&mut f, modes, "START TRANSACTION READ WRITE");
            f
        }
        Statement::Commit { .. } => StatementFacts::new(C::Tcl, "COMMIT"),
        Statement::Rollback { .. } => StatementFacts::new(C::Tcl, "ROLLBACK"),
        Statement::Savepoint { .. } => StatementFacts::new(C::Tcl, "SAVEPOINT"),
        Statement::ReleaseSavepoint { .. } => StatementFacts::new(C::Tcl, "RELEASE SAVEPOINT"),
        Statement::Set(set) => self::set(set),
        Statement::Use(u) => use_db(u, db),
        Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowCreate { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowCollation { .. }
        | Statement::ShowCharset(_)
        | Statement::ShowFunctions { .. }
        | Statement::ShowViews { .. } => StatementFacts::new(C::Read, "SHOW"),
        Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowStatus { .. } => StatementFacts::new(C::Session, "SHOW"),
        Statement::ShowProcessList { .. } => admin("SHOW PROCESSLIST", "lists other sessions"),
        Statement::ExplainTable { table_name, .. } => {
            let mut f = StatementFacts::new(C::Read, "DESCRIBE");
            f.tables_read.push(table_name_of(table_name));
            f
        }
        Statement::Explain {
            statement: inner,
            analyze,
            ..
        } => {
            let mut inner = self::statement(inner, db);
            if !*analyze && inner.class != C::Unknown {
                // EXPLAIN shows a plan and runs nothing; ANALYZE runs it.
                inner.base_class = None;
                inner.disables_read_only = false;
                inner.class = C::Read;
            }
            inner.command = format!("EXPLAIN {}", inner.command);
            inner
        }
        Statement::LockTables { .. } => StatementFacts::new(C::Write, "LOCK TABLES"),
        Statement::UnlockTables => StatementFacts::new(C::Tcl, "UNLOCK TABLES"),
        Statement::Call(func) => {
            let mut f = admin("CALL", "calls a stored procedure (its body is not judged)");
            f.functions.push(table_name(&func.name));
            f
        }
        Statement::LoadData { .. } => admin("LOAD DATA", "LOAD DATA reads a file into a table"),
        Statement::Kill { .. } => admin("KILL", "ends a connection or query"),
        Statement::Flush { .. } => admin("FLUSH", "acts on the server"),
        Statement::OptimizeTable { .. } => admin("OPTIMIZE TABLE", "acts on the server"),
        Statement::Analyze(_) => admin("ANALYZE TABLE", "acts on the server"),
        Statement::Install { .. } => admin("INSTALL", "installs a server plugin"),
        Statement::Prepare { .. } | Statement::Execute { .. } | Statement::Deallocate { .. } => {
            let mut f = StatementFacts::unknown(
                "PREPARE",
                "SQL-level PREPARE/EXECUTE hides the text that runs; use the driver's prepared statements, which Sluice judges",
            );
            f.refused = Some("SQL-level PREPARE/EXECUTE".into());
            f
        }
        Statement::CreateFunction(_) | Statement::CreateProcedure { .. } => {
            StatementFacts::new(C::Ddl, "CREATE ROUTINE")
        }
        Statement::CreateTrigger(_) | Statement::DropTrigger(_) => {
            StatementFacts::new(C::Ddl, "CREATE TRIGGER")
        }
        Statement::CreateDatabase { .. } | Statement::CreateSchema { .. } => {
            admin("CREATE DATABASE", "makes another database")
        }
        other => {
            let text = other.to_string();
            StatementFacts::unknown(
                command_word(&text),
                "a statement kind Sluice does not analyse for MySQL",
            )
        }
    };
    everything_inside(s, db, &mut f);
    f
}

/// Facts of a statement Sluice names as acting on the server.
fn admin(command: &str, why: &str) -> StatementFacts {
    let mut f = StatementFacts::new(C::Admin, command);
    f.reasons.push(why.to_string());
    f
}

/// `START TRANSACTION READ WRITE`, `SET TRANSACTION READ WRITE`: turns a
/// read-only session's transactions read-write.
fn read_write(f: &mut StatementFacts, modes: &[TransactionMode], what: &str) {
    if modes.contains(&TransactionMode::AccessMode(
        TransactionAccessMode::ReadWrite,
    )) {
        f.disables_read_only = true;
        f.base_class = Some(f.class);
        f.class = C::Admin;
        f.reasons.push(format!("{what} turns read-only off"));
    }
}

/// A query's own facts: a read, unless it locks rows or writes a file or
/// variables.
fn query(q: &Query) -> StatementFacts {
    let mut f = StatementFacts::new(C::Read, "SELECT");
    if !q.locks.is_empty() {
        f.class = C::Write;
        f.reasons.push("locks rows (FOR UPDATE / FOR SHARE)".into());
    }
    if let SetExpr::Select(s) = q.body.as_ref()
        && let Some(into) = &s.into
    {
        f.class = C::Admin;
        f.reasons.push(format!("{into} writes outside the result"));
    }
    f
}

/// What `SET` changes: refused when it changes how the server reads later
/// text or who the session is; admin for server-wide settings.
fn set(set: &ast::Set) -> StatementFacts {
    use ast::Set as S;
    let mut f = StatementFacts::new(C::Session, "SET");
    let mut names: Vec<(Option<ast::ContextModifier>, String)> = Vec::new();
    match set {
        S::SingleAssignment {
            scope, variable, ..
        } => names.push((*scope, variable.to_string())),
        S::ParenthesizedAssignments { variables, .. } => {
            names.extend(variables.iter().map(|v| (None, v.to_string())))
        }
        S::MultipleAssignments { assignments } => {
            names.extend(assignments.iter().map(|a| (a.scope, a.name.to_string())))
        }
        S::SetTransaction { modes, session, .. } => {
            let _ = session;
            f.command = "SET TRANSACTION".into();
            read_write(&mut f, modes, "SET TRANSACTION READ WRITE");
            return f;
        }
        S::SetNames { .. } | S::SetNamesDefault {} => {
            return refused_setting("SET NAMES", "the character set the server lexes text in");
        }
        S::SetRole { .. } | S::SetSessionAuthorization(_) => {
            return refused_setting("SET ROLE", "who the session is");
        }
        S::SetTimeZone { .. } => return f,
        _ => {
            return StatementFacts::unknown("SET", "a SET form Sluice does not analyse");
        }
    }
    for (scope, name) in names {
        let (global, var) = variable(scope, &name);
        f.settings.push((var.clone(), None));
        if let Some(what) = lexing_setting(&var) {
            return refused_setting(&format!("SET {var}"), what);
        }
        if global {
            f.class = C::Admin;
            f.reasons
                .push(format!("SET GLOBAL {var} changes the server"));
        } else if var == "sql_log_bin" {
            f.class = C::Admin;
            f.reasons
                .push("SET sql_log_bin hides changes from replication and the binary log".into());
        } else if matches!(
            var.as_str(),
            "transaction_read_only" | "tx_read_only" | "read_only"
        ) {
            f.disables_read_only = true;
            f.base_class = Some(f.class);
            f.class = C::Admin;
            f.reasons.push(format!("SET {var} may turn read-only off"));
        } else if matches!(var.as_str(), "max_statement_time" | "max_execution_time") {
            f.class = C::Admin;
            f.reasons.push(format!(
                "SET {var} changes the statement time limit Sluice sets"
            ));
        } else if matches!(
            var.as_str(),
            "pseudo_thread_id"
                | "pseudo_slave_mode"
                | "gtid_next"
                | "gtid_seq_no"
                | "insert_id"
                | "timestamp"
                | "server_id"
                | "skip_replication"
                | "sql_safe_updates"
        ) {
            f.class = f.class.max(C::Admin);
            f.reasons.push(format!(
                "SET {var} changes how the server records the session"
            ));
        }
    }
    f
}

fn refused_setting(command: &str, what: &str) -> StatementFacts {
    let why = format!(
        "{command} changes {what}, which Sluice pins so that it reads statements as the server does"
    );
    let mut f = StatementFacts::unknown(command, why.clone());
    f.refused = Some(why);
    f
}

/// The variable `SET` names, lower-cased without `@@` and scope, and
/// whether it is server-wide. `@name` (a user variable) stays as written.
fn variable(scope: Option<ast::ContextModifier>, name: &str) -> (bool, String) {
    let mut n = name.to_ascii_lowercase();
    if n.starts_with('@') && !n.starts_with("@@") {
        return (false, n);
    }
    n = n.trim_start_matches("@@").to_string();
    let mut global = scope == Some(ast::ContextModifier::Global);
    for (prefix, g) in [("global.", true), ("session.", false), ("local.", false)] {
        if let Some(rest) = n.strip_prefix(prefix) {
            global |= g;
            n = rest.to_string();
        }
    }
    (global, n.trim_matches('`').to_string())
}

/// Settings that change how the server lexes or parses later text.
fn lexing_setting(var: &str) -> Option<&'static str> {
    match var {
        // `sql_mode` is not here: drivers set it (Connector/J adds
        // STRICT_TRANS_TABLES), so the session lets it run and checks the
        // server's resulting mode at once (see `Session::query`).
        "names" | "character set" | "charset" => Some("the character set"),
        v if v.starts_with("character_set_") || v.starts_with("collation_") => {
            Some("the character set the server lexes text in")
        }
        "old_mode" | "sql_quote_show_create" => Some("how the server reads or shows text"),
        _ => None,
    }
}

/// `USE db`: only the grant's own database.
fn use_db(u: &ast::Use, db: &str) -> StatementFacts {
    let name = match u {
        ast::Use::Object(n) | ast::Use::Database(n) | ast::Use::Schema(n) => unquote(n),
        _ => String::new(),
    };
    if name == db {
        return StatementFacts::new(C::Session, "USE");
    }
    let why = format!("the grant is for database {db:?}; USE {name:?} would leave it");
    let mut f = StatementFacts::unknown("USE", why.clone());
    f.refused = Some(why);
    f
}

/// Tables, functions and dangers anywhere in the statement (subqueries,
/// expressions, CTEs), added to `f`.
fn everything_inside(s: &Statement, db: &str, f: &mut StatementFacts) {
    let mut v = Inside::default();
    let _ = s.visit(&mut v);
    let written: Vec<String> = f.tables_written.clone();
    let mut skipped_write = written.clone();
    for t in v.relations {
        if v.ctes.contains(&t) {
            continue;
        }
        // A target is visited as a relation too: count it once as written.
        if let Some(i) = skipped_write.iter().position(|w| *w == t) {
            skipped_write.remove(i);
            continue;
        }
        f.tables_read.push(t);
    }
    for t in f.tables_read.clone().iter().chain(&written) {
        other_database(t, db, f);
    }
    for name in v.functions {
        function(&name, f);
    }
    for why in v.dangers {
        f.class = f.class.max(C::Admin);
        f.reasons.push(why);
    }
}

/// A table of another database: the grant is for one.
fn other_database(table: &str, db: &str, f: &mut StatementFacts) {
    let Some((schema, _)) = table.split_once('.') else {
        return;
    };
    if schema == db {
        return;
    }
    let name = table.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match schema.to_ascii_lowercase().as_str() {
        "information_schema" if name == "processlist" => {
            f.class = f.class.max(C::Admin);
            f.reasons
                .push("reads information_schema.PROCESSLIST (other sessions)".into());
        }
        // Drivers and tools read the catalog.
        "information_schema" => {}
        "mysql" | "performance_schema" | "sys" => {
            f.class = f.class.max(C::Admin);
            f.reasons.push(format!(
                "reads {schema}, the server's own tables (users, other sessions)"
            ));
        }
        _ => {
            let why = format!("the grant is for database {db:?}; {table} is in another");
            f.class = C::Unknown;
            f.refused = Some(why.clone());
            f.reasons.push(why);
        }
    }
}

/// Judges one called function by name.
fn function(name: &str, f: &mut StatementFacts) {
    let lower = name.to_ascii_lowercase();
    f.functions.push(lower.clone());
    if let Some((class, why)) = crate::functions::named_danger(&lower) {
        f.class = f.class.max(class);
        f.reasons.push(format!("calls {lower}: {why}"));
    } else if !crate::functions::is_builtin(&lower) {
        f.class = C::Unknown;
        f.reasons.push(format!(
            "calls {lower}, not a known built-in function (a stored function may write)"
        ));
    }
}

/// A name as MySQL compares it: each part without its quotes, joined.
pub fn table_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|p| match p.as_ident() {
            Some(i) => i.value.clone(),
            None => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn table_name_of(name: &ObjectName) -> String {
    table_name(name)
}

fn unquote(name: &ObjectName) -> String {
    table_name(name)
}

/// Tables read by `TABLE t` (MySQL 8), which names its table as words
/// rather than a relation the visitor reports.
pub fn table_commands(body: &SetExpr) -> Vec<String> {
    match body {
        SetExpr::Table(t) => {
            let name = t
                .table_name
                .as_ref()
                .map(|n| n.value.clone())
                .unwrap_or_default();
            vec![match &t.schema_name {
                Some(s) => format!("{}.{name}", s.value),
                None => name,
            }]
        }
        SetExpr::SetOperation { left, right, .. } => {
            let mut v = table_commands(left);
            v.extend(table_commands(right));
            v
        }
        _ => Vec::new(),
    }
}

/// What the visitor collects from the whole statement.
#[derive(Default)]
struct Inside {
    relations: Vec<String>,
    ctes: HashSet<String>,
    functions: Vec<String>,
    dangers: Vec<String>,
}

impl Visitor for Inside {
    type Break = ();

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        self.relations.push(table_name(relation));
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.clone());
            }
        }
        self.relations.extend(table_commands(&q.body));
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
        match t {
            TableFactor::Table {
                args: Some(_),
                name,
                ..
            } => {
                self.functions.push(table_name(name));
            }
            TableFactor::Function { name, .. } => self.functions.push(table_name(name)),
            TableFactor::TableFunction { .. } => self.dangers.push("reads a table function".into()),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if let Expr::Function(func) = e {
            self.functions.push(table_name(&func.name));
            if let FunctionArguments::Subquery(_) = &func.args {
                // A subquery as the argument is visited as a query.
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<()> {
        if let Statement::Query(q) = s
            && let SetExpr::Select(sel) = q.body.as_ref()
            && sel.into.is_some()
        {
            self.dangers.push("SELECT ... INTO".into());
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests;
