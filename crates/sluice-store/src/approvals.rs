//! Approvals, their votes, and shape approvals in the store.

use chrono::{DateTime, Utc};
use sluice_core::approval::{Approval, ApprovalKind, ApprovalStatus, Decision, Scope, Vote};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, from_ms, ms};

const COLUMNS: &str = "id, kind, status, grant_id, connection, requester_subject, requester_issuer, \
    requester_name, reason, session_id, statement, parameters, analysis, fingerprint, rule, \
    min_approvals, created_at, expires_at, decided_at, decided_by, decision_reason, scope";

/// Which decided approvals to list; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct ApprovalFilter {
    pub status: Option<ApprovalStatus>,
    pub kind: Option<ApprovalKind>,
    pub connection: Option<String>,
    /// The requester's name or subject.
    pub requester: Option<String>,
    /// Who decided: part of `decided_by` (which names every approver of
    /// an N-of-M decision).
    pub decided_by: Option<String>,
    pub limit: i64,
}

impl Store {
    pub async fn insert_approval(&self, a: &Approval) -> Result<(), StoreError> {
        let params = a
            .parameters
            .as_ref()
            .map(|p| serde_json::to_string(p).unwrap_or_default());
        let analysis = a.analysis.as_ref().map(|v| v.to_string());
        sqlx::query(&format!(
            "INSERT INTO approvals ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
        ))
        .bind(&a.id)
        .bind(a.kind.as_str())
        .bind(a.status.as_str())
        .bind(&a.grant_id)
        .bind(&a.connection)
        .bind(&a.requester_subject)
        .bind(&a.requester_issuer)
        .bind(&a.requester_name)
        .bind(&a.reason)
        .bind(a.session_id.as_deref())
        .bind(a.statement.as_deref())
        .bind(params)
        .bind(analysis)
        .bind(a.fingerprint.as_deref())
        .bind(a.rule.as_deref())
        .bind(a.min_approvals)
        .bind(ms(a.created_at))
        .bind(ms(a.expires_at))
        .bind(a.decided_at.map(ms))
        .bind(a.decided_by.as_deref())
        .bind(a.decision_reason.as_deref())
        .bind(a.scope.map(|s| s.as_str()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM approvals WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(approval_from_row).transpose()
    }

    /// Approvals with `status` (all when `None`), newest first.
    pub async fn approvals(
        &self,
        status: Option<ApprovalStatus>,
        limit: i64,
    ) -> Result<Vec<Approval>, StoreError> {
        // "All" is written as a status no row has, so one statement serves both.
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE (status = $1 OR $1 = 'any') \
             ORDER BY created_at DESC LIMIT $2"
        ))
        .bind(status.map(|s| s.as_str()).unwrap_or("any"))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(approval_from_row).collect()
    }

