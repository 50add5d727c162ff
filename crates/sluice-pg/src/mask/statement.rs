//! What the statement path learns for masking, once per SQL string: the
//! bypass analysis (`sluice_sql::masked_uses`) and, for `COPY … TO STDOUT`,
//! the table, column list and format options the result path needs to
//! mask its rows.

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;
use sluice_mask::CopyFormat;
use sluice_sql::{MaskViolation, MaskedColumns, OutputBinding};

/// The masking facts of one analysed SQL string.
#[derive(Debug, Clone, Default)]
pub struct StatementMask {
    /// Plain outputs carrying masked columns, by statement index.
    pub bindings: Vec<OutputBinding>,
    /// A use of a masked column that masking cannot protect.
    pub violation: Option<MaskViolation>,
    /// Per statement index: its `COPY … TO STDOUT`, if it is one.
    pub copies: Vec<Option<CopySpec>>,
}

/// A `COPY … TO STDOUT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySpec {
    /// The table (schema as written), or `None` for `COPY (query)`.
    pub table: Option<(Option<String>, String)>,
    /// The listed columns (empty: all of the table's).
    pub columns: Vec<String>,
    pub format: CopyFormat,
    /// CSV `HEADER`: the first row is column names and passes untouched.
    pub header: bool,
}

impl StatementMask {
    /// Analyses `sql` against the connection's masked columns and the
    /// backend's catalog.
    pub fn check(sql: &str, masked: &MaskedColumns, catalog: &sluice_sql::Catalog) -> Self {
        let (bindings, mut violation) = match sluice_sql::masked_uses_with(sql, masked, catalog) {
            Ok(b) => (b, None),
            Err(v) => (Vec::new(), Some(v)),
        };
        let copies = if contains_copy(sql) {
            copy_specs(sql)
        } else {
            Ok(Vec::new())
        };
        let copies = match copies {
            Ok(c) => c,
            Err(v) => {
                violation.get_or_insert(v);
                Vec::new()
            }
        };
        StatementMask {
            bindings,
            violation,
            copies,
        }
    }

    /// The COPY of statement `index`, if it is one.
    pub fn copy(&self, index: usize) -> Option<&CopySpec> {
        self.copies.get(index).and_then(Option::as_ref)
    }
}

fn contains_copy(sql: &str) -> bool {
    sql.as_bytes()
        .windows(4)
        .any(|w| w.eq_ignore_ascii_case(b"copy"))
}

/// The COPY TO STDOUT statements of `sql`. Binary COPY out is refused:
/// its fields cannot be rewritten (nor scanned by the detectors) without a
/// decoder per type.
fn copy_specs(sql: &str) -> Result<Vec<Option<CopySpec>>, MaskViolation> {
    let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
        // masked_uses already refuses what does not parse.
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for raw in &parsed.protobuf.stmts {
        let spec = match raw.stmt.as_deref().and_then(|s| s.node.as_ref()) {
            Some(N::CopyStmt(c)) if !c.is_from => copy_spec(c)?,
            _ => None,
        };
        out.push(spec);
    }
    Ok(out)
}

fn copy_spec(c: &pb::CopyStmt) -> Result<Option<CopySpec>, MaskViolation> {
    let mut csv = false;
    let mut binary = false;
    let mut header = false;
    let mut delimiter = None;
    let mut quote = None;
    let mut escape = None;
    let mut null = None;
    for o in &c.options {
        let Some(N::DefElem(d)) = &o.node else {
            continue;
        };
        let value = d.arg.as_deref().and_then(setting);
        match d.defname.as_str() {
            "format" => match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("csv") => csv = true,
                Some("binary") => binary = true,
                _ => {}
            },
            // HEADER alone, true, on, 1 or MATCH.
            "header" => {
                header = value.as_deref().is_none_or(|v| {
                    !matches!(v.to_ascii_lowercase().as_str(), "false" | "off" | "0")
                })
            }
            "delimiter" => delimiter = value.and_then(|v| v.bytes().next()),
            "quote" => quote = value.and_then(|v| v.bytes().next()),
            "escape" => escape = value.and_then(|v| v.bytes().next()),
            "null" => null = value.map(String::into_bytes),
            _ => {}
        }
    }
    let table = c.relation.as_ref().map(|r| {
        (
            (!r.schemaname.is_empty()).then(|| r.schemaname.clone()),
            r.relname.clone(),
        )
    });
    if binary {
        let name = table
            .as_ref()
            .map_or("(query)".to_string(), |(_, t)| format!("{t}.*"));
        return Err(MaskViolation {
            column: name,
            context: "binary COPY (use FORMAT text or csv)".into(),
        });
    }
    let format = if csv {
        let quote = quote.unwrap_or(b'"');
        CopyFormat::Csv {
            delimiter: delimiter.unwrap_or(b','),
            quote,
            escape: escape.unwrap_or(quote),
            null: null.unwrap_or_default(),
        }
    } else {
        CopyFormat::Text {
            delimiter: delimiter.unwrap_or(b'\t'),
            null: null.unwrap_or_else(|| b"\\N".to_vec()),
        }
    };
    let columns = c
        .attlist
        .iter()
        .filter_map(|a| match &a.node {
            Some(N::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect();
    Ok(Some(CopySpec {
        table,
        columns,
        format,
        header: header && csv,
    }))
}

/// A constant option value as text.
fn setting(n: &pb::Node) -> Option<String> {
    sluice_sql::literals::mark();
    match n.node.as_ref()? {
        N::String(s) => Some(s.sval.clone()),
        N::Boolean(b) => Some(b.boolval.to_string()),
        N::Integer(i) => Some(i.ival.to_string()),
        N::AConst(c) => match c.val.as_ref()? {
            pb::a_const::Val::Sval(s) => Some(s.sval.clone()),
            pb::a_const::Val::Boolval(b) => Some(b.boolval.to_string()),
            pb::a_const::Val::Ival(i) => Some(i.ival.to_string()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(sql: &str) -> Option<CopySpec> {
        StatementMask::check(
            sql,
            &MaskedColumns::default(),
            &sluice_sql::Catalog::bundled(),
        )
        .copy(0)
        .cloned()
    }

    #[test]
    fn copy_options() {
        let s =
            spec("COPY public.customers (id, ssn) TO STDOUT WITH (FORMAT csv, HEADER)").unwrap();
        assert_eq!(s.table, Some((Some("public".into()), "customers".into())));
        assert_eq!(s.columns, ["id", "ssn"]);
        assert_eq!(s.format, CopyFormat::csv());
        assert!(s.header);
        let s = spec("COPY customers TO STDOUT CSV HEADER DELIMITER ';'").unwrap();
        assert!(s.header);
        assert!(matches!(
            s.format,
            CopyFormat::Csv {
                delimiter: b';',
                ..
            }
        ));
        let s = spec("COPY (SELECT 1) TO STDOUT").unwrap();
        assert_eq!(s.table, None);
        assert_eq!(s.format, CopyFormat::text());
        assert!(spec("SELECT 1").is_none());
    }

    #[test]
    fn binary_copy_is_refused() {
        let m = StatementMask::check(
            "COPY orders TO STDOUT (FORMAT binary)",
            &MaskedColumns::default(),
            &sluice_sql::Catalog::bundled(),
        );
        assert!(m.violation.unwrap().message().contains("binary COPY"));
    }
}
