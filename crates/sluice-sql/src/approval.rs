//! What approving a statement's *shape* admits.
//!
//! A shape approval lets the same grant run the statement again with other
//! values, without asking. The fingerprint alone was too loose: it ignores
//! the length of `IN (…)` lists, the elements of an array literal
//! (`= ANY('{…}')`) and NULL versus a value, so approving a one-row UPDATE
//! approved a 1,200-row one and `SET name = NULL`. The shape here is the
//! fingerprint plus, in order, the kind of every constant: numbers,
//! strings, booleans, NULLs, and array literals with their element count
//! (lists and `ARRAY[…]` count through their constants). Bound parameters
//! add theirs (see [`parameter_kind`]).

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;

use crate::visit_gen::{self as v, Visit};

/// A statement's shape for approvals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Equal for statements a shape approval admits.
    pub key: String,
    /// The statement with its constants as `$n`, for the approver.
    pub normalized: String,
    /// How many constants the shape fixes the kind of.
    pub constants: usize,
}

/// The shape of `sql`, or `None` when it does not parse.
pub fn shape(sql: &str) -> Option<Shape> {
    let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).ok()?;
    let mut kinds = Kinds::default();
    for raw in &parsed.protobuf.stmts {
        if let Some(stmt) = raw.stmt.as_deref() {
            kinds.visit_node(stmt);
        }
    }
    kinds.found.sort_by_key(|(at, _)| *at);
    let list: Vec<String> = kinds.found.into_iter().map(|(_, k)| k).collect();
    let fingerprint = crate::fingerprint(sql);
    Some(Shape {
        key: format!("{fingerprint}:{}", list.join(",")),
        normalized: pg_query::normalize(sql).unwrap_or_else(|_| sql.to_string()),
        constants: list.len(),
    })
}

/// A bound parameter's kind, as shown to an approver: NULL, an array
/// literal with its element count, binary data of its length, a value cut
/// for display, or any other value.
pub fn parameter_kind(shown: Option<&str>) -> String {
    match shown {
        None => "null".into(),
        Some(v) if v.ends_with('…') => "long".into(),
        Some(v) if v.starts_with("\\x") => format!("x{}", v.len()),
        Some(v) => match array_len(v) {
            Some(n) => format!("a{n}"),
            None => "v".into(),
        },
    }
}

/// The element count of an array literal (`{1,2,3}`, nested counts its
/// top level), or `None` when the text is not one.
fn array_len(text: &str) -> Option<usize> {
    let t = text.trim();
    let inner = t.strip_prefix('{')?.strip_suffix('}')?;
    if inner.trim().is_empty() {
        return Some(0);
    }
    let (mut depth, mut quoted, mut escaped, mut n) = (0usize, false, false, 1);
    for c in inner.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            '{' if !quoted => depth += 1,
            '}' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => n += 1,
            _ => {}
        }
    }
    Some(n)
}

#[derive(Default)]
struct Kinds {
    found: Vec<(i32, String)>,
}

impl Visit for Kinds {
    fn visit_a_const(&mut self, n: &pb::AConst) {
        use pb::a_const::Val;
        let kind = match &n.val {
            _ if n.isnull => "null".to_string(),
            Some(Val::Ival(_) | Val::Fval(_)) => "n".into(),
            Some(Val::Boolval(_)) => "b".into(),
            Some(Val::Bsval(_)) => "x".into(),
            Some(Val::Sval(s)) => match array_len(&s.sval) {
                Some(len) => format!("a{len}"),
                None => "s".into(),
            },
            None => "null".into(),
        };
        self.found.push((n.location, kind));
    }

    fn visit_param_ref(&mut self, n: &pb::ParamRef) {
        self.found.push((n.location, format!("${}", n.number)));
    }

    fn visit_node(&mut self, n: &pb::Node) {
        if let Some(N::AConst(c)) = &n.node {
            return self.visit_a_const(c);
        }
        v::walk_node(self, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sql: &str) -> String {
        shape(sql).unwrap().key
    }

    #[test]
    fn the_same_shape_with_other_values() {
        assert_eq!(
            key("UPDATE orders SET ref = 'a' WHERE id IN (1, 2)"),
            key("UPDATE orders SET ref = 'zz' WHERE id IN (7, 9)")
        );
        assert_eq!(
            key("UPDATE t SET a = 1 WHERE b = ANY('{1,2}')"),
            key("UPDATE t SET a = 5 WHERE b = ANY('{8,9}')")
        );
    }

    #[test]
    fn lists_arrays_and_nulls_are_part_of_the_shape() {
        for (a, b) in [
            (
                "UPDATE orders SET ref = 'a' WHERE id IN (1)",
                "UPDATE orders SET ref = 'a' WHERE id IN (1, 2, 3)",
            ),
            (
                "UPDATE t SET a = 1 WHERE b = ANY('{1}')",
                "UPDATE t SET a = 1 WHERE b = ANY('{1,2,3}')",
            ),
            ("UPDATE t SET name = 'x'", "UPDATE t SET name = NULL"),
            (
                "UPDATE t SET a = 1 WHERE b = ANY(ARRAY[1])",
                "UPDATE t SET a = 1 WHERE b = ANY(ARRAY[1, 2])",
            ),
            ("DELETE FROM t WHERE id = 1", "DELETE FROM t WHERE id = '1'"),
            ("UPDATE t SET a = $1", "UPDATE t SET a = 1"),
        ] {
            assert_ne!(key(a), key(b), "{a} / {b}");
        }
    }

    #[test]
    fn parameters_and_array_literals() {
        assert_eq!(parameter_kind(None), "null");
        assert_eq!(parameter_kind(Some("paid")), "v");
        assert_eq!(parameter_kind(Some("{1,2,3}")), "a3");
        assert_eq!(parameter_kind(Some("{\"a,b\",c}")), "a2");
        assert_eq!(parameter_kind(Some("{{1,2},{3,4}}")), "a2");
        assert_eq!(parameter_kind(Some("{}")), "a0");
        assert_eq!(parameter_kind(Some("\\x00000009")), "x10");
        assert_eq!(parameter_kind(Some("long value…")), "long");
        assert_eq!(
            shape("SELECT 1 WHERE a = 'x'").unwrap().normalized,
            "SELECT $1 WHERE a = $2"
        );
    }
}
