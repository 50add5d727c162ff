//! Bypass analysis for masked columns: result masking only hides what a
//! statement *returns*, so a masked column may appear in a statement only
//! as a plain output column, which the proxy then masks in the result.
//!
//! Anywhere else it would leak or act as an oracle, and the statement is
//! refused with a [`MaskViolation`] naming the column and the place:
//! inside a function call, cast, operator or other expression
//! (`encode(card_number::bytea, 'hex')`, `substr(ssn, 1, 3)`, `ssn || ''`);
//! in `WHERE`, `JOIN`, `GROUP BY`, `HAVING`, `ORDER BY` (by name, alias or
//! position), `DISTINCT ON`, window definitions, `LIMIT`; in subqueries,
//! CTEs and set operations (`UNION` compares values); in statements that
//! copy data elsewhere (`CREATE TABLE AS`, `SELECT INTO`, `INSERT … SELECT`,
//! `UPDATE … SET x = ssn`, `CREATE VIEW`, `COPY (query)`, `MERGE`); through a
//! whole-row reference (`SELECT c FROM customers c`, `row_to_json(c)`); and
//! a masked table through binary COPY or COPY to a file or program.
//!
//! Plain outputs become [`OutputBinding`]s: which output carries which
//! masked column, so the proxy can mask it even under an alias
//! (`SELECT ssn AS x`). `SELECT *`, `t.*`, `TABLE t`, `RETURNING *` and
//! `COPY t TO STDOUT` over a table with any masked column are bindings too
//! (`column: None`): without the catalog the analysis cannot expand them,
//! and the proxy masks those columns by their source in the row description.
//!
//! Names resolve like PostgreSQL's, without the catalog, failing closed: a
//! qualified name by its FROM item (alias, table, or join alias); an
//! unqualified column as masked if any visible table may have a masked
//! column of that name; an unqualified table name as any schema; a
//! name matching a FROM item of a masked table and no masked column as a
//! whole-row reference. References to CTEs and subqueries are not tables.
//! Known limits: writes can still act as oracles through constraint errors
//! (a unique index on a masked column); views and functions are opaque
//! (mask their output columns by rule).

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;
use sluice_core::config::{ColumnPattern, MaskingConfig};

use crate::statement;
use crate::visit_gen::{self as v, Visit};

/// The masked columns of a connection, as patterns (`schema.table.column`
/// globs, see [`ColumnPattern`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaskedColumns {
    patterns: Vec<ColumnPattern>,
}

impl MaskedColumns {
    /// From patterns; a binding's `pattern` is an index into this list.
    pub fn new(patterns: Vec<ColumnPattern>) -> Self {
        Self { patterns }
    }

    /// From a masking section's column rules, in order (so `pattern`
    /// indexes `config.columns`).
    pub fn from_config(config: &MaskingConfig) -> Result<Self, String> {
        config.column_patterns().map(Self::new)
    }

    /// Whether no column is masked (then nothing needs checking).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns, in order.
    pub fn patterns(&self) -> &[ColumnPattern] {
        &self.patterns
    }

    fn column(&self, schema: Option<&str>, table: &str, column: &str) -> Option<usize> {
        self.patterns
            .iter()
            .position(|p| p.matches_partial(schema, table, Some(column)))
    }

    fn table(&self, schema: Option<&str>, table: &str) -> Option<usize> {
        self.patterns
            .iter()
            .position(|p| p.matches_partial(schema, table, None))
    }
}

/// An output column that carries a masked column in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputBinding {
    /// Which statement of the query string (0-based).
    pub statement: usize,
    /// The output column's position, when known: `None` after a `*` (whose
    /// width needs the catalog) and for a `*` itself.
    pub position: Option<usize>,
    /// The output column's name (its alias, or the column's name); `*` for a star.
    pub name: String,
    /// The schema, when the statement named it.
    pub schema: Option<String>,
    /// The table, as the statement named it.
    pub table: String,
    /// The masked column; `None` for a `*` over a table with masked columns.
    pub column: Option<String>,
    /// Index of the first matching pattern in [`MaskedColumns`].
    pub pattern: usize,
}

/// A masked column used where masking cannot protect it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskViolation {
    /// The column (`public.customers.ssn`, or `customers.*` for a whole row).
    pub column: String,
    /// Where it was used: `WHERE`, `function substr`, `CREATE TABLE AS`, …
    pub context: String,
}

impl MaskViolation {
    /// The client message (sent with SQLSTATE `42501`).
    pub fn message(&self) -> String {
        format!(
            "sluice: column {} is masked and cannot be used in {}",
            self.column, self.context
        )
    }
}

