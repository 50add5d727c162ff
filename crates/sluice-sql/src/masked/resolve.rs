//! Column references to masked columns, resolved like PostgreSQL's names
//! but without the catalog, failing closed.

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;

use super::checker::Checker;
use super::from::{FromItem, Source};

/// What a column reference resolved to.
pub(super) enum Resolved {
    /// A masked column: its display name, table and pattern.
    Column(Hit),
    /// A whole-row reference or `*` over tables with masked columns.
    Rows(Vec<Hit>),
    /// Nothing masked.
    Clear,
}

#[derive(Debug, Clone)]
pub(super) struct Hit {
    pub(super) display: String,
    pub(super) schema: Option<String>,
    pub(super) table: String,
    pub(super) column: Option<String>,
    pub(super) pattern: usize,
}

impl Checker<'_> {
    pub(super) fn hit(
        &self,
        schema: Option<&str>,
        table: &str,
        column: Option<&str>,
        pattern: usize,
    ) -> Hit {
        Hit {
            display: self.masked.patterns()[pattern].display_with(
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

    pub(super) fn find_item(&self, refname: &str) -> Option<&FromItem> {
        self.scopes
            .iter()
            .rev()
            .find_map(|scope| scope.iter().find(|i| i.refname == refname))
    }

    pub(super) fn column_of(&self, item: &FromItem, column: &str) -> Option<Hit> {
        if let Some(h) = self.renamed_column(item, column) {
            return Some(h);
        }
        item.tables().into_iter().find_map(|(schema, table)| {
            self.masked
                .column(schema, table, column)
                .map(|p| self.hit(schema, table, Some(column), p))
        })
    }

    /// A name from a column alias list of a table with masked columns: it
    /// may stand for any of them (the list renames columns by position).
    fn renamed_column(&self, item: &FromItem, column: &str) -> Option<Hit> {
        let tables: Vec<&FromItem> = match &item.source {
            Source::Join(members) => members.iter().collect(),
            _ => vec![item],
        };
        tables.into_iter().find_map(|t| match &t.source {
            Source::Table {
                schema,
                name,
                renamed,
            } if renamed.iter().any(|r| r == column) => {
                let schema = schema.as_deref();
                self.masked.table(schema, name).map(|p| {
                    let mut h = self.hit(schema, name, Some(column), p);
                    h.display = format!("{} (renamed by a column alias list)", h.display);
                    h
                })
            }
            _ => None,
        })
    }

    /// `item.f` where `f` is not surely a column of the item but a
    /// function taking one argument has that name: the call `f(item)`,
    /// which sees the whole row.
    fn may_be_call(&self, item: &FromItem, field: &str) -> bool {
        if !self.catalog.takes_one_argument(field) {
            return false;
        }
        let surely_column = |t: &FromItem| match &t.source {
            Source::Table {
                schema,
                name,
                renamed,
            } => {
                renamed.iter().any(|r| r == field)
                    || self.catalog.has_column(schema.as_deref(), name, field)
            }
            _ => false,
        };
        match &item.source {
            Source::Join(members) => !members.iter().any(surely_column),
            _ => !surely_column(item),
        }
    }

    /// A qualified column reference to `item`: the masked column, or the
    /// whole row when the name may be a call on it.
    fn qualified(&self, item: &FromItem, field: &str) -> Resolved {
        if let Some(h) = self.column_of(item, field) {
            return Resolved::Column(h);
        }
        if self.may_be_call(item, field) {
            let rows = self.rows_of(item);
            if !rows.is_empty() {
                return Resolved::Rows(rows);
            }
        }
        Resolved::Clear
    }

    pub(super) fn rows_of(&self, item: &FromItem) -> Vec<Hit> {
        item.tables()
            .into_iter()
            .filter_map(|(schema, table)| {
                self.masked
                    .table(schema, table)
                    .map(|p| self.hit(schema, table, None, p))
            })
            .collect()
    }

    pub(super) fn resolve(&self, fields: &[pb::Node]) -> Resolved {
        let parts: Vec<Option<&str>> = fields
            .iter()
            .map(|f| match &f.node {
                Some(N::String(s)) => Some(s.sval.as_str()),
                _ => None, // A_Star
            })
            .collect();
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
            [Some(t), Some(col)] => self
                .find_item(t)
                .map_or(Resolved::Clear, |i| self.qualified(i, col)),
            [Some(t), None] => self
                .find_item(t)
                .map_or(Resolved::Clear, |i| rows(self.rows_of(i))),
            [.., Some(s), Some(t), last] => {
                let item = self.scopes.iter().rev().flatten().find(|i| {
                    i.refname == *t
                        && matches!(&i.source, Source::Table { schema, name, .. } if name == t && schema.as_deref().is_none_or(|x| x == *s))
                });
                let Some(item) = item else {
                    return Resolved::Clear;
                };
                let renamed = match &item.source {
                    Source::Table { renamed, .. } => renamed.clone(),
                    _ => Vec::new(),
                };
                let qualified = FromItem {
                    refname: item.refname.clone(),
                    source: Source::Table {
                        schema: Some(s.to_string()),
                        name: t.to_string(),
                        renamed,
                    },
                };
                match last {
                    Some(col) => self.qualified(&qualified, col),
                    None => rows(self.rows_of(&qualified)),
                }
            }
            _ => Resolved::Clear,
        }
    }
}

pub(super) fn is_star(fields: &[pb::Node]) -> bool {
    matches!(
        fields.last().and_then(|f| f.node.as_ref()),
        Some(N::AStar(_))
    )
}
