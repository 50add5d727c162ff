//! The attack corpus: each way a security review got around the gate
//! (issue 12), against a real PostgreSQL through the proxy. Every case
//! asserts what the database itself shows afterwards (as the superuser),
//! not only what the client was told.

mod common;

use common::*;
use sluice_core::Profile;
use sluice_core::guardrail::{Action, GuardrailRule, StatementClass};

/// What the attacker aims at: a table whose rows must not change.
const SETUP: &str = "
CREATE TABLE orders (id int PRIMARY KEY, ref text, total int);
INSERT INTO orders VALUES (1, 'a', 10), (2, 'b', 20);
";

/// The orders table as the superuser sees it.
fn orders(h: &Harness) -> String {
    h.backend("SELECT string_agg(id || ':' || ref || ':' || total, ',' ORDER BY id) FROM orders")
}

fn untouched(h: &Harness) {
    assert_eq!(orders(h), "1:a:10,2:b:20", "orders changed");
}

async fn harness_with(settings: &[(&str, &str)]) -> Harness {
    let opts = Options {
        pg_settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Options::default()
    };
    let h = Harness::start(opts).await;
    h.backend(SETUP);
    h
}

/// Logs in with a raw socket and `extra` startup parameters.
async fn login(h: &Harness, g: &TestGrant, extra: &[(&str, &str)]) -> tokio::net::TcpStream {
    let mut params = vec![("user", g.id.as_str()), ("database", CONN)];
    params.extend_from_slice(extra);
    raw_startup(h.addr, &params, &g.secret).await
}

/// Class 1: settings that change how the server lexes a statement. The
/// server's own default here is `standard_conforming_strings = off`, so
/// only Sluice's pinning keeps the backend reading `'…\'…'` as Sluice does.
#[tokio::test(flavor = "multi_thread")]
async fn lexing_settings_are_pinned_and_cannot_be_changed() {
    let h = harness_with(&[("standard_conforming_strings", "off")]).await;
    let g = h.grant(Profile::Write);
    let mut s = login(&h, &g, &[]).await;
    let show = |name: &'static str| format!("SHOW {name}");
    assert_eq!(
        simple(&mut s, &show("standard_conforming_strings")).await,
        Ok(vec!["on".into()]),
        "pinned at session start, whatever the server's default"
    );
    // Under scs=off the server reads `'a\' , '` as one literal and runs
    // the UPDATE that Sluice (scs=on) saw as string content.
    let payload = "SELECT 'a\\' , ' ; UPDATE orders SET total = 0; SELECT '";
    let _ = simple(&mut s, payload).await;
    untouched(&h);
    for attempt in [
        "SET standard_conforming_strings = off",
        "SET LOCAL standard_conforming_strings TO 'off'",
        "SELECT set_config('standard_conforming_strings', 'off', false)",
        "SELECT pg_catalog.set_config('standard_conforming_strings', (SELECT 'off'), false)",
        "SET backslash_quote = on",
        "SET client_encoding = 'SJIS'",
        "SET NAMES 'GBK'",
        "SET search_path = public, pg_catalog",
        "SET application_name = 'someone else'",
        "RESET ALL",
        "DISCARD ALL",
        "SELECT 1; SET standard_conforming_strings = off",
    ] {
        assert_eq!(
            simple(&mut s, attempt).await,
            Err("42501".into()),
            "{attempt}"
        );
        // Then the payload again: still read as one string.
        let _ = simple(&mut s, payload).await;
        untouched(&h);
    }
    // A reset returns to the pinned value, not the server's default.
    simple(&mut s, "RESET standard_conforming_strings")
        .await
        .unwrap();
    assert_eq!(
        simple(&mut s, &show("standard_conforming_strings")).await,
        Ok(vec!["on".into()])
    );
    assert_eq!(
        simple(&mut s, &show("client_encoding")).await,
        Ok(vec!["UTF8".into()])
    );
    // The backend session still names the grant.
    assert_eq!(h.backend_sessions(&g.id), 1);
}

