//! Recorded sessions, read back from the audit chain: one per
//! `session.opened` event, joined with its `session.closed` (if any) and
//! with the grant that names who it was. Nothing here writes.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

/// Which sessions to list. Every field narrows; `Default` lists all.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// The grant's subject or its identity's display name.
    pub identity: Option<String>,
    pub connection: Option<String>,
    /// Unix ms: sessions still open at or after this time.
    pub since: Option<i64>,
    /// Unix ms: sessions opened at or before this time.
    pub until: Option<i64>,
    /// Only sessions of this principal (subject, issuer): a caller who may
    /// see only their own.
    pub owner: Option<(String, String)>,
    /// Only this session.
    pub session_id: Option<String>,
    /// At most this many, newest first. 0 means 100.
    pub limit: i64,
}

/// One recorded session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub session_id: String,
    pub grant_id: Option<String>,
    /// The grant's connection (the same as the session's).
    pub connection: Option<String>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub identity_name: Option<String>,
    pub identity_kind: Option<String>,
    /// Unix ms of `session.opened`.
    pub opened_at: i64,
    /// Unix ms of `session.closed`; `None` while open (or if the gateway
    /// died before closing it).
    pub closed_at: Option<i64>,
    /// The canonical bodies of the two events.
    pub opened: String,
    pub closed: Option<String>,
}

const SELECT: &str = "SELECT o.session_id AS session_id, o.grant_id AS grant_id, \
     o.ts AS opened_at, o.body AS opened, c.ts AS closed_at, c.body AS closed, \
     g.connection AS connection, g.subject AS subject, g.issuer AS issuer, \
     g.identity_name AS identity_name, g.identity_kind AS identity_kind \
     FROM audit_events o \
     LEFT JOIN audit_events c ON c.session_id = o.session_id AND c.kind = 'session.closed' \
     LEFT JOIN grants g ON g.id = o.grant_id \
     WHERE o.kind = 'session.opened' AND o.session_id IS NOT NULL";

impl Store {
    /// Sessions matching `f`, newest first.
    pub async fn sessions(&self, f: &SessionFilter) -> Result<Vec<SessionRow>, StoreError> {
        // Only the filters given become SQL (with numbered parameters), so
        // PostgreSQL never has to guess the type of a NULL parameter.
        let mut sql = String::from(SELECT);
        let mut text: Vec<String> = Vec::new();
        let mut nums: Vec<i64> = Vec::new();
        let mut n = 0;
        let mut param = |sql: &mut String, clause: &str| {
            n += 1;
            sql.push_str(&clause.replace('?', &format!("${n}")));
        };
        // Parameters are bound in order: every text one, then every number.
        if let Some(id) = &f.identity {
            param(&mut sql, " AND (g.subject = ?");
            text.push(id.clone());
            param(&mut sql, " OR g.identity_name = ?)");
            text.push(id.clone());
        }
        if let Some(c) = &f.connection {
            param(&mut sql, " AND g.connection = ?");
            text.push(c.clone());
        }
        if let Some((subject, issuer)) = &f.owner {
            param(&mut sql, " AND g.subject = ?");
            text.push(subject.clone());
            param(&mut sql, " AND g.issuer = ?");
            text.push(issuer.clone());
        }
        if let Some(s) = &f.session_id {
            param(&mut sql, " AND o.session_id = ?");
            text.push(s.clone());
        }
        if let Some(since) = f.since {
            param(&mut sql, " AND (c.ts IS NULL OR c.ts >= ?)");
            nums.push(since);
        }
        if let Some(until) = f.until {
            param(&mut sql, " AND o.ts <= ?");
            nums.push(until);
        }
        param(&mut sql, " ORDER BY o.ts DESC, o.seq DESC LIMIT ?");
        nums.push(if f.limit <= 0 { 100 } else { f.limit });
        let mut q = sqlx::query(&sql);
        for t in &text {
            q = q.bind(t.as_str());
        }
        for v in &nums {
            q = q.bind(*v);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(session_row).collect()
    }

    /// One session, if it was recorded (and, with `owner`, is theirs).
    pub async fn session(
        &self,
        id: &str,
        owner: Option<(String, String)>,
    ) -> Result<Option<SessionRow>, StoreError> {
        let f = SessionFilter {
            session_id: Some(id.to_string()),
            owner,
            limit: 1,
            ..SessionFilter::default()
        };
        Ok(self.sessions(&f).await?.into_iter().next())
    }

    /// Every event of a session, in chain order: what a replay reads.
    pub async fn session_events(&self, id: &str) -> Result<Vec<crate::AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, ts, kind, grant_id, session_id, body, prev_hash, hash \
             FROM audit_events WHERE session_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::audit::row).collect()
    }
}

fn session_row(r: &AnyRow) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        session_id: r.try_get("session_id")?,
        grant_id: r.try_get("grant_id")?,
        connection: r.try_get("connection")?,
        subject: r.try_get("subject")?,
        issuer: r.try_get("issuer")?,
        identity_name: r.try_get("identity_name")?,
        identity_kind: r.try_get("identity_kind")?,
        opened_at: r.try_get("opened_at")?,
        closed_at: r.try_get("closed_at")?,
        opened: r.try_get("opened")?,
        closed: r.try_get("closed")?,
    })
}
