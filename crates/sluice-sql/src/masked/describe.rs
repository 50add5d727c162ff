//! How an output expression is named in a violation message.

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;

/// How an output expression is named in a message.
pub(super) fn describe(node: &pb::Node) -> String {
    match &node.node {
        Some(N::FuncCall(f)) => {
            let name = crate::names::qualified(&f.funcname);
            if f.over.is_some() {
                format!("window function {name}")
            } else if f.agg_star
                || f.agg_distinct
                || !f.agg_order.is_empty()
                || f.agg_filter.is_some()
                || is_aggregate(&name)
            {
                format!("aggregate {name}")
            } else {
                format!("function {name}")
            }
        }
        Some(N::TypeCast(_)) => "a cast".into(),
        Some(N::AExpr(a)) => {
            let op: Vec<&str> = crate::names::strings(&a.name).collect();
            format!("operator {}", op.join("."))
        }
        Some(N::SubLink(_)) => "a subquery".into(),
        Some(N::CaseExpr(_)) => "a CASE expression".into(),
        Some(N::CollateClause(_)) => "a COLLATE expression".into(),
        Some(N::RowExpr(_)) => "a row constructor".into(),
        Some(N::AArrayExpr(_)) => "an array constructor".into(),
        Some(N::AIndirection(_)) => "a field or subscript access".into(),
        Some(N::CoalesceExpr(_)) => "COALESCE".into(),
        Some(N::MinMaxExpr(_)) => "GREATEST/LEAST".into(),
        Some(N::BoolExpr(_)) | Some(N::NullTest(_)) | Some(N::BooleanTest(_)) => {
            "a condition".into()
        }
        _ => "an expression".into(),
    }
}

/// Built-in aggregates recognised by name (others are named "function").
pub(super) fn is_aggregate(name: &str) -> bool {
    matches!(
        name,
        "min"
            | "max"
            | "count"
            | "sum"
            | "avg"
            | "string_agg"
            | "array_agg"
            | "json_agg"
            | "jsonb_agg"
            | "json_object_agg"
            | "jsonb_object_agg"
            | "bool_and"
            | "bool_or"
            | "every"
            | "bit_and"
            | "bit_or"
            | "xmlagg"
            | "mode"
            | "percentile_cont"
            | "percentile_disc"
            | "any_value"
    )
}
