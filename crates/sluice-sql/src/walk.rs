//! The walker: one pass over a statement's parse tree that finds everything
//! it does, through every wrapper.
//!
//! The generated visitor (`visit_gen.rs`) reaches every node; this file
//! overrides the node types that matter: statements (each raises the class to
//! its own), function calls and operators, relations read and written,
//! `INTO`, row locks, CTE scopes, and the wrappers that change whether the
//! inner statement runs now (`EXPLAIN` without `ANALYZE`, view and function
//! bodies, rules, policies and trigger conditions are only planned or stored).

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;
use sluice_core::guardrail::{StatementClass, StatementFacts};

use std::collections::HashMap;

use crate::catalog::{Catalog, Resolved};
use crate::functions::FunctionPolicy;
use crate::names;
use crate::resolve::{self, Item};
use crate::session;
use crate::statement::{self, explain_analyze};
use crate::visit_gen::{self as v, Visit};

/// Whether the code being walked runs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Runs as part of this statement: everything counts.
    Exec,
    /// Only planned (`EXPLAIN` without `ANALYZE`): only unknown functions
    /// count, since the planner may run a user function marked immutable.
    Plan,
    /// Stored for later (view, function body, rule, policy): nothing runs now.
    Define,
}

/// Where a class came from, so that callers can take parts back out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Plain,
    /// Turning read-only off (see [`StatementFacts::base_class`]).
    Toggle,
    /// An `EXECUTE` not yet resolved against the session's prepared statements.
    Execute,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Escalation {
    class: StatementClass,
    reason: Option<String>,
    source: Source,
}

/// What walking one statement found, beyond its facts: the parts a
/// [`PreparedTracker`](crate::PreparedTracker) needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SessionEffects {
    /// `PREPARE name AS <command>`.
    pub prepares: Option<String>,
    /// Names run by `EXECUTE`, anywhere in the statement.
    pub executes: Vec<String>,
    /// `DEALLOCATE name` (`Some(name)`) or `DEALLOCATE ALL` (`None`).
    pub deallocates: Option<Option<String>>,
    /// `DISCARD ALL` drops every prepared statement.
    pub discards_all: bool,
    /// `DECLARE name CURSOR`: a portal of that name.
    pub declares: Option<String>,
    /// `CLOSE name` (`Some(name)`) or `CLOSE ALL` (`None`).
    pub closes: Option<Option<String>>,
}

/// The result of walking one statement.
pub(crate) struct Walked {
    pub facts: StatementFacts,
    /// The facts without the `unknown` of unresolved `EXECUTE`s, for the
    /// tracker to combine with the prepared statements' facts.
    pub without_execute: Option<StatementFacts>,
    pub effects: SessionEffects,
}

/// Walks one top-level statement.
pub(crate) fn walk_statement(
    stmt: &pb::Node,
    policy: &FunctionPolicy,
    catalog: &Catalog,
    fingerprint: String,
) -> Walked {
    let mut w = Walker::new(policy, catalog, resolve::from_items(stmt));
    w.visit_node(stmt);
    if w.command.is_empty() {
        // A top-level node that is not a statement the analysis knows.
        let kind = v::node_kind(stmt);
        w.command = kind.to_string();
        w.escalate(
            StatementClass::Unknown,
            Some(format!("unrecognized statement type {kind}")),
            Source::Plain,
        );
    }
    let facts = w.facts(|_| true, fingerprint.clone());
    let without_execute = w
        .escalations
        .iter()
        .any(|e| e.source == Source::Execute)
        .then(|| w.facts(|e| e.source != Source::Execute, fingerprint));
    Walked {
        facts,
        without_execute,
        effects: w.effects,
    }
}

