//! A statement's result columns: plain masked columns become bindings;
//! sorting or grouping by a masked output is refused.

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;

use super::checker::Checker;
use super::describe::describe;
use super::findings::OutputBinding;
use super::resolve::{Resolved, is_star};
use crate::visit_gen::Visit;

/// One output of a result target list, for `ORDER BY 1` / alias checks.
#[derive(Debug, Clone, Default)]
pub(super) struct Output {
    pub(super) alias: Option<String>,
    /// The masked column it carries in clear, if any.
    pub(super) carries: Option<String>,
}

impl Checker<'_> {
    /// A target list that is the statement's result: plain masked columns
    /// become bindings; everything else is checked as an expression.
    /// Returns, per target, its alias and the masked column it carries.
    pub(super) fn output_targets(&mut self, list: &[pb::Node]) -> Vec<Output> {
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
    pub(super) fn output_references(&mut self, n: &pb::SelectStmt, outputs: &[Output]) {
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

    pub(super) fn bind(
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
}