/// Class 1, at login: startup parameters and `options` are judged like
/// the `SET`s they stand for.
#[tokio::test(flavor = "multi_thread")]
async fn startup_options_that_would_diverge_refuse_the_login() {
    let h = harness_with(&[]).await;
    let g = h.grant(Profile::Read);
    for (name, value) in [
        ("options", "-c standard_conforming_strings=off"),
        ("options", "-c client_encoding=SJIS"),
        ("options", "-c default_transaction_read_only=off"),
        ("options", "--search_path=evil,pg_catalog"),
        ("options", "-c statement_timeout=0"),
        ("options", "-c work_mem=8GB"),
        ("options", "-c session_replication_role=replica"),
        ("options", "-d 5"),
        ("standard_conforming_strings", "off"),
        ("backslash_quote", "on"),
    ] {
        let params = [("user", g.id.as_str()), ("database", CONN), (name, value)];
        let refused = try_raw_greeting(h.addr, &params, &g.secret).await;
        assert_eq!(refused.err().as_deref(), Some("42501"), "{name}={value}");
    }
    // Harmless options are applied.
    let mut s = login(
        &h,
        &g,
        &[("options", "-c statement_timeout=5s -c DateStyle=German")],
    )
    .await;
    assert_eq!(
        simple(&mut s, "SHOW statement_timeout").await,
        Ok(vec!["5s".into()])
    );
    assert_eq!(
        simple(&mut s, "SHOW DateStyle").await,
        Ok(vec!["German, DMY".into()])
    );
}

/// A profile's statement timeout: set at session start, may be lowered,
/// never raised or turned off.
#[tokio::test(flavor = "multi_thread")]
async fn statement_timeouts_may_be_lowered_but_not_lifted() {
    let h = harness_with(&[]).await;
    let g = h.grant(Profile::Read);
    let mut s = login(&h, &g, &[]).await;
    assert_eq!(
        simple(&mut s, "SHOW statement_timeout").await,
        Ok(vec!["1min".into()])
    );
    for attempt in [
        "SET statement_timeout = 0",
        "SET statement_timeout = '2h'",
        "SELECT set_config('statement_timeout', '0', false)",
        "SET LOCAL statement_timeout = 3600000",
    ] {
        assert_eq!(
            simple(&mut s, attempt).await,
            Err("42501".into()),
            "{attempt}"
        );
    }
    simple(&mut s, "SET statement_timeout = '50ms'")
        .await
        .unwrap();
    assert_eq!(
        simple(&mut s, "SELECT pg_sleep(1)").await,
        Err("57014".into()),
        "cancelled by the lowered timeout"
    );
    simple(&mut s, "RESET statement_timeout").await.unwrap();
    assert_eq!(
        simple(&mut s, "SHOW statement_timeout").await,
        Ok(vec!["1min".into()])
    );
}

/// Class 3: a `--` comment ends at `\r` for PostgreSQL's lexer. A
/// hand-written shortcut ended it only at `\n`, took the whole string
/// for an empty query, and let the UPDATE behind it run unchecked.
#[tokio::test(flavor = "multi_thread")]
async fn a_comment_ending_at_a_carriage_return_hides_nothing() {
    let h = harness_with(&[]).await;
    let g = h.grant(Profile::Read);
    let mut s = login(&h, &g, &[]).await;
    for sql in [
        "-- x\rUPDATE orders SET total = 0",
        "--\rUPDATE orders SET total = 0;",
        "/* c */ -- x\r\rUPDATE orders SET total = 0",
    ] {
        assert_eq!(simple(&mut s, sql).await, Err("42501".into()), "{sql:?}");
    }
    let client = h.connect(&g).await;
    let err = client
        .execute("-- x\rUPDATE orders SET total = 0", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    untouched(&h);
    // A real empty query still gets PostgreSQL's own answer.
    assert_eq!(simple(&mut s, "-- only a comment\n;").await, Ok(vec![]));
}

/// Class 1, the wall behind the analysis: if anything Sluice let through
/// (here a user function a rule allows) changes a pinned setting, the
/// backend reports it and the session ends before another statement runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_setting_changed_behind_sluices_back_ends_the_session() {
    let opts = Options {
        guardrails: vec![GuardrailRule {
            name: "allow-flip".into(),
            action: Action::Allow,
            classes: vec![StatementClass::Unknown],
            tables: vec![],
            functions: vec!["flip".into()],
            fingerprints: vec![],
            commands: vec![],
            paths: vec![],
            profiles: vec![],
            message: None,
            hold: Default::default(),
        }],
        ..Options::default()
    };
    let h = Harness::start(opts).await;
    h.backend(SETUP);
    h.backend(
        "CREATE FUNCTION flip() RETURNS int LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM set_config('standard_conforming_strings', 'off', false); RETURN 1; END $$",
    );
    let g = h.grant(Profile::Write);
    let mut s = login(&h, &g, &[]).await;
    let answer = simple(&mut s, "SELECT flip()").await;
    assert_eq!(answer, Err("42501".into()), "the session must end");
    // The connection is closed: nothing more runs on it.
    let payload = "SELECT 'a\\' , ' ; UPDATE orders SET total = 0; SELECT '";
    use tokio::io::AsyncWriteExt;
    let mut buf = bytes::BytesMut::new();
    postgres_protocol::message::frontend::query(payload, &mut buf).unwrap();
    let _ = s.write_all(&buf).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    untouched(&h);
}