struct Walker<'p> {
    policy: &'p FunctionPolicy,
    catalog: &'p Catalog,
    /// The statement's FROM items by name, for attribute notation.
    items: HashMap<String, Vec<Item>>,
    mode: Mode,
    /// Statement nesting depth: 0 while on the top-level statement node.
    depth: u32,
    /// How to name a nested statement in a reason: `"data-modifying CTE: "`.
    context: &'static str,
    command: String,
    escalations: Vec<Escalation>,
    tables_read: Vec<String>,
    tables_written: Vec<String>,
    functions: Vec<String>,
    /// Why the statement is refused outright, if it is.
    refused: Option<String>,
    /// Settings changed, with constant values.
    settings: Vec<(String, Option<String>)>,
    /// Relations already recorded as written, so they are not also "read".
    targets: Vec<*const pb::RangeVar>,
    /// CTE names in scope: an unqualified reference to one is not a table.
    ctes: Vec<String>,
    /// WITH clauses already walked with their scope.
    scoped: Vec<*const pb::WithClause>,
    effects: SessionEffects,
}

impl<'p> Walker<'p> {
    fn new(
        policy: &'p FunctionPolicy,
        catalog: &'p Catalog,
        items: HashMap<String, Vec<Item>>,
    ) -> Self {
        Self {
            policy,
            catalog,
            items,
            mode: Mode::Exec,
            depth: 0,
            context: "contains ",
            command: String::new(),
            escalations: Vec::new(),
            tables_read: Vec::new(),
            tables_written: Vec::new(),
            functions: Vec::new(),
            refused: None,
            settings: Vec::new(),
            targets: Vec::new(),
            ctes: Vec::new(),
            scoped: Vec::new(),
            effects: SessionEffects::default(),
        }
    }

    /// Raises the class, if what was found runs now (see [`Mode`]).
    fn escalate(&mut self, class: StatementClass, reason: Option<String>, source: Source) {
        let counts = match self.mode {
            Mode::Exec => true,
            Mode::Plan => class == StatementClass::Unknown,
            Mode::Define => false,
        };
        let e = Escalation {
            class,
            reason,
            source,
        };
        if counts && !self.escalations.contains(&e) {
            self.escalations.push(e);
        }
    }

    fn facts(&self, keep: impl Fn(&Escalation) -> bool, fingerprint: String) -> StatementFacts {
        let kept: Vec<&Escalation> = self.escalations.iter().filter(|e| keep(e)).collect();
        let class_of = |it: &mut dyn Iterator<Item = &&Escalation>| {
            it.map(|e| e.class).max().unwrap_or(StatementClass::Read)
        };
        let class = class_of(&mut kept.iter());
        let disables_read_only = kept.iter().any(|e| e.source == Source::Toggle);
        let base = class_of(&mut kept.iter().filter(|e| e.source != Source::Toggle));
        // The reason behind the final class first: it is the one a client sees.
        let mut by_severity = kept.clone();
        by_severity.sort_by_key(|e| std::cmp::Reverse(e.class));
        let mut reasons: Vec<String> = Vec::new();
        for r in by_severity.iter().filter_map(|e| e.reason.as_ref()) {
            if !reasons.contains(r) {
                reasons.push(r.clone());
            }
        }
        StatementFacts {
            class,
            command: self.command.clone(),
            tables_read: self.tables_read.clone(),
            tables_written: self.tables_written.clone(),
            functions: self.functions.clone(),
            fingerprint,
            reasons,
            disables_read_only,
            base_class: (disables_read_only && base < StatementClass::Admin).then_some(base),
            refused: self.refused.clone(),
            settings: self.settings.clone(),
        }
    }

    /// Marks the statement refused outright (the first reason is kept).
    /// Definitions (view and function bodies) run nothing now, but a
    /// refusal stands in them too: doubt fails closed.
    fn refuse(&mut self, why: Option<String>) {
        if self.refused.is_none() {
            self.refused = why;
        }
    }

    fn note(list: &mut Vec<String>, name: String) {
        if !list.contains(&name) {
            list.push(name);
        }
    }

