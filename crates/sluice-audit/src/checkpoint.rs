//! Signed checkpoints: every N events or T seconds the gateway signs the
//! chain head (seq, hash) with its Ed25519 key and stores the signature.
//!
//! The signed message is plain text, one field a line, so any tool can
//! rebuild it:
//!
//! ```text
//! sluice-audit-checkpoint/v1
//! seq:<seq>
//! hash:<64 hex digits>
//! ts:<unix milliseconds>
//! ```
//!
//! The signature (64 bytes) is stored base64. Before signing, the
//! checkpointer re-verifies the events since the previous checkpoint, so it
//! never puts its signature on a chain that is already broken.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sluice_store::{CheckpointRow, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

use crate::error::ExportError;
use crate::keys::key_id;
use crate::verify::{Walker, chain_start};

/// The exact bytes a checkpoint signature covers.
pub fn checkpoint_message(seq: i64, hash: &str, ts: i64) -> String {
    format!("sluice-audit-checkpoint/v1\nseq:{seq}\nhash:{hash}\nts:{ts}\n")
}

/// Signs the chain head (`seq`, `hash`) at time `ts` (Unix ms).
pub fn sign_checkpoint(key: &SigningKey, seq: i64, hash: &str, ts: i64) -> CheckpointRow {
    let sig = key.sign(checkpoint_message(seq, hash, ts).as_bytes());
    CheckpointRow {
        seq,
        hash: hash.to_string(),
        ts,
        key_id: key_id(&key.verifying_key()),
        signature: STANDARD.encode(sig.to_bytes()),
    }
}

/// Whether `cp` carries a valid signature by `key` over its own fields.
pub fn check_signature(key: &VerifyingKey, cp: &CheckpointRow) -> bool {
    verify_text(
        key,
        &checkpoint_message(cp.seq, &cp.hash, cp.ts),
        &cp.signature,
    )
}

/// Checks a base64 signature over `text` (strict: no malleable encodings).
pub(crate) fn verify_text(key: &VerifyingKey, text: &str, signature_b64: &str) -> bool {
    let Ok(bytes) = STANDARD.decode(signature_b64) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(&bytes) else {
        return false;
    };
    key.verify_strict(text.as_bytes(), &sig).is_ok()
}

/// When to sign.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    /// Sign once this many events are unsigned…
    pub every_events: u64,
    /// …or once the last checkpoint is this old and events are unsigned.
    pub interval: Duration,
}

/// The task that signs checkpoints.
pub struct Checkpointer {
    store: Store,
    key: Arc<SigningKey>,
    policy: CheckpointPolicy,
}

/// What one round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    /// Nothing new, or not due yet.
    Idle,
    /// Signed the head at this sequence number.
    Signed(i64),
}

impl Checkpointer {
    pub fn new(store: Store, key: Arc<SigningKey>, policy: CheckpointPolicy) -> Self {
        Checkpointer { store, key, policy }
    }

    /// Runs until `stop`, waking on commits and at least every few seconds;
    /// on stop, signs whatever is still unsigned so a clean shutdown leaves
    /// no unsigned tail.
    pub async fn run(self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        // Bounded so an interval check is never late by more than this.
        let tick = self.policy.interval.min(Duration::from_secs(5));
        let mut failures = 0u32;
        loop {
            let woken = wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            match self.round(false).await {
                Ok(_) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    // Every failure is logged once, then every 60th, so a
                    // broken store does not flood the log.
                    if failures == 1 || failures.is_multiple_of(60) {
                        tracing::error!(error = %e, failures, "audit checkpoint failed");
                    }
                }
            }
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep(tick) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            // Gather commits, as the export runners do: two store reads per
            // group commit would compete with the writer statements wait on.
            tokio::select! {
                _ = tokio::time::sleep(crate::runner::LINGER) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        if let Err(e) = self.round(true).await {
            tracing::error!(error = %e, "final audit checkpoint failed");
        }
    }

    /// Signs the head if due (or, with `force`, whenever anything is
    /// unsigned).
    pub async fn round(&self, force: bool) -> Result<Round, ExportError> {
        let Some((tail_seq, tail_hash)) = self.store.audit_tail().await? else {
            return Ok(Round::Idle);
        };
        let last = self.store.last_checkpoint().await?;
        let signed_seq = last.as_ref().map(|c| c.seq).unwrap_or(0);
        if tail_seq <= signed_seq {
            return Ok(Round::Idle);
        }
        let now = sluice_core::clock::now().timestamp_millis();
        let age = last
            .as_ref()
            .map(|c| Duration::from_millis(now.saturating_sub(c.ts).max(0) as u64));
        let due = force
            || (tail_seq - signed_seq) as u64 >= self.policy.every_events
            || age.is_none_or(|a| a >= self.policy.interval);
        if !due {
            return Ok(Round::Idle);
        }
        self.check_unsigned_range(last.as_ref(), tail_seq, &tail_hash)
            .await?;
        let cp = sign_checkpoint(&self.key, tail_seq, &tail_hash, now);
        if self.store.insert_checkpoint(&cp).await? {
            tracing::debug!(seq = tail_seq, "audit checkpoint signed");
        }
        Ok(Round::Signed(tail_seq))
    }

    /// Re-verifies the events from the last checkpoint to the head.
    async fn check_unsigned_range(
        &self,
        last: Option<&CheckpointRow>,
        tail_seq: i64,
        tail_hash: &str,
    ) -> Result<(), ExportError> {
        let refuse = |why: String| ExportError::Refused(format!("not signing: {why}"));
        let mut walker = match last {
            Some(cp) => Walker::new(cp.seq + 1, cp.hash.clone()),
            None => {
                let Some(first) = self.store.audit_first().await? else {
                    return Ok(());
                };
                let start = chain_start(&self.store, &first)
                    .await?
                    .map_err(|b| refuse(b.to_string()))?;
                Walker::new(start.seq, start.prev)
            }
        };
        let mut after = last.map(|c| c.seq).unwrap_or(0);
        while after < tail_seq {
            let rows = self.store.audit_after(after, 1000).await?;
            let Some(last_row) = rows.last() else { break };
            for r in rows.iter().take_while(|r| r.seq <= tail_seq) {
                walker.step(r).map_err(|b| refuse(b.to_string()))?;
                if r.seq == tail_seq && r.hash != tail_hash {
                    return Err(refuse(format!(
                        "the head at {tail_seq} changed while signing"
                    )));
                }
            }
            after = last_row.seq;
        }
        Ok(())
    }
}
