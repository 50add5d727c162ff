//! The exported form of an event, shared by `sluice audit export` and every
//! sink: the stored canonical body's fields plus `prev_hash` and `hash`, so a
//! receiver can re-verify the chain on its side.

use serde_json::Value;
use sluice_store::{AuditRow, Store, StoreError};
use std::io::Write;

/// One event ready to leave the gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportEvent {
    pub seq: i64,
    /// Unix milliseconds (the same instant as the body's `ts`).
    pub ts_ms: i64,
    pub kind: String,
    pub hash: String,
    /// The body with `prev_hash` and `hash` added.
    pub json: Value,
}

impl ExportEvent {
    /// Converts a stored row. A body that is not a JSON object is corrupt.
    pub fn from_row(r: &AuditRow) -> Result<ExportEvent, StoreError> {
        let mut json: Value = serde_json::from_str(&r.body)
            .map_err(|e| StoreError::Corrupt(format!("audit body {}: {e}", r.seq)))?;
        let m = json
            .as_object_mut()
            .ok_or_else(|| StoreError::Corrupt(format!("audit body {} is not an object", r.seq)))?;
        m.insert("prev_hash".into(), r.prev_hash.clone().into());
        m.insert("hash".into(), r.hash.clone().into());
        Ok(ExportEvent {
            seq: r.seq,
            ts_ms: r.ts,
            kind: r.kind.clone(),
            hash: r.hash.clone(),
            json,
        })
    }

    /// The event as one line of JSON (no newline).
    pub fn line(&self) -> String {
        self.json.to_string()
    }
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
            let line = ExportEvent::from_row(r)?.line();
            writeln!(out, "{line}").map_err(|e| StoreError::Corrupt(format!("write: {e}")))?;
            n += 1;
        }
        after = rows.last().map(|r| r.seq).unwrap_or(after);
    }
}