    /// Records a relation the statement writes (creates, alters, drops).
    fn target(&mut self, rv: &pb::RangeVar) {
        self.targets.push(rv);
        Self::note(&mut self.tables_written, names::relation(rv));
    }

    fn target_nodes(&mut self, nodes: &[pb::Node]) {
        for n in nodes {
            if let Some(N::RangeVar(rv)) = &n.node {
                self.target(rv);
            }
        }
    }

    /// Runs `f` in a mode, unless the current mode already runs less.
    fn in_mode(&mut self, mode: Mode, f: impl FnOnce(&mut Self)) {
        let saved = self.mode;
        let rank = |m| match m {
            Mode::Exec => 0,
            Mode::Plan => 1,
            Mode::Define => 2,
        };
        if rank(mode) > rank(saved) {
            self.mode = mode;
        }
        f(self);
        self.mode = saved;
    }

    fn in_context(&mut self, context: &'static str, f: impl FnOnce(&mut Self)) {
        let saved = std::mem::replace(&mut self.context, context);
        f(self);
        self.context = saved;
    }

    /// Walks a statement body with its WITH clause's names in scope: each CTE
    /// sees the ones before it (all of them when `RECURSIVE`), the body sees all.
    fn with_scope(&mut self, with: Option<&pb::WithClause>, body: impl FnOnce(&mut Self)) {
        let Some(w) = with else { return body(self) };
        let mark = self.ctes.len();
        let name = |n: &pb::Node| match &n.node {
            Some(N::CommonTableExpr(c)) => Some(c.ctename.clone()),
            _ => None,
        };
        if w.recursive {
            self.ctes.extend(w.ctes.iter().filter_map(name));
        }
        for cte in &w.ctes {
            self.visit_node(cte);
            if !w.recursive {
                self.ctes.extend(name(cte));
            }
        }
        self.scoped.push(w);
        body(self);
        self.scoped.pop();
        self.ctes.truncate(mark);
    }

    /// Escalates by a resolved name, unless it is a plain read.
    fn resolved(&mut self, r: Resolved) {
        if r.class != StatementClass::Read || r.reason.is_some() {
            self.escalate(r.class, r.reason, Source::Plain);
        }
    }

    fn function_call(&mut self, call: &pb::FuncCall) {
        let major = self.catalog.major();
        if let Some(why) = resolve::hidden_column(call, major) {
            return self.escalate(StatementClass::Unknown, Some(why), Source::Plain);
        }
        let shown = names::qualified(&call.funcname);
        Self::note(&mut self.functions, shown.clone());
        if self.policy.is_declared(&shown) {
            let class = self.policy.class_of(&shown);
            if class != StatementClass::Read {
                let reason = format!("calls {shown} ({class}, as configured)");
                self.escalate(class, Some(reason), Source::Plain);
            }
            return;
        }
        let (schema, name) = resolve::call_name(&call.funcname, major);
        let nargs = if call.agg_star { 0 } else { call.args.len() };
        let builtin_only = self.catalog.builtin_only(schema.as_deref(), &name, nargs);
        if name == "set_config" && builtin_only {
            let (effect, change) = session::set_config(&call.args);
            self.refuse(effect.refused.clone());
            if let Some(change) = change
                && self.mode == Mode::Exec
            {
                self.settings.push(change);
            }
            let source = if effect.toggles {
                Source::Toggle
            } else {
                Source::Plain
            };
            self.escalate(effect.class, effect.reason, source);
            return;
        }
        let r = self.catalog.call(schema.as_deref(), &name, nargs);
        self.resolved(r);
    }

    /// `q.f` or `(expr).f`: the call `f(q)` it may be.
    fn attribute(&mut self, schema: Option<&str>, qualifier: &str, field: &str) {
        let catalog = self.catalog;
        let Some(r) = resolve::attribute_call(catalog, &self.items, schema, qualifier, field)
        else {
            return;
        };
        if r.class != StatementClass::Read {
            Self::note(&mut self.functions, field.to_string());
        }
        self.resolved(r);
    }
}

