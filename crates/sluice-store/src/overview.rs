//! What the web page's overview charts: sessions and statement decisions
//! per hour, and the rules that denied most, over a recent window. Read
//! from the audit chain with aggregates, so a busy day is a few hundred
//! rows back, not every event.

use std::collections::HashMap;

use sqlx::Row;

use crate::{Store, StoreError};

const HOUR_MS: i64 = 3_600_000;
/// Denials read back to find the top rules: the newest this many.
const DENIALS_READ: i64 = 5_000;

/// Events of one kind in one hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourCount {
    /// Unix ms of the hour's start.
    pub hour: i64,
    pub kind: String,
    pub count: i64,
}

/// The overview of the window since `since` (unix ms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overview {
    pub hours: Vec<HourCount>,
    /// Rules by the denials they made, most first.
    pub top_denied: Vec<(String, i64)>,
    /// Whether the denials counted were only the newest [`DENIALS_READ`].
    pub denials_sampled: bool,
}

/// The kinds counted per hour.
const COUNTED: [&str; 5] = [
    "session.opened",
    "statement.allowed",
    "statement.denied",
    "approval.requested",
    "grant.requested",
];

impl Store {
    pub async fn overview(&self, since: i64) -> Result<Overview, StoreError> {
        let rows = sqlx::query(
            "SELECT (ts / $1) * $1 AS hour, kind, COUNT(*) AS n FROM audit_events \
             WHERE ts >= $2 AND kind IN ($3, $4, $5, $6, $7) GROUP BY 1, 2 ORDER BY 1",
        )
        .bind(HOUR_MS)
        .bind(since)
        .bind(COUNTED[0])
        .bind(COUNTED[1])
        .bind(COUNTED[2])
        .bind(COUNTED[3])
        .bind(COUNTED[4])
        .fetch_all(&self.pool)
        .await?;
        let hours = rows
            .iter()
            .map(|r| {
                Ok(HourCount {
                    hour: r.try_get("hour")?,
                    kind: r.try_get("kind")?,
                    count: r.try_get("n")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let denied = sqlx::query(
            "SELECT body FROM audit_events WHERE ts >= $1 AND kind = 'statement.denied' \
             ORDER BY seq DESC LIMIT $2",
        )
        .bind(since)
        .bind(DENIALS_READ)
        .fetch_all(&self.pool)
        .await?;
        let mut by_rule: HashMap<String, i64> = HashMap::new();
        for r in &denied {
            let body: String = r.try_get("body")?;
            let rule = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["detail"]["rule"].as_str().map(str::to_string))
                .unwrap_or_else(|| "(no rule)".to_string());
            *by_rule.entry(rule).or_default() += 1;
        }
        let mut top_denied: Vec<(String, i64)> = by_rule.into_iter().collect();
        top_denied.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top_denied.truncate(10);
        Ok(Overview {
            hours,
            top_denied,
            denials_sampled: denied.len() as i64 >= DENIALS_READ,
        })
    }
}
