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

/// Rows per INSERT statement: 8 parameters each stays far below SQLite's
/// and PostgreSQL's limits on bound parameters.
const APPEND_CHUNK: usize = 256;

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

    /// Appends `rows` atomically: all or none. A sequence number already
    /// taken (another gateway appended first) gives `SeqTaken`.
    ///
    /// A group commit is one multi-row INSERT, a single statement and so
    /// atomic on its own: one round trip to the database (SQLite's runs on
    /// sqlx's worker thread, where every call is a thread hand-off) instead
    /// of a BEGIN, an INSERT per event and a COMMIT. Only batches larger
    /// than [`APPEND_CHUNK`] take a transaction over several statements.
    pub async fn audit_append(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        let sqlite = self.backend == crate::Backend::Sqlite;
        if rows.len() <= APPEND_CHUNK {
            return insert_rows(&self.pool, rows, sqlite).await;
        }
        let mut tx = self.pool.begin().await?;
        for chunk in rows.chunks(APPEND_CHUNK) {
            insert_rows(&mut *tx, chunk, sqlite).await?;
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

/// One multi-row INSERT of `rows`. SQLite gets anonymous `?` parameters:
/// sqlx looks every numbered one up by name, and SQLite finds a name by
/// scanning its list, which made binding a large batch quadratic.
async fn insert_rows<'e, E>(db: E, rows: &[AuditRow], sqlite: bool) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "INSERT INTO audit_events (seq, ts, kind, grant_id, session_id, body, prev_hash, hash) VALUES ",
    );
    for i in 0..rows.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        if sqlite {
            sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?)");
        } else {
            let p = i * 8;
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6,
                p + 7,
                p + 8
            ));
        }
    }
    let mut query = sqlx::query(&sql);
    for r in rows {
        query = query
            .bind(r.seq)
            .bind(r.ts)
            .bind(&r.kind)
            .bind(r.grant_id.as_deref())
            .bind(r.session_id.as_deref())
            .bind(&r.body)
            .bind(&r.prev_hash)
            .bind(&r.hash);
    }
    match query.execute(db).await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_database_error()
                .is_some_and(|d| d.is_unique_violation()) =>
        {
            Err(StoreError::SeqTaken(rows[0].seq))
        }
        Err(e) => Err(e.into()),
    }
}
