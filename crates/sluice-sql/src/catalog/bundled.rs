//! PostgreSQL 15's built-in functions and operators, for analysis without
//! a backend (tests, the `explain` example). There are no user objects.

use super::{Catalog, CatalogRows, Routine};

const PROCS: &str = include_str!("pg15_proc.tsv");

/// Operators of core PostgreSQL: the same symbols a fresh catalog has.
const OPERATORS: &[&str] = &[
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "|/",
    "||/",
    "!",
    "!!",
    "@",
    "&",
    "|",
    "#",
    "~",
    "<<",
    ">>",
    "=",
    "<>",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    "||",
    "~~",
    "~~*",
    "!~~",
    "!~~*",
    "~*",
    "!~",
    "!~*",
    "@>",
    "<@",
    "&&",
    "?",
    "?|",
    "?&",
    "->",
    "->>",
    "#>",
    "#>>",
    "#-",
    "@?",
    "@@",
    "@@@",
    "<->",
    "<<|",
    "|>>",
    "&<",
    "&>",
    "<<=",
    ">>=",
    "-|-",
    "##",
    "?#",
    "?-",
    "?-|",
    "?||",
    "<^",
    ">^",
    "~=",
    "&<|",
    "|&>",
    "@-@",
    "<#>",
    "^@",
    "BETWEEN",
    "NOT BETWEEN",
    "BETWEEN SYMMETRIC",
    "NOT BETWEEN SYMMETRIC",
];

pub(super) fn catalog() -> Catalog {
    let mut rows = CatalogRows {
        major: 15,
        ..CatalogRows::default()
    };
    for line in PROCS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        let [name, nargs, defaults, variadic, volatility, _kind] = f[..] else {
            panic!("pg15_proc.tsv: malformed line {line:?}");
        };
        rows.functions.push((
            name.to_string(),
            Routine {
                schema: "pg_catalog".to_string(),
                builtin: true,
                nargs: nargs.parse().expect("nargs"),
                defaults: defaults.parse().expect("defaults"),
                variadic: variadic == "t",
                volatility: volatility.as_bytes()[0],
            },
        ));
    }
    rows.operators = OPERATORS.iter().map(|o| (o.to_string(), true)).collect();
    let mut c = Catalog::from_rows(rows);
    c.live = false;
    c
}
