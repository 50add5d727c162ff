//! Walks the chain and names the first sequence number where it breaks.

use sluice_store::{Store, StoreError};

use crate::chain::{GENESIS, chain_hash};

/// A chain that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    pub last_seq: i64,
    pub last_hash: String,
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at sequence {seq}: {why}")]
pub struct ChainBreak {
    pub seq: i64,
    pub why: String,
}

const PAGE: i64 = 1000;

/// Verifies the whole chain from sequence 1.
pub async fn verify(store: &Store) -> Result<Result<VerifyReport, ChainBreak>, StoreError> {
    let mut expected_seq = 1i64;
    let mut prev = GENESIS.to_string();
    let mut events = 0u64;
    let mut after = 0i64;
    loop {
        let rows = store.audit_after(after, PAGE).await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            if r.seq != expected_seq {
                return Ok(Err(ChainBreak {
                    seq: expected_seq,
                    why: format!("event {expected_seq} is missing (next is {})", r.seq),
                }));
            }
            if embedded_seq(&r.body) != Some(r.seq) {
                return Ok(Err(ChainBreak {
                    seq: r.seq,
                    why: "the event's body belongs to another position (reordered)".into(),
                }));
            }
            if r.prev_hash != prev {
                return Ok(Err(ChainBreak {
                    seq: r.seq,
                    why: "does not link to the previous event (deleted, inserted or reordered)"
                        .into(),
                }));
            }
            if chain_hash(&r.prev_hash, &r.body) != r.hash {
                return Ok(Err(ChainBreak {
                    seq: r.seq,
                    why: "content does not match its hash (edited)".into(),
                }));
            }
            prev = r.hash.clone();
            expected_seq += 1;
            events += 1;
        }
        after = rows.last().map(|r| r.seq).unwrap_or(after);
    }
    Ok(Ok(VerifyReport {
        events,
        last_seq: expected_seq - 1,
        last_hash: prev,
    }))
}

fn embedded_seq(body: &str) -> Option<i64> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()?
        .get("seq")?
        .as_i64()
}
