//! Connection floods and slowloris against the real `sluice serve`'s
//! Postgres listener and API at once, on loopback, bounded in count and
//! time: a session logged in before keeps working throughout; the
//! gateway's descriptors stay within its caps (256 logging in per
//! listener, 1,024 API connections); a login while the flood holds every
//! place is told so at once (53300), not left hanging; and once the flood
//! is gone, logins and the API work again.

mod common;

use common::{AGENT, Options, Serve};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::NoTls;

/// Connections per listener: over each cap.
const FLOOD_PG: usize = 400;
const FLOOD_API: usize = 1100;

fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Opens `n` connections to `port`, each sending `first` (a partial
/// message) and then one more byte every few seconds: slowloris.
async fn flood(port: u16, n: usize, first: &'static [u8]) -> Vec<tokio::task::JoinHandle<()>> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
            continue;
        };
        held.push(tokio::spawn(async move {
            let _ = s.write_all(first).await;
            let mut buf = [0u8; 256];
            loop {
                tokio::select! {
                    r = s.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { return },
                    _ = tokio::time::sleep(Duration::from_secs(3)) => {
                        if s.write_all(b"x").await.is_err() {
                            return;
                        }
                    }
                }
            }
        }));
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn floods_and_slowloris_hold_their_caps_and_spare_open_sessions() {
    let serve = Serve::start(Options {
        setup: "CREATE TABLE t (x int); INSERT INTO t VALUES (1);".into(),
        ..Options::default()
    })
    .await;
    let dsn = Serve::dsn(&serve.grant(AGENT).await);
    let (db, conn) = tokio_postgres::connect(&dsn, NoTls).await.unwrap();
    tokio::spawn(conn);
    db.simple_query("SELECT x FROM t").await.unwrap();
    let pid = serve.pid();
    let before = descriptors(pid);
    let api_port: u16 = serve.api.rsplit(':').next().unwrap().parse().unwrap();

    // A startup packet's length and no more; a request line and no end of
    // headers.
    // The API's first: past its cap, connections wait in the backlog.
    let mut flooders = flood(api_port, FLOOD_API, b"GET /readyz HTTP/1.1\r\nHost: x\r\n").await;
    flooders.extend(flood(serve.pg_port, FLOOD_PG, &[0, 0, 0, 64]).await);

    // A login now finds every place taken and is told so at once (the
    // flood's connections are cut at the auth timeout, 10 s).
    let asked = Instant::now();
    let Err(refused) = tokio_postgres::connect(&dsn, NoTls).await else {
        let log = serve.log();
        panic!("let in: {}", &log[log.len().saturating_sub(3000)..]);
    };
    let code = refused.as_db_error().map(|e| e.code().code().to_string());
    assert_eq!(code.as_deref(), Some("53300"), "{refused:?}");
    assert!(asked.elapsed() < Duration::from_secs(5));
    // The open session is unaffected, and the caps hold.
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut most = 0;
    while Instant::now() < deadline {
        let rows = db.simple_query("SELECT x FROM t").await;
        assert!(rows.is_ok(), "the open session failed: {rows:?}");
        most = most.max(descriptors(pid));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cap = before + 256 + 1024 + 32;
    assert!(
        most <= cap,
        "{most} descriptors, cap {cap} ({before} before)"
    );

    // The flood goes; logins and the API work again.
    for f in flooders {
        f.abort();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match tokio_postgres::connect(&dsn, NoTls).await {
            Ok((db, conn)) => {
                tokio::spawn(conn);
                db.simple_query("SELECT x FROM t").await.unwrap();
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "no login after the flood: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = reqwest::get(format!("{}/readyz", serve.api)).await.unwrap();
    assert!(ready.status().is_success());
    db.simple_query("SELECT x FROM t").await.unwrap();
}

/// A slowloris on the API alone: a client that never finishes its headers
/// is cut off after the header deadline.
#[tokio::test(flavor = "multi_thread")]
async fn an_api_client_that_never_finishes_its_headers_is_cut_off() {
    let serve = Serve::start(Options::default()).await;
    let api_port: u16 = serve.api.rsplit(':').next().unwrap().parse().unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", api_port)).await.unwrap();
    s.write_all(b"GET /readyz HTTP/1.1\r\n").await.unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    // A byte every second keeps the socket busy but the head unfinished.
    let cut = loop {
        tokio::select! {
            r = s.read_buf(&mut buf) => if matches!(r, Ok(0) | Err(_)) { break started.elapsed() },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if s.write_all(b"X-Slow: 1\r\n").await.is_err() {
                    break started.elapsed();
                }
            }
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never cut off");
    };
    assert!(cut >= Duration::from_secs(9), "cut off after {cut:?}");
}
