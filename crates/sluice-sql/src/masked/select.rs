//! SELECT: its scope, its clauses, set operations, and the expressions
//! inside its FROM list.

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;

use super::checker::{Checker, Targets, opt_slice};
use crate::visit_gen::Visit;

impl Checker<'_> {
    /// A SELECT (or VALUES, or set operation) with its own scope.
    pub(super) fn select(&mut self, n: &pb::SelectStmt, targets: Targets) {
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

    /// Walks the expressions inside a FROM list: subqueries, function
    /// arguments, join conditions.
    pub(super) fn walk_from(&mut self, list: &[pb::Node]) {
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

    pub(super) fn natural_join(&mut self, j: &pb::JoinExpr) {
        let mut members = Vec::new();
        for side in [j.larg.as_deref(), j.rarg.as_deref()].into_iter().flatten() {
            self.item_of(side, &mut members);
        }
        for m in &members {
            for (schema, table) in m.tables() {
                if let Some(p) = self.masked.table(schema, table) {
                    let display = self.masked.patterns()[p].display_with(schema, table, "*");
                    return self.violate(&display, Some("a NATURAL JOIN"));
                }
            }
        }
    }
}

/// A `USING (col)` name as a one-field column reference.
pub(super) fn column_ref_node(name: pb::Node) -> pb::Node {
    pb::Node {
        node: Some(N::ColumnRef(pb::ColumnRef {
            fields: vec![name],
            location: -1,
        })),
    }
}
