//! A PostgreSQL store commits a group of audit events but the reply is lost
//! with the connection. The writer sees a failure and retries; it must find
//! that the events are stored already and not chain them a second time.
//!
//! The fault is real: the store talks to a real PostgreSQL through a relay
//! that, once armed, withholds the server's answer to the next audit INSERT
//! until PostgreSQL reports the transaction over (ReadyForQuery), then cuts
//! the connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sluice_audit::{AuditLog, verify};
use sluice_core::audit::{AuditEvent, EventKind};
use sluice_store::Store;
use sluice_testkit::pg::PgServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_reply_was_lost_is_not_stored_twice() {
    let (pg, url) = PgServer::start_with_database("sluice").await.unwrap();
    let direct = Store::open(&url).await.unwrap();
    let cutter = Cutter::start(pg.port()).await;
    let relayed = url.replace(&format!(":{}/", pg.port()), &format!(":{}/", cutter.port));
    let store = Store::open(&relayed).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::start_with_journal(store, &dir.path().join("journal"))
        .await
        .unwrap();

    log.append(event(EventKind::SessionOpened, 0))
        .await
        .unwrap();
    cutter.armed.store(true, Ordering::SeqCst);
    for seq in 1..=5 {
        log.append_journaled(event(EventKind::StatementAllowed, seq))
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while cutter.cuts.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay never cut a connection after an audit commit"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // An awaited event after them: once it is stored, the writer has
    // settled everything queued before it.
    log.append(event(EventKind::SessionClosed, 6))
        .await
        .unwrap();
    assert_eq!(cutter.cuts.load(Ordering::SeqCst), 1);

    let rows = direct.audit_after(0, 1000).await.unwrap();
    let mut seen: HashMap<(String, i64), usize> = HashMap::new();
    for r in &rows {
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let seq = body["detail"]["seq"].as_i64().unwrap();
        *seen.entry((r.kind.clone(), seq)).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    for seq in 1..=5 {
        assert_eq!(
            seen.get(&("statement.allowed".to_string(), seq)),
            Some(&1),
            "decision {seq} missing: {seen:?}"
        );
    }
    let report = verify(&direct).await.unwrap().expect("the chain verifies");
    assert_eq!(report.events, rows.len() as u64);
}

fn event(kind: EventKind, seq: i64) -> AuditEvent {
    AuditEvent::new(kind)
        .session("s_lost_reply")
        .grant("g_1")
        .detail(serde_json::json!({ "seq": seq }))
}

/// A TCP relay in front of PostgreSQL that can lose one reply.
struct Cutter {
    port: u16,
    /// Set: the next connection to answer an INSERT is cut once the
    /// transaction is over, its answer withheld.
    armed: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
}

impl Cutter {
    async fn start(target: u16) -> Cutter {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicUsize::new(0));
        let (a, c) = (armed.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(("127.0.0.1", target)).await.unwrap();
                tokio::spawn(relay(client, server, a.clone(), c.clone()));
            }
        });
        Cutter { port, armed, cuts }
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    armed: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    // The withheld answer, once this connection is the one to cut.
    let mut held: Option<Vec<u8>> = None;
    loop {
        let n = match from_server.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        if held.is_none()
            && find(chunk, b"INSERT 0 ").is_some()
            && armed.swap(false, Ordering::SeqCst)
        {
            held = Some(Vec::new());
        }
        let Some(h) = held.as_mut() else {
            if to_client.write_all(chunk).await.is_err() {
                break;
            }
            continue;
        };
        h.extend_from_slice(chunk);
        let insert = find(h, b"INSERT 0 ").expect("held from the INSERT on");
        // ReadyForQuery after the INSERT's CommandComplete: committed.
        if find(&h[insert..], b"Z\0\0\0\x05").is_some() {
            cuts.fetch_add(1, Ordering::SeqCst);
            break;
        }
    }
    up.abort();
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
