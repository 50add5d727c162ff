//! What audit export and tamper evidence keep in the store: each sink's
//! delivery cursor, signed checkpoints, and the one sanctioned way to delete
//! old events (a truncation recorded in the chain, in the same transaction).
//! The meaning of all of it (signing, chaining, verifying) is
//! `sluice-audit`'s; the store only keeps rows.

use sqlx::Row;

use crate::{AuditRow, Store, StoreError};

/// One signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    /// The sequence number the checkpoint covers (everything up to it).
    pub seq: i64,
    /// The chain hash of the event at `seq`.
    pub hash: String,
    /// When it was signed, Unix milliseconds.
    pub ts: i64,
    /// A short fingerprint of the signing public key (informative only).
    pub key_id: String,
    /// The Ed25519 signature, base64.
    pub signature: String,
}

impl Store {
    /// The last sequence number sink `name` delivered, if it ever delivered.
    pub async fn sink_cursor(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT last_seq FROM audit_sink_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("last_seq")?),
            None => None,
        })
    }

    /// Records that sink `name` delivered everything up to `last_seq`. The
    /// cursor only moves forward, so a slow or duplicate runner (two
    /// gateways sharing a store) never moves it back.
    pub async fn advance_sink_cursor(&self, name: &str, last_seq: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_sink_cursors (name, last_seq, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET last_seq = excluded.last_seq, \
             updated_at = excluded.updated_at \
             WHERE audit_sink_cursors.last_seq < excluded.last_seq",
        )
        .bind(name)
        .bind(last_seq)
        .bind(sluice_core::clock::now().timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a checkpoint. A checkpoint already stored at the same
    /// sequence number (another gateway signed it first) is kept; returns
    /// whether this one was inserted.
    pub async fn insert_checkpoint(&self, c: &CheckpointRow) -> Result<bool, StoreError> {
        let res = sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, ts, key_id, signature) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING",
        )
        .bind(c.seq)
        .bind(&c.hash)
        .bind(c.ts)
        .bind(&c.key_id)
        .bind(&c.signature)
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Checkpoints with `seq > after`, in order, at most `limit`.
    pub async fn checkpoints_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<CheckpointRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, hash, ts, key_id, signature FROM audit_checkpoints \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CheckpointRow {
                    seq: r.try_get("seq")?,
                    hash: r.try_get("hash")?,
                    ts: r.try_get("ts")?,
                    key_id: r.try_get("key_id")?,
                    signature: r.try_get("signature")?,
                })
            })
            .collect()
    }

    /// The newest checkpoint, if any.
    pub async fn last_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        let r = sqlx::query("SELECT MAX(seq) AS seq FROM audit_checkpoints")
            .fetch_one(&self.pool)
            .await?;
        match r.try_get::<Option<i64>, _>("seq")? {
            Some(seq) => Ok(self.checkpoints_after(seq - 1, 1).await?.pop()),
            None => Ok(None),
        }
    }

    /// The newest checkpoint at or before `seq`, if any.
    pub async fn checkpoint_at_or_before(
        &self,
        seq: i64,
    ) -> Result<Option<CheckpointRow>, StoreError> {
        let r = sqlx::query("SELECT MAX(seq) AS seq FROM audit_checkpoints WHERE seq <= $1")
            .bind(seq)
            .fetch_one(&self.pool)
            .await?;
        match r.try_get::<Option<i64>, _>("seq")? {
            Some(seq) => Ok(self.checkpoints_after(seq - 1, 1).await?.pop()),
            None => Ok(None),
        }
    }

    /// The oldest event still stored (not 1 after a truncation).
    pub async fn audit_first(&self) -> Result<Option<AuditRow>, StoreError> {
        let r = sqlx::query("SELECT MIN(seq) AS seq FROM audit_events")
            .fetch_one(&self.pool)
            .await?;
        match r.try_get::<Option<i64>, _>("seq")? {
            Some(seq) => Ok(self.audit_after(seq - 1, 1).await?.pop()),
            None => Ok(None),
        }
    }

    /// The last sequence number whose event is older than `ts_ms`.
    pub async fn audit_last_seq_before(&self, ts_ms: i64) -> Result<Option<i64>, StoreError> {
        let r = sqlx::query("SELECT MAX(seq) AS seq FROM audit_events WHERE ts < $1")
            .bind(ts_ms)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get::<Option<i64>, _>("seq")?)
    }

    /// The newest truncation marker (kind `audit.truncated`), if any. The
    /// kind is a literal so the partial index of migration 0006 serves it.
    pub async fn audit_last_truncation(&self) -> Result<Option<AuditRow>, StoreError> {
        let r =
            sqlx::query("SELECT MAX(seq) AS seq FROM audit_events WHERE kind = 'audit.truncated'")
                .fetch_one(&self.pool)
                .await?;
        match r.try_get::<Option<i64>, _>("seq")? {
            Some(seq) => Ok(self.audit_after(seq - 1, 1).await?.pop()),
            None => Ok(None),
        }
    }

    /// Deletes every event up to `through_seq` and appends `marker` (the
    /// chained record of that deletion) in one transaction: both or neither.
    /// A marker whose sequence number was taken meanwhile gives `SeqTaken`
    /// and deletes nothing, so the caller rechains and tries again.
    pub async fn audit_truncate(
        &self,
        marker: &AuditRow,
        through_seq: i64,
    ) -> Result<u64, StoreError> {
        if through_seq >= marker.seq {
            return Err(StoreError::Corrupt(format!(
                "a truncation through {through_seq} would delete its own marker ({})",
                marker.seq
            )));
        }
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO audit_events (seq, ts, kind, grant_id, session_id, body, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(marker.seq)
        .bind(marker.ts)
        .bind(&marker.kind)
        .bind(marker.grant_id.as_deref())
        .bind(marker.session_id.as_deref())
        .bind(&marker.body)
        .bind(&marker.prev_hash)
        .bind(&marker.hash)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            let taken = e
                .as_database_error()
                .map(|d| d.is_unique_violation())
                .unwrap_or(false);
            return Err(if taken {
                StoreError::SeqTaken(marker.seq)
            } else {
                e.into()
            });
        }
        let deleted = sqlx::query("DELETE FROM audit_events WHERE seq <= $1")
            .bind(through_seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }
}
