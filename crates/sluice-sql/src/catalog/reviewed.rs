//! The reviewed classes of built-in functions (`reviewed.tsv`): every
//! volatile built-in of PostgreSQL 15–18, and every non-volatile one that is
//! not harmless for an agent (runs SQL given as text, reads other sessions,
//! server files or statistics samples, assigns transaction ids).

use std::collections::HashMap;
use std::sync::OnceLock;

use sluice_core::guardrail::StatementClass;

use super::{Resolved, Routine};

const TABLE: &str = include_str!("reviewed.tsv");

/// `(name, nargs or None for every overload)` → class and reason.
type Table = HashMap<(&'static str, Option<u16>), (StatementClass, &'static str)>;

fn table() -> &'static Table {
    static PARSED: OnceLock<Table> = OnceLock::new();
    PARSED.get_or_init(|| {
        let mut t = Table::new();
        for line in TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let mut f = line.split('\t');
            let (Some(name), Some(nargs), Some(class), Some(reason)) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                panic!("reviewed.tsv: malformed line {line:?}");
            };
            let nargs = match nargs {
                "*" => None,
                n => Some(n.parse().expect("reviewed.tsv: nargs")),
            };
            let class = match class {
                "read" => StatementClass::Read,
                "write" => StatementClass::Write,
                "admin" => StatementClass::Admin,
                "unknown" => StatementClass::Unknown,
                other => panic!("reviewed.tsv: class {other:?}"),
            };
            t.insert((name, nargs), (class, reason));
        }
        t
    })
}

/// The class of a call that reaches built-in overload `r` of `name`.
pub(super) fn class(name: &str, r: &Routine) -> Resolved {
    let t = table();
    let entry = t
        .get(&(name, Some(r.nargs)))
        .or_else(|| t.get(&(name, None)));
    match entry {
        Some((StatementClass::Read, _)) => Resolved::read(),
        Some((class, why)) => Resolved {
            class: *class,
            reason: Some(format!("calls {name}: {why}")),
        },
        None if matches!(r.volatility, b'i' | b's') => Resolved::read(),
        None => Resolved::unknown(format!(
            "calls {name}, a volatile built-in function Sluice has not reviewed"
        )),
    }
}

/// Every reviewed name, for tests.
#[cfg(test)]
pub(super) fn names() -> impl Iterator<Item = &'static str> {
    table().keys().map(|(n, _)| *n)
}
