//! The walker's state, the context that names the place of a violation,
//! and the generic visitor's hooks (column references, subqueries).

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;

use super::columns::MaskedColumns;
use super::findings::{MaskViolation, OutputBinding};
use super::from::FromItem;
use super::resolve::Resolved;
use crate::visit_gen::{self as v, Visit};

/// How a SELECT's target list is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Targets {
    /// The statement's result: plain masked columns become bindings.
    Output,
    /// Anywhere else: every masked use is a violation.
    Nested,
    /// `EXISTS (…)`: the targets are never evaluated into a value.
    Ignored,
}

/// One walk over a query string's statements.
pub(super) struct Checker<'m> {
    pub(super) masked: &'m MaskedColumns,
    /// The backend's names: whether `x.f` is a column or a call.
    pub(super) catalog: &'m crate::Catalog,
    /// FROM scopes, innermost last (outer ones for correlated subqueries).
    pub(super) scopes: Vec<Vec<FromItem>>,
    /// CTE names in scope: an unqualified reference to one is not a table.
    pub(super) ctes: Vec<String>,
    /// Where the walk is, for messages; `None` only at plain output.
    pub(super) ctx: Option<String>,
    pub(super) violation: Option<MaskViolation>,
    pub(super) statement: usize,
    pub(super) bindings: Vec<OutputBinding>,
}

impl<'m> Checker<'m> {
    pub(super) fn new(masked: &'m MaskedColumns, catalog: &'m crate::Catalog) -> Self {
        Self {
            masked,
            catalog,
            scopes: Vec::new(),
            ctes: Vec::new(),
            ctx: None,
            violation: None,
            statement: 0,
            bindings: Vec::new(),
        }
    }

    pub(super) fn violate(&mut self, column: &str, context: Option<&str>) {
        if self.violation.is_none() {
            let context = context
                .or(self.ctx.as_deref())
                .unwrap_or("an expression")
                .to_string();
            self.violation = Some(MaskViolation {
                column: column.to_string(),
                context,
            });
        }
    }

    /// Runs `f` in context `label` unless an outer context already names
    /// the place (the outermost one is the most useful in a message).
    pub(super) fn within(&mut self, label: impl Into<String>, f: impl FnOnce(&mut Self)) {
        if self.ctx.is_some() {
            return f(self);
        }
        self.ctx = Some(label.into());
        f(self);
        self.ctx = None;
    }

    /// Runs `f` in context `label`, replacing any outer one.
    pub(super) fn within_exactly(&mut self, label: impl Into<String>, f: impl FnOnce(&mut Self)) {
        let saved = self.ctx.replace(label.into());
        f(self);
        self.ctx = saved;
    }

    pub(super) fn visit_opt(&mut self, node: Option<&pb::Node>) {
        if let Some(n) = node {
            self.visit_node(n);
        }
    }

    pub(super) fn visit_all(&mut self, nodes: &[pb::Node]) {
        for n in nodes {
            self.visit_node(n);
        }
    }

    pub(super) fn in_clause(&mut self, label: &str, nodes: &[pb::Node]) {
        if !nodes.is_empty() {
            self.within(label.to_string(), |c| c.visit_all(nodes));
        }
    }
}

impl Visit for Checker<'_> {
    fn visit_column_ref(&mut self, n: &pb::ColumnRef) {
        match self.resolve(&n.fields) {
            Resolved::Column(h) => self.violate(&h.display, None),
            Resolved::Rows(hits) => {
                if let Some(h) = hits.first() {
                    let display = h.display.clone();
                    self.violate(&display, None);
                }
            }
            Resolved::Clear => {}
        }
    }

    fn visit_select_stmt(&mut self, n: &pb::SelectStmt) {
        self.within("a subquery", |c| c.select(n, Targets::Nested));
    }

    fn visit_sub_link(&mut self, n: &pb::SubLink) {
        let exists = n.sub_link_type == pb::SubLinkType::ExistsSublink as i32;
        match (
            &n.subselect.as_deref().and_then(|s| s.node.as_ref()),
            exists,
        ) {
            (Some(N::SelectStmt(s)), true) => {
                self.within("a subquery", |c| c.select(s, Targets::Ignored))
            }
            _ => self.within("a subquery", |c| v::walk_sub_link(c, n)),
        }
    }

    fn visit_with_clause(&mut self, n: &pb::WithClause) {
        // Reached only for WITH clauses outside SELECT/INSERT/UPDATE/DELETE/MERGE
        // handling; check their queries as nested.
        self.within("a WITH query", |c| v::walk_with_clause(c, n));
    }
}

pub(super) fn opt_slice(n: &Option<Box<pb::Node>>) -> &[pb::Node] {
    match n {
        Some(b) => std::slice::from_ref(b.as_ref()),
        None => &[],
    }
}