impl std::fmt::Display for MaskViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for MaskViolation {}

/// Checks a query string; `Ok` with the bindings of plain masked outputs,
/// or the first violation. A string that does not parse is refused (fails
/// closed; PostgreSQL would reject most such strings anyway).
pub fn masked_uses(sql: &str, masked: &MaskedColumns) -> Result<Vec<OutputBinding>, MaskViolation> {
    if masked.is_empty() {
        return Ok(Vec::new());
    }
    match pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) {
        Ok(parsed) => masked_uses_in(&parsed.protobuf, masked),
        Err(_) => Err(MaskViolation {
            column: "(unknown)".into(),
            context: "a statement Sluice cannot analyze".into(),
        }),
    }
}

/// As [`masked_uses`], over an already parsed tree.
pub fn masked_uses_in(
    tree: &pb::ParseResult,
    masked: &MaskedColumns,
) -> Result<Vec<OutputBinding>, MaskViolation> {
    let mut c = Checker::new(masked);
    for (i, raw) in tree.stmts.iter().enumerate() {
        c.statement = i;
        if let Some(stmt) = raw.stmt.as_deref() {
            c.top_statement(stmt);
        }
        if let Some(v) = c.violation.take() {
            return Err(v);
        }
    }
    Ok(c.bindings)
}

/// What a FROM item is, for name resolution.
#[derive(Debug, Clone)]
enum Source {
    /// A table (or view), schema as written.
    Table {
        schema: Option<String>,
        name: String,
    },
    /// A join with an alias: its columns are its members'.
    Join(Vec<FromItem>),
    /// A subquery, function, CTE or `VALUES`: checked where it is defined.
    Other,
}

#[derive(Debug, Clone)]
struct FromItem {
    /// The name the statement refers to it by (alias or table name).
    refname: String,
    source: Source,
}

impl FromItem {
    /// The tables whose columns this item exposes.
    fn tables(&self) -> Vec<(Option<&str>, &str)> {
        match &self.source {
            Source::Table { schema, name } => vec![(schema.as_deref(), name.as_str())],
            Source::Join(items) => items.iter().flat_map(FromItem::tables).collect(),
            Source::Other => Vec::new(),
        }
    }
}

/// What a column reference resolved to.
enum Resolved {
    /// A masked column: its display name, table and pattern.
    Column(Hit),
    /// A whole-row reference or `*` over tables with masked columns.
    Rows(Vec<Hit>),
    /// Nothing masked.
    Clear,
}

#[derive(Debug, Clone)]
struct Hit {
    display: String,
    schema: Option<String>,
    table: String,
    column: Option<String>,
    pattern: usize,
}

/// One output of a result target list, for `ORDER BY 1` / alias checks.
#[derive(Debug, Clone, Default)]
struct Output {
    alias: Option<String>,
    /// The masked column it carries in clear, if any.
    carries: Option<String>,
}

/// How a SELECT's target list is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Targets {
    /// The statement's result: plain masked columns become bindings.
    Output,
    /// Anywhere else: every masked use is a violation.
    Nested,
    /// `EXISTS (…)`: the targets are never evaluated into a value.
    Ignored,
}

struct Checker<'m> {
    masked: &'m MaskedColumns,
    /// FROM scopes, innermost last (outer ones for correlated subqueries).
    scopes: Vec<Vec<FromItem>>,
    /// CTE names in scope: an unqualified reference to one is not a table.
    ctes: Vec<String>,
    /// Where the walk is, for messages; `None` only at plain output.
    ctx: Option<String>,
    violation: Option<MaskViolation>,
    statement: usize,
    bindings: Vec<OutputBinding>,
}

impl<'m> Checker<'m> {
    fn new(masked: &'m MaskedColumns) -> Self {
        Self {
            masked,
            scopes: Vec::new(),
            ctes: Vec::new(),
            ctx: None,
            violation: None,
            statement: 0,
            bindings: Vec::new(),
        }
    }

    fn violate(&mut self, column: &str, context: Option<&str>) {
        if self.violation.is_none() {
            let context = context
                .or(self.ctx.as_deref())
                .unwrap_or("an expression")
                .to_string();
            self.violation = Some(MaskViolation {
                column: column.to_string(),
                context,
            });
        }
    }

    /// Runs `f` in context `label` unless an outer context already names
    /// the place (the outermost one is the most useful in a message).
    fn within(&mut self, label: impl Into<String>, f: impl FnOnce(&mut Self)) {
        if self.ctx.is_some() {
            return f(self);
        }
        self.ctx = Some(label.into());
        f(self);
        self.ctx = None;
    }

