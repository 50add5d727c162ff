//! The per-result plan: built once from the row description, then applied
//! to every value of every row without looking anything up again.

use std::borrow::Cow;
use std::sync::Arc;

use sluice_core::config::MaskStyle;

use crate::masker::{Masker, Rewritten};
use crate::stats::MaskStats;
use crate::style::{self, REDACTED};
use crate::types::{Format, TypeClass, classify};

/// A column of a table, as the catalog names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceColumn {
    /// `pg_namespace.nspname`.
    pub schema: String,
    /// `pg_class.relname`.
    pub table: String,
    /// `pg_attribute.attname`.
    pub column: String,
}

impl SourceColumn {
    /// A source column from its three names.
    pub fn new(
        schema: impl Into<String>,
        table: impl Into<String>,
        column: impl Into<String>,
    ) -> Self {
        Self {
            schema: schema.into(),
            table: table.into(),
            column: column.into(),
        }
    }
}

impl std::fmt::Display for SourceColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.schema, self.table, self.column)
    }
}

/// Resolves a row description's table OID and column number to the column's
/// names, from the caller's catalog cache.
pub trait ColumnLookup {
    /// The column, or `None` when the cache does not know it.
    fn source(&self, table_oid: u32, attnum: i16) -> Option<SourceColumn>;
}

impl<F: Fn(u32, i16) -> Option<SourceColumn>> ColumnLookup for F {
    fn source(&self, table_oid: u32, attnum: i16) -> Option<SourceColumn> {
        self(table_oid, attnum)
    }
}

/// One field of a row description, as the plan needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnDesc<'a> {
    /// The output column name (alias).
    pub name: &'a str,
    /// The source table's OID; 0 for a computed column.
    pub table_oid: u32,
    /// The source column's number; 0 for a computed column.
    pub attnum: i16,
    /// The column's type OID.
    pub type_oid: u32,
    /// The format the client asked for.
    pub format: Format,
    /// A style forced by the statement analysis: the output carries a masked
    /// column under another name (`SELECT ssn AS x`) or from a `*`.
    pub forced: Option<MaskStyle>,
}

impl<'a> ColumnDesc<'a> {
    /// A computed, text-format column (no source table).
    pub fn computed(name: &'a str, type_oid: u32) -> Self {
        Self {
            name,
            table_oid: 0,
            attnum: 0,
            type_oid,
            format: Format::Text,
            forced: None,
        }
    }

    /// A column read from a table.
    pub fn from_table(name: &'a str, table_oid: u32, attnum: i16, type_oid: u32) -> Self {
        Self {
            table_oid,
            attnum,
            ..Self::computed(name, type_oid)
        }
    }

    /// The same column in another format.
    pub fn with_format(self, format: Format) -> Self {
        Self { format, ..self }
    }

    /// The same column with a forced style.
    pub fn with_forced(self, style: MaskStyle) -> Self {
        Self {
            forced: Some(style),
            ..self
        }
    }
}

/// What happens to a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnAction {
    /// Sent as is.
    Pass,
    /// Scanned by the detectors; findings replaced.
    Detect,
    /// Replaced as a whole in this style (a text-like or JSON column under a rule).
    Mask(MaskStyle),
    /// Sent as SQL NULL (a rule on a type that cannot hold a mask, or `null`).
    Null,
}

#[derive(Debug, Clone, Copy)]
struct Planned {
    action: ColumnAction,
    class: TypeClass,
    format: Format,
    /// Audit label index for whole-column actions.
    reason: usize,
}

/// What [`MaskPlan::apply_into`] did with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The value passes as it is; nothing was written.
    Unchanged,
    /// Its masked form was appended to the buffer.
    Written,
    /// It becomes SQL NULL; nothing was written.
    Null,
}

/// How to mask each column of one result set.
#[derive(Debug, Clone)]
pub struct MaskPlan {
    masker: Arc<Masker>,
    columns: Vec<Planned>,
    /// Every column passes (asked once per row, so kept).
    pass_through: bool,
}

