//! Statements: which of them return rows (their targets may be plain
//! outputs) and which only use data (every masked use is a violation).

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;

use super::checker::{Checker, Targets, opt_slice};
use super::from::{FromItem, Source};
use crate::statement;
use crate::visit_gen::{self as v, Visit};

impl Checker<'_> {
    pub(super) fn top_statement(&mut self, node: &pb::Node) {
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

    pub(super) fn with_clause(&mut self, w: &pb::WithClause) {
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

    pub(super) fn insert(&mut self, n: &pb::InsertStmt) {
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

    pub(super) fn update(&mut self, n: &pb::UpdateStmt) {
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

    pub(super) fn delete(&mut self, n: &pb::DeleteStmt) {
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

    pub(super) fn merge(&mut self, n: &pb::MergeStmt) {
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

    pub(super) fn returning(&mut self, r: Option<&pb::ReturningClause>, scope: Vec<FromItem>) {
        let Some(r) = r else { return };
        self.scopes.push(scope);
        self.output_targets(&r.exprs);
        self.scopes.pop();
    }
}
