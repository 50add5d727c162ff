//! Tampering with the stored chain is detected at the first bad event.

use sluice_audit::{AuditLog, export_jsonl, verify};
use sluice_core::audit::{AuditEvent, EventKind};
use sluice_store::Store;
use sqlx::Connection;

async fn log_with_events(n: usize) -> (tempfile::TempDir, String, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.db").display().to_string();
    let store = Store::open(&format!("sqlite:{path}")).await.unwrap();
    let log = AuditLog::start(store.clone());
    // Concurrent appends exercise group commit; sequence numbers stay dense.
    let mut tasks = Vec::new();
    for i in 0..n {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            log.append(
                AuditEvent::new(EventKind::GrantRequested)
                    .grant(&format!("g_{i}"))
                    .detail(serde_json::json!({ "i": i })),
            )
            .await
            .unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=n as i64).collect::<Vec<_>>());
    (dir, path, store)
}

async fn tamper(path: &str, sql: &str) {
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{path}"))
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut c).await.unwrap();
}

async fn first_break(store: &Store) -> i64 {
    verify(store).await.unwrap().unwrap_err().seq
}

#[tokio::test]
async fn an_untouched_chain_verifies_and_exports() {
    let (_dir, _path, store) = log_with_events(50).await;
    let report = verify(&store).await.unwrap().unwrap();
    assert_eq!((report.events, report.last_seq), (50, 50));
    let mut out = Vec::new();
    assert_eq!(export_jsonl(&store, 48, &mut out).await.unwrap(), 3);
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["seq"], 48);
    assert_eq!(lines[0]["kind"], "grant.requested");
    assert_eq!(lines[0]["v"], 1);
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
}

#[tokio::test]
async fn an_edited_event_is_named() {
    let (_dir, path, store) = log_with_events(10).await;
    tamper(
        &path,
        "UPDATE audit_events SET body = replace(body, 'g_', 'x_') WHERE seq = 6",
    )
    .await;
    assert_eq!(first_break(&store).await, 6);
}

#[tokio::test]
async fn an_edit_with_a_recomputed_hash_breaks_the_next_link() {
    let (_dir, path, store) = log_with_events(10).await;
    // A forger who recomputes row 4's hash still breaks row 5's link.
    let rows = store.audit_after(3, 1).await.unwrap();
    let forged = rows[0].body.replace("\"i\":", "\"i\":1");
    let hash = sluice_audit::chain_hash(&rows[0].prev_hash, &forged);
    tamper(
        &path,
        &format!("UPDATE audit_events SET body = '{forged}', hash = '{hash}' WHERE seq = 4"),
    )
    .await;
    assert_eq!(first_break(&store).await, 5);
}

#[tokio::test]
async fn a_deleted_event_is_named() {
    let (_dir, path, store) = log_with_events(10).await;
    tamper(&path, "DELETE FROM audit_events WHERE seq = 3").await;
    let b = verify(&store).await.unwrap().unwrap_err();
    assert_eq!(b.seq, 3);
    assert!(b.why.contains("missing"), "{}", b.why);

    tamper(&path, "DELETE FROM audit_events WHERE seq = 1").await;
    assert_eq!(first_break(&store).await, 1);
}

#[tokio::test]
async fn swapped_events_are_named() {
    let (_dir, path, store) = log_with_events(10).await;
    // Swap the positions of events 7 and 8.
    tamper(&path, "UPDATE audit_events SET seq = -1 WHERE seq = 7").await;
    tamper(&path, "UPDATE audit_events SET seq = 7 WHERE seq = 8").await;
    tamper(&path, "UPDATE audit_events SET seq = 8 WHERE seq = -1").await;
    assert_eq!(first_break(&store).await, 7);
}
