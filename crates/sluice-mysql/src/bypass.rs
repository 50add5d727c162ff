//! Bypass analysis for masked columns. Result masking only hides what a
//! statement returns, and it finds masked columns by the source the
//! server names for each result column (`org_table`, `org_name`). So a
//! masked column may appear in a statement only as a plain output column
//! of the top-level `SELECT` (aliased or not), or under a top-level `*`;
//! anywhere else it would leak or act as an oracle, and the statement is
//! refused naming the column:
//!
//! - inside an expression or function (`concat(card)`, `hex(card)`,
//!   `card + 0`), in `WHERE`, `JOIN … ON`, `GROUP BY`, `HAVING`,
//!   `ORDER BY` (by name, alias or position), under `DISTINCT`;
//! - in subqueries, derived tables, CTEs and set operations (`UNION`);
//! - in statements that copy data elsewhere (`INSERT … SELECT`,
//!   `CREATE TABLE … AS SELECT`, `UPDATE … SET x = card`, `CREATE VIEW`,
//!   `SELECT … INTO`), including through `*`;
//! - through a view whose definition reads a masked column (its result
//!   columns name the view, not the table).
//!
//! Names are matched as MySQL compares column names: without case. A
//! column name matches when any table the statement reads may have a
//! masked column of that name (fail closed: qualifiers and aliases are
//! not resolved). Known limits: writes can act as oracles through
//! constraint errors; stored functions and procedures are opaque (and
//! `unknown` to the analysis).

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use sluice_core::config::masking::ColumnPattern;
use sqlparser::ast::{
    Expr, ObjectName, Query, SelectItem, SetExpr, Statement, Value, Visit, Visitor,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use crate::analyse::table_name;

/// A connection's column rules and what the session learned of its views.
#[derive(Debug, Default, Clone)]
pub struct Rules {
    pub patterns: Vec<ColumnPattern>,
    pub database: String,
    /// Views (lower-case name) whose definition reads a masked column,
    /// with that column.
    pub masked_views: HashMap<String, String>,
}

impl Rules {
    /// Rules for `database` from a connection's column patterns, lower
    /// case: the server may compare names without case (columns always,
    /// tables with `lower_case_table_names`), so matching does too.
    pub fn new(patterns: Vec<ColumnPattern>, database: &str) -> Rules {
        let lower = |s: Option<String>| s.map(|s| s.to_lowercase());
        Rules {
            patterns: patterns
                .into_iter()
                .map(|p| ColumnPattern {
                    schema: lower(p.schema),
                    table: lower(p.table),
                    column: p.column.to_lowercase(),
                })
                .collect(),
            database: database.to_lowercase(),
            masked_views: HashMap::new(),
        }
    }

    /// A table name as the statement gives it: schema and table, lower case.
    fn split(&self, table: &str) -> (String, String) {
        let table = table.to_lowercase();
        match table.split_once('.') {
            Some((s, t)) => (s.to_string(), t.to_string()),
            None => (self.database.clone(), table),
        }
    }

    /// Whether `table` (as the statement names it) may have a masked
    /// column, and which pattern says so.
    fn masked_table(&self, table: &str) -> Option<(&ColumnPattern, String, String)> {
        let (schema, name) = self.split(table);
        self.patterns
            .iter()
            .find(|p| p.matches_partial(Some(&schema), &name, None))
            .map(|p| (p, schema, name))
    }

    /// Whether column `column` of `table` is masked: its display name.
    fn masked_column(&self, table: &str, column: &str) -> Option<String> {
        let (schema, name) = self.split(table);
        let column = column.to_lowercase();
        self.patterns
            .iter()
            .find(|p| p.matches(&schema, &name, &column))
            .map(|p| p.display_with(Some(&schema), &name, &column))
    }
}

/// The masked column a statement uses where masking cannot protect it,
/// and the refusal's words; `None` when every use is a plain output.
pub fn violation(sql: &str, rules: &Rules) -> Option<(String, String)> {
    if rules.patterns.is_empty() {
        return None;
    }
    // What does not parse is refused by the analysis itself.
    let statements = Parser::parse_sql(&MySqlDialect {}, sql).ok()?;
    let [statement] = statements.as_slice() else {
        return None;
    };
    let mut seen = Seen::default();
    let _ = statement.visit(&mut seen);
    for t in &seen.relations {
        if let Some(col) = rules.masked_views.get(&t.to_ascii_lowercase()) {
            return Some((
                col.clone(),
                format!(
                    "sluice: view {t} reads masked column {col}; masking cannot follow it through the view, query the table instead"
                ),
            ));
        }
    }
    let masked_tables: Vec<&String> = seen
        .relations
        .iter()
        .filter(|t| rules.masked_table(t).is_some())
        .collect();
    if masked_tables.is_empty() {
        return None;
    }
    let first = || {
        rules
            .masked_table(masked_tables[0])
            .map(|(p, s, t)| p.display_with(Some(&s), &t, &p.column))
            .unwrap_or_default()
    };
    if implicit_join(sql) {
        let col = first();
        return Some((
            col.clone(),
            format!(
                "sluice: NATURAL JOIN and JOIN … USING over a table with masked columns ({col}) compare columns Sluice cannot see; join with ON instead"
            ),
        ));
    }
    if let Some(name) = seen.names.iter().find(|n| !n.is_ascii()) {
        let col = first();
        return Some((
            col.clone(),
            format!(
                "sluice: the name {name:?} is not plain ASCII, and the server may read it as a masked column ({col}); use the column's own name"
            ),
        ));
    }
    let is_masked = |name: &str| {
        masked_tables
            .iter()
            .find_map(|t| rules.masked_column(t, name))
    };
    let plain = plain_outputs(statement, &is_masked);
    // Every use of a masked column's name, and of an alias of one.
    let mut uses: HashMap<String, usize> = HashMap::new();
    for name in &seen.names {
        let lower = name.to_lowercase();
        if let Some(col) = is_masked(&lower) {
            *uses.entry(col).or_default() += 1;
        } else if let Some(col) = plain.aliases.get(&lower) {
            *uses.entry(col.clone()).or_default() += 1;
        }
    }
    for (col, n) in &uses {
        let allowed = plain.columns.get(col).copied().unwrap_or(0);
        if *n > allowed {
            return Some((
                col.clone(),
                format!(
                    "sluice: masked column {col} is used where masking cannot protect it (in an expression, a condition, an ordering, a subquery, or a statement that copies it); select it as a plain column instead"
                ),
            ));
        }
    }
    if !plain.columns.is_empty() && (plain.ordered_by_position || plain.distinct) {
        let col = plain.columns.keys().next().cloned().unwrap_or_default();
        return Some((
            col.clone(),
            format!(
                "sluice: masked column {col} is output under DISTINCT or ordered by position, which reveals its values' order or equality"
            ),
        ));
    }
    if seen.wildcards > plain.wildcards {
        let col = first();
        return Some((
            col.clone(),
            format!(
                "sluice: `*` over a table with masked columns ({col}) is only allowed in a top-level SELECT, where the result is masked"
            ),
        ));
    }
    None
}

/// The relations a statement names (for catalog freshness).
pub fn relations(sql: &str) -> Vec<String> {
    let Ok(statements) = Parser::parse_sql(&MySqlDialect {}, sql) else {
        return Vec::new();
    };
    let mut seen = Seen::default();
    for s in &statements {
        let _ = s.visit(&mut seen);
    }
    seen.relations
}

/// The top-level SELECT's plain outputs that are masked columns.
#[derive(Default)]
struct Plain {
    /// Masked column → how many plain outputs carry it.
    columns: HashMap<String, usize>,
    /// Alias (lower case) → the masked column it names.
    aliases: HashMap<String, String>,
    wildcards: usize,
    ordered_by_position: bool,
    distinct: bool,
}

fn plain_outputs(s: &Statement, is_masked: &dyn Fn(&str) -> Option<String>) -> Plain {
    let mut plain = Plain::default();
    let Statement::Query(q) = s else {
        return plain;
    };
    let SetExpr::Select(sel) = q.body.as_ref() else {
        return plain;
    };
    if sel.into.is_some() {
        return plain;
    }
    let column_of = |e: &Expr| match e {
        Expr::Identifier(i) => is_masked(&i.value),
        Expr::CompoundIdentifier(parts) => parts.last().and_then(|i| is_masked(&i.value)),
        _ => None,
    };
    for item in &sel.projection {
        match item {
            SelectItem::UnnamedExpr(e) => {
                if let Some(col) = column_of(e) {
                    *plain.columns.entry(col).or_default() += 1;
                }
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                if let Some(col) = column_of(expr) {
                    *plain.columns.entry(col.clone()).or_default() += 1;
                    plain.aliases.insert(alias.value.to_lowercase(), col);
                }
            }
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => plain.wildcards += 1,
            _ => {}
        }
    }
    plain.distinct = sel.distinct.is_some();
    let by_position =
        |e: &Expr| matches!(e, Expr::Value(v) if matches!(v.value, Value::Number(..)));
    if let Some(order) = &q.order_by
        && let sqlparser::ast::OrderByKind::Expressions(exprs) = &order.kind
    {
        plain.ordered_by_position |= exprs.iter().any(|o| by_position(&o.expr));
    }
    if let sqlparser::ast::GroupByExpr::Expressions(exprs, _) = &sel.group_by {
        plain.ordered_by_position |= exprs.iter().any(by_position);
    }
    plain
}

/// Every relation, column name and `*` in a statement.
#[derive(Default)]
struct Seen {
    relations: Vec<String>,
    names: Vec<String>,
    wildcards: usize,
    counted: HashSet<*const Query>,
}

impl Visitor for Seen {
    type Break = ();

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        self.relations.push(table_name(relation));
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match e {
            Expr::Identifier(i) => self.names.push(i.value.clone()),
            Expr::CompoundIdentifier(parts) => {
                if let Some(last) = parts.last() {
                    self.names.push(last.value.clone());
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if self.counted.insert(q as *const Query) {
            count_wildcards(&q.body, &mut self.wildcards);
            self.relations
                .extend(crate::analyse::table_commands(&q.body));
        }
        ControlFlow::Continue(())
    }
}

fn count_wildcards(body: &SetExpr, n: &mut usize) {
    match body {
        SetExpr::Select(sel) => {
            *n += sel
                .projection
                .iter()
                .filter(|i| {
                    matches!(
                        i,
                        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
                    )
                })
                .count();
        }
        SetExpr::SetOperation { left, right, .. } => {
            count_wildcards(left, n);
            count_wildcards(right, n);
        }
        // `TABLE t` is `SELECT * FROM t`.
        SetExpr::Table(_) => *n += 1,
        _ => {}
    }
}

/// Whether the text joins by `NATURAL` or `USING`, which compare columns
/// by name without naming them in an expression.
fn implicit_join(sql: &str) -> bool {
    use sqlparser::keywords::Keyword;
    use sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&MySqlDialect {}, sql).tokenize() else {
        return true;
    };
    tokens.iter().any(|t| {
        matches!(t, Token::Word(w) if matches!(w.keyword, Keyword::NATURAL | Keyword::USING) && w.quote_style.is_none())
    })
}

/// The masked column a view definition reads, if any.
pub fn view_reads_masked(definition: &str, rules: &Rules) -> Option<String> {
    let statements = Parser::parse_sql(&MySqlDialect {}, definition).ok()?;
    let mut seen = Seen::default();
    for s in &statements {
        let _ = s.visit(&mut seen);
    }
    let tables: Vec<&String> = seen
        .relations
        .iter()
        .filter(|t| rules.masked_table(t).is_some())
        .collect();
    if tables.is_empty() {
        return None;
    }
    if seen.wildcards > 0 {
        return tables
            .first()
            .and_then(|t| rules.masked_table(t))
            .map(|(p, s, t)| p.display_with(Some(&s), &t, &p.column));
    }
    seen.names
        .iter()
        .find_map(|n| tables.iter().find_map(|t| rules.masked_column(t, n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        let mut r = Rules::new(
            vec![ColumnPattern::parse("customers.card").unwrap()],
            "shop",
        );
        r.masked_views = HashMap::from([("v_cards".into(), "shop.customers.card".into())]);
        r
    }

    #[track_caller]
    fn refused(sql: &str) {
        assert!(
            violation(sql, &rules()).is_some(),
            "{sql} should be refused"
        );
    }

    #[track_caller]
    fn allowed(sql: &str) {
        assert_eq!(violation(sql, &rules()), None, "{sql}");
    }

    #[test]
    fn plain_outputs_pass() {
        allowed("SELECT id, card FROM customers");
        allowed("SELECT c.card AS x, c.name FROM customers c");
        allowed("SELECT * FROM customers");
        allowed("SELECT customers.* FROM customers WHERE id = 1");
        allowed("SELECT card FROM orders");
        allowed("SELECT id FROM customers WHERE name = 'x' ORDER BY name");
    }

    #[test]
    fn every_listed_bypass_is_refused() {
        refused("SELECT concat(card, '') FROM customers");
        refused("SELECT hex(card) FROM customers");
        refused("SELECT id FROM customers WHERE card LIKE '4111%'");
        refused("SELECT id FROM customers ORDER BY card");
        refused("SELECT card AS x FROM customers ORDER BY x");
        refused("SELECT card FROM customers ORDER BY 1");
        refused("SELECT DISTINCT card FROM customers");
        refused("SELECT count(*) FROM customers GROUP BY card");
        refused("SELECT id FROM customers c JOIN orders o ON o.card = c.card");
        refused("SELECT x FROM (SELECT card AS x FROM customers) s");
        refused("SELECT card FROM customers UNION SELECT 'x'");
        refused("SELECT * FROM customers UNION SELECT * FROM customers");
        refused("INSERT INTO copy SELECT card FROM customers");
        refused("INSERT INTO copy SELECT * FROM customers");
        refused("CREATE TABLE copy AS SELECT * FROM customers");
        refused("CREATE VIEW v AS SELECT card FROM customers");
        refused("UPDATE orders o JOIN customers c ON o.cid = c.id SET o.note = c.card");
        refused("SELECT CARD FROM customers WHERE CARD = '1'");
        refused("SELECT * FROM v_cards");
        refused("WITH x AS (SELECT card FROM customers) SELECT * FROM x");
    }

    #[test]
    fn implicit_comparisons_and_server_name_folding_are_refused() {
        refused("SELECT id FROM customers JOIN cards USING (card)");
        refused("SELECT id FROM customers NATURAL JOIN cards");
        refused("INSERT INTO copy TABLE customers");
        // The server compares column names without case or accents.
        refused("SELECT id FROM customers WHERE cärd = '1'");
        refused("SELECT `CÄRD` FROM customers");
        // Table names too, where lower_case_table_names says so.
        refused("SELECT id FROM CUSTOMERS WHERE card = '1'");
        allowed("SELECT id FROM orders JOIN items USING (sku)");
    }

    #[test]
    fn views_are_judged_by_their_definition() {
        let r = rules();
        assert_eq!(
            view_reads_masked("SELECT id, card FROM customers", &r).as_deref(),
            Some("shop.customers.card")
        );
        assert!(view_reads_masked("SELECT * FROM customers", &r).is_some());
        assert_eq!(view_reads_masked("SELECT id FROM orders", &r), None);
    }
}
