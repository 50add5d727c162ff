//! Wall-clock steps against grant expiry, on the real `sluice serve` with
//! its wall clock faked by libfaketime (the monotonic clock left alone, as
//! a real step leaves it): a step back gives no grant extra life, a step
//! forward ends grants early (the safe side). See `sluice_core::clock`.

mod common;

use common::{AGENT, Options, Serve};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The gateway, with its wall clock offset by what `offset` holds.
async fn gateway_with_fake_clock() -> (Serve, PathBuf) {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "libfaketime is missing: run scripts/deps.sh"
    );
    let offset = std::env::temp_dir().join(format!("sluice-clock-{}", rand_suffix()));
    std::fs::write(&offset, "+0\n").unwrap();
    let env = [
        ("LD_PRELOAD", LIBFAKETIME),
        ("FAKETIME_TIMESTAMP_FILE", offset.to_str().unwrap()),
        ("FAKETIME_NO_CACHE", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    let serve = Serve::start(Options {
        setup: "CREATE TABLE t (x int); INSERT INTO t VALUES (1);".into(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Options::default()
    })
    .await;
    (serve, offset)
}

fn rand_suffix() -> String {
    format!("{}-{:?}", std::process::id(), std::thread::current().id())
        .replace(|c: char| !c.is_ascii_alphanumeric(), "")
}

/// Steps the gateway's wall clock to `secs` from the real one.
fn step(offset: &Path, secs: i64) {
    std::fs::write(offset, format!("{secs:+}\n")).unwrap();
}

/// A session: the client, and its connection's end (where a FATAL the
/// gateway sends between statements arrives).
type Session = (
    tokio_postgres::Client,
    tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
);

async fn connect(dsn: &str) -> Result<Session, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(dsn, NoTls).await?;
    Ok((client, tokio::spawn(conn)))
}

/// Waits (up to `limit`) until the session is ended; why, as the gateway
/// told the client.
async fn until_ended(session: Session, limit: Duration) -> String {
    let (db, conn) = session;
    let deadline = Instant::now() + limit;
    while db.simple_query("SELECT x FROM t").await.is_ok() {
        assert!(Instant::now() < deadline, "the session outlived its grant");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    match tokio::time::timeout(Duration::from_secs(5), conn).await {
        Ok(Ok(Err(e))) => format!("{e:?}"),
        other => format!("no error from the gateway: {other:?}"),
    }
}

/// The grant's `grant.expired` events in the chain.
fn expired_events(serve: &Serve, id: &str) -> usize {
    serve
        .audit_events()
        .iter()
        .filter(|e| e["kind"] == "grant.expired" && e["grant_id"] == id)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wall_clock_stepped_back_gives_no_grant_extra_life() {
    let (serve, offset) = gateway_with_fake_clock().await;
    let g = serve.grant_for(AGENT, "6s").await;
    let (id, dsn) = (g["id"].as_str().unwrap(), Serve::dsn(&g));
    let issued = Instant::now();
    let session = connect(&dsn).await.expect("log in");
    session.0.simple_query("SELECT x FROM t").await.unwrap();
    // An hour back: by the wall clock alone the grant now has an hour and
    // six seconds left.
    step(&offset, -3600);
    let error = until_ended(session, Duration::from_secs(20)).await;
    assert!(
        issued.elapsed() >= Duration::from_secs(5),
        "ended before its time: {error}"
    );
    assert!(error.contains("expired"), "{error}");
    // A new login with the grant's secret is refused, and the sweeper
    // records the grant's end.
    let Err(refused) = connect(&dsn).await else {
        panic!("logging in again is let in");
    };
    assert!(format!("{refused:?}").contains("expired"), "{refused:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while expired_events(&serve, id) == 0 {
        assert!(Instant::now() < deadline, "no grant.expired recorded");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        serve.log().contains("wall clock is behind"),
        "{}",
        serve.log()
    );
    let _ = std::fs::remove_file(&offset);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wall_clock_stepped_forward_ends_grants_early() {
    let (serve, offset) = gateway_with_fake_clock().await;
    let g = serve.grant(AGENT).await;
    let (id, dsn) = (g["id"].as_str().unwrap(), Serve::dsn(&g));
    let session = connect(&dsn).await.expect("log in");
    session.0.simple_query("SELECT x FROM t").await.unwrap();
    // An hour forward: by the wall clock the grant ran out 50 minutes ago.
    step(&offset, 3600);
    let error = until_ended(session, Duration::from_secs(20)).await;
    assert!(error.contains("expired"), "{error}");
    assert!(connect(&dsn).await.is_err(), "logging in again is refused");
    assert_eq!(expired_events(&serve, id), 1);
    let _ = std::fs::remove_file(&offset);
}
