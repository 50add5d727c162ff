//! The protocol through Sluice with real clients: psql (simple protocol,
//! multi-statement strings, \copy both ways), tokio-postgres (extended
//! protocol, pipelining, binary results, prepared statements, cancel),
//! pgbench, a 100 MB value, and hostile bytes from a raw socket.

mod common;

use std::time::Duration;

use common::*;
use futures::future::try_join_all;
use sluice_core::Profile;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread")]
async fn psql_multi_statement_and_copy_both_ways() {
    let h = Harness::start(Options::default()).await;
    let g = h.grant(Profile::Write);
    let url = h.url(&g);
    h.backend("CREATE TABLE items(id int, name text)");
    let out = h.psql(
        &url,
        &[
            "-c",
            "INSERT INTO items VALUES (1,'a'),(2,'b'); SELECT count(*) FROM items",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "2");
    // \copy from stdin (COPY FROM STDIN is a write) and back out.
    let out = h.psql(
        &url,
        &["-c", "\\copy items from stdin"],
        Some("3\tc\n4\td\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = h.psql(
        &url,
        &[
            "-c",
            "\\copy (SELECT id, name FROM items ORDER BY id) to stdout",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1\ta\n2\tb\n3\tc\n4\td");
    assert_eq!(h.backend("SELECT count(*) FROM items"), "4");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokio_postgres_extended_protocol_pipelining_and_binary_results() {
    let h = Harness::start(Options::default()).await;
    h.backend("CREATE TABLE kv(k int primary key, v text, f float8, b bytea)");
    let g = h.grant(Profile::Write);
    let client = h.connect(&g).await;
    let insert = client
        .prepare("INSERT INTO kv VALUES ($1, $2, $3, $4)")
        .await
        .unwrap();
    // Pipelined: many Bind/Execute/Sync sets in flight at once.
    let futures = (0..200).map(|i| {
        let insert = &insert;
        let client = &client;
        async move {
            let v = format!("v{i}");
            let f = i as f64 / 2.0;
            let b = vec![i as u8; 3];
            client.execute(insert, &[&i, &v, &f, &b]).await
        }
    });
    let counts = try_join_all(futures).await.unwrap();
    assert!(counts.iter().all(|c| *c == 1));
    let row = client
        .query_one("SELECT k, v, f, b FROM kv WHERE k = $1", &[&7i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 7);
    assert_eq!(row.get::<_, String>(1), "v7");
    assert_eq!(row.get::<_, f64>(2), 3.5);
    assert_eq!(row.get::<_, Vec<u8>>(3), vec![7u8; 3]);
    let n: i64 = client
        .query_one("SELECT count(*) FROM kv", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 200);
    // Portals: a transaction with a cursor-like partial fetch.
    let mut tx_client = h.connect(&g).await;
    let tx = tx_client.transaction().await.unwrap();
    let stmt = tx.prepare("SELECT k FROM kv ORDER BY k").await.unwrap();
    let portal = tx.bind(&stmt, &[]).await.unwrap();
    let first = tx.query_portal(&portal, 5).await.unwrap();
    let next = tx.query_portal(&portal, 5).await.unwrap();
    assert_eq!(first.len(), 5);
    assert_eq!(next[0].get::<_, i32>(0), 5);
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_reaches_the_backend_through_the_clients_own_key() {
    let h = Harness::start(Options::default()).await;
    let g = h.grant(Profile::Read);
    let client = h.connect(&g).await;
    let token = client.cancel_token();
    let started = std::time::Instant::now();
    let sleeper = tokio::spawn(async move { client.simple_query("SELECT pg_sleep(20)").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let err = sleeper.await.unwrap().unwrap_err();
    assert_eq!(sqlstate(&err), "57014", "query_canceled");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_100_mb_value_round_trips() {
    let h = Harness::start(Options::default()).await;
    h.backend("CREATE TABLE blobs(id int, body text)");
    let g = h.grant(Profile::Write);
    let client = h.connect(&g).await;
    let big = "x".repeat(100 * 1024 * 1024);
    client
        .execute("INSERT INTO blobs VALUES (1, $1)", &[&big])
        .await
        .unwrap();
    let row = client
        .query_one("SELECT body FROM blobs WHERE id = 1", &[])
        .await
        .unwrap();
    let back: &str = row.get(0);
    assert_eq!(back.len(), big.len());
    assert!(back == big);
}

#[tokio::test(flavor = "multi_thread")]
async fn pgbench_simple_and_prepared_run_without_errors() {
    let h = Harness::start(Options {
        guardrails: Vec::new(),
        ..Default::default()
    })
    .await;
    let pgbench = sluice_testkit::pg::bin("pgbench").unwrap();
    let init = std::process::Command::new(&pgbench)
        .args(["-i", "-q", "-s", "1", "-d"])
        .arg(h.pg.url("postgres"))
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", stderr(&init));
    let g = h.grant(Profile::Read);
    for mode in ["simple", "prepared"] {
        let out = std::process::Command::new(&pgbench)
            .args([
                "-n", "-S", "-T", "3", "-c", "4", "-j", "2", "-M", mode, "-d",
            ])
            .arg(h.url(&g))
            .output()
            .unwrap();
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(out.status.success(), "{mode}: {text}");
        assert!(
            text.contains("number of failed transactions: 0"),
            "{mode}: {text}"
        );
        let tps = text
            .lines()
            .find(|l| l.starts_with("tps"))
            .unwrap_or("no tps line")
            .to_string();
        eprintln!("pgbench -S -M {mode} through sluice: {tps}");
    }
}

/// A startup for `g` done by hand, so raw bytes can follow it.
async fn raw_session(h: &Harness, g: &TestGrant) -> TcpStream {
    raw_login(h.addr, &g.id, &g.secret, CONN).await
}

/// Reads to EOF; returns the SQLSTATE of the last ErrorResponse seen.
async fn error_then_close(s: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut all)).await;
    let text = String::from_utf8_lossy(&all);
    text.split('\0')
        .find_map(|f| f.strip_prefix('C').map(str::to_string))
        .unwrap_or_else(|| format!("no error in {text:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_oversized_frames_close_only_that_connection() {
    let h = Harness::start(Options {
        max_message_bytes: Some(1024 * 1024),
        ..Default::default()
    })
    .await;
    let g = h.grant(Profile::Read);
    let bystander = h.connect(&g).await;
    bystander.simple_query("SELECT 1").await.unwrap();

    // An unknown message type.
    let mut s = raw_session(&h, &g).await;
    s.write_all(&[b'?', 0, 0, 0, 4]).await.unwrap();
    assert_eq!(error_then_close(&mut s).await, "08P01");
    // A length below the header's own size.
    let mut s = raw_session(&h, &g).await;
    s.write_all(&[b'Q', 0, 0, 0, 2]).await.unwrap();
    assert_eq!(error_then_close(&mut s).await, "08P01");
    // A Query without its terminator.
    let mut s = raw_session(&h, &g).await;
    s.write_all(&[b'Q', 0, 0, 0, 7, b'a', b'b', b'c'])
        .await
        .unwrap();
    assert_eq!(error_then_close(&mut s).await, "08P01");
    // A declared 2 GiB message: refused from the header, nothing allocated.
    let mut s = raw_session(&h, &g).await;
    s.write_all(&[b'Q', 0x7f, 0xff, 0xff, 0xf0]).await.unwrap();
    assert_eq!(error_then_close(&mut s).await, "54000");
    // Oversized before login: the startup packet cap.
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    s.write_all(&(1_000_000i32).to_be_bytes()).await.unwrap();
    s.write_all(&196608i32.to_be_bytes()).await.unwrap();
    let mut sink = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink)).await;
    assert!(n.is_ok(), "closed promptly");
    // Garbage instead of a startup packet.
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink)).await;
    assert!(n.is_ok(), "closed promptly");

    // The other session never noticed.
    let row = bystander.query_one("SELECT 2::int4", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_client_is_dropped_at_the_auth_timeout() {
    let h = Harness::start(Options::default()).await;
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    let started = std::time::Instant::now();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut sink)).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "closed by the 5s auth timeout"
    );
}
