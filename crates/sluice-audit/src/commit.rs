//! One group commit: chain a batch after the tail and insert it, again
//! when another gateway sharing the store appended first.
//!
//! A failed insert is not always a failed commit. PostgreSQL can commit
//! the rows and lose the reply with the connection; retrying such a batch
//! blindly would chain its events a second time after themselves. So a
//! commit that failed after its insert was sent is kept as [`Unsure`].
//! Before the next batch is chained after a tail read from the store, the
//! writer looks up the unsure commit's first row: present with the same
//! hash, the whole commit landed (one statement or one transaction, so all
//! or nothing) and its retried events, at the front of the next batch, are
//! taken as stored instead of appended again. Its place taken by another
//! row, or by a later commit of ours, it never can land.
//!
//! Only retried events (journaled, or queued after the fact) are settled
//! this way. A caller awaiting `append` in such a commit was already told
//! it failed; its event is stored once, though the caller may act as if it
//! was not (a refusal, failing closed).

use sluice_store::{AuditRow, Store, StoreError};

use crate::chain::{GENESIS, canonical_body, chain_hash};
use crate::log::{Item, Reply};

/// Rows chained between yields to the runtime. Chaining a full batch (up
/// to 512 canonical bodies and hashes) takes a millisecond or more of CPU;
/// without yields, sessions queued on the same worker thread wait that
/// long for their next step.
const YIELD_EVERY: usize = 16;

/// A commit whose insert failed in a way that may hide a success.
pub(crate) struct Unsure {
    rows: Vec<AuditRow>,
    /// How many leading items of the next batch are this commit's events:
    /// those retried (nobody told of the failure), in order.
    retried: usize,
}

/// What a commit did.
pub(crate) struct Outcome {
    /// Leading items of the batch an earlier unsure commit had stored.
    pub(crate) already: usize,
    /// That earlier commit's rows (empty when none landed).
    pub(crate) landed: Vec<AuditRow>,
    /// For the items after `already`: the first one's sequence number and
    /// the rows stored, or why nothing was.
    pub(crate) result: Result<(i64, Vec<AuditRow>), String>,
}

/// Chains and writes `batch`, first settling an unsure earlier commit.
pub(crate) async fn commit(
    store: &Store,
    tail: &mut Option<(i64, String)>,
    unsure: &mut Option<Unsure>,
    batch: &[Item],
) -> Outcome {
    let mut out = Outcome {
        already: 0,
        landed: Vec::new(),
        result: Err("audit append kept colliding with other writers".into()),
    };
    for _ in 0..20 {
        let (mut seq, mut prev) = match tail.take() {
            Some(t) => t,
            None => match stored_tail(store, unsure, &mut out).await {
                Ok(t) => t,
                Err(e) => {
                    out.result = Err(e.to_string());
                    return out;
                }
            },
        };
        let items = &batch[out.already.min(batch.len())..];
        let first = seq + 1;
        let now = sluice_core::clock::now();
        let mut rows = Vec::with_capacity(items.len());
        for (i, (event, _)) in items.iter().enumerate() {
            if i > 0 && i % YIELD_EVERY == 0 {
                tokio::task::yield_now().await;
            }
            seq += 1;
            let body = canonical_body(seq, now, event);
            let hash = chain_hash(&prev, &body);
            rows.push(AuditRow {
                seq,
                ts: now.timestamp_millis(),
                kind: event.kind.as_str().to_string(),
                grant_id: event.grant_id.clone(),
                session_id: event.session_id.clone(),
                body,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            });
        }
        if rows.is_empty() {
            *tail = Some((seq, prev));
            out.result = Ok((first, rows));
            return out;
        }
        match store.audit_append(&rows).await {
            Ok(()) => {
                // An unsure commit still undecided was chained after the
                // same stored tail: its first sequence number is now ours.
                *unsure = None;
                *tail = Some((seq, prev));
                out.result = Ok((first, rows));
                return out;
            }
            // Another writer took our place: reload the tail and rechain.
            Err(StoreError::SeqTaken(_)) => continue,
            Err(e) => {
                tracing::error!(error = %e, "audit append failed");
                let retried = items
                    .iter()
                    .filter(|(_, r)| !matches!(r, Reply::Ack(_)))
                    .count();
                // Replaces an older unsure commit, if any: both were
                // chained after the same stored tail, so at most one can
                // land. Only an older one that lands after a read already
                // found it missing (a commit outliving its connection by a
                // whole retry) would go unnoticed.
                *unsure = Some(Unsure { rows, retried });
                out.result = Err(e.to_string());
                return out;
            }
        }
    }
    out
}

/// The store's tail, after deciding whether an unsure commit landed.
async fn stored_tail(
    store: &Store,
    unsure: &mut Option<Unsure>,
    out: &mut Outcome,
) -> Result<(i64, String), StoreError> {
    let stored = store
        .audit_tail()
        .await?
        .unwrap_or((0, GENESIS.to_string()));
    let Some((first, hash)) = unsure
        .as_ref()
        .map(|u| (u.rows[0].seq, u.rows[0].hash.clone()))
    else {
        return Ok(stored);
    };
    if stored.0 < first {
        // Not there (yet): the next insert takes its place.
        return Ok(stored);
    }
    let found = store.audit_after(first - 1, 1).await?;
    let landed = found
        .first()
        .is_some_and(|r| r.seq == first && r.hash == hash);
    if let Some(u) = unsure.take()
        && landed
    {
        tracing::warn!(
            events = u.rows.len(),
            first,
            "an audit commit reported as failed had been stored; not storing it again"
        );
        out.already = u.retried;
        out.landed = u.rows;
    }
    Ok(stored)
}
