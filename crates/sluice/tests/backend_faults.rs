//! The backend failing under the real `sluice serve`, through a relay the
//! test controls (`sluice_testkit::relay`): cut mid-session, unreachable,
//! answering nothing, slow. Each client gets a clear error, nothing is
//! forwarded unrecorded, the end is recorded, no session outlives its
//! grant, and the gateway recovers by itself when the backend returns.

mod common;

use common::{AGENT, Options, Serve};
use serde_json::Value;
use sluice_testkit::relay::Mode;
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

type Session = (
    tokio_postgres::Client,
    tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
);

async fn connect(dsn: &str) -> Result<Session, String> {
    match tokio_postgres::connect(dsn, NoTls).await {
        Ok((client, conn)) => Ok((client, tokio::spawn(conn))),
        Err(e) => Err(described(&e)),
    }
}

/// SQLSTATE and message, or the error's debug form.
fn described(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} {}", d.code().code(), d.message()),
        None => format!("{e:?}"),
    }
}

/// What the gateway told a client whose statement failed with `failed`:
/// the error of the statement (a FATAL while it waited) or of the
/// connection (one between statements).
async fn told(
    failed: tokio_postgres::Error,
    conn: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
) -> String {
    if failed.as_db_error().is_some() {
        return described(&failed);
    }
    match tokio::time::timeout(Duration::from_secs(5), conn).await {
        Ok(Ok(Err(e))) if e.as_db_error().is_some() => described(&e),
        other => format!("no error from the gateway: {failed:?} / {other:?}"),
    }
}

fn data_rows(messages: &[tokio_postgres::SimpleQueryMessage]) -> usize {
    messages
        .iter()
        .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
        .count()
}

async fn serve_with_relay() -> Serve {
    Serve::start(Options {
        setup: "CREATE TABLE t (x int); INSERT INTO t VALUES (1);".into(),
        relay: true,
        ..Options::default()
    })
    .await
}

fn events_of(serve: &Serve, kind: &str) -> Vec<Value> {
    serve
        .audit_events()
        .into_iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backend_cut_and_unreachable_then_back() {
    let serve = serve_with_relay().await;
    let relay = serve.relay.as_ref().unwrap();
    let dsn = Serve::dsn(&serve.grant(AGENT).await);
    // One backend session parked in the pool, one in use.
    let (parked, _) = connect(&dsn).await.unwrap();
    parked.simple_query("SELECT 1").await.unwrap();
    drop(parked);
    let (db, conn) = connect(&dsn).await.unwrap();
    db.simple_query("SELECT x FROM t").await.unwrap();

    relay.set(Mode::Refuse);
    relay.cut();
    // The session in use ends with a clear error.
    let failed = db.simple_query("SELECT x FROM t").await.unwrap_err();
    let why = told(failed, conn).await;
    assert!(why.starts_with("08006"), "{why}");
    // A new login is refused, clearly, while the backend is away.
    let Err(refused) = connect(&dsn).await else {
        panic!("let in");
    };
    assert!(
        refused.starts_with("08006") && refused.contains("unavailable"),
        "{refused}"
    );

    relay.set(Mode::Pass);
    // Back: the parked session died with the cut, and no client gets it.
    for _ in 0..3 {
        let (db, _conn) = connect(&dsn).await.expect("log in once it is back");
        let rows = db.simple_query("SELECT x FROM t").await.unwrap();
        assert_eq!(data_rows(&rows), 1);
    }
    let closed = events_of(&serve, "session.closed");
    assert!(
        closed
            .iter()
            .any(|e| e["detail"]["end"] == "backend closed"),
        "{closed:?}"
    );
    let rejected = events_of(&serve, "session.rejected");
    assert!(
        rejected
            .iter()
            .any(|e| e["detail"]["reason"] == "backend unavailable"),
        "{rejected:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backend_that_answers_nothing_is_given_up_on() {
    let serve = serve_with_relay().await;
    let relay = serve.relay.as_ref().unwrap();
    let dsn = Serve::dsn(&serve.grant(AGENT).await);
    relay.set(Mode::Blackhole);
    let started = Instant::now();
    let Err(refused) = connect(&dsn).await else {
        panic!("let in");
    };
    assert!(
        refused.starts_with("08006") && refused.contains("unavailable"),
        "{refused}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    relay.set(Mode::Pass);
    let (db, _conn) = connect(&dsn).await.expect("log in once it answers");
    db.simple_query("SELECT 1").await.unwrap();
}

/// A backend that takes seconds per reply holds no session past its
/// grant: the grant's end ends the session with the reply still owed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_backend_keeps_no_session_past_its_grant() {
    let serve = serve_with_relay().await;
    let relay = serve.relay.as_ref().unwrap();
    let grant = serve.grant_for(AGENT, "10s").await;
    let issued = Instant::now();
    let (db, conn) = connect(&Serve::dsn(&grant)).await.unwrap();
    // Slow, and still right.
    relay.set(Mode::Slow(Duration::from_millis(700)));
    let asked = Instant::now();
    let rows = db.simple_query("SELECT x FROM t").await.unwrap();
    assert_eq!(data_rows(&rows), 1);
    assert!(asked.elapsed() >= Duration::from_millis(700));
    // Now a reply that would come after the grant's end.
    relay.set(Mode::Slow(Duration::from_secs(60)));
    let late = db.simple_query("SELECT x FROM t").await;
    let why = told(late.expect_err("a reply after the grant's end"), conn).await;
    assert!(why.contains("expired"), "{why}");
    let lived = issued.elapsed();
    assert!(
        lived < Duration::from_secs(20),
        "the session lasted {lived:?} on a 10 s grant"
    );
}
