//! Tables, functions, multi-statement strings, fingerprints, configured
//! functions, prepared statements, and the analysis as the guardrail sees it.

use sluice_core::guardrail::{Action, GuardrailRule, Profile, evaluate, evaluate_all};
use sluice_sql::{FunctionPolicy, PreparedTracker, StatementClass as C, analyze, analyze_with};

fn one(sql: &str) -> sluice_sql::StatementFacts {
    let a = analyze(sql);
    assert_eq!(a.statements.len(), 1, "{sql}");
    a.statements.into_iter().next().unwrap()
}

#[test]
fn tables_read_and_written() {
    let f = one(
        "SELECT * FROM public.Customers c JOIN \"Orders\" o ON o.cid = c.id WHERE o.x IN (SELECT x FROM app.items)",
    );
    assert_eq!(f.tables_read, ["public.customers", "Orders", "app.items"]);
    assert!(f.tables_written.is_empty());

    let f = one("INSERT INTO audit_log SELECT * FROM events");
    assert_eq!(f.tables_written, ["audit_log"]);
    assert_eq!(f.tables_read, ["events"]);

    let f = one("UPDATE t SET a = u.a FROM u WHERE t.id = u.id");
    assert_eq!(
        (f.tables_written.as_slice(), f.tables_read.as_slice()),
        (&["t".to_string()][..], &["u".to_string()][..])
    );

    let f = one(
        "MERGE INTO tgt USING src ON tgt.id = src.id WHEN NOT MATCHED THEN INSERT VALUES (src.id)",
    );
    assert_eq!(
        (f.tables_written, f.tables_read),
        (vec!["tgt".to_string()], vec!["src".to_string()])
    );

    assert_eq!(one("COPY t FROM STDIN").tables_written, ["t"]);
    assert_eq!(one("COPY t TO STDOUT").tables_read, ["t"]);
    assert_eq!(
        one("SELECT * INTO s.newt FROM t").tables_written,
        ["s.newt"]
    );
    assert_eq!(one("CREATE TABLE n AS SELECT 1").tables_written, ["n"]);
    assert_eq!(one("TRUNCATE a, b.c").tables_written, ["a", "b.c"]);
    assert_eq!(
        one("DROP TABLE public.t, u").tables_written,
        ["public.t", "u"]
    );
    assert_eq!(one("ALTER TABLE t ADD COLUMN x int").tables_written, ["t"]);
    assert_eq!(one("CREATE SEQUENCE app.s").tables_written, ["app.s"]);
    assert_eq!(one("CREATE INDEX i ON t (a)").tables_written, ["t"]);
    assert_eq!(one("LOCK TABLE t").tables_written, ["t"]);
    // Row-lock targets name FROM items, not new tables.
    assert_eq!(
        one("SELECT * FROM t AS a FOR UPDATE OF a").tables_read,
        ["t"]
    );
    assert_eq!(
        one("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d").tables_written,
        ["t"]
    );
}

#[test]
fn cte_names_are_scoped() {
    // A CTE reference is not a table...
    assert!(
        one("WITH x AS (SELECT 1) SELECT * FROM x")
            .tables_read
            .is_empty()
    );
    assert!(
        one("WITH RECURSIVE r AS (SELECT 1 UNION ALL SELECT * FROM r) SELECT * FROM r")
            .tables_read
            .is_empty()
    );
    // ...but a CTE does not hide a real table outside its scope: a later
    // sibling is not visible to an earlier one,
    let f = one("WITH a AS (SELECT * FROM secrets), secrets AS (SELECT 1) SELECT * FROM a");
    assert_eq!(f.tables_read, ["secrets"]);
    // nor is a subquery's CTE visible outside it,
    let f = one("SELECT * FROM (WITH secrets AS (SELECT 1) SELECT * FROM secrets) s, secrets");
    assert_eq!(f.tables_read, ["secrets"]);
    // and a qualified name is always a table.
    assert_eq!(
        one("WITH secrets AS (SELECT 1) SELECT * FROM public.secrets").tables_read,
        ["public.secrets"]
    );
    // A DML target is a table even when a CTE has its name.
    assert_eq!(
        one("WITH t AS (SELECT 1) DELETE FROM t").tables_written,
        ["t"]
    );
}

