//! Which table a `COPY name TO STDOUT` copies, for planning its masks.
//!
//! The lookup runs on a side session, whose `search_path` need not be the
//! client's: the client may have changed its own (`SET search_path`,
//! `set_config`, a `search_path` startup parameter, a function that sets
//! it), and the backend resolves an unqualified name with the client's.
//! So the lookup uses no search path at all. A qualified name means one
//! table. An unqualified name is looked up in every schema: when one table
//! has that name, it is the only one any search path can reach; when
//! several do, which one the backend copies is up to the client's session,
//! and the answer is [`CopyTable::Ambiguous`] if any of them has a column
//! under a rule (the statement is then refused before it reaches the
//! backend: "name the schema") or [`CopyTable::Unruled`] if none has
//! (every field is then scanned by the detectors, whatever its type in one
//! table or another).
//!
//! Temporary schemas are left out: another session's temporary tables
//! cannot be read, and the client's own hold only what the client put there
//! through statements that were themselves checked.

use std::collections::BTreeMap;

use sluice_mask::{Masker, SourceColumn};
use sluice_sql::MaskViolation;

use super::StatementMask;
use crate::side::{Opener, Row, num, query, text};

/// A column of a COPY'd table, in table order.
#[derive(Debug, Clone)]
pub struct TableColumn {
    pub table_oid: u32,
    pub attnum: i16,
    pub name: String,
    pub type_oid: u32,
    pub source: SourceColumn,
}

/// What a COPY's table name can mean.
#[derive(Debug, Clone)]
pub enum CopyTable {
    /// One table: its columns, in order.
    One(Vec<TableColumn>),
    /// Several tables, none with a column under a rule.
    Unruled,
    /// Several tables, some with columns under a rule: `schemas` hold them.
    Ambiguous { schemas: Vec<String> },
    /// No such table, or the lookup failed: callers fail closed.
    Unknown,
}

/// Looks up the table(s) `schema.table` can name (see the module comment).
pub async fn resolve(
    opener: &Opener,
    masker: &Masker,
    schema: Option<&str>,
    table: &str,
) -> CopyTable {
    let sql = lookup_sql(schema, table);
    let rows = match query(opener, &sql).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "masking catalog lookup failed; COPY fails closed");
            return CopyTable::Unknown;
        }
    };
    classify(by_table(&rows), masker)
}

/// The first unqualified `COPY name TO STDOUT` of `mask` whose name is
/// [`CopyTable::Ambiguous`], as the violation the client is refused with.
pub async fn ambiguity(
    opener: &Opener,
    masker: &Masker,
    mask: &StatementMask,
) -> Option<MaskViolation> {
    let mut names: Vec<&str> = mask
        .copies
        .iter()
        .flatten()
        .filter_map(|c| match &c.table {
            Some((None, table)) => Some(table.as_str()),
            _ => None,
        })
        .collect();
    names.dedup();
    for table in names {
        if let CopyTable::Ambiguous { schemas } = resolve(opener, masker, None, table).await {
            return Some(ambiguous(table, &schemas));
        }
    }
    None
}

/// The refusal of a COPY whose unqualified name several schemas hold.
pub fn ambiguous(table: &str, schemas: &[String]) -> MaskViolation {
    MaskViolation {
        column: format!("{table}.*"),
        context: format!(
            "a COPY by an unqualified name: tables named {table} are in several schemas, \
             masked in {} (name the schema)",
            schemas.join(", ")
        ),
    }
}

/// The catalog query: a qualified name through `to_regclass`, an
/// unqualified one by `relname` in every schema but temporary ones.
fn lookup_sql(schema: Option<&str>, table: &str) -> String {
    let literal = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let ident = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let which = match schema {
        Some(s) => format!(
            "c.oid = pg_catalog.to_regclass({})",
            literal(&format!("{}.{}", ident(s), ident(table)))
        ),
        None => format!(
            "c.relname = {} AND n.nspname !~ '^pg_(toast_)?temp_'",
            literal(table)
        ),
    };
    // A domain's values are its base type's: a RowDescription names the
    // base type too, so COPY fields are classed as SELECT columns are.
    format!(
        "SELECT c.oid::int8, a.attnum, a.attname, ({BASE_TYPE})::int8, n.nspname, c.relname \
         FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid \
         WHERE {which} AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY c.oid, a.attnum"
    )
}

