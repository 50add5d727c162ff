//! `sluice audit export --format jsonl`: one JSON object a line.

use sluice_store::{Store, StoreError};
use std::io::Write;

/// Writes every event from `from_seq` on as JSON lines: the stored body's
/// fields plus `prev_hash` and `hash`, so a receiver can re-verify.
/// Returns the number of lines written.
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
            let mut v: serde_json::Value = serde_json::from_str(&r.body)
                .map_err(|e| StoreError::Corrupt(format!("audit body {}: {e}", r.seq)))?;
            if let Some(m) = v.as_object_mut() {
                m.insert("prev_hash".into(), r.prev_hash.clone().into());
                m.insert("hash".into(), r.hash.clone().into());
            }
            writeln!(out, "{v}").map_err(|e| StoreError::Corrupt(format!("write: {e}")))?;
            n += 1;
        }
        after = rows.last().map(|r| r.seq).unwrap_or(after);
    }
}