#[test]
fn functions_are_listed_normalized() {
    let f = one("SELECT pg_catalog.lower(a), count(*), app.score(b) FROM t WHERE now() > c");
    assert_eq!(f.functions, ["lower", "count", "app.score", "now"]);
    assert_eq!(f.class, C::Unknown);
}

#[test]
fn configured_functions() {
    let policy = FunctionPolicy::new()
        .with("app.score", C::Read)
        .with("app.bump", C::Write)
        .with("app.rebuild", C::Admin)
        .with("refresh_all", C::Write);
    let class = |sql: &str| analyze_with(sql, &policy).class();
    assert_eq!(class("SELECT app.score(a) FROM t"), C::Read);
    assert_eq!(class("SELECT app.bump(1)"), C::Write);
    assert_eq!(class("SELECT app.rebuild()"), C::Admin);
    assert_eq!(
        class("SELECT score(a) FROM t"),
        C::Unknown,
        "unqualified call, qualified declaration"
    );
    assert_eq!(class("CALL refresh_all()"), C::Write);
    assert_eq!(class("CALL app.other()"), C::Unknown);
    assert_eq!(
        class("CALL refresh_all(pg_terminate_backend(1))"),
        C::Admin,
        "arguments count"
    );
    assert_eq!(class("SELECT my_func()"), C::Unknown);
}

#[test]
fn multi_statement_strings() {
    let a = analyze("SELECT 1; DELETE FROM t; SET search_path = x");
    assert!(a.is_multi());
    let classes: Vec<C> = a.statements.iter().map(|s| s.class).collect();
    assert_eq!(classes, [C::Read, C::Write, C::Session]);
    assert_eq!(a.class(), C::Write);
    let commands: Vec<&str> = a.statements.iter().map(|s| s.command.as_str()).collect();
    assert_eq!(commands, ["SELECT", "DELETE", "SET"]);
    // Each statement has its own fingerprint, the string one of its own.
    assert_eq!(a.statements[0].fingerprint, one("SELECT 1").fingerprint);
    assert_eq!(
        a.statements[1].fingerprint,
        one("DELETE FROM t").fingerprint
    );
    assert_ne!(a.fingerprint, a.statements[0].fingerprint);
    // A bad part makes the whole string unknown: nothing of it is judged piecemeal.
    let a = analyze("SELECT 1; DELETE FROM; SELECT 2");
    assert_eq!(a.statements.len(), 1);
    assert_eq!(a.class(), C::Unknown);
    assert!(a.error.is_some());
}

#[test]
fn empty_queries() {
    for sql in [
        "",
        "   ",
        ";",
        " ; ;\n",
        "-- only a comment",
        "/* a /* nested */ comment */ ;",
        "-- comment ending at a carriage return\r",
        "\x0c-- form feed is a blank\n",
    ] {
        let a = analyze(sql);
        assert!(a.statements.is_empty() && a.is_empty(), "{sql:?}");
        assert_eq!(a.class(), C::Read);
        assert!(!a.is_multi());
    }
    // PostgreSQL's lexer ends a `--` comment at \r as well as \n: what
    // follows is a statement, not more comment.
    for sql in [
        "SELECT 1",
        "/* unterminated",
        "; x",
        "-- c\nSELECT 1",
        "-- x\rUPDATE orders SET total = 0",
    ] {
        assert!(!analyze(sql).is_empty(), "{sql:?}");
    }
    assert_eq!(
        analyze("-- x\rUPDATE orders SET total = 0").class(),
        C::Write
    );
    assert_eq!(analyze("/* unterminated").class(), C::Unknown);
}