impl MaskPlan {
    /// Plans a result for an identity with `groups`. Rules apply in this
    /// order: the source column's rule (fail closed to `redact`/NULL when the
    /// lookup cannot resolve a table column and column rules exist), a style
    /// forced by the statement analysis, the output name's rule; otherwise
    /// text-like columns are scanned by the detectors.
    pub fn build<S: AsRef<str>>(
        masker: &Arc<Masker>,
        groups: &[S],
        columns: &[ColumnDesc<'_>],
        lookup: &dyn ColumnLookup,
    ) -> Self {
        let exempt = masker.is_exempt(groups);
        let columns = columns
            .iter()
            .map(|c| {
                let class = classify(c.type_oid, masker.extra_text());
                let (action, reason) = if exempt {
                    (ColumnAction::Pass, 0)
                } else {
                    plan_column(masker, c, class, lookup)
                };
                Planned {
                    action,
                    class,
                    format: c.format,
                    reason,
                }
            })
            .collect::<Vec<Planned>>();
        Self {
            masker: masker.clone(),
            pass_through: columns.iter().all(|p| p.action == ColumnAction::Pass),
            columns,
        }
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether the plan has no columns.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The action for column `col` (`Pass` past the end).
    pub fn action(&self, col: usize) -> ColumnAction {
        self.columns
            .get(col)
            .map_or(ColumnAction::Pass, |p| p.action)
    }

    /// Whether every column passes: rows can be forwarded untouched.
    pub fn is_pass_through(&self) -> bool {
        self.pass_through
    }

    /// Masks one non-NULL value of column `col`: the bytes to send (borrowed,
    /// without allocating, when nothing changes) or `None` for SQL NULL.
    /// A column past the end of the plan is NULLed: a row that does not match
    /// its description is not trusted.
    pub fn apply<'v>(
        &self,
        col: usize,
        value: &'v [u8],
        stats: &mut MaskStats,
    ) -> Option<Cow<'v, [u8]>> {
        let mut out = Vec::new();
        match self.apply_into(col, value, stats, &mut out) {
            Applied::Unchanged => Some(Cow::Borrowed(value)),
            Applied::Written => Some(Cow::Owned(out)),
            Applied::Null => None,
        }
    }

    /// As [`MaskPlan::apply`], appending a changed value to `out` (a buffer
    /// the caller reuses: no allocation per value once it has grown).
    pub fn apply_into(
        &self,
        col: usize,
        value: &[u8],
        stats: &mut MaskStats,
        out: &mut Vec<u8>,
    ) -> Applied {
        let Some(p) = self.columns.get(col) else {
            stats.bump(self.masker.unresolved_reason());
            return Applied::Null;
        };
        match p.action {
            ColumnAction::Pass => Applied::Unchanged,
            ColumnAction::Null => {
                stats.bump(p.reason);
                Applied::Null
            }
            ColumnAction::Mask(style) => {
                stats.bump(p.reason);
                if self.mask_whole(p, value, style, out) {
                    Applied::Written
                } else {
                    Applied::Null
                }
            }
            ColumnAction::Detect => match self.detect(p, value, stats) {
                Some(Cow::Borrowed(_)) => Applied::Unchanged,
                Some(Cow::Owned(v)) => {
                    out.extend_from_slice(&v);
                    Applied::Written
                }
                None => Applied::Null,
            },
        }
    }

    /// Appends the whole-column mask of `value` to `out`; false for NULL.
    fn mask_whole(&self, p: &Planned, value: &[u8], style: MaskStyle, out: &mut Vec<u8>) -> bool {
        let key = self.masker.key();
        match p.class {
            TypeClass::Text => style::mask_whole_into(value, style, key, out),
            TypeClass::Json | TypeClass::Jsonb => {
                // A JSON document has no meaningful "partial": it becomes a
                // JSON string holding the redaction or the hash.
                let inner = match style {
                    MaskStyle::Hash => match style::mask_whole(value, style, key) {
                        Some(h) => h,
                        None => return false,
                    },
                    MaskStyle::Null => return false,
                    _ => REDACTED.to_vec(),
                };
                let binary = p.class == TypeClass::Jsonb && p.format == Format::Binary;
                out.extend_from_slice(&json_string(&inner, binary));
                true
            }
            TypeClass::TextArray | TypeClass::Other => false,
        }
    }