    /// Runs `f` in context `label`, replacing any outer one.
    fn within_exactly(&mut self, label: impl Into<String>, f: impl FnOnce(&mut Self)) {
        let saved = self.ctx.replace(label.into());
        f(self);
        self.ctx = saved;
    }

    // --- statements

    fn top_statement(&mut self, node: &pb::Node) {
        let Some(inner) = &node.node else { return };
        match inner {
            N::SelectStmt(s) => self.select(s, Targets::Output),
            N::InsertStmt(s) => self.insert(s),
            N::UpdateStmt(s) => self.update(s),
            N::DeleteStmt(s) => self.delete(s),
            N::MergeStmt(s) => self.merge(s),
            N::CopyStmt(s) => self.copy(s),
            N::CreateTableAsStmt(s) => {
                let label = if s.is_select_into {
                    "SELECT INTO"
                } else if s.objtype == pb::ObjectType::ObjectMatview as i32 {
                    "CREATE MATERIALIZED VIEW"
                } else {
                    "CREATE TABLE AS"
                };
                self.within_exactly(label, |c| c.visit_opt(s.query.as_deref()));
            }
            N::ViewStmt(s) => {
                self.within_exactly("CREATE VIEW", |c| c.visit_opt(s.query.as_deref()))
            }
            N::ExplainStmt(s) => {
                // EXPLAIN returns a plan, not rows: check the statement, keep
                // no bindings.
                let mark = self.bindings.len();
                if let Some(q) = s.query.as_deref() {
                    self.top_statement(q);
                }
                self.bindings.truncate(mark);
            }
            N::PrepareStmt(s) => {
                if let Some(q) = s.query.as_deref() {
                    self.top_statement(q);
                }
            }
            N::DeclareCursorStmt(s) => {
                if let Some(q) = s.query.as_deref() {
                    self.top_statement(q);
                }
            }
            _ => {
                // Other statements (DDL, rules, function bodies …) have no
                // result rows: any query inside them is checked as nested.
                let label = statement::kind(inner)
                    .map(|k| k.command)
                    .unwrap_or_else(|| v::node_kind(node).to_string());
                self.within_exactly(label, |c| v::walk_node(c, node));
            }
        }
    }

    fn visit_opt(&mut self, node: Option<&pb::Node>) {
        if let Some(n) = node {
            self.visit_node(n);
        }
    }

    fn visit_all(&mut self, nodes: &[pb::Node]) {
        for n in nodes {
            self.visit_node(n);
        }
    }

    fn in_clause(&mut self, label: &str, nodes: &[pb::Node]) {
        if !nodes.is_empty() {
            self.within(label.to_string(), |c| c.visit_all(nodes));
        }
    }

    /// A SELECT (or VALUES, or set operation) with its own scope.
    fn select(&mut self, n: &pb::SelectStmt, targets: Targets) {
        let cte_mark = self.ctes.len();
        if let Some(w) = &n.with_clause {
            self.with_clause(w);
        }
        if let (Some(l), Some(r)) = (&n.larg, &n.rarg) {
            let op = match pb::SetOperation::try_from(n.op) {
                Ok(pb::SetOperation::SetopIntersect) => "INTERSECT",
                Ok(pb::SetOperation::SetopExcept) => "EXCEPT",
                _ => "UNION",
            };
            self.within(op, |c| {
                c.select(l, Targets::Nested);
                c.select(r, Targets::Nested);
            });
            self.in_clause("ORDER BY", &n.sort_clause);
            self.in_clause("LIMIT", opt_slice(&n.limit_count));
            self.in_clause("OFFSET", opt_slice(&n.limit_offset));
            self.ctes.truncate(cte_mark);
            return;
        }
        let items = self.items_of(&n.from_clause);
        self.scopes.push(items);
        self.walk_from(&n.from_clause);
        let targets = if n.into_clause.is_some() && targets == Targets::Output {
            self.within_exactly("SELECT INTO", |c| c.visit_all(&n.target_list));
            Targets::Ignored
        } else {
            targets
        };
        let outputs = match targets {
            Targets::Output => self.output_targets(&n.target_list),
            Targets::Nested => {
                self.visit_all(&n.target_list);
                Vec::new()
            }
            Targets::Ignored => Vec::new(),
        };
        self.in_clause("WHERE", opt_slice(&n.where_clause));
        self.in_clause("GROUP BY", &n.group_clause);
        self.in_clause("HAVING", opt_slice(&n.having_clause));
        self.in_clause("WINDOW", &n.window_clause);
        self.in_clause("ORDER BY", &n.sort_clause);
        self.in_clause("DISTINCT ON", &n.distinct_clause);
        self.in_clause("LIMIT", opt_slice(&n.limit_count));
        self.in_clause("OFFSET", opt_slice(&n.limit_offset));
        self.in_clause("VALUES", &n.values_lists);
        if targets == Targets::Output {
            self.output_references(n, &outputs);
        }
        self.scopes.pop();
        self.ctes.truncate(cte_mark);
    }

