//! The backend's names: which functions, operators, types and columns
//! exist, which are built in, and what calling each does.
//!
//! PostgreSQL resolves a name against its catalog: `lower(x)` may pick a
//! user overload of `lower` anywhere on the `search_path`, `x.f` is `f(x)`
//! when `x` has no column `f`, `'…'::t` runs the checks of a domain `t`.
//! So Sluice judges names against the same catalog, loaded from the backend
//! (the proxy's side session, [`CatalogRows`]), or fails closed:
//!
//! - A function call is judged by *every* function of that name the call
//!   could reach: a built-in (pg_catalog and an oid below 16384, so not an
//!   extension installed into pg_catalog) is classed by the reviewed table
//!   (`reviewed.tsv`), else `read` when immutable or stable, else `unknown`;
//!   any other function (user, extension) is `unknown` unless configuration
//!   declares it. The call takes the worst class among them, since without
//!   the argument types Sluice cannot tell which overload wins.
//! - An operator is trusted when every operator of that symbol is built in,
//!   or implemented by a non-volatile C function (an extension's, which only
//!   a superuser can install); an operator implemented in SQL or a
//!   procedural language (which anyone with CREATE can write) makes every
//!   use of its symbol `unknown`.
//! - A cast or typed literal to a type is `unknown` when some type of that
//!   name is a domain with CHECK constraints (they may call functions) or
//!   the target of a cast implemented by a non-C function.
//! - `x.f` names a column only when the catalog says every relation `x`
//!   could be has a column `f`; otherwise it may be the call `f(x)`.
//!
//! Without a live catalog ([`Catalog::bundled`]) the built-ins of
//! PostgreSQL 15 stand in (`pg15_proc.tsv`) and there are no user objects:
//! for tests and offline analysis only. The proxy never judges a session's
//! statements without its backend's catalog.

mod bundled;
mod reviewed;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use sluice_core::guardrail::StatementClass;

/// The lowest oid of an object not created by initdb.
pub const FIRST_NORMAL_OID: u32 = 16384;

/// One function overload as the catalog holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routine {
    pub schema: String,
    /// Shipped with PostgreSQL: in pg_catalog with an oid below 16384.
    pub builtin: bool,
    pub nargs: u16,
    /// Trailing parameters with defaults.
    pub defaults: u16,
    pub variadic: bool,
    /// `i`, `s` or `v`.
    pub volatility: u8,
}

impl Routine {
    /// Whether a call with `n` arguments may reach this overload.
    fn accepts(&self, n: usize) -> bool {
        let (nargs, min) = (
            self.nargs as usize,
            (self.nargs - self.defaults.min(self.nargs)) as usize,
        );
        (n >= min && n <= nargs) || (self.variadic && n + 1 >= nargs)
    }
}

/// How a name resolved: its class and, when not `read`, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub class: StatementClass,
    pub reason: Option<String>,
}

impl Resolved {
    fn read() -> Self {
        Resolved {
            class: StatementClass::Read,
            reason: None,
        }
    }

    fn unknown(reason: String) -> Self {
        Resolved {
            class: StatementClass::Unknown,
            reason: Some(reason),
        }
    }
}

/// Rows read from a backend's catalog, to build a [`Catalog`] from.
#[derive(Debug, Clone, Default)]
pub struct CatalogRows {
    /// `server_version_num / 10000`.
    pub major: u32,
    pub functions: Vec<(String, Routine)>,
    /// Operator symbol, and whether every operator of it is trusted.
    pub operators: Vec<(String, bool)>,
    /// Type names that cannot be cast to without running user code.
    pub untrusted_types: Vec<String>,
    /// `(schema, relation, column)` for columns whose names are also the
    /// names of functions callable with one argument.
    pub columns: Vec<(String, String, String)>,
}

/// A backend's names, ready for lookups.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    major: u32,
    functions: HashMap<String, Vec<Routine>>,
    /// Symbol → trusted.
    operators: HashMap<String, bool>,
    untrusted_types: HashSet<String>,
    /// Relation name → the column names (of the kind above) of each
    /// relation of that name, with its schema.
    columns: HashMap<String, Vec<(String, HashSet<String>)>>,
    /// Whether this is a backend's catalog (else the bundled built-ins).
    live: bool,
}

impl Catalog {
    /// A backend's catalog.
    pub fn from_rows(rows: CatalogRows) -> Catalog {
        let mut c = Catalog {
            major: rows.major,
            live: true,
            ..Catalog::default()
        };
        for (name, r) in rows.functions {
            c.functions.entry(name).or_default().push(r);
        }
        for (symbol, trusted) in rows.operators {
            let slot = c.operators.entry(symbol).or_insert(true);
            *slot &= trusted;
        }
        c.untrusted_types = rows.untrusted_types.into_iter().collect();
        for (schema, rel, col) in rows.columns {
            let rels = c.columns.entry(rel).or_default();
            match rels.iter_mut().find(|(s, _)| *s == schema) {
                Some((_, cols)) => {
                    cols.insert(col);
                }
                None => rels.push((schema, HashSet::from([col]))),
            }
        }
        c
    }

    /// PostgreSQL 15's built-ins and nothing else (tests, offline use).
    pub fn bundled() -> Arc<Catalog> {
        static BUNDLED: OnceLock<Arc<Catalog>> = OnceLock::new();
        BUNDLED.get_or_init(|| Arc::new(bundled::catalog())).clone()
    }