/// Extended-protocol messages, built as a driver would.
mod wire {
    use bytes::BytesMut;
    use postgres_protocol::IsNull;
    use postgres_protocol::message::frontend;

    pub fn parse(buf: &mut BytesMut, name: &str, sql: &str) {
        frontend::parse(name, sql, std::iter::empty(), buf).unwrap();
    }

    pub fn bind(buf: &mut BytesMut, portal: &str, statement: &str, values: &[&str]) {
        frontend::bind(
            portal,
            statement,
            std::iter::empty::<i16>(),
            values.iter().copied(),
            |v, out: &mut BytesMut| {
                out.extend_from_slice(v.as_bytes());
                Ok::<_, Box<dyn std::error::Error + Sync + Send>>(IsNull::No)
            },
            std::iter::empty::<i16>(),
            buf,
        )
        .map_err(|_| "bind")
        .unwrap();
    }

    pub fn execute(buf: &mut BytesMut, portal: &str) {
        frontend::execute(portal, 0, buf).unwrap();
    }

    pub fn sync(buf: &mut BytesMut) {
        frontend::sync(buf);
    }
}

/// Sends `buf` and reads answers through `syncs` ReadyForQuerys: the tags
/// seen, and the SQLSTATEs of errors.
async fn exchange(
    s: &mut tokio::net::TcpStream,
    buf: bytes::BytesMut,
    syncs: usize,
) -> (String, Vec<String>) {
    use tokio::io::AsyncWriteExt;
    s.write_all(&buf).await.unwrap();
    let (mut tags, mut errors) = (String::new(), Vec::new());
    let mut seen = 0;
    while seen < syncs {
        let (tag, body) = read_message(s).await;
        tags.push(tag as char);
        match tag {
            b'E' => {
                let text = String::from_utf8_lossy(&body).to_string();
                let code = text.split('\0').find_map(|f| f.strip_prefix('C'));
                errors.push(code.unwrap_or("?").to_string());
            }
            b'Z' => seen += 1,
            _ => {}
        }
    }
    (tags, errors)
}

fn hold_writes() -> Options {
    Options {
        guardrails: vec![GuardrailRule {
            name: "hold-writes".into(),
            action: Action::Approve,
            classes: vec![StatementClass::Write],
            tables: vec![],
            functions: vec![],
            fingerprints: vec![],
            commands: vec![],
            paths: vec![],
            profiles: vec![],
            message: None,
            hold: Default::default(),
        }],
        ..Options::default()
    }
}