    fn with_clause(&mut self, w: &pb::WithClause) {
        let name = |n: &pb::Node| match &n.node {
            Some(N::CommonTableExpr(c)) => Some(c.ctename.clone()),
            _ => None,
        };
        if w.recursive {
            self.ctes.extend(w.ctes.iter().filter_map(name));
        }
        for cte in &w.ctes {
            if let Some(N::CommonTableExpr(c)) = &cte.node {
                self.within("a WITH query", |s| s.visit_opt(c.ctequery.as_deref()));
            }
            if !w.recursive {
                self.ctes.extend(name(cte));
            }
        }
    }

    fn insert(&mut self, n: &pb::InsertStmt) {
        let mark = self.ctes.len();
        if let Some(w) = &n.with_clause {
            self.with_clause(w);
        }
        self.within("INSERT … SELECT", |c| {
            c.visit_opt(n.select_stmt.as_deref())
        });
        let target = n.relation.as_ref().map(|rv| self.table_item(rv));
        let mut scope: Vec<FromItem> = target.into_iter().collect();
        if let Some(oc) = &n.on_conflict_clause {
            // EXCLUDED is the row being inserted: the client's own values.
            scope.push(FromItem {
                refname: "excluded".into(),
                source: Source::Other,
            });
            self.scopes.push(scope.clone());
            self.within("ON CONFLICT", |c| {
                c.visit_all(&oc.target_list);
                c.visit_opt(oc.where_clause.as_deref());
                if let Some(infer) = &oc.infer {
                    c.visit_infer_clause(infer);
                }
            });
            self.scopes.pop();
            scope.pop();
        }
        self.returning(n.returning_clause.as_ref(), scope);
        self.ctes.truncate(mark);
    }

    fn update(&mut self, n: &pb::UpdateStmt) {
        let mark = self.ctes.len();
        if let Some(w) = &n.with_clause {
            self.with_clause(w);
        }
        let mut scope: Vec<FromItem> = n
            .relation
            .as_ref()
            .map(|rv| self.table_item(rv))
            .into_iter()
            .collect();
        scope.extend(self.items_of(&n.from_clause));
        self.scopes.push(scope.clone());
        self.walk_from(&n.from_clause);
        for t in &n.target_list {
            // SET col = expr: the assigned column is a name, not a read.
            if let Some(N::ResTarget(rt)) = &t.node {
                self.within("UPDATE … SET", |c| {
                    c.visit_opt(rt.val.as_deref());
                    c.visit_all(&rt.indirection);
                });
            }
        }
        self.in_clause("WHERE", opt_slice(&n.where_clause));
        self.scopes.pop();
        self.returning(n.returning_clause.as_ref(), scope);
        self.ctes.truncate(mark);
    }

    fn delete(&mut self, n: &pb::DeleteStmt) {
        let mark = self.ctes.len();
        if let Some(w) = &n.with_clause {
            self.with_clause(w);
        }
        let mut scope: Vec<FromItem> = n
            .relation
            .as_ref()
            .map(|rv| self.table_item(rv))
            .into_iter()
            .collect();
        scope.extend(self.items_of(&n.using_clause));
        self.scopes.push(scope.clone());
        self.walk_from(&n.using_clause);
        self.in_clause("WHERE", opt_slice(&n.where_clause));
        self.scopes.pop();
        self.returning(n.returning_clause.as_ref(), scope);
        self.ctes.truncate(mark);
    }

