use super::*;
use StatementClass as C;

fn routine(schema: &str, builtin: bool, nargs: u16, volatility: u8) -> Routine {
    Routine {
        schema: schema.into(),
        builtin,
        nargs,
        defaults: 0,
        variadic: false,
        volatility,
    }
}

#[test]
fn built_ins_by_review_then_volatility() {
    let c = Catalog::bundled();
    for (name, n, want) in [
        ("lower", 1, C::Read),
        ("now", 0, C::Read),
        ("count", 0, C::Read),
        ("random", 0, C::Read),
        ("pg_sleep", 1, C::Read),
        ("nextval", 1, C::Write),
        ("lo_create", 1, C::Write),
        ("pg_advisory_lock", 1, C::Write),
        ("txid_current", 0, C::Write),
        ("pg_terminate_backend", 1, C::Admin),
        ("pg_read_file", 1, C::Admin),
        ("pg_stat_get_activity", 1, C::Admin),
        ("ts_rewrite", 2, C::Unknown),
        ("ts_rewrite", 3, C::Read),
        ("query_to_xml", 4, C::Unknown),
        ("table_to_xml", 4, C::Unknown),
        ("ts_stat", 1, C::Unknown),
        ("no_such_function", 1, C::Unknown),
    ] {
        assert_eq!(c.call(None, name, n).class, want, "{name}/{n}");
    }
    // Qualified: pg_catalog is the same; any other schema is the database's own.
    assert_eq!(c.call(Some("pg_catalog"), "lower", 1).class, C::Read);
    assert_eq!(c.call(Some("public"), "lower", 1).class, C::Unknown);
}

#[test]
fn every_volatile_built_in_is_reviewed() {
    // Rule 3 (volatile, unreviewed → unknown) is the fallback for functions
    // of newer versions; every one PostgreSQL 15 ships has a decision.
    let names: HashSet<&str> = reviewed::names().collect();
    let c = Catalog::bundled();
    let mut missing: Vec<&String> = c
        .functions
        .iter()
        .filter(|(_, rs)| rs.iter().any(|r| r.volatility == b'v'))
        .map(|(n, _)| n)
        .filter(|n| !names.contains(n.as_str()))
        .collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "volatile built-ins not reviewed: {missing:?}"
    );
}

#[test]
fn a_user_overload_of_a_built_in_name_makes_the_call_unknown() {
    let mut rows = CatalogRows::default();
    rows.functions
        .push(("lower".into(), routine("pg_catalog", true, 1, b'i')));
    rows.functions
        .push(("lower".into(), routine("public", false, 1, b'v')));
    rows.functions
        .push(("upper".into(), routine("pg_catalog", true, 1, b'i')));
    rows.functions
        .push(("upper".into(), routine("public", false, 2, b'v')));
    // An extension installed into pg_catalog is not a built-in.
    rows.functions
        .push(("xpath_table".into(), routine("pg_catalog", false, 5, b's')));
    let c = Catalog::from_rows(rows);
    assert_eq!(c.call(None, "lower", 1).class, C::Unknown);
    // An overload the argument count cannot reach does not count.
    assert_eq!(c.call(None, "upper", 1).class, C::Read);
    assert_eq!(c.call(None, "upper", 2).class, C::Unknown);
    assert_eq!(c.call(Some("pg_catalog"), "lower", 1).class, C::Read);
    assert_eq!(
        c.call(Some("pg_catalog"), "xpath_table", 5).class,
        C::Unknown
    );
}

#[test]
fn attribute_notation_needs_a_real_column() {
    let mut rows = CatalogRows::default();
    rows.functions
        .push(("name".into(), routine("pg_catalog", true, 1, b'i')));
    rows.functions
        .push(("lo_create".into(), routine("pg_catalog", true, 1, b'v')));
    rows.columns
        .push(("public".into(), "customers".into(), "name".into()));
    rows.columns
        .push(("app".into(), "customers".into(), "name".into()));
    rows.columns
        .push(("public".into(), "people".into(), "name".into()));
    let mut c = Catalog::from_rows(rows);
    assert!(c.takes_one_argument("name") && c.takes_one_argument("lo_create"));
    assert!(!c.takes_one_argument("email"));
    assert!(c.has_column(None, "customers", "name"));
    assert!(c.has_column(Some("app"), "customers", "name"));
    assert!(!c.has_column(None, "customers", "lo_create"));
    assert!(!c.has_column(None, "orders", "name"));
    // Some relation of that name lacks it: not surely a column.
    c.columns
        .get_mut("people")
        .unwrap()
        .push(("other".into(), HashSet::new()));
    assert!(!c.has_column(None, "people", "name"));
    assert!(c.has_column(Some("public"), "people", "name"));
}

#[test]
fn operators_and_types() {
    let rows = CatalogRows {
        operators: vec![
            ("=".into(), true),
            ("=".into(), true),
            ("+".into(), true),
            ("+".into(), false),
        ],
        untrusted_types: vec!["checked_domain".into()],
        ..CatalogRows::default()
    };
    let c = Catalog::from_rows(rows);
    assert_eq!(c.operator(None, "=").class, C::Read);
    assert_eq!(c.operator(None, "+").class, C::Unknown);
    assert_eq!(c.operator(Some("public"), "=").class, C::Unknown);
    assert_eq!(c.operator(None, "<=>").class, C::Unknown);
    assert!(c.cast_to(None, "checked_domain").is_some());
    assert!(
        c.cast_to(Some("app"), "status").is_none(),
        "live: an enum is fine"
    );
    assert!(Catalog::bundled().cast_to(Some("app"), "status").is_some());
    assert!(Catalog::bundled().cast_to(None, "int4").is_none());
}

#[test]
fn overloads_reached_by_argument_count() {
    let r = Routine {
        schema: "pg_catalog".into(),
        builtin: true,
        nargs: 3,
        defaults: 1,
        variadic: false,
        volatility: b'i',
    };
    assert!(!r.accepts(1) && r.accepts(2) && r.accepts(3) && !r.accepts(4));
    let v = Routine {
        variadic: true,
        defaults: 0,
        nargs: 2,
        ..r
    };
    assert!(!v.accepts(0) && v.accepts(1) && v.accepts(2) && v.accepts(7));
}