/// The base type of column `a`'s type, through any number of domains.
const BASE_TYPE: &str = "WITH RECURSIVE d(oid, base) AS ( \
     SELECT t.oid, t.typbasetype FROM pg_catalog.pg_type t WHERE t.oid = a.atttypid \
     UNION ALL SELECT t.oid, t.typbasetype FROM d JOIN pg_catalog.pg_type t ON t.oid = d.base) \
     SELECT oid FROM d WHERE base = 0";

/// The answer's columns, grouped by table OID.
fn by_table(rows: &[Row]) -> BTreeMap<u32, Vec<TableColumn>> {
    let mut tables: BTreeMap<u32, Vec<TableColumn>> = BTreeMap::new();
    for r in rows {
        let column = (|| {
            Some(TableColumn {
                table_oid: num(r, 0)?,
                attnum: num(r, 1)?,
                name: text(r, 2)?,
                type_oid: num(r, 3)?,
                source: SourceColumn::new(text(r, 4)?, text(r, 5)?, text(r, 2)?),
            })
        })();
        if let Some(c) = column {
            tables.entry(c.table_oid).or_default().push(c);
        }
    }
    tables
}

fn classify(mut tables: BTreeMap<u32, Vec<TableColumn>>, masker: &Masker) -> CopyTable {
    if tables.len() <= 1 {
        return tables
            .pop_first()
            .map_or(CopyTable::Unknown, |(_, cols)| CopyTable::One(cols));
    }
    let mut schemas: Vec<String> = tables
        .values()
        .filter(|cols| cols.iter().any(|c| masker.has_rule_for(&c.source)))
        .filter_map(|cols| cols.first().map(|c| c.source.schema.clone()))
        .collect();
    if schemas.is_empty() {
        return CopyTable::Unruled;
    }
    schemas.sort();
    CopyTable::Ambiguous { schemas }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(oid: u32, schema: &str, name: &str) -> Row {
        [
            Some(oid.to_string()),
            Some("1".into()),
            Some(name.into()),
            Some("25".into()),
            Some(schema.into()),
            Some("customers".into()),
        ]
        .into()
    }

    fn masker() -> Masker {
        let config =
            toml::from_str(r#"columns = [{ column = "vault.customers.ssn", style = "redact" }]"#)
                .unwrap();
        Masker::from_config(&config).unwrap()
    }

    #[test]
    fn one_table_is_its_columns_several_are_ambiguous_when_any_is_ruled() {
        let m = masker();
        let one = by_table(&[column(10, "public", "ssn")]);
        assert!(matches!(classify(one, &m), CopyTable::One(c) if c.len() == 1));
        let two = by_table(&[column(10, "public", "ssn"), column(11, "vault", "ssn")]);
        assert!(
            matches!(classify(two, &m), CopyTable::Ambiguous { schemas } if schemas == ["vault"])
        );
        let clear = by_table(&[column(10, "public", "ssn"), column(11, "archive", "ssn")]);
        assert!(matches!(classify(clear, &m), CopyTable::Unruled));
        assert!(matches!(classify(by_table(&[]), &m), CopyTable::Unknown));
    }

    #[test]
    fn names_are_quoted_and_temporary_schemas_left_out() {
        let sql = lookup_sql(None, "o'brien");
        assert!(sql.contains("c.relname = 'o''brien'"), "{sql}");
        assert!(sql.contains("temp_"), "{sql}");
        let sql = lookup_sql(Some("We\"ird"), "t");
        assert!(sql.contains(r#"to_regclass('"We""ird"."t"')"#), "{sql}");
    }
}
