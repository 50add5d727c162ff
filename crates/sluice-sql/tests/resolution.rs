//! Names resolved as PostgreSQL resolves them (issue 12, classes 2 and 6):
//! attribute notation that hides a call, user overloads of built-in names,
//! functions that run SQL given as text, operators and casts the database
//! defines, and syntax an older backend reads as a call.

use sluice_sql::catalog::{Catalog, CatalogRows, Routine};
use sluice_sql::{FunctionPolicy, StatementClass as C, analyze, analyze_in};

fn class(sql: &str) -> C {
    analyze(sql).class()
}

fn builtin(nargs: u16, volatility: u8) -> Routine {
    Routine {
        schema: "pg_catalog".into(),
        builtin: true,
        nargs,
        defaults: 0,
        variadic: false,
        volatility,
    }
}

/// A catalog like a backend's: PostgreSQL 15's built-ins, plus `extra`.
fn live(major: u32, edit: impl FnOnce(&mut CatalogRows)) -> Catalog {
    let mut rows = CatalogRows {
        major,
        ..CatalogRows::default()
    };
    for name in [
        "lo_create",
        "pg_advisory_lock",
        "pg_terminate_backend",
        "row_to_json",
    ] {
        rows.functions.push((name.into(), builtin(1, b'v')));
    }
    for name in [
        "lower",
        "name",
        "upper",
        "count",
        "json_object",
        "int4",
        "oid",
    ] {
        rows.functions.push((name.into(), builtin(1, b'i')));
    }
    for op in ["=", "<", ">", "<=", ">=", "+", "||"] {
        rows.operators.push((op.into(), true));
    }
    rows.columns
        .push(("public".into(), "customers".into(), "name".into()));
    edit(&mut rows);
    Catalog::from_rows(rows)
}

fn class_in(catalog: &Catalog, sql: &str) -> C {
    analyze_in(sql, catalog, &FunctionPolicy::default()).class()
}

#[test]
fn attribute_notation_is_a_call_when_no_column_answers() {
    // The attacker's statements: `x.f` is `f(x)` when x has no column f.
    for (sql, want) in [
        ("SELECT x.lo_create FROM oid(0) x", C::Write),
        ("SELECT x.pg_advisory_lock FROM int8(4242) x", C::Write),
        (
            "SELECT a.pg_terminate_backend FROM pg_stat_activity a",
            C::Admin,
        ),
        ("SELECT (x).lo_create FROM oid(0) x", C::Write),
        ("SELECT t.x.lo_create FROM (SELECT 0::oid AS x) t", C::Write),
        (
            "SELECT pg_catalog.pg_stat_activity.pg_terminate_backend FROM pg_catalog.pg_stat_activity",
            C::Admin,
        ),
        // An unaliased function in FROM is named after the function.
        ("SELECT oid.lo_create FROM oid(0)", C::Write),
    ] {
        assert_eq!(class(sql), want, "{sql}");
    }
    let reason = &analyze("SELECT x.lo_create FROM oid(0) x").statements[0].reasons[0];
    assert!(
        reason.contains("x.lo_create may call lo_create(x)"),
        "{reason}"
    );
    assert!(
        analyze("SELECT x.lo_create FROM oid(0) x").statements[0]
            .functions
            .contains(&"lo_create".to_string())
    );
    // Plain columns stay plain, also when a read function shares the name.
    assert_eq!(class("SELECT c.email, c.name FROM customers c"), C::Read);
    // With the catalog: a real column named like a dangerous function.
    let c = live(15, |rows| {
        rows.columns.push((
            "public".into(),
            "jobs".into(),
            "pg_terminate_backend".into(),
        ));
    });
    assert_eq!(
        class_in(&c, "SELECT j.pg_terminate_backend FROM jobs j"),
        C::Read
    );
    assert_eq!(
        class_in(
            &c,
            "SELECT j.pg_terminate_backend FROM jobs j, (SELECT 1) j2"
        ),
        C::Read
    );
    // ...but not when the same name also stands for something else.
    assert_eq!(
        class_in(
            &c,
            "SELECT j.pg_terminate_backend FROM jobs j UNION SELECT j.pg_terminate_backend FROM int4(1) j"
        ),
        C::Admin
    );
}

#[test]
fn functions_that_run_sql_given_as_text_are_unknown() {
    for sql in [
        "SELECT ts_rewrite('a'::tsquery, 'SELECT ssn::tsquery, ''b''::tsquery FROM customers')",
        "SELECT query_to_xml('SELECT * FROM customers', true, false, '')",
        "SELECT cursor_to_xml('c', 10, true, false, '')",
        "SELECT * FROM ts_stat('SELECT body FROM docs')",
        "SELECT table_to_xml('customers', true, false, '')",
    ] {
        assert_eq!(class(sql), C::Unknown, "{sql}");
    }
    // The 3-argument ts_rewrite takes no query: pure.
    assert_eq!(
        class("SELECT ts_rewrite('a'::tsquery, 'a'::tsquery, 'b'::tsquery)"),
        C::Read
    );
    // No prefix makes a function pure: names are exact.
    assert_eq!(class("SELECT ts_made_up(1)"), C::Unknown);
    assert_eq!(class("SELECT pg_get_made_up(1)"), C::Unknown);
}