    fn merge(&mut self, n: &pb::MergeStmt) {
        let mark = self.ctes.len();
        if let Some(w) = &n.with_clause {
            self.with_clause(w);
        }
        let mut scope: Vec<FromItem> = n
            .relation
            .as_ref()
            .map(|rv| self.table_item(rv))
            .into_iter()
            .collect();
        let source = opt_slice(&n.source_relation);
        scope.extend(self.items_of(source));
        self.scopes.push(scope.clone());
        self.within("MERGE", |c| {
            c.walk_from(source);
            c.visit_opt(n.join_condition.as_deref());
            for w in &n.merge_when_clauses {
                if let Some(N::MergeWhenClause(mw)) = &w.node {
                    c.visit_opt(mw.condition.as_deref());
                    for t in &mw.target_list {
                        if let Some(N::ResTarget(rt)) = &t.node {
                            c.visit_opt(rt.val.as_deref());
                        }
                    }
                    c.visit_all(&mw.values);
                }
            }
        });
        self.scopes.pop();
        self.returning(n.returning_clause.as_ref(), scope);
        self.ctes.truncate(mark);
    }

    fn returning(&mut self, r: Option<&pb::ReturningClause>, scope: Vec<FromItem>) {
        let Some(r) = r else { return };
        self.scopes.push(scope);
        self.output_targets(&r.exprs);
        self.scopes.pop();
    }

    fn copy(&mut self, n: &pb::CopyStmt) {
        if let Some(q) = n.query.as_deref() {
            self.within_exactly("COPY (query)", |c| c.visit_node(q));
            return;
        }
        let (Some(rv), false) = (&n.relation, n.is_from) else {
            return;
        };
        let item = self.table_item(rv);
        let binary = n.options.iter().any(|o| match &o.node {
            Some(N::DefElem(d)) => {
                d.defname == "format"
                    && d.arg
                        .as_deref()
                        .and_then(crate::names::const_setting)
                        .is_some_and(|f| f.eq_ignore_ascii_case("binary"))
            }
            _ => false,
        });
        let elsewhere = n.is_program || !n.filename.is_empty();
        let Source::Table { schema, name } = &item.source else {
            return;
        };
        let Some(pattern) = self.masked.table(schema.as_deref(), name) else {
            return;
        };
        let display = self.masked.patterns[pattern].display_with(schema.as_deref(), name, "*");
        if binary {
            return self.violate(&display, Some("binary COPY"));
        }
        if elsewhere {
            return self.violate(&display, Some("COPY to a file or program"));
        }
        if n.attlist.is_empty() {
            self.bind(None, "*", schema.clone(), name, None, pattern);
            return;
        }
        for (pos, a) in n.attlist.iter().enumerate() {
            if let Some(N::String(s)) = &a.node
                && let Some(p) = self.masked.column(schema.as_deref(), name, &s.sval)
            {
                self.bind(
                    Some(pos),
                    &s.sval,
                    schema.clone(),
                    name,
                    Some(s.sval.clone()),
                    p,
                );
            }
        }
    }

    // --- FROM

    fn table_item(&self, rv: &pb::RangeVar) -> FromItem {
        let refname = rv
            .alias
            .as_ref()
            .map(|a| a.aliasname.clone())
            .unwrap_or_else(|| rv.relname.clone());
        let source = if rv.schemaname.is_empty() && self.ctes.contains(&rv.relname) {
            Source::Other
        } else {
            Source::Table {
                schema: (!rv.schemaname.is_empty()).then(|| rv.schemaname.clone()),
                name: rv.relname.clone(),
            }
        };
        FromItem { refname, source }
    }

    /// The items a FROM list makes visible (joined tables by their own
    /// names, and a join's alias for all of them).
    fn items_of(&self, list: &[pb::Node]) -> Vec<FromItem> {
        let mut out = Vec::new();
        for n in list {
            self.item_of(n, &mut out);
        }
        out
    }

    fn item_of(&self, n: &pb::Node, out: &mut Vec<FromItem>) {
        let alias =
            |a: &Option<pb::Alias>| a.as_ref().map(|a| a.aliasname.clone()).unwrap_or_default();
        match &n.node {
            Some(N::RangeVar(rv)) => out.push(self.table_item(rv)),
            Some(N::RangeTableSample(ts)) => {
                if let Some(r) = ts.relation.as_deref() {
                    self.item_of(r, out);
                }
            }
            Some(N::JoinExpr(j)) => {
                let mut members = Vec::new();
                for side in [j.larg.as_deref(), j.rarg.as_deref()].into_iter().flatten() {
                    self.item_of(side, &mut members);
                }
                let named = j.alias.as_ref().map(|a| a.aliasname.clone());
                out.extend(members.iter().cloned());
                if let Some(refname) = named {
                    out.push(FromItem {
                        refname,
                        source: Source::Join(members),
                    });
                }
            }
            Some(N::RangeSubselect(s)) => out.push(FromItem {
                refname: alias(&s.alias),
                source: Source::Other,
            }),
            Some(N::RangeFunction(f)) => out.push(FromItem {
                refname: alias(&f.alias),
                source: Source::Other,
            }),
            _ => {}
        }
    }

