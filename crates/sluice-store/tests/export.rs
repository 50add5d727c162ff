//! Sink cursors, checkpoints and truncation against embedded SQLite and a
//! real PostgreSQL: the 0002 migration and its upserts must suit both.

use sluice_store::{AuditRow, CheckpointRow, Store, StoreError};
use sluice_testkit::pg::PgServer;

fn row(seq: i64, kind: &str) -> AuditRow {
    AuditRow {
        seq,
        ts: 1_700_000_000_000 + seq,
        kind: kind.into(),
        grant_id: None,
        session_id: None,
        body: format!("{{\"seq\":{seq}}}"),
        prev_hash: format!("h{}", seq - 1),
        hash: format!("h{seq}"),
    }
}

fn checkpoint(seq: i64) -> CheckpointRow {
    CheckpointRow {
        seq,
        hash: format!("h{seq}"),
        ts: 1,
        key_id: "k".into(),
        signature: "s".into(),
    }
}

async fn suite(store: &Store) {
    // Cursors only move forward.
    assert_eq!(store.sink_cursor("siem").await.unwrap(), None);
    store.advance_sink_cursor("siem", 5).await.unwrap();
    store.advance_sink_cursor("siem", 3).await.unwrap();
    assert_eq!(store.sink_cursor("siem").await.unwrap(), Some(5));
    store.advance_sink_cursor("siem", 9).await.unwrap();
    assert_eq!(store.sink_cursor("siem").await.unwrap(), Some(9));

    // Checkpoints: the first at a sequence number wins.
    assert!(store.insert_checkpoint(&checkpoint(4)).await.unwrap());
    assert!(!store.insert_checkpoint(&checkpoint(4)).await.unwrap());
    assert!(store.insert_checkpoint(&checkpoint(8)).await.unwrap());
    assert_eq!(store.last_checkpoint().await.unwrap().unwrap().seq, 8);
    assert_eq!(
        store.checkpoint_at_or_before(7).await.unwrap().unwrap().seq,
        4
    );
    assert!(store.checkpoint_at_or_before(3).await.unwrap().is_none());
    assert_eq!(store.checkpoints_after(4, 10).await.unwrap().len(), 1);

    // Truncation: marker in, range out, in one transaction.
    let rows: Vec<AuditRow> = (1..=10).map(|s| row(s, "grant.requested")).collect();
    store.audit_append(&rows).await.unwrap();
    assert_eq!(
        store
            .audit_last_seq_before(1_700_000_000_005)
            .await
            .unwrap(),
        Some(4)
    );
    // A taken marker seq deletes nothing.
    let taken = store.audit_truncate(&row(10, "audit.truncated"), 4).await;
    assert!(matches!(taken, Err(StoreError::SeqTaken(10))), "{taken:?}");
    assert_eq!(store.audit_first().await.unwrap().unwrap().seq, 1);
    assert_eq!(
        store
            .audit_truncate(&row(11, "audit.truncated"), 4)
            .await
            .unwrap(),
        4
    );
    assert_eq!(store.audit_first().await.unwrap().unwrap().seq, 5);
    assert_eq!(
        store.audit_last_truncation().await.unwrap().unwrap().seq,
        11
    );
}

#[tokio::test]
async fn sqlite_export_tables() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite:{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    suite(&store).await;
}

#[tokio::test]
async fn postgres_export_tables() {
    let (_pg, url) = PgServer::start_with_database("sluice").await.unwrap();
    let store = Store::open(&url).await.unwrap();
    suite(&store).await;
}
