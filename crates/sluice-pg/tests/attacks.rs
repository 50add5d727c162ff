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
            profiles: vec![],
            message: None,
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
