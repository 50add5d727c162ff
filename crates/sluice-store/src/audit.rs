//! The audit chain's rows. The chain itself (hashing, batching, verifying)
//! is `sluice-audit`'s; the store only appends and reads.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

/// One stored audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    /// Unix milliseconds.
    pub ts: i64,
    pub kind: String,
    pub grant_id: Option<String>,
    pub session_id: Option<String>,
    /// The canonical JSON the hash covers.
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

impl Store {
    /// The last event's sequence number and hash, if any.
    pub async fn audit_tail(&self) -> Result<Option<(i64, String)>, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("seq")?, r.try_get("hash")?)),
            None => None,
        })
    }

    /// Appends `rows` in one transaction: all or none. A sequence number
    /// already taken (another gateway appended first) gives `SeqTaken`.
    pub async fn audit_append(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for r in rows {
            let res = sqlx::query(
                "INSERT INTO audit_events (seq, ts, kind, grant_id, session_id, body, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(r.seq)
            .bind(r.ts)
            .bind(&r.kind)
            .bind(r.grant_id.as_deref())
            .bind(r.session_id.as_deref())
            .bind(&r.body)
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .execute(&mut *tx)
            .await;
            if let Err(e) = res {
                let taken = e
                    .as_database_error()
                    .map(|d| d.is_unique_violation())
                    .unwrap_or(false);
                return Err(if taken {
                    StoreError::SeqTaken(r.seq)
                } else {
                    e.into()
                });
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Events with `seq > after`, in order, at most `limit`.
    pub async fn audit_after(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, ts, kind, grant_id, session_id, body, prev_hash, hash \
             FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row).collect()
    }

    /// The first sequence number at or after `ts_ms`, for `--since`.
    pub async fn audit_first_seq_since(&self, ts_ms: i64) -> Result<Option<i64>, StoreError> {
        let r = sqlx::query("SELECT MIN(seq) AS seq FROM audit_events WHERE ts >= $1")
            .bind(ts_ms)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get::<Option<i64>, _>("seq")?)
    }
}

pub(crate) fn row(r: &AnyRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        seq: r.try_get("seq")?,
        ts: r.try_get("ts")?,
        kind: r.try_get("kind")?,
        grant_id: r.try_get("grant_id")?,
        session_id: r.try_get("session_id")?,
        body: r.try_get("body")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}