/// Class 4: a second Parse of a name in use is refused by the backend
/// (42P05) and changes nothing there. Sluice took the refused text as the
/// statement's, judged the later Execute as `SELECT 1`, and let the
/// UPDATE the backend still held run without its approval.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_parse_does_not_rename_what_runs() {
    let h = Harness::start(hold_writes()).await;
    h.backend(SETUP);
    let g = h.grant(Profile::Write);
    let mut s = login(&h, &g, &[]).await;
    let mut buf = bytes::BytesMut::new();
    // Preparing runs nothing: the UPDATE is held when it is executed.
    wire::parse(&mut buf, "s1", "UPDATE orders SET total = 0");
    wire::sync(&mut buf);
    assert_eq!(
        exchange(&mut s, buf.split(), 1).await.1,
        Vec::<String>::new()
    );
    wire::parse(&mut buf, "s1", "SELECT 1");
    wire::sync(&mut buf);
    assert_eq!(exchange(&mut s, buf.split(), 1).await.1, vec!["42P05"]);
    wire::bind(&mut buf, "", "s1", &[]);
    wire::execute(&mut buf, "");
    wire::sync(&mut buf);
    let (_, errors) = exchange(&mut s, buf.split(), 1).await;
    assert_eq!(errors, vec!["42501"], "the UPDATE must be held, not run");
    untouched(&h);

    // The same, pipelined: nothing answered yet when the Bind is judged.
    wire::parse(&mut buf, "s2", "UPDATE orders SET total = 0");
    wire::sync(&mut buf);
    wire::parse(&mut buf, "s2", "SELECT 1");
    wire::sync(&mut buf);
    wire::bind(&mut buf, "", "s2", &[]);
    wire::execute(&mut buf, "");
    wire::sync(&mut buf);
    let (_, errors) = exchange(&mut s, buf.split(), 3).await;
    assert_eq!(errors, vec!["42P05", "42501"]);
    untouched(&h);

    // A statement whose Parse failed is unknown, not its text.
    wire::parse(&mut buf, "s3", "SELECT 1 FROM no_such_table");
    wire::sync(&mut buf);
    assert_eq!(exchange(&mut s, buf.split(), 1).await.1, vec!["42P01"]);
    wire::bind(&mut buf, "", "s3", &[]);
    wire::execute(&mut buf, "");
    wire::sync(&mut buf);
    assert_eq!(exchange(&mut s, buf.split(), 1).await.1, vec!["42501"]);

    // An Execute of a portal Sluice never saw bound is refused too.
    wire::execute(&mut buf, "no_such_portal");
    wire::sync(&mut buf);
    assert_eq!(exchange(&mut s, buf.split(), 1).await.1, vec!["42501"]);

    // Ordinary use is unchanged: prepare, bind and run, twice.
    for _ in 0..2 {
        wire::parse(&mut buf, "", "SELECT total FROM orders WHERE id = $1");
        wire::bind(&mut buf, "", "", &["1"]);
        wire::execute(&mut buf, "");
        wire::sync(&mut buf);
        let (tags, errors) = exchange(&mut s, buf.split(), 1).await;
        assert!(errors.is_empty() && tags.contains('D'), "{tags} {errors:?}");
    }
    let denied = h
        .audit
        .of_kind(sluice_core::audit::EventKind::StatementDenied);
    assert!(
        denied
            .iter()
            .any(|e| e.detail.to_string().contains("UPDATE orders")),
        "the denial names the UPDATE that would have run"
    );
}

/// Customers with masked columns, as in the playground.
const CUSTOMERS: &str = "
CREATE TABLE customers (id int PRIMARY KEY, name text, email text, ssn text NOT NULL,
  pin int CHECK (pin IS NULL OR pin > 0));
INSERT INTO customers VALUES (1, 'Ada', 'ada@example.com', '123-45-6789', 1234);
ANALYZE customers;
";
const SSN: &str = "123-45-6789";
const EMAIL: &str = "ada@example.com";

async fn masked_harness(opts: Options) -> Harness {
    let pg = start_pg(&opts).await;
    let masking: sluice_core::config::MaskingConfig = toml::from_str(
        r#"
columns = [
  { column = "customers.ssn", style = "redact" },
  { column = "customers.email", style = "partial" },
]
"#,
    )
    .unwrap();
    let h = Harness::on(pg, opts, |c| c.masking = Some(masking)).await;
    h.backend(SETUP);
    h.backend(CUSTOMERS);
    h
}

