//! Hostile and broken peers: clients that say nothing, lie about sizes or
//! send garbage before login; oversized statements after; a backend that
//! goes away mid-session. Each gets a clear MySQL error or a closed
//! connection, and the gateway goes on serving others.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sluice_core::Profile;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the gateway closes the connection (or `limit` passes).
async fn drain(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_client_is_dropped_after_the_auth_timeout() {
    let gw = Gateway::start_with("[mysql]\nauth_timeout = \"1s\"\n", "").await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let (greeting, closed) = drain(&mut s, Duration::from_secs(5)).await;
    assert!(greeting.len() > 4, "a greeting came first");
    assert!(closed, "closed within the auth timeout");
    let refused = gw
        .audit
        .wait_for(sluice_core::audit::EventKind::SessionRejected, 1)
        .await;
    assert!(
        refused[0].detail.to_string().contains("timed out"),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_huge_packet_before_login_is_refused_without_reading_it() {
    let gw = Gateway::start("").await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let mut b = [0u8; 256];
    let _ = s.read(&mut b).await.unwrap();
    // A header announcing 16 MiB, and nothing after it.
    s.write_all(&[0xff, 0xff, 0xff, 1]).await.unwrap();
    let (_, closed) = drain(&mut s, Duration::from_secs(3)).await;
    assert!(closed, "closed at once, not waiting for 16 MiB");
    // Garbage that is no handshake response: a MySQL error, then closed.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let _ = s.read(&mut b).await.unwrap();
    s.write_all(&[5, 0, 0, 1, 1, 2, 3, 4, 5]).await.unwrap();
    let (got, closed) = drain(&mut s, Duration::from_secs(3)).await;
    assert!(closed);
    assert!(
        got.windows(2).any(|w| w == [0xff, 0x13]),
        "ER_HANDSHAKE_ERROR (1043): {got:?}"
    );
    // Others are still served.
    let g = gw.grant(Profile::Read);
    let out = gw.mariadb(&g, "SELECT 1");
    assert_eq!(stdout(&out), "1\n", "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_statements_and_packets_get_mysql_errors() {
    let gw = Gateway::start_with(
        "[mysql]\nmax_statement_bytes = 4096\nmax_packet_bytes = 1048576\n",
        "",
    )
    .await;
    let g = gw.grant(Profile::Read);
    let long = format!("SELECT '{}'", "x".repeat(5000));
    let r = gw.pymysql(&g, &[&long, "SELECT 1"]);
    assert_eq!(r[0]["error"]["code"], 1142, "{r:?}");
    assert!(
        r[0]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_statement_bytes")),
        "{r:?}"
    );
    assert_eq!(
        r[1]["rows"],
        serde_json::json!([[1]]),
        "the session goes on"
    );
    // Past max_packet_bytes the packet is not read: an error, then closed.
    let r = gw.pymysql(&g, &["BIG:2097152"]);
    let code = r[0]["error"]["code"].as_u64();
    // The client may see the error, or the connection closed under its write.
    assert!(
        matches!(code, Some(1153) | Some(2013) | Some(2006)),
        "{r:?}"
    );
    let closed = gw
        .audit
        .wait_for(sluice_core::audit::EventKind::SessionClosed, 2)
        .await;
    assert!(
        closed.iter().any(|e| e.detail["end"] == "packet too large"),
        "{}",
        gw.audit.all_json()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backend_that_goes_away_ends_the_session_with_a_clear_error() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Read);
    let script = r#"
import sys, pymysql
conn = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user=sys.argv[2], password=sys.argv[3], database=sys.argv[4])
with conn.cursor() as cur:
    cur.execute("SELECT connection_id()")
    print(cur.fetchone()[0], flush=True)
sys.stdin.readline()
try:
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
    print("still open")
except pymysql.err.MySQLError as e:
    print("ended", e.args[0], e.args[1] if len(e.args) > 1 else "")
"#;
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            script,
            &gw.addr.port().to_string(),
            &g.id,
            &g.secret,
            &gw.db,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut id = String::new();
    std::io::BufRead::read_line(&mut out, &mut id).unwrap();
    // The backend connection is killed at the server.
    server().sql(&format!("KILL {}", id.trim())).unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"go\n").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let _ = child.wait();
    assert!(rest.starts_with("ended"), "{rest}");
    let closed = gw
        .audit
        .wait_for(sluice_core::audit::EventKind::SessionClosed, 1)
        .await;
    assert!(
        closed.iter().any(|e| e.detail["end"] == "backend failed"),
        "{}",
        gw.audit.all_json()
    );
}

/// A client that quits has given its place back by the time its
/// connection closes, however long recording the end takes: an agent
/// reconnecting at once under `max_sessions_per_grant` is let in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_quit_can_log_straight_back_in() {
    let gw = Gateway::start("\n[connections.limits]\nmax_sessions_per_grant = 1\n").await;
    *gw.audit.slow_kind.lock().unwrap() = Some((
        sluice_core::audit::EventKind::SessionClosed,
        Duration::from_secs(1),
    ));
    let g = gw.grant(Profile::Read);
    for round in 0..5 {
        let out = gw.mariadb(&g, "SELECT 1");
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
    }
}

/// A flood of silent connections: past the 256 logging in at once, each
/// gets ER_CON_COUNT_ERROR (1040) in place of the greeting, at once; when
/// the flood goes, logins work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_silent_connections_is_capped_before_login() {
    let gw = Gateway::start("").await;
    let mut held = Vec::new();
    for _ in 0..sluice_gate::MAX_PRE_AUTH {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        let mut b = [0u8; 256];
        let n = s.read(&mut b).await.unwrap();
        assert!(n > 4 && b[4] == 10, "a greeting (protocol 10)");
        held.push(s);
    }
    for _ in 0..20 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        let (got, closed) = drain(&mut s, Duration::from_secs(3)).await;
        assert!(closed, "closed at once");
        assert!(
            got.len() > 7 && got[4] == 0xff && got[5..7] == 1040u16.to_le_bytes(),
            "ER_CON_COUNT_ERROR: {got:?}"
        );
    }
    drop(held);
    let g = gw.grant(Profile::Read);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = gw.mariadb(&g, "SELECT 1");
        if stdout(&out) == "1\n" {
            break;
        }
        assert!(Instant::now() < deadline, "{}", stderr(&out));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
