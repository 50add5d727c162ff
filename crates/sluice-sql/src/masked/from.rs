//! FROM items: the names a statement makes visible and what they stand for.

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;

use super::checker::Checker;

/// What a FROM item is, for name resolution.
#[derive(Debug, Clone)]
pub(super) enum Source {
    /// A table (or view), schema as written; `renamed` holds its column
    /// alias list (`customers AS c(i, n, e)`), which renames columns by
    /// position.
    Table {
        schema: Option<String>,
        name: String,
        renamed: Vec<String>,
    },
    /// A join with an alias: its columns are its members'.
    Join(Vec<FromItem>),
    /// A subquery, function, CTE or `VALUES`: checked where it is defined.
    Other,
}

#[derive(Debug, Clone)]
pub(super) struct FromItem {
    /// The name the statement refers to it by (alias or table name).
    pub(super) refname: String,
    pub(super) source: Source,
}

impl FromItem {
    /// The tables whose columns this item exposes.
    pub(super) fn tables(&self) -> Vec<(Option<&str>, &str)> {
        match &self.source {
            Source::Table { schema, name, .. } => vec![(schema.as_deref(), name.as_str())],
            Source::Join(items) => items.iter().flat_map(FromItem::tables).collect(),
            Source::Other => Vec::new(),
        }
    }
}

impl Checker<'_> {
    pub(super) fn table_item(&self, rv: &pb::RangeVar) -> FromItem {
        let refname = rv
            .alias
            .as_ref()
            .map(|a| a.aliasname.clone())
            .unwrap_or_else(|| rv.relname.clone());
        let source = if rv.schemaname.is_empty() && self.ctes.contains(&rv.relname) {
            Source::Other
        } else {
            let renamed = rv
                .alias
                .iter()
                .flat_map(|a| crate::names::strings(&a.colnames))
                .map(str::to_string)
                .collect();
            Source::Table {
                schema: (!rv.schemaname.is_empty()).then(|| rv.schemaname.clone()),
                name: rv.relname.clone(),
                renamed,
            }
        };
        FromItem { refname, source }
    }

    /// The items a FROM list makes visible (joined tables by their own
    /// names, and a join's alias for all of them).
    pub(super) fn items_of(&self, list: &[pb::Node]) -> Vec<FromItem> {
        let mut out = Vec::new();
        for n in list {
            self.item_of(n, &mut out);
        }
        out
    }

    pub(super) fn item_of(&self, n: &pb::Node, out: &mut Vec<FromItem>) {
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
}
