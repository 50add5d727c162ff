//! Names in a statement, resolved the way PostgreSQL resolves them against
//! the backend's [`Catalog`]: explicit calls, calls hidden in attribute
//! notation (`x.f` is `f(x)` when `x` has no column `f`), operators, casts,
//! and the constructs that PostgreSQL 18's parser reads as built-ins but an
//! older backend reads as calls of whatever function has that name.

use std::collections::HashMap;

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;

use crate::catalog::{Catalog, Resolved};
use crate::names;
use crate::visit_gen::{self as v, Visit};

/// What a FROM item named in a statement stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// A relation, schema as written.
    Table {
        schema: Option<String>,
        name: String,
    },
    /// A subquery, function, CTE, `VALUES` or join alias: columns unknown.
    Other,
}

/// Every FROM item of a statement (at any level) by the name it is
/// referred to by: a name used by several items maps to all of them.
pub(crate) fn from_items(stmt: &pb::Node) -> HashMap<String, Vec<Item>> {
    let mut c = Items::default();
    c.visit_node(stmt);
    c.items
}

#[derive(Default)]
struct Items {
    items: HashMap<String, Vec<Item>>,
    ctes: Vec<String>,
}

impl Items {
    fn add(&mut self, name: &str, item: Item) {
        self.items.entry(name.to_string()).or_default().push(item);
    }
}

fn alias_name(a: &Option<pb::Alias>) -> Option<&str> {
    a.as_ref().map(|a| a.aliasname.as_str())
}

impl Visit for Items {
    fn visit_common_table_expr(&mut self, n: &pb::CommonTableExpr) {
        self.ctes.push(n.ctename.clone());
        v::walk_common_table_expr(self, n);
    }

    fn visit_range_var(&mut self, n: &pb::RangeVar) {
        let refname = alias_name(&n.alias).unwrap_or(&n.relname).to_string();
        let item = if n.schemaname.is_empty() && self.ctes.contains(&n.relname) {
            Item::Other
        } else {
            Item::Table {
                schema: (!n.schemaname.is_empty()).then(|| n.schemaname.clone()),
                name: n.relname.clone(),
            }
        };
        self.add(&refname, item);
    }

    fn visit_range_function(&mut self, n: &pb::RangeFunction) {
        if let Some(a) = alias_name(&n.alias) {
            self.add(a, Item::Other);
        }
        // Unaliased: named after the function; `f(...).x` then also counts.
        for f in &n.functions {
            if let Some(N::List(l)) = &f.node
                && let Some(Some(N::FuncCall(fc))) = l.items.first().map(|i| &i.node)
                && let Some(name) = names::strings(&fc.funcname).last()
            {
                self.add(name, Item::Other);
            }
        }
        v::walk_range_function(self, n);
    }

    fn visit_range_subselect(&mut self, n: &pb::RangeSubselect) {
        if let Some(a) = alias_name(&n.alias) {
            self.add(a, Item::Other);
        }
        v::walk_range_subselect(self, n);
    }

    fn visit_range_table_func(&mut self, n: &pb::RangeTableFunc) {
        if let Some(a) = alias_name(&n.alias) {
            self.add(a, Item::Other);
        }
        v::walk_range_table_func(self, n);
    }

    fn visit_join_expr(&mut self, n: &pb::JoinExpr) {
        if let Some(a) = alias_name(&n.alias) {
            self.add(a, Item::Other);
        }
        v::walk_join_expr(self, n);
    }
}

/// `q.f` (the last two names of a column reference; `schema` when three
/// were written): the call `f(q)` it may be, when `f` takes one argument
/// and `q` is not surely a relation with a column `f`.
pub(crate) fn attribute_call(
    catalog: &Catalog,
    items: &HashMap<String, Vec<Item>>,
    schema: Option<&str>,
    qualifier: &str,
    field: &str,
) -> Option<Resolved> {
    if !catalog.takes_one_argument(field) {
        return None;
    }
    let surely_column = match items.get(qualifier) {
        Some(all) => all.iter().all(|item| match item {
            Item::Table { schema: s, name } => {
                catalog.has_column(schema.or(s.as_deref()), name, field)
            }
            Item::Other => false,
        }),
        None => false,
    };
    if surely_column {
        return None;
    }
    let r = catalog.call(None, field, 1);
    Some(Resolved {
        reason: r.reason.map(|why| {
            format!("{qualifier}.{field} may call {field}({qualifier}) (attribute notation): {why}")
        }),
        ..r
    })
}

/// The function an older backend calls where PostgreSQL 18 parses a
/// built-in construct, and how many arguments it passes; `Err` for
/// constructs such a backend cannot run at all (it rejects them, but doubt
/// fails closed).
pub(crate) fn older_reading(node: &N, major: u32) -> Option<Result<(&'static str, usize), String>> {
    use pb::JsonExprOp as Op;
    let call = |name, n| Some(Ok((name, n)));
    let refuse = |what: &str| {
        Some(Err(format!(
            "{what} is new syntax that PostgreSQL {major} reads differently or not at all"
        )))
    };
    match node {
        N::JsonFuncExpr(j) if major < 17 => match Op::try_from(j.op) {
            Ok(Op::JsonQueryOp) => call("json_query", 2 + j.passing.len()),
            Ok(Op::JsonValueOp) => call("json_value", 2 + j.passing.len()),
            Ok(Op::JsonExistsOp) => call("json_exists", 2 + j.passing.len()),
            _ => refuse("a JSON function"),
        },
        N::JsonScalarExpr(_) if major < 17 => call("json_scalar", 1),
        N::JsonSerializeExpr(_) if major < 17 => call("json_serialize", 1),
        N::JsonParseExpr(_) if major < 17 => call("json", 1),
        N::MergeSupportFunc(_) if major < 17 => call("merge_action", 0),
        N::JsonTable(_) | N::JsonBehavior(_) | N::JsonArgument(_) if major < 17 => {
            refuse("JSON_TABLE or a JSON ON ERROR/PASSING clause")
        }
        N::JsonObjectConstructor(j) if major < 16 => call("json_object", j.exprs.len()),
        N::JsonArrayConstructor(j) if major < 16 => call("json_array", j.exprs.len()),
        N::JsonArrayAgg(_) if major < 16 => call("json_arrayagg", 1),
        N::JsonObjectAgg(_) if major < 16 => call("json_objectagg", 2),
        N::JsonArrayQueryConstructor(_) | N::JsonIsPredicate(_) if major < 16 => {
            refuse("JSON_ARRAY(query) or IS JSON")
        }
        _ => None,
    }
}