    /// Decided approvals (anything but pending), newest decision first,
    /// narrowed by `f`.
    pub async fn decided_approvals(&self, f: &ApprovalFilter) -> Result<Vec<Approval>, StoreError> {
        // Each filter is "= value, or the value is empty": one statement for
        // every combination, all values bound.
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE status <> 'pending' \
             AND (status = $1 OR $1 = '') AND (kind = $2 OR $2 = '') \
             AND (connection = $3 OR $3 = '') \
             AND (requester_name = $4 OR requester_subject = $4 OR $4 = '') \
             AND ($5 = '' OR decided_by LIKE '%' || $5 || '%') \
             ORDER BY COALESCE(decided_at, expires_at) DESC LIMIT $6"
        ))
        .bind(f.status.map(|s| s.as_str()).unwrap_or(""))
        .bind(f.kind.map(|k| k.as_str()).unwrap_or(""))
        .bind(f.connection.as_deref().unwrap_or(""))
        .bind(f.requester.as_deref().unwrap_or(""))
        .bind(f.decided_by.as_deref().unwrap_or(""))
        .bind(f.limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(approval_from_row).collect()
    }

    /// How many approvals have `status`.
    pub async fn count_approvals(&self, status: ApprovalStatus) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM approvals WHERE status = $1")
            .bind(status.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// The pending approval of a grant, if any.
    pub async fn grant_approval(&self, grant_id: &str) -> Result<Option<Approval>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE grant_id = $1 AND kind = 'grant' \
             ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(grant_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(approval_from_row).transpose()
    }

    /// The open approval of this grant for exactly this statement (text
    /// and parameters): pending, or approved once and not yet used. A
    /// retry waits on it, or runs on it, instead of opening another.
    pub async fn open_statement_approval(
        &self,
        grant_id: &str,
        statement: &str,
        parameters: Option<&[Option<String>]>,
    ) -> Result<Option<Approval>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE grant_id = $1 AND kind = 'statement' \
             AND statement = $2 AND used_at IS NULL \
             AND (status = 'pending' OR (status = 'approved' AND scope = 'once')) \
             ORDER BY created_at DESC LIMIT 16"
        ))
        .bind(grant_id)
        .bind(statement)
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let a = approval_from_row(row)?;
            if a.parameters.as_deref() == parameters {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }

    /// Marks an approved-once approval used; false when another session
    /// used it first (then this one must not run).
    pub async fn use_approval(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE approvals SET used_at = $1 WHERE id = $2 AND status = 'approved' \
             AND used_at IS NULL",
        )
        .bind(ms(at))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a vote. False when this approver already voted.
    pub async fn add_vote(&self, approval_id: &str, v: &Vote) -> Result<bool, StoreError> {
        let res = sqlx::query(
            "INSERT INTO approval_votes (approval_id, approver_subject, approver_issuer, \
             approver_name, decision, reason, scope, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(approval_id)
        .bind(&v.approver_subject)
        .bind(&v.approver_issuer)
        .bind(&v.approver_name)
        .bind(v.decision.as_str())
        .bind(&v.reason)
        .bind(v.scope.as_str())
        .bind(ms(v.created_at))
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_database_error()
                    .map(|d| d.is_unique_violation())
                    .unwrap_or(false) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn votes(&self, approval_id: &str) -> Result<Vec<Vote>, StoreError> {
        let rows = sqlx::query(
            "SELECT approver_subject, approver_issuer, approver_name, decision, reason, scope, \
             created_at FROM approval_votes WHERE approval_id = $1 ORDER BY created_at",
        )
        .bind(approval_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(vote_from_row).collect()
    }

    /// Closes a pending approval. False when it was no longer pending.
    pub async fn close_approval(
        &self,
        id: &str,
        status: ApprovalStatus,
        decided_by: &str,
        reason: &str,
        scope: Option<Scope>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE approvals SET status = $1, decided_by = $2, decision_reason = $3, scope = $4, \
             decided_at = $5 WHERE id = $6 AND status = 'pending'",
        )
        .bind(status.as_str())
        .bind(decided_by)
        .bind(reason)
        .bind(scope.map(|s| s.as_str()))
        .bind(ms(at))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Pending approvals whose wait is over at `now`.
    pub async fn due_approvals(&self, now: DateTime<Utc>) -> Result<Vec<Approval>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE status = 'pending' AND expires_at <= $1 \
             ORDER BY expires_at LIMIT 500"
        ))
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(approval_from_row).collect()
    }

    /// Remembers that statements of this shape may run under this grant.
    pub async fn approve_shape(
        &self,
        grant_id: &str,
        fingerprint: &str,
        approval_id: &str,
    ) -> Result<(), StoreError> {
        let res = sqlx::query(
            "INSERT INTO shape_approvals (grant_id, fingerprint, approval_id, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(grant_id)
        .bind(fingerprint)
        .bind(approval_id)
        .bind(ms(sluice_core::clock::now()))
        .execute(&self.pool)
        .await;
        match res {
            Err(e)
                if !e
                    .as_database_error()
                    .map(|d| d.is_unique_violation())
                    .unwrap_or(false) =>
            {
                Err(e.into())
            }
            _ => Ok(()),
        }
    }

    /// True when statements of this shape were approved for the grant.
    pub async fn shape_approved(
        &self,
        grant_id: &str,
        fingerprint: &str,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT approval_id FROM shape_approvals WHERE grant_id = $1 AND fingerprint = $2",
        )
        .bind(grant_id)
        .bind(fingerprint)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {v:?}"))
}

fn approval_from_row(r: &AnyRow) -> Result<Approval, StoreError> {
    let kind: String = r.try_get("kind")?;
    let status: String = r.try_get("status")?;
    let scope: Option<String> = r.try_get("scope")?;
    let params: Option<String> = r.try_get("parameters")?;
    let analysis: Option<String> = r.try_get("analysis")?;
    let decided_at: Option<i64> = r.try_get("decided_at")?;
    Ok(Approval {
        id: r.try_get("id")?,
        kind: ApprovalKind::parse(&kind).ok_or_else(|| corrupt("approval kind", &kind))?,
        status: ApprovalStatus::parse(&status)
            .ok_or_else(|| corrupt("approval status", &status))?,
        grant_id: r.try_get("grant_id")?,
        connection: r.try_get("connection")?,
        requester_subject: r.try_get("requester_subject")?,
        requester_issuer: r.try_get("requester_issuer")?,
        requester_name: r.try_get("requester_name")?,
        reason: r.try_get("reason")?,
        session_id: r.try_get("session_id")?,
        statement: r.try_get("statement")?,
        parameters: params.and_then(|p| serde_json::from_str(&p).ok()),
        analysis: analysis.and_then(|a| serde_json::from_str(&a).ok()),
        fingerprint: r.try_get("fingerprint")?,
        rule: r.try_get("rule")?,
        min_approvals: r.try_get("min_approvals")?,
        created_at: from_ms(r.try_get("created_at")?),
        expires_at: from_ms(r.try_get("expires_at")?),
        decided_at: decided_at.map(from_ms),
        decided_by: r.try_get("decided_by")?,
        decision_reason: r.try_get("decision_reason")?,
        scope: scope.as_deref().and_then(Scope::parse),
    })
}

fn vote_from_row(r: &AnyRow) -> Result<Vote, StoreError> {
    let decision: String = r.try_get("decision")?;
    let scope: String = r.try_get("scope")?;
    Ok(Vote {
        approver_subject: r.try_get("approver_subject")?,
        approver_issuer: r.try_get("approver_issuer")?,
        approver_name: r.try_get("approver_name")?,
        decision: Decision::parse(&decision).ok_or_else(|| corrupt("vote", &decision))?,
        reason: r.try_get("reason")?,
        scope: Scope::parse(&scope).ok_or_else(|| corrupt("scope", &scope))?,
        created_at: from_ms(r.try_get("created_at")?),
    })
}