    fn detect<'v>(
        &self,
        p: &Planned,
        value: &'v [u8],
        stats: &mut MaskStats,
    ) -> Option<Cow<'v, [u8]>> {
        let done = |r: Rewritten<'v>| match r {
            Rewritten::Unchanged(v) => Some(Cow::Borrowed(v)),
            Rewritten::Changed(v) => Some(Cow::Owned(v)),
            Rewritten::Null => None,
        };
        let m = &self.masker;
        match (p.class, p.format) {
            (TypeClass::Text, _) => done(m.rewrite(value, stats, |_| true)),
            (TypeClass::TextArray, Format::Text) => {
                // A replacement never contains array syntax, but a finding
                // that spans it (a PEM block across elements) would break it.
                done(m.rewrite(value, stats, |span| {
                    !span.iter().any(|b| b"\"\\{},".contains(b))
                }))
            }
            (TypeClass::TextArray, Format::Binary) => done(m.rewrite(value, stats, |_| false)),
            (TypeClass::Json, _) => json_detect(m, value, stats, false),
            (TypeClass::Jsonb, Format::Text) => json_detect(m, value, stats, false),
            (TypeClass::Jsonb, Format::Binary) => match value.split_first() {
                Some((1, _)) => json_detect(m, value, stats, true),
                // An unknown jsonb version: scan raw, NULL on any finding.
                _ => done(m.rewrite(value, stats, |_| false)),
            },
            (TypeClass::Other, _) => Some(Cow::Borrowed(value)),
        }
    }
}

/// Decides a column's action and audit reason (see [`MaskPlan::build`]).
fn plan_column(
    masker: &Masker,
    c: &ColumnDesc<'_>,
    class: TypeClass,
    lookup: &dyn ColumnLookup,
) -> (ColumnAction, usize) {
    let from_table = c.table_oid != 0 && c.attnum > 0;
    let source_rule = if from_table {
        match lookup.source(c.table_oid, c.attnum) {
            Some(src) => masker.column_rule(&src),
            None if masker.has_column_rules() => {
                Some((masker.unresolved_reason(), MaskStyle::Redact))
            }
            None => None,
        }
    } else {
        None
    };
    let rule = source_rule
        .or(c.forced.map(|s| (masker.binding_reason(), s)))
        .or_else(|| masker.name_rule(c.name));
    match rule {
        Some((reason, style)) => {
            let action = match (class, style) {
                (_, MaskStyle::Null) => ColumnAction::Null,
                (TypeClass::Text | TypeClass::Json | TypeClass::Jsonb, s) => ColumnAction::Mask(s),
                (TypeClass::TextArray | TypeClass::Other, _) => ColumnAction::Null,
            };
            (action, reason)
        }
        None if !masker.detectors().is_empty() && class != TypeClass::Other => {
            (ColumnAction::Detect, 0)
        }
        None => (ColumnAction::Pass, 0),
    }
}

/// Detectors over a JSON document (`skip_version`: binary jsonb, whose first
/// byte is the format version). The result must still parse as JSON; if a
/// replacement broke it (a number replaced by text), the whole document
/// becomes the JSON string `"[REDACTED]"`.
fn json_detect<'v>(
    m: &Masker,
    value: &'v [u8],
    stats: &mut MaskStats,
    skip_version: bool,
) -> Option<Cow<'v, [u8]>> {
    let body = if skip_version { &value[1..] } else { value };
    match m.rewrite(body, stats, |_| true) {
        Rewritten::Unchanged(_) => Some(Cow::Borrowed(value)),
        Rewritten::Null => None,
        Rewritten::Changed(new) => {
            let valid = serde_json::from_slice::<serde::de::IgnoredAny>(&new).is_ok();
            let body = if valid {
                new
            } else {
                json_string(REDACTED, false)
            };
            if skip_version {
                let mut out = Vec::with_capacity(body.len() + 1);
                out.push(1);
                out.extend_from_slice(&body);
                Some(Cow::Owned(out))
            } else {
                Some(Cow::Owned(body))
            }
        }
    }
}

/// `text` as a JSON string literal, with the jsonb version byte if asked.
fn json_string(text: &[u8], jsonb_binary: bool) -> Vec<u8> {
    let s = String::from_utf8_lossy(text);
    let quoted = serde_json::to_string(&*s).unwrap_or_else(|_| "\"[REDACTED]\"".into());
    let mut out = Vec::with_capacity(quoted.len() + 1);
    if jsonb_binary {
        out.push(1);
    }
    out.extend_from_slice(quoted.as_bytes());
    out
}