#[test]
fn fingerprints_are_shapes_that_keep_names() {
    let fp = |sql: &str| analyze(sql).fingerprint;
    assert_eq!(fp("SELECT * FROM t WHERE id = 1").len(), 16);
    assert_eq!(
        fp("SELECT * FROM t WHERE id = 1"),
        fp("select *  from t where id = 42")
    );
    assert_ne!(
        fp("SELECT * FROM t WHERE id = 1"),
        fp("SELECT * FROM u WHERE id = 1")
    );
    // Aliases do not stand in for tables, schemas count, digits count.
    assert_ne!(fp("SELECT * FROM secrets s"), fp("SELECT * FROM orders s"));
    assert_ne!(fp("SELECT * FROM a.t"), fp("SELECT * FROM b.t"));
    assert_ne!(
        fp("SELECT * FROM orders_2024_01"),
        fp("SELECT * FROM orders_2024_02")
    );
    assert_eq!(fp("SELECT * FROM"), "");
}

#[test]
fn prepared_statements_resolve_through_the_tracker() {
    let mut tracker = PreparedTracker::new();
    // Unknown name: stays unknown.
    let a = tracker.resolve(analyze("EXECUTE p"));
    assert_eq!(a.class(), C::Unknown);

    // Same string: PREPARE then EXECUTE.
    let a = tracker.resolve(analyze("PREPARE p AS DELETE FROM t; EXECUTE p"));
    assert_eq!(a.statements[1].class, C::Write);
    assert_eq!(a.statements[1].command, "EXECUTE");
    assert_eq!(a.statements[1].tables_written, ["t"]);
    assert_eq!(
        a.statements[1].reasons[0],
        "executes prepared statement p (write): prepares DELETE"
    );
    assert!(tracker.is_empty(), "resolve alone records nothing");

    // Across strings, once observed.
    tracker.observe(&analyze("PREPARE q (int) AS SELECT * FROM t WHERE id = $1"));
    tracker.observe(&analyze("PREPARE w AS UPDATE t SET a = 1"));
    assert_eq!(tracker.len(), 2);
    assert_eq!(tracker.resolve(analyze("EXECUTE q(1)")).class(), C::Read);
    assert_eq!(tracker.resolve(analyze("EXECUTE w")).class(), C::Write);
    // Arguments are expressions too.
    let a = tracker.resolve(analyze("EXECUTE q(pg_terminate_backend(1))"));
    assert_eq!(a.class(), C::Admin);
    // Wrappers around EXECUTE.
    assert_eq!(
        tracker
            .resolve(analyze("EXPLAIN ANALYZE EXECUTE w"))
            .class(),
        C::Write
    );
    assert_eq!(
        tracker
            .resolve(analyze("CREATE TABLE x AS EXECUTE q(1)"))
            .class(),
        C::Ddl
    );

    // DEALLOCATE forgets; DEALLOCATE ALL and DISCARD ALL forget everything.
    tracker.observe(&analyze("DEALLOCATE w"));
    assert_eq!(tracker.resolve(analyze("EXECUTE w")).class(), C::Unknown);
    assert_eq!(
        tracker
            .resolve(analyze("DEALLOCATE q; EXECUTE q(1)"))
            .statements[1]
            .class,
        C::Unknown
    );
    tracker.observe(&analyze("DEALLOCATE ALL"));
    assert!(tracker.is_empty());
    tracker.observe(&analyze("PREPARE r AS SELECT 1"));
    tracker.observe(&analyze("DISCARD ALL"));
    assert!(tracker.is_empty());

    // A prepared read-only toggle stays a toggle when executed.
    tracker.observe(&analyze(
        "PREPARE s AS SELECT set_config('default_transaction_read_only', 'off', false)",
    ));
    let f = &tracker.resolve(analyze("EXECUTE s")).statements[0];
    assert!(f.disables_read_only);
    assert_eq!((f.class, f.base_class), (C::Admin, Some(C::Read)));

    // Protocol-level statements.
    tracker.record("stmt1", one("DROP TABLE t"));
    assert_eq!(tracker.resolve(analyze("EXECUTE stmt1")).class(), C::Ddl);
    tracker.forget("stmt1");
    assert_eq!(
        tracker.resolve(analyze("EXECUTE stmt1")).class(),
        C::Unknown
    );
}

