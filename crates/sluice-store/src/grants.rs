//! Grants in the store.

use chrono::{DateTime, Utc};
use sluice_core::{Grant, GrantStatus, Profile};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, from_ms, ms};

const COLUMNS: &str = "id, subject, issuer, identity_name, identity_kind, connection, profile, \
    rule, status, reason, ttl_secs, created_at, activated_at, expires_at, decided_by, scram_verifier, \
    identity_groups, ssh_key, native_verifier";

impl Store {
    pub async fn insert_grant(&self, g: &Grant) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO grants ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        ))
        .bind(&g.id)
        .bind(&g.subject)
        .bind(&g.issuer)
        .bind(&g.identity_name)
        .bind(&g.identity_kind)
        .bind(&g.connection)
        .bind(g.profile.as_str())
        .bind(&g.rule)
        .bind(g.status.as_str())
        .bind(&g.reason)
        .bind(g.ttl_secs)
        .bind(ms(g.created_at))
        .bind(g.activated_at.map(ms))
        .bind(ms(g.expires_at))
        .bind(g.decided_by.as_deref())
        .bind(&g.scram_verifier)
        .bind(groups_json(&g.identity_groups))
        .bind(g.ssh_key.as_deref())
        .bind(&g.native_verifier)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM grants WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// The grants of one identity, newest first.
    pub async fn grants_of(
        &self,
        subject: &str,
        issuer: &str,
        limit: i64,
    ) -> Result<Vec<Grant>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM grants WHERE issuer = $1 AND subject = $2 \
             ORDER BY created_at DESC LIMIT $3"
        ))
        .bind(issuer)
        .bind(subject)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// Moves a grant from any of `from` to `to`. Returns false when the grant
    /// was not in one of `from` (someone else changed it first).
    pub async fn transition_grant(
        &self,
        id: &str,
        from: &[GrantStatus],
        to: GrantStatus,
        decided_by: &str,
    ) -> Result<bool, StoreError> {
        let from_list = status_list(from);
        let done = sqlx::query(&format!(
            "UPDATE grants SET status = $1, decided_by = $2 WHERE id = $3 AND status IN ({from_list})"
        ))
        .bind(to.as_str())
        .bind(decided_by)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Pending → active: the grant's life starts now.
    pub async fn activate_grant(
        &self,
        id: &str,
        now: DateTime<Utc>,
        decided_by: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE grants SET status = 'active', activated_at = $1, \
             expires_at = $1 + ttl_secs * 1000, decided_by = $2 \
             WHERE id = $3 AND status = 'pending'",
        )
        .bind(ms(now))
        .bind(decided_by)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Active or pending grants whose time is up at `now`.
    pub async fn due_grants(&self, now: DateTime<Utc>) -> Result<Vec<Grant>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM grants WHERE status IN ('active', 'pending') \
             AND expires_at <= $1 ORDER BY expires_at LIMIT 500"
        ))
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(grant_from_row).collect()
    }
}

fn status_list(from: &[GrantStatus]) -> String {
    // Statuses are our own constants, never caller text: safe to inline.
    from.iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Groups as stored: a JSON array of strings.
fn groups_json(groups: &[String]) -> String {
    serde_json::Value::from(groups).to_string()
}

fn groups_from_json(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("grant groups: {e}")))
}

fn grant_from_row(r: &AnyRow) -> Result<Grant, StoreError> {
    let profile: String = r.try_get("profile")?;
    let groups: String = r.try_get("identity_groups")?;
    let status: String = r.try_get("status")?;
    let activated: Option<i64> = r.try_get("activated_at")?;
    Ok(Grant {
        id: r.try_get("id")?,
        subject: r.try_get("subject")?,
        issuer: r.try_get("issuer")?,
        identity_name: r.try_get("identity_name")?,
        identity_kind: r.try_get("identity_kind")?,
        identity_groups: groups_from_json(&groups)?,
        connection: r.try_get("connection")?,
        profile: profile
            .parse::<Profile>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        rule: r.try_get("rule")?,
        status: GrantStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("grant status {status:?}")))?,
        reason: r.try_get("reason")?,
        ttl_secs: r.try_get("ttl_secs")?,
        created_at: from_ms(r.try_get("created_at")?),
        activated_at: activated.map(from_ms),
        expires_at: from_ms(r.try_get("expires_at")?),
        decided_by: r.try_get("decided_by")?,
        scram_verifier: r.try_get("scram_verifier")?,
        ssh_key: r.try_get("ssh_key")?,
        native_verifier: r.try_get("native_verifier")?,
    })
}

impl Store {
    /// Sets the verifiers of a grant that has none yet (one approved after
    /// it was requested). True when this call set them.
    pub async fn set_verifiers_once(
        &self,
        id: &str,
        scram: &str,
        native: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE grants SET scram_verifier = $1, native_verifier = $2 \
             WHERE id = $3 AND scram_verifier = ''",
        )
        .bind(scram)
        .bind(native)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