    /// Walks the expressions inside a FROM list: subqueries, function
    /// arguments, join conditions.
    fn walk_from(&mut self, list: &[pb::Node]) {
        for n in list {
            match &n.node {
                Some(N::RangeSubselect(s)) => {
                    self.within("a subquery in FROM", |c| c.visit_opt(s.subquery.as_deref()))
                }
                Some(N::RangeFunction(f)) => {
                    self.within("a function in FROM", |c| c.visit_all(&f.functions))
                }
                Some(N::RangeTableSample(ts)) => {
                    self.within("TABLESAMPLE", |c| {
                        c.visit_all(&ts.args);
                        c.visit_opt(ts.repeatable.as_deref());
                    });
                }
                Some(N::JoinExpr(j)) => {
                    for side in [j.larg.as_deref(), j.rarg.as_deref()].into_iter().flatten() {
                        self.walk_from(std::slice::from_ref(side));
                    }
                    self.in_clause("JOIN", opt_slice(&j.quals));
                    let using: Vec<pb::Node> = j
                        .using_clause
                        .iter()
                        .map(|u| column_ref_node(u.clone()))
                        .collect();
                    self.in_clause("JOIN", &using);
                    if j.is_natural {
                        // NATURAL joins compare every same-named column.
                        self.natural_join(j);
                    }
                }
                Some(N::RangeVar(_)) | None => {}
                Some(_) => self.within("FROM", |c| c.visit_node(n)),
            }
        }
    }

    fn natural_join(&mut self, j: &pb::JoinExpr) {
        let mut members = Vec::new();
        for side in [j.larg.as_deref(), j.rarg.as_deref()].into_iter().flatten() {
            self.item_of(side, &mut members);
        }
        for m in &members {
            for (schema, table) in m.tables() {
                if let Some(p) = self.masked.table(schema, table) {
                    let display = self.masked.patterns[p].display_with(schema, table, "*");
                    return self.violate(&display, Some("a NATURAL JOIN"));
                }
            }
        }
    }

    // --- output

    /// A target list that is the statement's result: plain masked columns
    /// become bindings; everything else is checked as an expression.
    /// Returns, per target, its alias and the masked column it carries.
    fn output_targets(&mut self, list: &[pb::Node]) -> Vec<Output> {
        let mut outputs = Vec::with_capacity(list.len());
        let mut position = Some(0usize);
        for t in list {
            let Some(N::ResTarget(rt)) = &t.node else {
                outputs.push(Output::default());
                continue;
            };
            let Some(val) = rt.val.as_deref() else {
                outputs.push(Output::default());
                continue;
            };
            let alias = (!rt.name.is_empty()).then(|| rt.name.clone());
            let mut carries = None;
            match &val.node {
                Some(N::ColumnRef(cr)) if rt.indirection.is_empty() => match self
                    .resolve(&cr.fields)
                {
                    Resolved::Column(h) => {
                        carries = Some(h.display.clone());
                        let name = alias
                            .clone()
                            .or_else(|| h.column.clone())
                            .unwrap_or_default();
                        self.bind(position, &name, h.schema, &h.table, h.column, h.pattern);
                    }
                    Resolved::Rows(hits) if is_star(&cr.fields) => {
                        for h in hits {
                            self.bind(None, "*", h.schema, &h.table, None, h.pattern);
                        }
                    }
                    Resolved::Rows(hits) => {
                        let display = hits.first().map(|h| h.display.clone()).unwrap_or_default();
                        self.violate(&display, Some("a whole-row reference"));
                    }
                    Resolved::Clear => {}
                },
                _ => {
                    let label = describe(val);
                    self.within_exactly(label, |c| {
                        c.visit_node(val);
                        c.visit_all(&rt.indirection);
                    });
                }
            }
            let star = matches!(&val.node, Some(N::ColumnRef(cr)) if is_star(&cr.fields));
            position = if star { None } else { position.map(|p| p + 1) };
            outputs.push(Output { alias, carries });
        }
        outputs
    }