fn rule(name: &str, action: Action, classes: &[C], tables: &[&str]) -> GuardrailRule {
    GuardrailRule {
        name: name.into(),
        action,
        classes: classes.to_vec(),
        tables: tables.iter().map(|t| t.to_string()).collect(),
        functions: vec![],
        fingerprints: vec![],
        commands: vec![],
        paths: vec![],
        profiles: vec![],
        message: None,
        hold: Default::default(),
    }
}

#[test]
fn guardrail_messages_for_analyzed_statements() {
    let msg = |profile, rules: &[GuardrailRule], sql: &str| {
        evaluate_all(profile, rules, &analyze(sql).statements).client_message()
    };
    let no_ddl = [rule("no-ddl", Action::Deny, &[C::Ddl], &[])];
    assert_eq!(
        msg(Profile::Admin, &no_ddl, "DROP TABLE t"),
        "sluice: statement denied by rule \"no-ddl\": DROP TABLE is ddl"
    );
    assert_eq!(
        msg(Profile::Read, &[], "DELETE FROM t"),
        "sluice: statement denied by profile \"read\": DELETE is write"
    );
    assert_eq!(
        msg(Profile::Read, &[], "SELECT pg_terminate_backend(42)"),
        "sluice: statement denied by profile \"read\": SELECT is admin: calls pg_terminate_backend: signals another backend (ends its session)"
    );
    assert_eq!(
        msg(
            Profile::Read,
            &[],
            "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x"
        ),
        "sluice: statement denied by profile \"read\": SELECT is write: data-modifying CTE: DELETE"
    );
    let secrets = [rule(
        "no-secrets",
        Action::Deny,
        &[],
        &["*.secrets", "secrets"],
    )];
    assert_eq!(
        msg(
            Profile::Admin,
            &secrets,
            "SELECT 1; SELECT * FROM app.secrets"
        ),
        "sluice: statement denied by rule \"no-secrets\": SELECT reads app.secrets"
    );
    // The read-only guard outranks an allow-everything rule.
    let allow_admin = [rule("admin-ok", Action::Allow, &[C::Admin], &[])];
    let a = analyze("SET default_transaction_read_only = off");
    assert_eq!(
        evaluate(Profile::Read, &allow_admin, &a.statements[0]).action,
        Action::Deny
    );
    // A write profile may open a read-write transaction.
    assert_eq!(
        evaluate(
            Profile::Write,
            &[],
            &analyze("BEGIN READ WRITE").statements[0]
        )
        .action,
        Action::Allow
    );
    // Unknown stays denied for admin.
    assert_eq!(
        evaluate_all(Profile::Admin, &[], &analyze("SELECT my_fn()").statements).action,
        Action::Deny
    );
    // Empty query: allowed.
    assert_eq!(
        evaluate_all(Profile::Read, &[], &analyze(" ; ").statements).action,
        Action::Allow
    );
}

#[test]
fn client_encoding_may_only_stay_utf8() {
    // Under SJIS the server would read `E'\u07DF\'; DROP TABLE items; --'`
    // as a string followed by a DROP that Sluice never saw.
    for sql in [
        "SET client_encoding = 'SJIS'",
        "SET NAMES 'SJIS'",
        "SELECT set_config('client_encoding', 'SJIS', false)",
    ] {
        let a = sluice_sql::analyze(sql);
        assert_eq!(
            a.class(),
            sluice_core::guardrail::StatementClass::Admin,
            "{sql}"
        );
    }
    // A reset returns to the value the backend session started with, which
    // Sluice pins to UTF8.
    for sql in [
        "SET client_encoding = 'UTF8'",
        "SET NAMES 'UTF8'",
        "SET client_encoding TO DEFAULT",
        "RESET client_encoding",
    ] {
        assert_eq!(
            sluice_sql::analyze(sql).class(),
            sluice_core::guardrail::StatementClass::Session,
            "{sql}"
        );
    }
}