/// Everything a raw simple Query returns (rows, errors, notices) as text.
async fn all_text(s: &mut tokio::net::TcpStream, sql: &str) -> String {
    use tokio::io::AsyncWriteExt;
    let mut buf = bytes::BytesMut::new();
    postgres_protocol::message::frontend::query(sql, &mut buf).unwrap();
    s.write_all(&buf).await.unwrap();
    let mut out = String::new();
    loop {
        let Some((tag, body)) = try_read_message(s).await else {
            return out;
        };
        out.push_str(&String::from_utf8_lossy(&body));
        if tag == b'Z' {
            return out;
        }
    }
}

/// Class 2: attribute notation. `x.f` is `f(x)` when x has no column f;
/// the calls below ran through a read grant.
#[tokio::test(flavor = "multi_thread")]
async fn attribute_notation_cannot_hide_a_call() {
    let h = masked_harness(Options::default()).await;
    let g = h.grant(Profile::Read);
    let mut s = login(&h, &g, &[]).await;
    for sql in [
        "SELECT x.lo_create FROM oid(0) x",
        "SELECT x.pg_advisory_lock FROM int8(4242) x",
        "SELECT (x).pg_advisory_lock FROM int8(4243) x",
        "SELECT a.pg_terminate_backend FROM pg_stat_activity a WHERE a.pid <> pg_backend_pid()",
    ] {
        assert_eq!(simple(&mut s, sql).await, Err("42501".into()), "{sql}");
    }
    assert_eq!(
        h.backend("SELECT count(*) FROM pg_largeobject_metadata"),
        "0"
    );
    assert_eq!(
        h.backend("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"),
        "0"
    );
    // The whole row through a function named like a column: masked values
    // in clear, before.
    for sql in [
        "SELECT c.row_to_json FROM customers c",
        "SELECT c.to_jsonb FROM customers c",
        "SELECT customers.concat FROM customers",
    ] {
        let out = all_text(&mut s, sql).await;
        assert!(!out.contains(SSN) && !out.contains(EMAIL), "{sql}: {out}");
        assert!(out.contains("42501"), "{sql}: {out}");
    }
    // Real columns still work.
    assert_eq!(
        simple(&mut s, "SELECT c.name FROM customers c").await,
        Ok(vec!["Ada".into()])
    );
}

/// Class 6: functions that run SQL given as text were classed pure by a
/// name prefix; the catalog is exact now, and a user function that shares
/// a built-in's name makes the call unknown.
#[tokio::test(flavor = "multi_thread")]
async fn calls_are_judged_by_every_function_they_may_reach() {
    let h = masked_harness(Options::default()).await;
    h.backend(
        "CREATE TABLE side_effects (at timestamptz DEFAULT now());
         CREATE FUNCTION public.lower(int) RETURNS text LANGUAGE plpgsql AS
           $$ BEGIN INSERT INTO side_effects DEFAULT VALUES; RETURN 'x'; END $$;",
    );
    let g = h.grant(Profile::Read);
    let mut s = login(&h, &g, &[]).await;
    let sql =
        "SELECT ts_rewrite('a'::tsquery, 'SELECT ssn::tsquery, ''b''::tsquery FROM customers')";
    let out = all_text(&mut s, sql).await;
    assert!(out.contains("42501") && !out.contains("123"), "{out}");
    let w = h.grant(Profile::Write);
    let mut s = login(&h, &w, &[]).await;
    assert_eq!(simple(&mut s, "SELECT lower(5)").await, Err("42501".into()));
    assert_eq!(h.backend("SELECT count(*) FROM side_effects"), "0");
    // The built-in alone is still fine.
    assert_eq!(
        simple(&mut s, "SELECT pg_catalog.lower('ABC')").await,
        Ok(vec!["abc".into()])
    );
}

