//! Backend session reuse against a real PostgreSQL: a client that leaves
//! cleanly hands its backend session (same process id) to the next client
//! of the same connection and profile, reset so that nothing of the first
//! client is left; anything doubtful is closed instead.

mod common;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::*;
use postgres_protocol::message::frontend;
use sluice_core::Profile;
use sluice_core::audit::EventKind;
use sluice_core::config::Dur;
use sluice_core::guardrail::{Action, GuardrailRule, StatementClass};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Runs `sql` in one psql session through Sluice (psql ends it with
/// Terminate, as a clean client does); its output lines.
fn session(h: &Harness, g: &TestGrant, sql: &str) -> Vec<String> {
    let out = h.psql(&h.url(g), &["-v", "ON_ERROR_STOP=1"], Some(sql));
    assert!(out.status.success(), "{sql}: {}", stderr(&out));
    stdout(&out).lines().map(str::to_string).collect()
}

/// The backend process id of a one-statement psql session.
fn pid_of_session(h: &Harness, g: &TestGrant) -> String {
    session(h, g, "SELECT pg_backend_pid()").remove(0)
}

/// Waits until `n` sessions are closed: a session's backend is parked or
/// closed before its close is recorded.
async fn closed(h: &Harness, n: usize) {
    let events = h.audit.wait_for(EventKind::SessionClosed, n).await;
    assert!(events.len() >= n, "{} of {n} sessions closed", events.len());
}

/// Waits (up to 10 s) until the backend `pid` has exited.
async fn gone(h: &Harness, pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(h, pid) {
        assert!(Instant::now() < deadline, "backend {pid} is still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn alive(h: &Harness, pid: &str) -> bool {
    h.backend(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"
    )) == "1"
}

/// Backend sessions parked by Sluice (idle, named "sluice").
fn parked(h: &Harness) -> usize {
    h.backend("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sluice'")
        .parse()
        .unwrap()
}

fn allow(name: &str, classes: &[StatementClass]) -> GuardrailRule {
    GuardrailRule {
        name: name.into(),
        action: Action::Allow,
        classes: classes.to_vec(),
        tables: vec![],
        functions: vec![],
        fingerprints: vec![],
        commands: vec![],
        paths: vec![],
        profiles: vec![],
        message: None,
        hold: Default::default(),
    }
}

/// Sends one message built by `build` on a raw session.
async fn send(s: &mut TcpStream, build: impl FnOnce(&mut BytesMut)) {
    let mut buf = BytesMut::new();
    build(&mut buf);
    s.write_all(&buf).await.unwrap();
}

/// A simple Query on a raw session: the first column of each row.
async fn query(s: &mut TcpStream, sql: &str) -> Vec<String> {
    send(s, |b| frontend::query(sql, b).unwrap()).await;
    let mut rows = Vec::new();
    loop {
        let (tag, body) = read_message(s).await;
        match tag {
            b'D' => {
                let len = i32::from_be_bytes(body[2..6].try_into().unwrap());
                rows.push(String::from_utf8_lossy(&body[6..6 + len as usize]).to_string());
            }
            b'E' => panic!("{sql}: {}", String::from_utf8_lossy(&body)),
            b'Z' => return rows,
            _ => {}
        }
    }
}

/// Says Terminate and waits for Sluice to close the connection.
async fn terminate(mut s: TcpStream) {
    send(&mut s, frontend::terminate).await;
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_session_of_the_same_profile_gets_the_parked_backend() {
    let h = Harness::start(Options::default()).await;
    let (a, b) = (h.grant(Profile::Write), h.grant(Profile::Write));
    let pid = pid_of_session(&h, &a);
    closed(&h, 1).await;
    // Parked: nobody's session, so no grant in its name.
    assert_eq!(
        h.backend(&format!(
            "SELECT application_name FROM pg_stat_activity WHERE pid = {pid}"
        )),
        "sluice"
    );
    let out = session(
        &h,
        &b,
        "SELECT pg_backend_pid();
         SELECT current_setting('application_name');",
    );
    assert_eq!(
        out[0], pid,
        "the second session opened a backend of its own"
    );
    // DBAs see who is behind the session now.
    assert_eq!(out[1], format!("psql {}", b.id));
    assert_eq!(h.backend_sessions(&a.id), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn read_and_write_sessions_never_share_a_backend() {
    let h = Harness::start(Options::default()).await;
    let sql = "SELECT pg_backend_pid(), current_setting('default_transaction_read_only')";
    let row = |g: &TestGrant| {
        let out = session(&h, g, sql);
        let (pid, ro) = out[0].split_once('|').unwrap();
        (pid.to_string(), ro.to_string())
    };
    let (write_pid, ro) = row(&h.grant(Profile::Write));
    assert_eq!(ro, "off");
    closed(&h, 1).await;
    // The same credential, but a read session is read-only: it must not
    // get the parked write session.
    let (read_pid, ro) = row(&h.grant(Profile::Read));
    assert_ne!(read_pid, write_pid);
    assert_eq!(ro, "on");
    closed(&h, 2).await;
    let (pid, ro) = row(&h.grant(Profile::Write));
    assert_eq!((pid, ro.as_str()), (write_pid, "off"));
    closed(&h, 3).await;
    let (pid, ro) = row(&h.grant(Profile::Read));
    assert_eq!((pid, ro.as_str()), (read_pid, "on"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_grant_reuses_only_read_credential_sessions() {
    let pg = start_pg(&Options::default()).await;
    pg.psql(
        "postgres",
        "CREATE ROLE reader LOGIN PASSWORD 'reader-pw-1c9e'",
    )
    .unwrap();
    let pw = secret_file("reader-pw-1c9e");
    let h = Harness::on(pg, Options::default(), |c| {
        c.read_credential = Some(credential("reader", pw.path()));
    })
    .await;
    let who = |g: &TestGrant| session(&h, g, "SELECT pg_backend_pid(), current_user").remove(0);
    let first = who(&h.grant(Profile::Read));
    closed(&h, 1).await;
    let write = who(&h.grant(Profile::Write));
    closed(&h, 2).await;
    let second = who(&h.grant(Profile::Read));
    assert!(first.ends_with("|reader"), "{first}");
    assert!(write.ends_with("|postgres"), "{write}");
    assert_eq!(second, first, "the read session was not reused");
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_of_one_client_is_left_for_the_next() {
    let opts = Options {
        guardrails: vec![allow(
            "test-ddl-and-roles",
            &[StatementClass::Ddl, StatementClass::Admin],
        )],
        ..Options::default()
    };
    let h = Harness::start(opts).await;
    h.backend(
        "CREATE ROLE leak_outer NOLOGIN; CREATE ROLE leak_inner NOLOGIN; \
         GRANT leak_inner TO leak_outer",
    );
    let a = h.grant(Profile::Write);
    let client = h.connect(&a).await;
    client
        .batch_execute(
            "SET statement_timeout = '123s';
             SET sluice_test.leak = 'from a';
             CREATE TEMP TABLE leak_tmp(x int);
             PREPARE leak_stmt AS SELECT 1;
             SELECT pg_advisory_lock(4242);
             LISTEN leak_channel;
             SET SESSION AUTHORIZATION leak_outer;
             SET ROLE leak_inner;",
        )
        .await
        .unwrap();
    // A protocol-level prepared statement, left open on purpose.
    std::mem::forget(client.prepare("SELECT 2").await.unwrap());
    let rows = client
        .simple_query("SELECT pg_backend_pid()")
        .await
        .unwrap();
    let pid = first_value(&rows);
    // What the first client sees, and the next must not.
    let checks = [
        // Back to the write profile's timeout, set at backend session start.
        ("SHOW statement_timeout", "123s", "5min"),
        (
            "SELECT coalesce(current_setting('sluice_test.leak', true), '')",
            "from a",
            "",
        ),
        (
            "SELECT count(*) FROM pg_class WHERE relname = 'leak_tmp'",
            "1",
            "0",
        ),
        ("SELECT count(*) FROM pg_prepared_statements", "2", "0"),
        ("SELECT count(*) FROM pg_listening_channels()", "1", "0"),
        (
            "SELECT current_user || ' ' || session_user",
            "leak_inner leak_outer",
            "postgres postgres",
        ),
    ];
    for (sql, before, _) in checks {
        let rows = client.simple_query(sql).await.unwrap();
        assert_eq!(first_value(&rows), before, "first client: {sql}");
    }
    let advisory = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'";
    assert_eq!(h.backend(advisory), "1");
    drop(client); // tokio-postgres says Terminate
    closed(&h, 1).await;
    assert_eq!(h.backend(advisory), "0", "the lock outlived its client");

    let b = h.connect(&h.grant(Profile::Write)).await;
    let rows = b.simple_query("SELECT pg_backend_pid()").await.unwrap();
    assert_eq!(first_value(&rows), pid, "not the same backend session");
    for (sql, _, after) in checks {
        let rows = b.simple_query(sql).await.unwrap();
        assert_eq!(first_value(&rows), after, "next client: {sql}");
    }
}

/// The first column of the first row of a simple query.
fn first_value(rows: &[tokio_postgres::SimpleQueryMessage]) -> String {
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .expect("a row")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_mid_request_gets_its_backend_closed() {
    let h = Harness::start(Options::default()).await;
    h.backend("CREATE TABLE t(x int)");
    let g = h.grant(Profile::Write);
    let login = || raw_login(h.addr, &g.id, &g.secret, CONN);
    let mut pids = Vec::new();

    // Inside a transaction.
    let mut s = login().await;
    pids.push(query(&mut s, "SELECT pg_backend_pid()").await.remove(0));
    query(&mut s, "BEGIN").await;
    terminate(s).await;

    // In the middle of COPY FROM STDIN.
    let mut s = login().await;
    pids.push(query(&mut s, "SELECT pg_backend_pid()").await.remove(0));
    send(&mut s, |b| frontend::query("COPY t FROM STDIN", b).unwrap()).await;
    assert_eq!(read_message(&mut s).await.0, b'G');
    send(&mut s, |b| {
        frontend::CopyData::new(&b"1\n"[..]).unwrap().write(b)
    })
    .await;
    terminate(s).await;

    // In the middle of COPY TO STDOUT.
    let mut s = login().await;
    pids.push(query(&mut s, "SELECT pg_backend_pid()").await.remove(0));
    let copy = "COPY (SELECT generate_series(1, 1000000)) TO STDOUT";
    send(&mut s, |b| frontend::query(copy, b).unwrap()).await;
    assert_eq!(read_message(&mut s).await.0, b'H');
    terminate(s).await;

    // Extended-protocol messages sent without their Sync.
    let mut s = login().await;
    pids.push(query(&mut s, "SELECT pg_backend_pid()").await.remove(0));
    send(&mut s, |b| {
        frontend::parse("", "SELECT 1", [], b).unwrap();
        let no_values: [&[u8]; 0] = [];
        let serialize = |_: &[u8], _: &mut BytesMut| Ok(postgres_protocol::IsNull::No);
        assert!(frontend::bind("", "", [], no_values, serialize, [], b).is_ok());
        frontend::execute("", 0, b).unwrap();
        frontend::flush(b);
    })
    .await;
    assert_eq!(read_message(&mut s).await.0, b'1');
    terminate(s).await;

    closed(&h, pids.len()).await;
    for pid in &pids {
        gone(&h, pid).await;
    }
    assert_eq!(parked(&h), 0);
    // The one that left cleanly is parked.
    let mut s = login().await;
    let clean = query(&mut s, "SELECT pg_backend_pid()").await.remove(0);
    terminate(s).await;
    closed(&h, pids.len() + 1).await;
    assert!(!pids.contains(&clean));
    assert_eq!(parked(&h), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parked_backend_killed_while_idle_does_not_fail_the_next_login() {
    let h = Harness::start(Options::default()).await;
    let pid = pid_of_session(&h, &h.grant(Profile::Write));
    closed(&h, 1).await;
    assert_eq!(
        h.backend(&format!("SELECT pg_terminate_backend({pid})")),
        "t"
    );
    gone(&h, &pid).await;
    let next = pid_of_session(&h, &h.grant(Profile::Write));
    assert_ne!(next, pid);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_client_gets_its_own_startup_parameters_on_a_reused_backend() {
    let h = Harness::start(Options::default()).await;
    let default_tz = h.backend("SHOW TimeZone");
    let default_style = h.backend("SHOW DateStyle");
    let addr = h.addr;
    let login = |g: &TestGrant, extra: &[(&'static str, &'static str)]| {
        let mut params = vec![("user", g.id.clone()), ("database", CONN.to_string())];
        params.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let secret = g.secret.clone();
        async move {
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            raw_greeting(addr, &params, &secret).await
        }
    };

    let a = h.grant(Profile::Write);
    let mut first = login(&a, &[("TimeZone", "Asia/Tokyo"), ("DateStyle", "SQL, DMY")]).await;
    assert_eq!(first.parameter("TimeZone"), Some("Asia/Tokyo"));
    assert_eq!(first.parameter("DateStyle"), Some("SQL, DMY"));
    assert_eq!(first.parameter("application_name"), Some(a.id.as_str()));
    let pid = query(&mut first.stream, "SELECT pg_backend_pid()")
        .await
        .remove(0);
    terminate(first.stream).await;
    closed(&h, 1).await;

    let b = h.grant(Profile::Write);
    let mut second = login(
        &b,
        &[("TimeZone", "Europe/Paris"), ("application_name", "etl")],
    )
    .await;
    assert_eq!(second.parameter("TimeZone"), Some("Europe/Paris"));
    assert_eq!(second.parameter("DateStyle"), Some(default_style.as_str()));
    let app = format!("etl {}", b.id);
    assert_eq!(second.parameter("application_name"), Some(app.as_str()));
    assert_eq!(second.parameter("client_encoding"), Some("UTF8"));
    let s = &mut second.stream;
    assert_eq!(query(s, "SELECT pg_backend_pid()").await, [pid.as_str()]);
    assert_eq!(query(s, "SHOW TimeZone").await, ["Europe/Paris"]);
    assert_eq!(query(s, "SHOW DateStyle").await, [default_style.as_str()]);
    terminate(second.stream).await;
    closed(&h, 2).await;

    // Without TimeZone: the server's, not the last client's.
    let c = h.grant(Profile::Write);
    let mut third = login(&c, &[]).await;
    assert_eq!(third.parameter("TimeZone"), Some(default_tz.as_str()));
    let s = &mut third.stream;
    assert_eq!(query(s, "SELECT pg_backend_pid()").await, [pid]);
    assert_eq!(query(s, "SHOW TimeZone").await, [default_tz]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_setting_the_server_refuses_fails_that_login_only() {
    let h = Harness::start(Options::default()).await;
    let pid = pid_of_session(&h, &h.grant(Profile::Write));
    closed(&h, 1).await;
    let g = h.grant(Profile::Write);
    let params = [
        ("user", g.id.as_str()),
        ("database", CONN),
        ("TimeZone", "Nowhere/Atlantis"),
    ];
    let refused = try_raw_greeting(h.addr, &params, &g.secret).await;
    assert!(refused.is_err(), "a bad TimeZone was accepted");
    // The parked session was not the client's fault: kept, not replaced.
    assert_eq!(pid_of_session(&h, &h.grant(Profile::Write)), pid);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_keys_follow_the_client_not_the_backend() {
    let h = Harness::start(Options::default()).await;
    let a = h.grant(Profile::Write);
    let params = [("user", a.id.as_str()), ("database", CONN)];
    let mut first = raw_greeting(h.addr, &params, &a.secret).await;
    let pid = query(&mut first.stream, "SELECT pg_backend_pid()")
        .await
        .remove(0);
    let old_key = first.key;
    terminate(first.stream).await;
    closed(&h, 1).await;

    let client = std::sync::Arc::new(h.connect(&h.grant(Profile::Write)).await);
    let rows = client
        .simple_query("SELECT pg_backend_pid()")
        .await
        .unwrap();
    assert_eq!(first_value(&rows), pid);
    // The key of the client that left must not reach the backend now
    // serving someone else.
    let sleeping = tokio::spawn({
        let client = client.clone();
        async move { client.simple_query("SELECT pg_sleep(2)").await.map(|_| ()) }
    });
    wait_active(&h, &pid).await;
    cancel_with(&h, old_key).await;
    sleeping
        .await
        .unwrap()
        .expect("cancelled with a key of another session");
    // Its own key still works.
    let token = client.cancel_token();
    let sleeping = tokio::spawn({
        let client = client.clone();
        async move { client.simple_query("SELECT pg_sleep(30)").await.map(|_| ()) }
    });
    wait_active(&h, &pid).await;
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let e = sleeping.await.unwrap().unwrap_err();
    assert_eq!(sqlstate(&e), "57014");
}

/// Waits until backend `pid` is running a statement.
async fn wait_active(h: &Harness, pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let sql = format!("SELECT state FROM pg_stat_activity WHERE pid = {pid}");
    while h.backend(&sql) != "active" {
        assert!(Instant::now() < deadline, "backend {pid} never got busy");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends a CancelRequest with `key` to Sluice and waits until Sluice has
/// dealt with it (it closes the connection).
async fn cancel_with(h: &Harness, key: (i32, i32)) {
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    send(&mut s, |b| frontend::cancel_request(key.0, key.1, b)).await;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest))
        .await
        .expect("Sluice closes a cancel connection")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn at_most_max_idle_backends_are_parked() {
    let pg = start_pg(&Options::default()).await;
    let h = Harness::on(pg, Options::default(), |c| c.pool.max_idle = 1).await;
    let (a, b) = (
        h.connect(&h.grant(Profile::Write)).await,
        h.connect(&h.grant(Profile::Write)).await,
    );
    let pa = first_value(&a.simple_query("SELECT pg_backend_pid()").await.unwrap());
    let pb = first_value(&b.simple_query("SELECT pg_backend_pid()").await.unwrap());
    drop((a, b));
    closed(&h, 2).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(&h, &pa) && alive(&h, &pb) {
        assert!(Instant::now() < deadline, "both backends were kept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(parked(&h), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn max_idle_zero_turns_reuse_off() {
    let pg = start_pg(&Options::default()).await;
    let h = Harness::on(pg, Options::default(), |c| c.pool.max_idle = 0).await;
    let first = pid_of_session(&h, &h.grant(Profile::Write));
    closed(&h, 1).await;
    gone(&h, &first).await;
    assert_ne!(pid_of_session(&h, &h.grant(Profile::Write)), first);
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_backends_are_closed_after_idle_timeout() {
    let pg = start_pg(&Options::default()).await;
    let h = Harness::on(pg, Options::default(), |c| {
        c.pool.idle_timeout = Dur::secs(1)
    })
    .await;
    let pid = pid_of_session(&h, &h.grant(Profile::Write));
    closed(&h, 1).await;
    gone(&h, &pid).await;
    assert_eq!(parked(&h), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_past_max_lifetime_is_not_reused() {
    let pg = start_pg(&Options::default()).await;
    let h = Harness::on(pg, Options::default(), |c| {
        c.pool.max_lifetime = Dur::secs(1)
    })
    .await;
    let pid = pid_of_session(&h, &h.grant(Profile::Write));
    closed(&h, 1).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_ne!(pid_of_session(&h, &h.grant(Profile::Write)), pid);
    gone(&h, &pid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn masked_sessions_hand_their_backend_on_and_stay_masked() {
    let pg = start_pg(&Options::default()).await;
    let rules = r#"columns = [{ column = "people.ssn", style = "redact" }]"#;
    let masking: sluice_core::config::MaskingConfig = toml::from_str(rules).unwrap();
    let h = Harness::on(pg, Options::default(), |c| c.masking = Some(masking)).await;
    h.backend("CREATE TABLE people(ssn text); INSERT INTO people VALUES ('123-45-6789')");
    // The extended protocol, with Sluice's own Describe before each Execute.
    let client = h.connect(&h.grant(Profile::Read)).await;
    let row = client
        .query_one("SELECT pg_backend_pid(), ssn FROM people", &[])
        .await
        .unwrap();
    let (pid, ssn): (i32, String) = (row.get(0), row.get(1));
    assert_eq!(ssn, "[REDACTED]");
    drop(client);
    closed(&h, 1).await;
    let out = session(
        &h,
        &h.grant(Profile::Read),
        "SELECT pg_backend_pid(); SELECT ssn FROM people;",
    );
    assert_eq!(out, [pid.to_string(), "[REDACTED]".to_string()]);
}
