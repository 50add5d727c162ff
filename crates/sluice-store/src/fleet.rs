//! Fleet mode in the store: the gateways sharing it, the leases that make
//! one of them do what must run once (the sweeper, audit export), and the
//! change feed (PostgreSQL `LISTEN/NOTIFY`) that tells every gateway at
//! once what one of them changed.
//!
//! Lease times are the holder's wall clock, so gateways' clocks must agree
//! to within a fraction of the lease's life (NTP does): a lease outlives
//! its holder by at most its life, and the work under a lease is safe to
//! overlap briefly (conditional updates, at-least-once export).

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Backend, Store, StoreError, from_ms, ms};

/// The `LISTEN/NOTIFY` channel of change announcements.
pub const CHANGES_CHANNEL: &str = "sluice_changes";

/// A gateway as it last announced itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub host: String,
    pub version: String,
    pub policy_hash: String,
    pub api_url: String,
    /// `serving`, `draining` or `stopped`.
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
}

/// Who holds a lease, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// Records `m` (insert or update by id).
    pub async fn heartbeat(&self, m: &Member) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO gateways (id, host, version, policy_hash, api_url, state, started_at, heartbeat_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET host = excluded.host, version = excluded.version, \
             policy_hash = excluded.policy_hash, api_url = excluded.api_url, state = excluded.state, \
             heartbeat_at = excluded.heartbeat_at",
        )
        .bind(&m.id)
        .bind(&m.host)
        .bind(&m.version)
        .bind(&m.policy_hash)
        .bind(&m.api_url)
        .bind(&m.state)
        .bind(ms(m.started_at))
        .bind(ms(m.heartbeat_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gateways heard from since `since`, oldest first.
    pub async fn members(&self, since: DateTime<Utc>) -> Result<Vec<Member>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, host, version, policy_hash, api_url, state, started_at, heartbeat_at \
             FROM gateways WHERE heartbeat_at >= $1 ORDER BY started_at, id",
        )
        .bind(ms(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Member {
                    id: r.try_get("id")?,
                    host: r.try_get("host")?,
                    version: r.try_get("version")?,
                    policy_hash: r.try_get("policy_hash")?,
                    api_url: r.try_get("api_url")?,
                    state: r.try_get("state")?,
                    started_at: from_ms(r.try_get("started_at")?),
                    heartbeat_at: from_ms(r.try_get("heartbeat_at")?),
                })
            })
            .collect()
    }

    /// Forgets gateways not heard from since `before`.
    pub async fn forget_members(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM gateways WHERE heartbeat_at < $1")
            .bind(ms(before))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Takes or renews lease `name` for `holder` until `until`: true when
    /// `holder` now holds it (it was free, lapsed, or already its own).
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(ms(until))
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives lease `name` up, if `holder` holds it, so another gateway
    /// takes it at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every lease, by name.
    pub async fn leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        let rows = sqlx::query("SELECT name, holder, expires_at FROM leases ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(LeaseRow {
                    name: r.try_get("name")?,
                    holder: r.try_get("holder")?,
                    expires_at: from_ms(r.try_get("expires_at")?),
                })
            })
            .collect()
    }

    /// Announces `payload` to every gateway listening on the store
    /// (PostgreSQL only: one SQLite store has one gateway).
    pub async fn notify(&self, payload: &str) -> Result<(), StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGES_CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A listener on the change feed; `None` for a SQLite store.
    pub async fn listen(&self) -> Result<Option<ChangeFeed>, StoreError> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect(url)
            .await
            .map_err(|e| StoreError::Open(crate::redact(&e.to_string(), url)))?;
        listener.listen(CHANGES_CHANNEL).await?;
        Ok(Some(ChangeFeed { listener }))
    }
}

/// The change feed of a PostgreSQL store.
pub struct ChangeFeed {
    listener: sqlx::postgres::PgListener,
}

/// What the feed said.
pub enum Heard {
    /// One announcement's payload.
    Change(String),
    /// The connection was lost and made again: announcements may have
    /// been missed, so whoever listens must read the store again.
    Reconnected,
}

impl ChangeFeed {
    /// The next announcement, or that some may have been lost; an error
    /// when the store cannot be reached (call again to retry).
    pub async fn next(&mut self) -> Result<Heard, StoreError> {
        match self.listener.try_recv().await? {
            Some(n) => Ok(Heard::Change(n.payload().to_string())),
            None => Ok(Heard::Reconnected),
        }
    }
}

/// Web page sign-in state (`ui_sessions`): approver sessions and sign-ins
/// in flight, by the SHA-256 of their id, so any gateway serves them.
impl Store {
    /// Stores `body` under `key` for `kind` until `expires_at`.
    pub async fn put_ui(
        &self,
        key: &str,
        kind: &str,
        body: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ui_sessions (key, kind, body, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, body = excluded.body, \
             expires_at = excluded.expires_at",
        )
        .bind(key)
        .bind(kind)
        .bind(body)
        .bind(ms(expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The unexpired body under `key` for `kind`.
    pub async fn get_ui(
        &self,
        key: &str,
        kind: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT body FROM ui_sessions WHERE key = $1 AND kind = $2 AND expires_at > $3",
        )
        .bind(key)
        .bind(kind)
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("body")).transpose()?)
    }

    /// Removes and returns the unexpired body under `key` for `kind`:
    /// of two gateways taking the same key, one gets it.
    pub async fn take_ui(
        &self,
        key: &str,
        kind: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM ui_sessions WHERE key = $1 AND kind = $2 RETURNING body, expires_at",
        )
        .bind(key)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires: i64 = row.try_get("expires_at")?;
        Ok((expires > ms(now))
            .then(|| row.try_get("body"))
            .transpose()?)
    }

    /// Deletes what is under `key`.
    pub async fn delete_ui(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM ui_sessions WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes expired rows, then the soonest-expiring ones of `kind` past
    /// `max` of that kind.
    pub async fn trim_ui(
        &self,
        kind: &str,
        max: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= $1")
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
        // Past `max`, the soonest to expire make room (both databases
        // take LIMIT … OFFSET; PostgreSQL has no LIMIT -1).
        let cutoff: Option<i64> = sqlx::query_scalar(
            "SELECT expires_at FROM ui_sessions WHERE kind = $1 \
             ORDER BY expires_at DESC LIMIT 1 OFFSET $2",
        )
        .bind(kind)
        .bind(max)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(cutoff) = cutoff {
            sqlx::query("DELETE FROM ui_sessions WHERE kind = $1 AND expires_at <= $2")
                .bind(kind)
                .bind(cutoff)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}