    /// `ORDER BY 1`, `GROUP BY x` and `DISTINCT ON (x)` where the position or
    /// alias names a masked output: sorting and grouping are oracles too.
    fn output_references(&mut self, n: &pb::SelectStmt, outputs: &[Output]) {
        let clauses: [(&str, Vec<&pb::Node>); 3] = [
            (
                "ORDER BY",
                n.sort_clause
                    .iter()
                    .filter_map(|s| match &s.node {
                        Some(N::SortBy(sb)) => sb.node.as_deref(),
                        _ => None,
                    })
                    .collect(),
            ),
            ("GROUP BY", n.group_clause.iter().collect()),
            ("DISTINCT ON", n.distinct_clause.iter().collect()),
        ];
        for (label, nodes) in clauses {
            for node in nodes {
                let target = match &node.node {
                    Some(N::AConst(_)) => crate::names::const_int(node)
                        .and_then(|i| usize::try_from(i - 1).ok())
                        .and_then(|k| outputs.get(k)),
                    Some(N::ColumnRef(cr)) => match cr.fields.as_slice() {
                        [f] => match &f.node {
                            Some(N::String(s)) => outputs
                                .iter()
                                .find(|o| o.alias.as_deref() == Some(s.sval.as_str())),
                            _ => None,
                        },
                        _ => None,
                    },
                    _ => None,
                };
                if let Some(Output {
                    carries: Some(column),
                    ..
                }) = target
                {
                    let column = column.clone();
                    self.violate(&column, Some(label));
                }
            }
        }
    }

    fn bind(
        &mut self,
        position: Option<usize>,
        name: &str,
        schema: Option<String>,
        table: &str,
        column: Option<String>,
        pattern: usize,
    ) {
        self.bindings.push(OutputBinding {
            statement: self.statement,
            position,
            name: name.to_string(),
            schema,
            table: table.to_string(),
            column,
            pattern,
        });
    }

    // --- names

    fn hit(&self, schema: Option<&str>, table: &str, column: Option<&str>, pattern: usize) -> Hit {
        Hit {
            display: self.masked.patterns[pattern].display_with(
                schema,
                table,
                column.unwrap_or("*"),
            ),
            schema: schema.map(str::to_string),
            table: table.to_string(),
            column: column.map(str::to_string),
            pattern,
        }
    }

    fn find_item(&self, refname: &str) -> Option<&FromItem> {
        self.scopes
            .iter()
            .rev()
            .find_map(|scope| scope.iter().find(|i| i.refname == refname))
    }

    fn column_of(&self, item: &FromItem, column: &str) -> Option<Hit> {
        item.tables().into_iter().find_map(|(schema, table)| {
            self.masked
                .column(schema, table, column)
                .map(|p| self.hit(schema, table, Some(column), p))
        })
    }

    fn rows_of(&self, item: &FromItem) -> Vec<Hit> {
        item.tables()
            .into_iter()
            .filter_map(|(schema, table)| {
                self.masked
                    .table(schema, table)
                    .map(|p| self.hit(schema, table, None, p))
            })
            .collect()
    }

    fn resolve(&self, fields: &[pb::Node]) -> Resolved {
        let parts: Vec<Option<&str>> = fields
            .iter()
            .map(|f| match &f.node {
                Some(N::String(s)) => Some(s.sval.as_str()),
                _ => None, // A_Star
            })
            .collect();
        let found = |h: Option<Hit>| h.map_or(Resolved::Clear, Resolved::Column);
        let rows = |hits: Vec<Hit>| {
            if hits.is_empty() {
                Resolved::Clear
            } else {
                Resolved::Rows(hits)
            }
        };
        match parts.as_slice() {
            [Some(col)] => {
                // Any visible table that may have a masked column of this name.
                for scope in self.scopes.iter().rev() {
                    for item in scope {
                        if let Some(h) = self.column_of(item, col) {
                            return Resolved::Column(h);
                        }
                    }
                }
                // Otherwise a whole-row reference to a FROM item.
                self.find_item(col)
                    .map_or(Resolved::Clear, |i| rows(self.rows_of(i)))
            }
            [None] => rows(
                self.scopes
                    .last()
                    .into_iter()
                    .flatten()
                    .flat_map(|i| self.rows_of(i))
                    .collect(),
            ),
            [Some(t), Some(col)] => found(self.find_item(t).and_then(|i| self.column_of(i, col))),
            [Some(t), None] => self
                .find_item(t)
                .map_or(Resolved::Clear, |i| rows(self.rows_of(i))),
            [.., Some(s), Some(t), last] => {
                let item = self.scopes.iter().rev().flatten().find(|i| {
                    i.refname == *t
                        && matches!(&i.source, Source::Table { schema, name } if name == t && schema.as_deref().is_none_or(|x| x == *s))
                });
                let Some(item) = item else {
                    return Resolved::Clear;
                };
                let qualified = FromItem {
                    refname: item.refname.clone(),
                    source: Source::Table {
                        schema: Some(s.to_string()),
                        name: t.to_string(),
                    },
                };
                match last {
                    Some(col) => found(self.column_of(&qualified, col)),
                    None => rows(self.rows_of(&qualified)),
                }
            }
            _ => Resolved::Clear,
        }
    }
}

