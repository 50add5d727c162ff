//! The exported form of an event, shared by `sluice audit export` and every
//! sink: the stored canonical body's fields plus `prev_hash` and `hash`, so a
//! receiver can re-verify the chain on its side.

use serde_json::value::RawValue;
use sluice_store::{AuditRow, Store, StoreError};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;

/// One event ready to leave the gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportEvent {
    pub seq: i64,
    /// Unix milliseconds (the same instant as the body's `ts`).
    pub ts_ms: i64,
    pub kind: String,
    pub hash: String,
    /// The body with `prev_hash` and `hash` added, as one line of JSON.
    line: String,
}

impl ExportEvent {
    /// Converts a stored row. A body that is not a JSON object is corrupt.
    pub fn from_row(r: &AuditRow) -> Result<ExportEvent, StoreError> {
        Ok(ExportEvent {
            seq: r.seq,
            ts_ms: r.ts,
            kind: r.kind.clone(),
            hash: r.hash.clone(),
            line: with_hashes(r)?,
        })
    }

    /// The event as one line of JSON (no newline).
    pub fn line(&self) -> &str {
        &self.line
    }
}

/// The stored body with `prev_hash` and `hash` added. Only the top level is
/// parsed: the body is canonical (sorted keys, compact), so its values are
/// copied as they are and the line is what parsing the whole body and
/// formatting it again would give, at a fraction of the work. Every sink
/// calls this for every event.
fn with_hashes(r: &AuditRow) -> Result<String, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("audit body {}: {e}", r.seq));
    let mut top: BTreeMap<Cow<'_, str>, &RawValue> =
        serde_json::from_str(&r.body).map_err(corrupt)?;
    let prev_hash = RawValue::from_string(serde_json::to_string(&r.prev_hash).map_err(corrupt)?)
        .map_err(corrupt)?;
    let hash =
        RawValue::from_string(serde_json::to_string(&r.hash).map_err(corrupt)?).map_err(corrupt)?;
    top.insert("prev_hash".into(), &prev_hash);
    top.insert("hash".into(), &hash);
    serde_json::to_string(&top).map_err(corrupt)
}

/// Writes every event from `from_seq` on as JSON lines. Returns the number
/// of lines written.
pub async fn export_jsonl(
    store: &Store,
    from_seq: i64,
    out: &mut (dyn Write + Send),
) -> Result<u64, StoreError> {
    let mut after = from_seq.saturating_sub(1);
    let mut n = 0;
    loop {
        let rows = store.audit_after(after, 1000).await?;
        if rows.is_empty() {
            return Ok(n);
        }
        for r in &rows {
            let event = ExportEvent::from_row(r)?;
            writeln!(out, "{}", event.line())
                .map_err(|e| StoreError::Corrupt(format!("write: {e}")))?;
            n += 1;
        }
        after = rows.last().map(|r| r.seq).unwrap_or(after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::canonical_body;
    use serde_json::Value;
    use sluice_core::audit::{AuditEvent, EventKind};

    #[test]
    fn a_line_is_the_body_with_its_hashes_as_full_parsing_would_give() {
        let ts = chrono::DateTime::from_timestamp_millis(1_764_000_000_001).unwrap();
        let awkward = "quote \" back\\slash \u{1} é 😀 </script>";
        let event = AuditEvent::new(EventKind::StatementAllowed)
            .grant("g_1")
            .session("s_1")
            .detail(
                serde_json::json!({"sql": awkward, "f": 0.1, "n": [1, {"b": null, "a": awkward}]}),
            );
        let row = AuditRow {
            seq: 41,
            ts: 1_764_000_000_001,
            kind: "statement.allowed".into(),
            grant_id: Some("g_1".into()),
            session_id: Some("s_1".into()),
            body: canonical_body(41, ts, &event),
            prev_hash: "0a".repeat(32),
            hash: "fb".repeat(32),
        };
        let mut full: Value = serde_json::from_str(&row.body).unwrap();
        let m = full.as_object_mut().unwrap();
        m.insert("prev_hash".into(), row.prev_hash.clone().into());
        m.insert("hash".into(), row.hash.clone().into());
        let e = ExportEvent::from_row(&row).unwrap();
        assert_eq!(e.line(), full.to_string());
        assert_eq!((e.seq, e.kind.as_str()), (41, "statement.allowed"));

        let bad = AuditRow {
            body: "[1, 2]".into(),
            ..row
        };
        assert!(matches!(
            ExportEvent::from_row(&bad),
            Err(StoreError::Corrupt(_))
        ));
    }
}