/// Settings that change how the server reads statements are refused
/// outright, in every spelling that reaches them; the guardrail denies
/// them whatever the profile or rules say.
#[test]
fn lexing_settings_are_refused_whatever_the_profile() {
    use sluice_core::guardrail::DecidedBy;
    let allow_all = GuardrailRule {
        name: "anything".into(),
        action: Action::Allow,
        classes: C::ALL.to_vec(),
        tables: vec![],
        functions: vec![],
        fingerprints: vec![],
        commands: vec![],
        paths: vec![],
        profiles: vec![],
        message: None,
        hold: Default::default(),
    };
    for sql in [
        "SET standard_conforming_strings = off",
        "SET standard_conforming_strings TO 'off'",
        "SET LOCAL standard_conforming_strings = false",
        "SET SESSION standard_conforming_strings = 0",
        "SELECT set_config('standard_conforming_strings', 'off', false)",
        "SELECT pg_catalog.set_config('Standard_Conforming_Strings', 'off', true)",
        "SET backslash_quote = on",
        "SET client_encoding = 'SJIS'",
        "SET NAMES 'BIG5'",
        "SELECT set_config('client_encoding', 'GBK', false)",
        "SET search_path = evil, pg_catalog",
        "SET application_name = 'g_someone_else'",
        "SELECT set_config('application_name', 'g_someone_else', false)",
        "RESET application_name",
        "RESET ALL",
        "DISCARD ALL",
        "SELECT 1; SET standard_conforming_strings = off",
        "ALTER ROLE CURRENT_USER SET standard_conforming_strings = off",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET standard_conforming_strings = off RETURN 1",
    ] {
        let a = analyze(sql);
        assert!(
            a.statements.iter().any(|s| s.refused.is_some()),
            "{sql}: {:?}",
            a.statements
        );
        for profile in [Profile::Read, Profile::Write, Profile::Admin] {
            let v = evaluate_all(profile, std::slice::from_ref(&allow_all), &a.statements);
            assert_eq!(v.action, Action::Deny, "{sql} under {profile}");
            assert_eq!(v.rule, "default:invariant", "{sql}");
            assert_eq!(v.by, DecidedBy::Profile(profile));
        }
    }
    for sql in [
        "SET standard_conforming_strings = on",
        "SET client_encoding = 'UTF8'",
        "RESET standard_conforming_strings",
        "SET search_path = public, app",
        "SET TIME ZONE 'UTC'",
        "SET statement_timeout = '5s'",
    ] {
        let a = analyze(sql);
        assert!(a.statements.iter().all(|s| s.refused.is_none()), "{sql}");
        assert_eq!(a.class(), C::Session, "{sql}");
    }
}

#[test]
fn settings_changed_are_reported_with_their_values() {
    let facts = one("SET statement_timeout = 0");
    assert_eq!(
        facts.settings,
        vec![("statement_timeout".to_string(), Some("0".to_string()))]
    );
    let facts = one("SELECT set_config('lock_timeout', '10min', false)");
    assert_eq!(
        facts.settings,
        vec![("lock_timeout".to_string(), Some("10min".to_string()))]
    );
    let facts = one("RESET statement_timeout");
    assert_eq!(
        facts.settings,
        vec![("statement_timeout".to_string(), None)]
    );
    assert!(one("SELECT 1").settings.is_empty());
    // A view body runs nothing now.
    assert!(
        one("CREATE VIEW v AS SELECT set_config('statement_timeout', '0', false)")
            .settings
            .is_empty()
    );
}

#[test]
fn set_config_with_computed_values_is_judged_by_its_worst_case() {
    for sql in [
        "SELECT set_config('standard_conforming_strings', (SELECT 'off'), false)",
        "SELECT set_config('application_name', current_user, false)",
        "SELECT set_config('search_path', $1, false)",
        "SELECT set_config('statement_timeout', lower('0'), false)",
    ] {
        assert!(one(sql).refused.is_some(), "{sql}");
    }
    assert!(
        one("SELECT set_config('default_transaction_read_only', $1, false)").disables_read_only
    );
    assert_eq!(
        one("SELECT set_config('work_mem', $1, false)").class,
        C::Admin
    );
    assert_eq!(
        one("SELECT set_config('DateStyle', $1, false)").class,
        C::Session
    );
}