impl Visit for Checker<'_> {
    fn visit_column_ref(&mut self, n: &pb::ColumnRef) {
        match self.resolve(&n.fields) {
            Resolved::Column(h) => self.violate(&h.display, None),
            Resolved::Rows(hits) => {
                if let Some(h) = hits.first() {
                    let display = h.display.clone();
                    self.violate(&display, None);
                }
            }
            Resolved::Clear => {}
        }
    }

    fn visit_select_stmt(&mut self, n: &pb::SelectStmt) {
        self.within("a subquery", |c| c.select(n, Targets::Nested));
    }

    fn visit_sub_link(&mut self, n: &pb::SubLink) {
        let exists = n.sub_link_type == pb::SubLinkType::ExistsSublink as i32;
        match (
            &n.subselect.as_deref().and_then(|s| s.node.as_ref()),
            exists,
        ) {
            (Some(N::SelectStmt(s)), true) => {
                self.within("a subquery", |c| c.select(s, Targets::Ignored))
            }
            _ => self.within("a subquery", |c| v::walk_sub_link(c, n)),
        }
    }

    fn visit_with_clause(&mut self, n: &pb::WithClause) {
        // Reached only for WITH clauses outside SELECT/INSERT/UPDATE/DELETE/MERGE
        // handling; check their queries as nested.
        self.within("a WITH query", |c| v::walk_with_clause(c, n));
    }
}

/// How an output expression is named in a message.
fn describe(node: &pb::Node) -> String {
    match &node.node {
        Some(N::FuncCall(f)) => {
            let name = crate::names::qualified(&f.funcname);
            if f.over.is_some() {
                format!("window function {name}")
            } else if f.agg_star
                || f.agg_distinct
                || !f.agg_order.is_empty()
                || f.agg_filter.is_some()
                || is_aggregate(&name)
            {
                format!("aggregate {name}")
            } else {
                format!("function {name}")
            }
        }
        Some(N::TypeCast(_)) => "a cast".into(),
        Some(N::AExpr(a)) => {
            let op: Vec<&str> = crate::names::strings(&a.name).collect();
            format!("operator {}", op.join("."))
        }
        Some(N::SubLink(_)) => "a subquery".into(),
        Some(N::CaseExpr(_)) => "a CASE expression".into(),
        Some(N::CollateClause(_)) => "a COLLATE expression".into(),
        Some(N::RowExpr(_)) => "a row constructor".into(),
        Some(N::AArrayExpr(_)) => "an array constructor".into(),
        Some(N::AIndirection(_)) => "a field or subscript access".into(),
        Some(N::CoalesceExpr(_)) => "COALESCE".into(),
        Some(N::MinMaxExpr(_)) => "GREATEST/LEAST".into(),
        Some(N::BoolExpr(_)) | Some(N::NullTest(_)) | Some(N::BooleanTest(_)) => {
            "a condition".into()
        }
        _ => "an expression".into(),
    }
}

/// Built-in aggregates recognised by name (others are named "function").
fn is_aggregate(name: &str) -> bool {
    matches!(
        name,
        "min"
            | "max"
            | "count"
            | "sum"
            | "avg"
            | "string_agg"
            | "array_agg"
            | "json_agg"
            | "jsonb_agg"
            | "json_object_agg"
            | "jsonb_object_agg"
            | "bool_and"
            | "bool_or"
            | "every"
            | "bit_and"
            | "bit_or"
            | "xmlagg"
            | "mode"
            | "percentile_cont"
            | "percentile_disc"
            | "any_value"
    )
}

fn is_star(fields: &[pb::Node]) -> bool {
    matches!(
        fields.last().and_then(|f| f.node.as_ref()),
        Some(N::AStar(_))
    )
}

fn opt_slice(n: &Option<Box<pb::Node>>) -> &[pb::Node] {
    match n {
        Some(b) => std::slice::from_ref(b.as_ref()),
        None => &[],
    }
}

/// A `USING (col)` name as a one-field column reference.
fn column_ref_node(name: pb::Node) -> pb::Node {
    pb::Node {
        node: Some(N::ColumnRef(pb::ColumnRef {
            fields: vec![name],
            location: -1,
        })),
    }
}
