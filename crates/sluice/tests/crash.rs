//! kill -9 of the real `sluice serve` in the middle of a write load: the
//! audit chain on its SQLite store still verifies (signatures included),
//! every row that reached the database has its `statement.allowed` record
//! (durable in the audit journal before the statement is forwarded, and in
//! the chain once a restart has stored what the crash left journaled), and
//! the restarted gateway goes on appending to the same chain.

mod common;

use common::{AGENT, Options, Serve, allowed_texts, text};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

/// Concurrent clients writing through the gateway.
const CLIENTS: usize = 6;
/// Acknowledged inserts before the kill: enough that the kill lands in
/// the middle of the load, with statements in flight on every client.
const BEFORE_KILL: usize = 300;

/// The value a client writes: unique per client and per insert.
fn key(client: usize, n: usize) -> String {
    format!("c{client}-n{n}")
}

/// One client: inserts its keys one statement at a time until the gateway
/// goes away; returns the keys whose insert was acknowledged.
async fn writer(dsn: String, client: usize, acked: Arc<Vec<AtomicUsize>>) -> Vec<String> {
    let (db, conn) = tokio_postgres::connect(&dsn, NoTls).await.expect("connect");
    tokio::spawn(conn);
    let mut done = Vec::new();
    for n in 0.. {
        let k = key(client, n);
        // The simple protocol puts the value into the recorded text.
        let sql = format!("INSERT INTO load (k) VALUES ('{k}')");
        if db.simple_query(&sql).await.is_err() {
            break;
        }
        done.push(k);
        acked[client].fetch_add(1, Ordering::SeqCst);
    }
    done
}

/// The keys named by the `statement.allowed` events among `events`.
fn allowed_keys(events: &[Value]) -> BTreeSet<String> {
    allowed_texts(events)
        .iter()
        .filter_map(|t| {
            let k = t.strip_prefix("INSERT INTO load (k) VALUES ('")?;
            Some(k.strip_suffix("')")?.to_string())
        })
        .collect()
}

fn rows(serve: &Serve) -> BTreeSet<String> {
    serve
        .pg
        .psql("postgres", "SELECT k FROM load")
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// `audit verify --public-key`: passes, and the last sequence number.
fn verify(serve: &Serve) -> i64 {
    let config = serve.config.to_str().unwrap();
    let key = serve.public_key();
    let out = serve.sluice(
        None,
        &[
            "audit",
            "verify",
            "--config",
            config,
            "--public-key",
            key.to_str().unwrap(),
        ],
    );
    let report = text(&out.stdout);
    assert!(
        out.status.success(),
        "verify failed: {report}{}",
        text(&out.stderr)
    );
    assert!(report.contains("signatures verified"), "{report}");
    report
        .split("last sequence ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no last sequence in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_load_leaves_a_verifiable_chain_recording_every_write() {
    let mut serve = Serve::start(Options {
        setup: "CREATE TABLE load (k text PRIMARY KEY)".into(),
        checkpoint_every: Some(50),
        ..Options::default()
    })
    .await;
    let grant = serve.grant(AGENT).await;
    let dsn = Serve::dsn(&grant);

    let acked: Arc<Vec<AtomicUsize>> =
        Arc::new((0..CLIENTS).map(|_| AtomicUsize::new(0)).collect());
    let writers: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(writer(dsn.clone(), c, acked.clone())))
        .collect();
    // Wait for the load to be well under way on every client and signed at
    // least once, so the kill cuts into an unsigned tail and into
    // statements in flight.
    let store = serve.store().await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let counts = || acked.iter().map(|a| a.load(Ordering::SeqCst));
    while counts().sum::<usize>() < BEFORE_KILL
        || counts().any(|n| n == 0)
        || store.last_checkpoint().await.unwrap().is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the load did not get going: {}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.close().await;
    serve.kill9().await;
    let mut acknowledged = BTreeSet::new();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }

    // The chain verifies, signatures included.
    let before = verify(&serve);
    // Every acknowledged insert is in the database.
    let in_db = rows(&serve);
    let events = serve.audit_events();
    assert!(in_db.len() >= BEFORE_KILL, "{} rows", in_db.len());
    assert!(
        acknowledged.is_subset(&in_db),
        "an acknowledged insert is missing"
    );
    // The crash left no close: the sessions end mid-record.
    assert!(!events.iter().any(|e| e["kind"] == "session.closed"));

    // Restarted on the same store, the gateway appends to the same chain.
    serve.spawn().await;
    let grant = serve.grant(AGENT).await;
    let (db, conn) = tokio_postgres::connect(&Serve::dsn(&grant), NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    db.simple_query("INSERT INTO load (k) VALUES ('after-restart')")
        .await
        .unwrap();
    drop(db);
    task.await.unwrap().unwrap();
    serve.stop().await;
    let after = verify(&serve);
    assert!(after > before, "{after} after {before}");
    let events = serve.audit_events();
    // Every row in the database was recorded as allowed before it got
    // there: in the chain, or journaled and stored by the restart.
    let recorded = allowed_keys(&events);
    let unrecorded: Vec<&String> = in_db.difference(&recorded).collect();
    assert!(
        unrecorded.is_empty(),
        "rows in the database without their statement.allowed: {unrecorded:?}"
    );
    // The restart appended right after the crash's last event: first what
    // the journal held that the store lacked, then its config.loaded.
    let seq = |e: &Value| e["seq"].as_i64().unwrap();
    let restarted = events
        .iter()
        .find(|e| e["kind"] == "config.loaded" && seq(e) > before)
        .expect("the restart's config.loaded follows the crash");
    let recovered: Vec<&Value> = events
        .iter()
        .filter(|e| seq(e) > before && seq(e) < seq(restarted))
        .collect();
    assert!(
        recovered
            .iter()
            .all(|e| e["kind"] == "statement.allowed" || e["kind"] == "session.opened"),
        "only journaled events come between the crash and the restart"
    );
    // Every crashed session's opening is in the chain (journaled like the
    // decisions), and the restart's one session.
    assert_eq!(
        events
            .iter()
            .filter(|e| e["kind"] == "session.opened")
            .count(),
        CLIENTS + 1
    );
    assert_eq!(seq(restarted), before + 1 + recovered.len() as i64);
    assert!(allowed_keys(&events).contains("after-restart"));
    assert!(rows(&serve).contains("after-restart"));
}