    /// This catalog with more columns known (tests: the bundled catalog
    /// knows no relations).
    pub fn with_columns(&self, columns: &[(&str, &str, &str)]) -> Catalog {
        let mut c = self.clone();
        for (schema, rel, col) in columns {
            let rels = c.columns.entry(rel.to_string()).or_default();
            match rels.iter_mut().find(|(s, _)| s == schema) {
                Some((_, cols)) => {
                    cols.insert(col.to_string());
                }
                None => rels.push((schema.to_string(), HashSet::from([col.to_string()]))),
            }
        }
        c
    }

    /// The backend's major version (15 for PostgreSQL 15.x).
    pub fn major(&self) -> u32 {
        self.major
    }

    /// Whether this catalog was read from a backend.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// A call of `name` (its schema, if written, and the function name)
    /// with `nargs` arguments.
    pub fn call(&self, schema: Option<&str>, name: &str, nargs: usize) -> Resolved {
        let shown = match schema {
            Some(s) => format!("{s}.{name}"),
            None => name.to_string(),
        };
        if schema.is_some_and(|s| s != "pg_catalog") {
            return Resolved::unknown(format!(
                "calls {shown}, a function of the database's own (Sluice cannot see what it does)"
            ));
        }
        let Some(all) = self.functions.get(name) else {
            return Resolved::unknown(format!("calls {shown}, which is not a known function"));
        };
        let reachable: Vec<&Routine> = all
            .iter()
            .filter(|r| schema.is_none() || r.schema == "pg_catalog")
            .collect();
        let mut candidates: Vec<&Routine> = reachable
            .iter()
            .copied()
            .filter(|r| r.accepts(nargs))
            .collect();
        if candidates.is_empty() {
            // Named or variadic arguments can reach overloads a count misses.
            candidates = reachable;
        }
        if candidates.is_empty() {
            return Resolved::unknown(format!("calls {shown}, which is not a known function"));
        }
        if let Some(user) = candidates.iter().find(|r| !r.builtin) {
            return Resolved::unknown(format!(
                "calls {shown}, which the database defines in schema {} (Sluice cannot see what it does)",
                user.schema
            ));
        }
        candidates
            .iter()
            .map(|r| reviewed::class(name, r))
            .max_by_key(|r| r.class)
            .unwrap_or_else(Resolved::read)
    }

    /// Whether every function a call of `name` may reach is a built-in.
    pub fn builtin_only(&self, schema: Option<&str>, name: &str, nargs: usize) -> bool {
        if schema.is_some_and(|s| s != "pg_catalog") {
            return false;
        }
        self.functions.get(name).is_some_and(|all| {
            all.iter()
                .filter(|r| r.accepts(nargs))
                .all(|r| r.builtin && (schema.is_none() || r.schema == "pg_catalog"))
        })
    }

    /// Whether `x.name` may be the call `name(x)`: some function of that
    /// name takes one argument.
    pub fn takes_one_argument(&self, name: &str) -> bool {
        self.functions
            .get(name)
            .is_some_and(|all| all.iter().any(|r| r.accepts(1)))
    }

    /// Whether relation `rel` (in `schema`, or any schema) surely has a
    /// column `column`: every relation of that name has one. Only columns
    /// named like one-argument functions are known; others answer `false`.
    pub fn has_column(&self, schema: Option<&str>, rel: &str, column: &str) -> bool {
        let Some(rels) = self.columns.get(rel) else {
            return false;
        };
        let mut matching = rels
            .iter()
            .filter(|(s, _)| schema.is_none_or(|want| want == s))
            .peekable();
        matching.peek().is_some() && matching.all(|(_, cols)| cols.contains(column))
    }

    /// An operator: `schema` when written as `OPERATOR(schema.op)`.
    pub fn operator(&self, schema: Option<&str>, symbol: &str) -> Resolved {
        if schema.is_some_and(|s| s != "pg_catalog") {
            return Resolved::unknown(format!(
                "uses operator {}.{symbol}, an operator of the database's own",
                schema.unwrap_or_default()
            ));
        }
        match self.operators.get(symbol) {
            Some(true) => Resolved::read(),
            Some(false) => Resolved::unknown(format!(
                "uses operator {symbol}, which the database defines with a function Sluice cannot see into"
            )),
            None => Resolved::unknown(format!(
                "uses operator {symbol}, which is not a known operator"
            )),
        }
    }

    /// Whether every operator `symbol` is trusted (for implicit uses such
    /// as `CASE x WHEN …`, which compare with `=`).
    pub fn operator_trusted(&self, symbol: &str) -> bool {
        self.operators.get(symbol).copied().unwrap_or(false)
    }

    /// Why a cast to type `name` may run user code, if it may.
    pub fn cast_to(&self, schema: Option<&str>, name: &str) -> Option<String> {
        let qualified = schema.is_some_and(|s| s != "pg_catalog" && s != "information_schema");
        if self.untrusted_types.contains(name) {
            return Some(format!(
                "casts to {name}, a type whose checks or casts run functions Sluice cannot see into"
            ));
        }
        if qualified && !self.live {
            // Offline, a type of the database's own is not known.
            return Some(format!(
                "casts to {}.{name}, a type of the database's own",
                schema.unwrap_or_default()
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests;