/// Class 5: a column alias list renames a masked column by position.
#[tokio::test(flavor = "multi_thread")]
async fn a_column_alias_list_does_not_unmask() {
    let h = masked_harness(Options::default()).await;
    let g = h.grant(Profile::Read);
    let mut s = login(&h, &g, &[]).await;
    for sql in [
        "SELECT i FROM customers AS c(i, n, e) WHERE e LIKE 'ada%'",
        "SELECT upper(e) FROM customers AS c(i, n, e)",
        "SELECT i FROM customers AS c(i, n, e, x) ORDER BY x",
        "SELECT string_agg(x, ',') FROM customers AS c(i, n, e, x)",
    ] {
        let out = all_text(&mut s, sql).await;
        assert!(out.contains("42501"), "{sql}: {out}");
        assert!(
            !out.contains(SSN) && !out.to_lowercase().contains(EMAIL),
            "{sql}: {out}"
        );
    }
    // As a plain output, masked by its source.
    let out = all_text(&mut s, "SELECT e, x FROM customers AS c(i, n, e, x)").await;
    assert!(!out.contains(SSN) && !out.contains(EMAIL), "{out}");
}

/// Class 8: two statements whose shape keys matched named different
/// tables: `U&"!0073ecrets" UESCAPE '#'` is a table that does not exist,
/// `… UESCAPE '!'` is `secrets`. The first's analysis answered for the second.
#[tokio::test(flavor = "multi_thread")]
async fn a_uescape_literal_cannot_borrow_another_statements_analysis() {
    let opts = Options {
        guardrails: vec![GuardrailRule {
            name: "no-secrets".into(),
            action: Action::Deny,
            classes: vec![],
            tables: vec!["secrets".into(), "*.secrets".into()],
            functions: vec![],
            fingerprints: vec![],
            commands: vec![],
            paths: vec![],
            profiles: vec![],
            message: None,
            hold: Default::default(),
        }],
        ..Options::default()
    };
    let h = masked_harness(opts).await;
    h.backend("CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('the-secret')");
    let g = h.grant(Profile::Read);
    let mut s = login(&h, &g, &[]).await;
    for _ in 0..2 {
        let out = all_text(&mut s, "SELECT * FROM U&\"!0073ecrets\" UESCAPE '#'").await;
        assert!(out.contains("42P01"), "no such table: {out}");
        let out = all_text(&mut s, "SELECT * FROM U&\"!0073ecrets\" UESCAPE '!'").await;
        assert!(
            out.contains("42501") && !out.contains("the-secret"),
            "{out}"
        );
        let out = all_text(&mut s, "SELECT U&\"!0073sn\" UESCAPE '#' FROM customers").await;
        assert!(out.contains("42703"), "no such column: {out}");
        let out = all_text(
            &mut s,
            "SELECT upper(U&\"!0073sn\" UESCAPE '!') FROM customers",
        )
        .await;
        assert!(out.contains("42501") && !out.contains(SSN), "{out}");
    }
}

/// Class 7: statistics and activity views. pg_stats returned real values
/// of each masked column; pg_stat_activity showed other agents' statement
/// text and grant ids.
#[tokio::test(flavor = "multi_thread")]
async fn statistics_and_other_sessions_are_out_of_sight() {
    let h = masked_harness(Options::default()).await;
    let other = h.grant(Profile::Read);
    let mut bystander = login(&h, &other, &[]).await;
    simple(&mut bystander, "SELECT 'bystander-marker'")
        .await
        .unwrap();
    for profile in [Profile::Read, Profile::Write] {
        let g = h.grant(profile);
        let mut s = login(&h, &g, &[]).await;
        for sql in [
            "SELECT most_common_vals::text FROM pg_stats WHERE attname = 'ssn'",
            "SELECT histogram_bounds::text FROM pg_catalog.pg_stats",
            "SELECT query, application_name FROM pg_stat_activity",
            "SELECT * FROM pg_stat_get_activity(NULL)",
            "SELECT pg_cancel_backend(pid) FROM pg_locks",
        ] {
            let out = all_text(&mut s, sql).await;
            assert!(out.contains("42501"), "{profile}: {sql}: {out}");
            assert!(
                !out.contains(SSN) && !out.contains(&other.id),
                "{sql}: {out}"
            );
            assert!(!out.contains("bystander-marker"), "{sql}: {out}");
        }
    }
}

