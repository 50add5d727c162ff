//! Helpers shared by the audit tests: a store of its own per test, events
//! appended through the real writer, and raw SQL for playing the attacker.

#![allow(dead_code)]

use sluice_audit::{AuditLog, chain_hash};
use sluice_core::audit::{AuditEvent, EventKind};
use sluice_store::Store;
use sqlx::Connection;

pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub path: String,
    pub store: Store,
    pub log: AuditLog,
}

impl TestStore {
    pub async fn new() -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.db").display().to_string();
        let store = Store::open(&format!("sqlite:{path}")).await.unwrap();
        let log = AuditLog::start(store.clone());
        TestStore {
            dir,
            path,
            store,
            log,
        }
    }

    /// Appends `n` events one after another; returns the last seq.
    pub async fn append(&self, n: usize) -> i64 {
        let mut last = 0;
        for i in 0..n {
            last = self
                .log
                .append(
                    AuditEvent::new(EventKind::GrantRequested)
                        .grant(&format!("g_{i}"))
                        .detail(serde_json::json!({ "i": i, "note": "quote \" and ] here" })),
                )
                .await
                .unwrap();
        }
        last
    }

    /// Runs raw SQL against the file, as someone with store access would.
    pub async fn sql(&self, sql: &str) {
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", self.path))
            .await
            .unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }

    /// Edits the body at `seq` and recomputes every hash from there to the
    /// tail, so the chain itself is consistent again: a forger's best move.
    pub async fn rewrite(&self, seq: i64, edit: impl Fn(&str) -> String) {
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", self.path))
            .await
            .unwrap();
        let rows = self.store.audit_after(seq - 1, 100_000).await.unwrap();
        let mut prev = rows[0].prev_hash.clone();
        for (i, r) in rows.iter().enumerate() {
            let body = if i == 0 {
                edit(&r.body)
            } else {
                r.body.clone()
            };
            let hash = chain_hash(&prev, &body);
            sqlx::query(
                "UPDATE audit_events SET body = $1, prev_hash = $2, hash = $3 WHERE seq = $4",
            )
            .bind(&body)
            .bind(&prev)
            .bind(&hash)
            .bind(r.seq)
            .execute(&mut c)
            .await
            .unwrap();
            prev = hash;
        }
    }
}