#[test]
fn a_user_function_named_like_a_built_in_makes_the_call_unknown() {
    let c = live(15, |rows| {
        rows.functions.push((
            "lower".into(),
            Routine {
                schema: "public".into(),
                builtin: false,
                nargs: 1,
                defaults: 0,
                variadic: false,
                volatility: b'v',
            },
        ));
    });
    assert_eq!(class_in(&c, "SELECT lower('x')"), C::Unknown);
    assert_eq!(class_in(&c, "SELECT pg_catalog.lower('x')"), C::Read);
    assert_eq!(class_in(&c, "SELECT upper('x')"), C::Read);
}

#[test]
fn operators_and_casts_the_database_defines() {
    let c = live(15, |rows| {
        rows.operators.push(("+".into(), false));
        rows.operators.push(("=".into(), false));
        rows.untrusted_types.push("checked".into());
    });
    assert_eq!(class_in(&c, "SELECT 1 + 1"), C::Unknown);
    assert_eq!(class_in(&c, "SELECT 1 OPERATOR(public.<) 2"), C::Unknown);
    assert_eq!(class_in(&c, "SELECT 1 < 2"), C::Read);
    // Implicit = in CASE and JOIN USING, explicit in IN and NULLIF.
    assert_eq!(class_in(&c, "SELECT CASE 1 WHEN 1 THEN 2 END"), C::Unknown);
    assert_eq!(
        class_in(&c, "SELECT * FROM a JOIN b USING (id)"),
        C::Unknown
    );
    assert_eq!(class_in(&c, "SELECT 1 IN (1, 2)"), C::Unknown);
    assert_eq!(class_in(&c, "SELECT 'x'::checked"), C::Unknown);
    assert_eq!(class_in(&c, "SELECT checked 'x'"), C::Unknown);
    assert_eq!(class_in(&c, "SELECT ARRAY['x']::checked[]"), C::Unknown);
    assert_eq!(class_in(&c, "SELECT 'x'::text"), C::Read);
}

#[test]
fn syntax_an_older_backend_reads_as_a_call() {
    // PostgreSQL 18's parser reads these as built-in constructs; PostgreSQL
    // 15 calls whatever function has the name (none built in there).
    let pg15 = live(15, |_| {});
    let pg17 = live(17, |rows| {
        for name in ["json_query", "json_scalar", "merge_action", "json_array"] {
            rows.functions.push((name.into(), builtin(2, b'i')));
        }
    });
    for sql in [
        "SELECT json_query('{}'::jsonb, '$.a')",
        "SELECT json_scalar(1)",
        "SELECT json_serialize('{}'::json)",
        "SELECT json('{}'::text)",
        "SELECT merge_action()",
        "SELECT json_array(1, 2)",
        "SELECT json_arrayagg(x) FROM t",
        "SELECT '{}' IS JSON",
        "SELECT system_user",
        "SELECT * FROM JSON_TABLE('[]', '$[*]' COLUMNS (a int PATH '$.a')) jt",
    ] {
        assert_eq!(class_in(&pg15, sql), C::Unknown, "{sql}");
    }
    // A user overload of json_object wins on 15: the parser's pg_catalog
    // qualification only exists from 16.
    let user = live(15, |rows| {
        rows.functions.push((
            "json_object".into(),
            Routine {
                schema: "public".into(),
                builtin: false,
                nargs: 2,
                defaults: 0,
                variadic: false,
                volatility: b'v',
            },
        ));
    });
    assert_eq!(class_in(&user, "SELECT json_object(1, 2)"), C::Unknown);
    let user16 = live(16, |rows| {
        rows.functions.push((
            "json_object".into(),
            Routine {
                schema: "public".into(),
                builtin: false,
                nargs: 2,
                defaults: 0,
                variadic: false,
                volatility: b'v',
            },
        ));
        rows.functions
            .push(("json_object".into(), builtin(2, b's')));
    });
    assert_eq!(class_in(&user16, "SELECT json_object(1, 2)"), C::Read);
    // On a backend that knows them, they are what they say.
    assert_eq!(class_in(&pg17, "SELECT json_scalar(1)"), C::Read);
    assert_eq!(class_in(&pg17, "SELECT '{}' IS JSON"), C::Read);
}

#[test]
fn views_of_other_sessions_and_statistics_are_admin() {
    for sql in [
        "SELECT query, application_name FROM pg_stat_activity",
        "SELECT * FROM pg_catalog.pg_stat_activity",
        "SELECT most_common_vals FROM pg_stats WHERE attname = 'ssn'",
        "SELECT * FROM pg_statistic",
        "SELECT * FROM pg_stats_ext_exprs",
        "SELECT * FROM pg_locks",
        "SELECT * FROM public.pg_stat_statements",
        "SELECT * FROM pg_stat_progress_vacuum",
        "SELECT * FROM t WHERE x IN (SELECT pid FROM pg_stat_activity)",
    ] {
        assert_eq!(class(sql), C::Admin, "{sql}");
    }
    // A table of the database's own that happens to share a name.
    assert_eq!(class("SELECT * FROM app.pg_stats"), C::Read);
    assert_eq!(class("SELECT * FROM pg_stat_database"), C::Read);
}