/// Class 9: error and notice texts. A constraint violation's DETAIL
/// (`Failing row contains (…)`) and a cast's message returned whole rows
/// in clear.
#[tokio::test(flavor = "multi_thread")]
async fn errors_do_not_quote_masked_values() {
    let h = masked_harness(Options::default()).await;
    let g = h.grant(Profile::Write);
    let mut s = login(&h, &g, &[]).await;
    for (sql, code) in [
        ("UPDATE customers SET pin = -1 WHERE id = 1", "23514"),
        ("UPDATE customers SET ssn = NULL WHERE id = 1", "23502"),
        (
            "INSERT INTO customers VALUES (1, 'x', 'y', 'z', 5)",
            "23505",
        ),
        ("SELECT 'ada@example.com'::int", "22P02"),
        ("SELECT name::int FROM customers", "22P02"),
    ] {
        let out = all_text(&mut s, sql).await;
        assert!(out.contains(code), "{sql}: {out}");
        assert!(!out.contains(SSN) && !out.contains(EMAIL), "{sql}: {out}");
    }
    // The audit outcome holds what the client saw.
    let audit = h.audit.all_json();
    assert!(
        !audit.contains(SSN) && !audit.contains("Failing row"),
        "{audit}"
    );
    assert_eq!(
        h.backend("SELECT pin || ' ' || ssn FROM customers"),
        "1234 123-45-6789",
        "nothing changed"
    );
}

/// Class 15: events kept the first 8 KiB of text, so a 9,000-byte comment
/// in front left only the comment in the audit chain.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_comment_cannot_hide_a_statement_from_the_audit() {
    let h = harness_with(&[]).await;
    let g = h.grant(Profile::Write);
    let mut s = login(&h, &g, &[]).await;
    let sql = format!(
        "/* {} */ UPDATE orders SET ref = 'x' WHERE id = 1",
        "c".repeat(9000)
    );
    simple(&mut s, &sql).await.unwrap();
    let allowed = h
        .audit
        .of_kind(sluice_core::audit::EventKind::StatementAllowed);
    let recorded = &allowed.last().unwrap().detail["statements"][0];
    assert_eq!(recorded["text"], "UPDATE orders SET ref = 'x' WHERE id = 1");
    let full = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(sql.as_bytes()))
    };
    assert_eq!(recorded["sha256"], full.as_str());
}

/// Class 14: analysis ran inline for statements up to 256 MiB; three 7 MB
/// statements stalled every other session. Statements above the listener's
/// cap are refused unanalysed; large ones below it are analysed on
/// blocking threads, a few at a time per grant.
#[tokio::test(flavor = "multi_thread")]
async fn large_statements_are_capped_and_analysed_aside() {
    let opts = Options {
        max_statement_bytes: Some(200_000),
        ..Options::default()
    };
    let h = Harness::start(opts).await;
    h.backend(SETUP);
    let g = h.grant(Profile::Read);
    let mut s = login(&h, &g, &[]).await;
    let list = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let huge = format!("SELECT count(*) FROM orders WHERE id IN ({})", list(60_000));
    let out = all_text(&mut s, &huge).await;
    assert!(
        out.contains("42501") && out.contains("max_statement_bytes"),
        "{out}"
    );
    // Below the cap, a large statement is analysed (off the workers) and runs.
    let big = format!("SELECT count(*) FROM orders WHERE id IN ({})", list(20_000));
    assert!(big.len() > 32 * 1024 && big.len() < 200_000);
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let mut s = login(&h, &g, &[]).await;
        let big = big.clone();
        sessions.push(tokio::spawn(async move { simple(&mut s, &big).await }));
    }
    let other = h.grant(Profile::Read);
    let mut o = login(&h, &other, &[]).await;
    assert_eq!(simple(&mut o, "SELECT 1").await, Ok(vec!["1".into()]));
    for t in sessions {
        assert_eq!(t.await.unwrap(), Ok(vec!["2".into()]));
    }
    assert_eq!(
        simple(&mut s, "SELECT 1").await,
        Ok(vec!["1".into()]),
        "still usable"
    );
}