impl Visit for Walker<'_> {
    fn visit_node(&mut self, n: &pb::Node) {
        let Some(inner) = &n.node else { return };
        match resolve::older_reading(inner, self.catalog.major()) {
            Some(Ok((name, nargs))) => {
                Self::note(&mut self.functions, name.to_string());
                let r = self.catalog.call(None, name, nargs);
                self.resolved(r);
            }
            Some(Err(why)) => self.escalate(StatementClass::Unknown, Some(why), Source::Plain),
            None => {}
        }
        let Some(kind) = statement::kind(inner) else {
            return v::walk_node(self, n);
        };
        let source = match inner {
            N::ExecuteStmt(_) => Source::Execute,
            _ if kind.toggles => Source::Toggle,
            _ => Source::Plain,
        };
        self.refuse(kind.refused.clone());
        if self.depth == 0 {
            self.command = kind.command.clone();
            self.escalate(kind.class, kind.reason, source);
        } else if kind.class > StatementClass::Read || kind.reason.is_some() {
            let reason = kind
                .reason
                .unwrap_or_else(|| format!("{}{}", self.context, kind.command));
            self.escalate(kind.class, Some(reason), source);
        }
        self.depth += 1;
        self.in_context("contains ", |s| v::walk_node(s, n));
        self.depth -= 1;
    }

    // --- scopes and targets of data-changing statements

    fn visit_select_stmt(&mut self, n: &pb::SelectStmt) {
        self.with_scope(n.with_clause.as_ref(), |s| v::walk_select_stmt(s, n));
    }

    fn visit_insert_stmt(&mut self, n: &pb::InsertStmt) {
        if let Some(rv) = &n.relation {
            self.target(rv);
        }
        self.with_scope(n.with_clause.as_ref(), |s| v::walk_insert_stmt(s, n));
    }

    fn visit_update_stmt(&mut self, n: &pb::UpdateStmt) {
        if let Some(rv) = &n.relation {
            self.target(rv);
        }
        self.with_scope(n.with_clause.as_ref(), |s| v::walk_update_stmt(s, n));
    }

    fn visit_delete_stmt(&mut self, n: &pb::DeleteStmt) {
        if let Some(rv) = &n.relation {
            self.target(rv);
        }
        self.with_scope(n.with_clause.as_ref(), |s| v::walk_delete_stmt(s, n));
    }

    fn visit_merge_stmt(&mut self, n: &pb::MergeStmt) {
        if let Some(rv) = &n.relation {
            self.target(rv);
        }
        self.with_scope(n.with_clause.as_ref(), |s| v::walk_merge_stmt(s, n));
    }

    fn visit_with_clause(&mut self, n: &pb::WithClause) {
        if !self.scoped.iter().any(|p| std::ptr::eq(*p, n)) {
            v::walk_with_clause(self, n);
        }
    }

    fn visit_common_table_expr(&mut self, n: &pb::CommonTableExpr) {
        self.in_context("data-modifying CTE: ", |s| v::walk_common_table_expr(s, n));
    }

    fn visit_range_var(&mut self, n: &pb::RangeVar) {
        if self.targets.iter().any(|p| std::ptr::eq(*p, n)) {
            return;
        }
        if n.schemaname.is_empty() && self.ctes.contains(&n.relname) {
            return;
        }
        let schema = (!n.schemaname.is_empty()).then_some(n.schemaname.as_str());
        if let Some(why) = resolve::sensitive_relation(schema, &n.relname) {
            self.escalate(StatementClass::Admin, Some(why), Source::Plain);
        }
        Self::note(&mut self.tables_read, names::relation(n));
    }

    fn visit_into_clause(&mut self, n: &pb::IntoClause) {
        if let Some(rv) = &n.rel {
            self.target(rv);
            self.escalate(
                StatementClass::Ddl,
                Some(format!("creates table {}", names::relation(rv))),
                Source::Plain,
            );
        }
        v::walk_into_clause(self, n);
    }

    fn visit_locking_clause(&mut self, n: &pb::LockingClause) {
        use pb::LockClauseStrength as L;
        let clause = match L::try_from(n.strength) {
            Ok(L::LcsForkeyshare) => "FOR KEY SHARE",
            Ok(L::LcsForshare) => "FOR SHARE",
            Ok(L::LcsFornokeyupdate) => "FOR NO KEY UPDATE",
            _ => "FOR UPDATE",
        };
        self.escalate(
            StatementClass::Write,
            Some(format!("{clause} takes row locks")),
            Source::Plain,
        );
        // locked_rels name FROM items (often aliases), not new tables: not walked.
    }

    fn visit_copy_stmt(&mut self, n: &pb::CopyStmt) {
        if let (true, Some(rv)) = (n.is_from, &n.relation) {
            self.target(rv);
        }
        self.in_context("COPY runs ", |s| v::walk_copy_stmt(s, n));
    }

    fn visit_truncate_stmt(&mut self, n: &pb::TruncateStmt) {
        self.target_nodes(&n.relations);
        v::walk_truncate_stmt(self, n);
    }

    fn visit_lock_stmt(&mut self, n: &pb::LockStmt) {
        self.target_nodes(&n.relations);
        v::walk_lock_stmt(self, n);
    }

    fn visit_create_stmt(&mut self, n: &pb::CreateStmt) {
        if let Some(rv) = &n.relation {
            self.target(rv);
        }
        v::walk_create_stmt(self, n);
    }

    fn visit_create_seq_stmt(&mut self, n: &pb::CreateSeqStmt) {
        if let Some(rv) = &n.sequence {
            self.target(rv);
        }
        v::walk_create_seq_stmt(self, n);
    }

    fn visit_alter_seq_stmt(&mut self, n: &pb::AlterSeqStmt) {
        if let Some(rv) = &n.sequence {
            self.target(rv);
        }
        v::walk_alter_seq_stmt(self, n);
    }

    fn visit_index_stmt(&mut self, n: &pb::IndexStmt) {
        if let Some(rv) = &n.relation {
            self.target(rv);
        }
        v::walk_index_stmt(self, n);
    }

    fn visit_alter_table_stmt(&mut self, n: &pb::AlterTableStmt) {
        if let Some(rv) = &n.relation {
            self.target(rv);
        }
        v::walk_alter_table_stmt(self, n);
    }

    fn visit_alter_table_cmd(&mut self, n: &pb::AlterTableCmd) {
        use pb::AlterTableType as A;
        let dcl = match A::try_from(n.subtype) {
            Ok(A::AtChangeOwner) => Some("changes the owner"),
            Ok(
                A::AtEnableRowSecurity
                | A::AtDisableRowSecurity
                | A::AtForceRowSecurity
                | A::AtNoForceRowSecurity,
            ) => Some("switches row-level security"),
            _ => None,
        };
        if let Some(what) = dcl {
            self.escalate(StatementClass::Dcl, Some(what.to_string()), Source::Plain);
        }
        v::walk_alter_table_cmd(self, n);
    }

    fn visit_rename_stmt(&mut self, n: &pb::RenameStmt) {
        if let Some(rv) = &n.relation {
            self.target(rv);
        }
        v::walk_rename_stmt(self, n);
    }

    fn visit_refresh_mat_view_stmt(&mut self, n: &pb::RefreshMatViewStmt) {
        if let Some(rv) = &n.relation {
            self.target(rv);
        }
        v::walk_refresh_mat_view_stmt(self, n);
    }

    fn visit_drop_stmt(&mut self, n: &pb::DropStmt) {
        if names::is_relation_type(n.remove_type) {
            for object in &n.objects {
                if let Some(N::List(list)) = &object.node {
                    let name: Vec<&str> = names::strings(&list.items).collect();
                    Self::note(&mut self.tables_written, name.join("."));
                }
            }
        }
        v::walk_drop_stmt(self, n);
    }

    // --- wrappers that change whether the inner statement runs now

    fn visit_explain_stmt(&mut self, n: &pb::ExplainStmt) {
        if explain_analyze(n) {
            self.in_context("EXPLAIN ANALYZE runs ", |s| v::walk_explain_stmt(s, n));
        } else {
            self.in_mode(Mode::Plan, |s| v::walk_explain_stmt(s, n));
        }
    }

    fn visit_view_stmt(&mut self, n: &pb::ViewStmt) {
        if let Some(rv) = &n.view {
            self.target(rv);
        }
        self.in_mode(Mode::Define, |s| v::walk_view_stmt(s, n));
    }

    fn visit_create_function_stmt(&mut self, n: &pb::CreateFunctionStmt) {
        self.in_mode(Mode::Define, |s| v::walk_create_function_stmt(s, n));
    }

    fn visit_rule_stmt(&mut self, n: &pb::RuleStmt) {
        if let Some(rv) = &n.relation {
            self.target(rv);
        }
        self.in_mode(Mode::Define, |s| v::walk_rule_stmt(s, n));
    }

    fn visit_create_policy_stmt(&mut self, n: &pb::CreatePolicyStmt) {
        if let Some(rv) = &n.table {
            self.target(rv);
        }
        self.in_mode(Mode::Define, |s| v::walk_create_policy_stmt(s, n));
    }

    fn visit_alter_policy_stmt(&mut self, n: &pb::AlterPolicyStmt) {
        if let Some(rv) = &n.table {
            self.target(rv);
        }
        self.in_mode(Mode::Define, |s| v::walk_alter_policy_stmt(s, n));
    }

    fn visit_create_trig_stmt(&mut self, n: &pb::CreateTrigStmt) {
        if let Some(rv) = &n.relation {
            self.target(rv);
        }
        self.in_mode(Mode::Define, |s| v::walk_create_trig_stmt(s, n));
    }

    fn visit_declare_cursor_stmt(&mut self, n: &pb::DeclareCursorStmt) {
        self.effects.declares = Some(n.portalname.clone());
        self.in_context("DECLARE CURSOR runs ", |s| {
            v::walk_declare_cursor_stmt(s, n)
        });
    }

    fn visit_create_table_as_stmt(&mut self, n: &pb::CreateTableAsStmt) {
        self.in_context("CREATE TABLE AS runs ", |s| {
            v::walk_create_table_as_stmt(s, n)
        });
    }

    // --- prepared statements

    fn visit_prepare_stmt(&mut self, n: &pb::PrepareStmt) {
        if self.depth == 1 {
            self.effects.prepares = Some(n.name.clone());
        }
        self.in_context("prepares ", |s| v::walk_prepare_stmt(s, n));
    }

    fn visit_execute_stmt(&mut self, n: &pb::ExecuteStmt) {
        if self.mode != Mode::Define {
            Self::note(&mut self.effects.executes, n.name.clone());
        }
        v::walk_execute_stmt(self, n);
    }

    fn visit_deallocate_stmt(&mut self, n: &pb::DeallocateStmt) {
        self.effects.deallocates = Some((!n.isall).then(|| n.name.clone()));
    }

    fn visit_close_portal_stmt(&mut self, n: &pb::ClosePortalStmt) {
        self.effects.closes = Some((!n.portalname.is_empty()).then(|| n.portalname.clone()));
    }

    fn visit_discard_stmt(&mut self, n: &pb::DiscardStmt) {
        if n.target == pb::DiscardMode::DiscardAll as i32 {
            self.effects.discards_all = true;
        }
    }

    // --- settings reached through a typed field (ALTER ROLE/DATABASE/SYSTEM … SET)

    fn visit_variable_set_stmt(&mut self, n: &pb::VariableSetStmt) {
        let (_, effect) = session::variable_set(n);
        self.refuse(effect.refused.clone());
        if self.mode == Mode::Exec
            && let Some(change) = session::changes(n)
            && !self.settings.contains(&change)
        {
            self.settings.push(change);
        }
        let source = if effect.toggles {
            Source::Toggle
        } else {
            Source::Plain
        };
        // Also reached from the top-level SET itself: escalating twice is a no-op.
        self.escalate(effect.class, effect.reason, source);
        v::walk_variable_set_stmt(self, n);
    }

    // --- calls

    fn visit_func_call(&mut self, n: &pb::FuncCall) {
        self.function_call(n);
        v::walk_func_call(self, n);
    }

    fn visit_column_ref(&mut self, n: &pb::ColumnRef) {
        let parts: Vec<&str> = names::strings(&n.fields).collect();
        if parts.len() != n.fields.len() {
            return; // `t.*`
        }
        match parts.as_slice() {
            [q, f] => self.attribute(None, q, f),
            [.., s, q, f] => self.attribute(Some(s), q, f),
            _ => {}
        }
    }

    fn visit_a_indirection(&mut self, n: &pb::AIndirection) {
        for field in names::strings(&n.indirection) {
            if self.catalog.takes_one_argument(field) {
                let r = self.catalog.call(None, field, 1);
                if r.class != StatementClass::Read {
                    Self::note(&mut self.functions, field.to_string());
                }
                self.resolved(Resolved {
                    reason: r
                        .reason
                        .map(|why| format!("(…).{field} may call {field}(…): {why}")),
                    ..r
                });
            }
        }
        v::walk_a_indirection(self, n);
    }

    fn visit_type_cast(&mut self, n: &pb::TypeCast) {
        if let Some((schema, name)) = n.type_name.as_ref().and_then(resolve::cast_target)
            && let Some(why) = self.catalog.cast_to(schema.as_deref(), &name)
        {
            self.escalate(StatementClass::Unknown, Some(why), Source::Plain);
        }
        v::walk_type_cast(self, n);
    }

    fn visit_case_expr(&mut self, n: &pb::CaseExpr) {
        if n.arg.is_some() && !self.catalog.operator_trusted("=") {
            let why = "CASE x WHEN … compares with =, which the database defines with a function Sluice cannot see into";
            self.escalate(
                StatementClass::Unknown,
                Some(why.to_string()),
                Source::Plain,
            );
        }
        v::walk_case_expr(self, n);
    }

    fn visit_join_expr(&mut self, n: &pb::JoinExpr) {
        if (n.is_natural || !n.using_clause.is_empty()) && !self.catalog.operator_trusted("=") {
            let why = "JOIN USING compares with =, which the database defines with a function Sluice cannot see into";
            self.escalate(
                StatementClass::Unknown,
                Some(why.to_string()),
                Source::Plain,
            );
        }
        v::walk_join_expr(self, n);
    }

    fn visit_call_stmt(&mut self, n: &pb::CallStmt) {
        let Some(call) = &n.funccall else {
            return v::walk_call_stmt(self, n);
        };
        let name = names::qualified(&call.funcname);
        Self::note(&mut self.functions, name.clone());
        let class = if self.policy.is_declared(&name) {
            self.policy.class_of(&name)
        } else {
            StatementClass::Unknown
        };
        let reason = match class {
            StatementClass::Unknown => format!("calls procedure {name}, which is not declared"),
            other => format!("calls procedure {name} ({other})"),
        };
        self.escalate(class, Some(reason), Source::Plain);
        // The procedure's arguments are expressions like any other.
        for arg in &call.args {
            self.visit_node(arg);
        }
        if let Some(over) = &call.over {
            self.visit_window_def(over);
        }
    }

    fn visit_a_expr(&mut self, n: &pb::AExpr) {
        for (schema, symbol) in resolve::operator_symbols(n) {
            let r = self.catalog.operator(schema.as_deref(), &symbol);
            self.resolved(r);
        }
        v::walk_a_expr(self, n);
    }
}
