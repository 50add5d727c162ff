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
//! Names resolve like PostgreSQL's, failing closed: a qualified name by its
//! FROM item (alias, table, or join alias); an unqualified column as masked
//! if any visible table may have a masked column of that name; an
//! unqualified table name as any schema; a name matching a FROM item of a
//! masked table and no masked column as a whole-row reference. `x.f` where
//! the backend's catalog does not show a column `f` of `x` but a function
//! `f` taking one argument is the call `f(x)` (`c.row_to_json`), so a
//! whole-row use. A column alias list (`customers AS c(i, n, e)`) renames
//! columns by position, so each of its names may be a masked column.
//! References to CTEs and subqueries are not tables.
//! Known limits: writes can still act as oracles through constraint errors
//! (a unique index on a masked column); views and functions are opaque
//! (mask their output columns by rule).
//!
//! Layout: [`checker`] holds the walk's state and context; statements are
//! taken apart in `statements` (and `copy`), SELECT scopes in `select`,
//! FROM items in `from`, names in `resolve`, result columns in `output`;
//! `describe` names expressions in messages.

mod checker;
mod columns;
mod copy;
mod describe;
mod findings;
mod from;
mod output;
mod resolve;
mod select;
mod statements;

use pg_query::protobuf as pb;

pub use columns::MaskedColumns;
pub use findings::{MaskViolation, OutputBinding};

use checker::Checker;

/// Checks a query string; `Ok` with the bindings of plain masked outputs,
/// or the first violation. A string that does not parse is refused (fails
/// closed; PostgreSQL would reject most such strings anyway).
pub fn masked_uses(sql: &str, masked: &MaskedColumns) -> Result<Vec<OutputBinding>, MaskViolation> {
    masked_uses_with(sql, masked, &crate::Catalog::bundled())
}

/// [`masked_uses`] against a backend's catalog (which says whether `x.f`
/// is a column or the call `f(x)`).
pub fn masked_uses_with(
    sql: &str,
    masked: &MaskedColumns,
    catalog: &crate::Catalog,
) -> Result<Vec<OutputBinding>, MaskViolation> {
    if masked.is_empty() {
        return Ok(Vec::new());
    }
    match pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) {
        Ok(parsed) => masked_uses_in(&parsed.protobuf, masked, catalog),
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
    catalog: &crate::Catalog,
) -> Result<Vec<OutputBinding>, MaskViolation> {
    let mut c = Checker::new(masked, catalog);
    for (i, raw) in tree.stmts.iter().enumerate() {
        c.statement = i;
        if let Some(stmt) = raw.stmt.as_deref() {
            statistics(stmt)?;
            c.top_statement(stmt);
        }
        if let Some(v) = c.violation.take() {
            return Err(v);
        }
    }
    Ok(c.bindings)
}

/// Statistics views hold sample values of every column, masked ones too.
fn statistics(stmt: &pb::Node) -> Result<(), MaskViolation> {
    use crate::resolve::{Item, from_items, is_statistics};
    for items in from_items(stmt).values() {
        for item in items {
            if let Item::Table { schema, name } = item
                && is_statistics(schema.as_deref(), name)
            {
                return Err(MaskViolation {
                    column: format!("{name} (sample values of masked columns)"),
                    context: "a statistics view".into(),
                });
            }
        }
    }
    Ok(())
}