/// Class 13: one read grant took every backend connection (about 300 idle
/// sessions in two seconds). Sessions are limited per grant, per identity
/// and per connection, and one identity never gets them all.
#[tokio::test(flavor = "multi_thread")]
async fn one_agent_cannot_take_every_session() {
    let pg = start_pg(&Options::default()).await;
    let h = Harness::on(pg, Options::default(), |c| {
        c.limits.max_sessions = 4;
        c.limits.max_sessions_per_grant = 2;
        c.limits.max_sessions_per_identity = 3;
    })
    .await;
    h.backend(SETUP);
    let try_login = |g: &TestGrant| {
        let params = [("user", g.id.as_str()), ("database", CONN)];
        let (addr, secret) = (h.addr, g.secret.clone());
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        async move {
            let p: Vec<(&str, &str)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            try_raw_greeting(addr, &p, &secret).await.map(|g| g.stream)
        }
    };
    let g1 = h.grant(Profile::Read);
    let g2 = h.grant(Profile::Read);
    let mut held = vec![try_login(&g1).await.unwrap(), try_login(&g1).await.unwrap()];
    assert_eq!(
        try_login(&g1).await.err().as_deref(),
        Some("53300"),
        "per grant"
    );
    held.push(try_login(&g2).await.unwrap());
    assert_eq!(
        try_login(&g2).await.err().as_deref(),
        Some("53300"),
        "per identity"
    );
    // Another identity still gets in: the rest is kept for others.
    let other = h.grant_for_subject(Profile::Read, "agent-2");
    held.push(try_login(&other).await.unwrap());
    assert_eq!(
        try_login(&other).await.err().as_deref(),
        Some("53300"),
        "per connection"
    );
    // A session that ends gives its place back.
    held.remove(0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(try_login(&g1).await.is_ok());
}

/// Class 13's other side: a client that says Terminate and sees its
/// connection closed has given its place back. The seat was once held
/// until the session's close was recorded, so an agent logging straight
/// back in under its limit was refused (53300) now and then.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_that_ended_gives_its_seat_back_before_it_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pg = start_pg(&Options::default()).await;
    let h = Harness::on(pg, Options::default(), |c| {
        c.limits.max_sessions_per_grant = 1;
    })
    .await;
    h.backend(SETUP);
    // Recording an end takes a while, as under load (the soak saw it).
    *h.audit.slow_kind.lock().unwrap() = Some((
        sluice_core::audit::EventKind::SessionClosed,
        std::time::Duration::from_secs(1),
    ));
    let g = h.grant(Profile::Write);
    let mut s = login(&h, &g, &[]).await;
    for round in 0..10 {
        // A write, so the session has an outcome to record as it ends.
        simple(&mut s, "UPDATE orders SET total = total WHERE id = 1")
            .await
            .unwrap();
        let mut buf = bytes::BytesMut::new();
        postgres_protocol::message::frontend::terminate(&mut buf);
        s.write_all(&buf).await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut rest))
            .await
            .expect("the gateway closes the connection after Terminate")
            .unwrap();
        let params = [("user", g.id.as_str()), ("database", CONN)];
        s = match try_raw_greeting(h.addr, &params, &g.secret).await {
            Ok(greeting) => greeting.stream,
            Err(code) => panic!("round {round}: logging back in was refused with {code}"),
        };
    }
}

/// A sibling of class 7: notifications carry other sessions' values (a
/// trigger's `pg_notify(…, row_to_json(NEW))`). In a masked session their
/// payloads go through the value detectors.
#[tokio::test(flavor = "multi_thread")]
async fn notification_payloads_are_masked() {
    let h = masked_harness(Options::default()).await;
    let g = h.grant(Profile::Read);
    let mut s = login(&h, &g, &[]).await;
    simple(&mut s, "LISTEN orders_changed").await.unwrap();
    h.backend("NOTIFY orders_changed, '{\"email\": \"ada@example.com\", \"card\": \"4111-1111-1111-1111\"}'");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let out = all_text(&mut s, "SELECT 1").await;
    assert!(
        out.contains("orders_changed"),
        "the notification arrived: {out}"
    );
    assert!(
        !out.contains(EMAIL) && !out.contains("4111-1111-1111-1111"),
        "{out}"
    );
}
