//! Small helpers that turn parse-tree fragments into names.

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;

/// The string values of a list of `String` nodes (a qualified name such as
/// `funcname` or a `DROP` object), skipping anything else.
pub(crate) fn strings(nodes: &[pb::Node]) -> impl Iterator<Item = &str> {
    nodes.iter().filter_map(|n| match &n.node {
        Some(N::String(s)) => Some(s.sval.as_str()),
        _ => None,
    })
}

/// A dotted name from a list of `String` nodes, dropping a leading
/// `pg_catalog` so that `pg_catalog.now` and `now` are the same built-in.
pub(crate) fn qualified(nodes: &[pb::Node]) -> String {
    let parts: Vec<&str> = strings(nodes).collect();
    let parts = match parts.as_slice() {
        ["pg_catalog", rest @ ..] if !rest.is_empty() => rest,
        all => all,
    };
    parts.join(".")
}

/// A relation's name as the statement wrote it: `schema.name` or `name`.
/// The parser has already folded unquoted identifiers to lowercase.
pub(crate) fn relation(rv: &pb::RangeVar) -> String {
    if rv.schemaname.is_empty() {
        rv.relname.clone()
    } else {
        format!("{}.{}", rv.schemaname, rv.relname)
    }
}

/// The text of a string constant, looking through casts (`'x'::text`).
pub(crate) fn const_str(node: &pb::Node) -> Option<&str> {
    match node.node.as_ref()? {
        N::AConst(c) => match c.val.as_ref().inspect(|_| crate::literals::mark())? {
            pb::a_const::Val::Sval(s) => Some(&s.sval),
            _ => None,
        },
        N::TypeCast(tc) => const_str(tc.arg.as_deref()?),
        _ => None,
    }
}

/// A constant as PostgreSQL would read it as a setting value: strings,
/// integers, booleans and bare words (`off` parses as a string constant).
pub(crate) fn const_setting(node: &pb::Node) -> Option<String> {
    match node.node.as_ref()? {
        N::AConst(c) => match c.val.as_ref().inspect(|_| crate::literals::mark())? {
            pb::a_const::Val::Sval(s) => Some(s.sval.clone()),
            pb::a_const::Val::Ival(i) => Some(i.ival.to_string()),
            pb::a_const::Val::Fval(f) => Some(f.fval.clone()),
            pb::a_const::Val::Boolval(b) => Some(if b.boolval { "on" } else { "off" }.to_string()),
            pb::a_const::Val::Bsval(_) => None,
        },
        N::TypeCast(tc) => const_setting(tc.arg.as_deref()?),
        // Options such as `EXPLAIN (ANALYZE false)` carry bare values.
        N::String(s) => Some(s.sval.clone()),
        N::Integer(i) => Some(i.ival.to_string()),
        N::Boolean(b) => Some(if b.boolval { "on" } else { "off" }.to_string()),
        N::Float(f) => Some(f.fval.clone()),
        _ => None,
    }
}

/// An integer constant's value (`ORDER BY 2`).
pub(crate) fn const_int(node: &pb::Node) -> Option<i32> {
    match node.node.as_ref()? {
        N::AConst(c) => match c.val.as_ref().inspect(|_| crate::literals::mark())? {
            pb::a_const::Val::Ival(i) => Some(i.ival),
            _ => None,
        },
        _ => None,
    }
}

/// The SQL words for an object type: `ObjectMatview` → `"MATERIALIZED VIEW"`.
pub(crate) fn object_type(objtype: i32) -> String {
    use pb::ObjectType as O;
    let Ok(t) = O::try_from(objtype) else {
        return "OBJECT".to_string();
    };
    let fixed = match t {
        O::ObjectMatview => "MATERIALIZED VIEW",
        O::ObjectFdw => "FOREIGN DATA WRAPPER",
        O::ObjectForeignServer => "SERVER",
        O::ObjectLargeobject => "LARGE OBJECT",
        O::ObjectOpclass => "OPERATOR CLASS",
        O::ObjectOpfamily => "OPERATOR FAMILY",
        O::ObjectStatisticExt => "STATISTICS",
        O::ObjectTabconstraint | O::ObjectDomconstraint => "CONSTRAINT",
        O::ObjectTsconfiguration => "TEXT SEARCH CONFIGURATION",
        O::ObjectTsdictionary => "TEXT SEARCH DICTIONARY",
        O::ObjectTsparser => "TEXT SEARCH PARSER",
        O::ObjectTstemplate => "TEXT SEARCH TEMPLATE",
        O::ObjectDefacl => "DEFAULT PRIVILEGES",
        O::ObjectParameterAcl => "PARAMETER",
        O::ObjectPublicationNamespace | O::ObjectPublicationRel => "PUBLICATION",
        O::ObjectAmop | O::ObjectAmproc => "OPERATOR FAMILY",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.to_string();
    }
    // ObjectEventTrigger → "OBJECT_EVENT_TRIGGER" → "EVENT TRIGGER"
    t.as_str_name()
        .trim_start_matches("OBJECT_")
        .replace('_', " ")
}

/// Whether a `DROP`/`ALTER` of this object type removes or changes a relation
/// (so its names belong in `tables_written`).
pub(crate) fn is_relation_type(objtype: i32) -> bool {
    use pb::ObjectType as O;
    matches!(
        O::try_from(objtype),
        Ok(O::ObjectTable
            | O::ObjectView
            | O::ObjectMatview
            | O::ObjectIndex
            | O::ObjectSequence
            | O::ObjectForeignTable)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_type_names() {
        assert_eq!(object_type(pb::ObjectType::ObjectTable as i32), "TABLE");
        assert_eq!(
            object_type(pb::ObjectType::ObjectEventTrigger as i32),
            "EVENT TRIGGER"
        );
        assert_eq!(
            object_type(pb::ObjectType::ObjectMatview as i32),
            "MATERIALIZED VIEW"
        );
        assert_eq!(object_type(-7), "OBJECT");
    }
}