/// A function call's schema and name as PostgreSQL looks them up. Before
/// PostgreSQL 16 the `pg_catalog.` the parser puts on `json_object(…)` was
/// not there, so a user overload could win.
pub(crate) fn call_name(funcname: &[pb::Node], major: u32) -> (Option<String>, String) {
    let parts: Vec<&str> = names::strings(funcname).collect();
    match parts.as_slice() {
        ["pg_catalog", "json_object"] if major < 16 => (None, "json_object".to_string()),
        [name] => (None, name.to_string()),
        [schema, name] => (Some(schema.to_string()), name.to_string()),
        _ => (
            Some(parts[..parts.len().saturating_sub(1)].join(".")),
            parts.last().copied().unwrap_or_default().to_string(),
        ),
    }
}

/// `system_user` before PostgreSQL 16 is a column name, not a function.
pub(crate) fn hidden_column(call: &pb::FuncCall, major: u32) -> Option<String> {
    let parts: Vec<&str> = names::strings(&call.funcname).collect();
    let sql_syntax = call.funcformat == pb::CoercionForm::CoerceSqlSyntax as i32;
    (major < 16 && sql_syntax && parts == ["pg_catalog", "system_user"])
        .then(|| format!("SYSTEM_USER reads a column named system_user on PostgreSQL {major}"))
}

/// A type cast's target: `(schema, name)` of the type, looking through
/// array brackets (each element goes through the element type's input).
pub(crate) fn cast_target(t: &pb::TypeName) -> Option<(Option<String>, String)> {
    let parts: Vec<&str> = names::strings(&t.names).collect();
    match parts.as_slice() {
        [name] => Some((None, name.to_string())),
        [schema, name] => Some((Some(schema.to_string()), name.to_string())),
        [.., schema, name] => Some((Some(schema.to_string()), name.to_string())),
        [] => None,
    }
}

/// The operator symbols an `A_Expr` calls: `BETWEEN` compares with `>=`
/// and `<=`; everything else names its operator.
pub(crate) fn operator_symbols(e: &pb::AExpr) -> Vec<(Option<String>, String)> {
    let parts: Vec<&str> = names::strings(&e.name).collect();
    match parts.as_slice() {
        [op] if op.contains("BETWEEN") => vec![(None, ">=".into()), (None, "<=".into())],
        [op] => vec![(None, op.to_string())],
        [schema, op] => vec![(Some(schema.to_string()), op.to_string())],
        _ => vec![(Some(parts.join(".")), String::new())],
    }
}

/// Catalog relations whose rows are sample values of other tables'
/// columns (`most_common_vals`, `histogram_bounds`): a masked column's
/// values in clear.
const STATISTICS: &[&str] = &[
    "pg_stats",
    "pg_stats_ext",
    "pg_stats_ext_exprs",
    "pg_statistic",
    "pg_statistic_ext",
    "pg_statistic_ext_data",
];

/// Catalog relations that show other sessions (their statement text,
/// grant ids in `application_name`, client addresses, locks) or the
/// server's credentials and configuration files.
const OTHER_SESSIONS: &[&str] = &[
    "pg_stat_activity",
    "pg_locks",
    "pg_stat_ssl",
    "pg_stat_gssapi",
    "pg_stat_replication",
    "pg_stat_replication_slots",
    "pg_stat_wal_receiver",
    "pg_stat_subscription",
    "pg_replication_slots",
    "pg_prepared_xacts",
    "pg_stat_statements",
    "pg_stat_statements_info",
    "pg_authid",
    "pg_shadow",
    "pg_user_mappings",
    "pg_hba_file_rules",
    "pg_ident_file_mappings",
    "pg_file_settings",
];

/// Why reading relation `name` (in `schema`, when written) is an act on
/// the server rather than a read of the agent's data, if it is. A name in
/// a schema other than pg_catalog is the database's own table, except
/// `pg_stat_statements`, which an extension puts in any schema.
pub(crate) fn sensitive_relation(schema: Option<&str>, name: &str) -> Option<String> {
    let catalog = schema.is_none_or(|s| s == "pg_catalog");
    if catalog && STATISTICS.contains(&name) {
        return Some(format!(
            "reads {name}, which holds sample values of table columns"
        ));
    }
    let anywhere = name.starts_with("pg_stat_statements");
    if (catalog || anywhere)
        && (OTHER_SESSIONS.contains(&name) || name.starts_with("pg_stat_progress_"))
    {
        return Some(format!(
            "reads {name}, which shows other sessions or the server's secrets"
        ));
    }
    None
}

/// Whether a relation holds statistics samples (denied in a masked session
/// whatever the profile).
pub(crate) fn is_statistics(schema: Option<&str>, name: &str) -> bool {
    schema.is_none_or(|s| s == "pg_catalog") && STATISTICS.contains(&name)
}
