//! Retention: old events leave the store only through a truncation marker,
//! an event of kind `audit.truncated` appended to the chain in the same
//! transaction that deletes them. It names the range deleted and the hash
//! of the last deleted event (the anchor): the first remaining event's
//! `prev_hash` is that anchor, so `verify` starts there instead of at
//! genesis and reports the truncation.
//!
//! Deleting is careful on purpose:
//! - it stops at the oldest sequence number some configured sink has not
//!   delivered yet (a sink never misses an event);
//! - it deletes only through a signed checkpoint, after verifying the range
//!   against it, so evidence of tampering is never deleted and the anchor
//!   is itself signed;
//! - the marker carries its own signature over (from, through, anchor), so a
//!   deletion by someone with store access but without the key is detected
//!   by `verify --public-key` even before the next checkpoint.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde_json::json;
use sluice_core::audit::Actor;
use sluice_store::{AuditRow, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

use crate::chain::{canonical_value, chain_hash};
use crate::checkpoint::{check_signature, verify_text};
use crate::error::ExportError;
use crate::keys::key_id;
use crate::verify::{Walker, chain_start};

/// The kind of a truncation marker.
pub const TRUNCATED_KIND: &str = "audit.truncated";

/// A truncation as its marker records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// Where the marker itself sits in the chain.
    pub marker_seq: i64,
    /// The first and last sequence numbers deleted.
    pub from_seq: i64,
    pub through_seq: i64,
    /// The hash of event `through_seq`: the first remaining event links to it.
    pub anchor_hash: String,
    /// Base64 Ed25519 signature over [`truncation_message`].
    pub signature: String,
}

/// The exact bytes a marker's signature covers.
pub fn truncation_message(from_seq: i64, through_seq: i64, anchor_hash: &str) -> String {
    format!(
        "sluice-audit-truncation/v1\nfrom_seq:{from_seq}\nthrough_seq:{through_seq}\nhash:{anchor_hash}\n"
    )
}

impl Truncation {
    /// Reads a stored marker; `None` when it is not a well-formed one.
    pub fn from_row(r: &AuditRow) -> Option<Truncation> {
        let body: serde_json::Value = serde_json::from_str(&r.body).ok()?;
        if body.get("kind")?.as_str()? != TRUNCATED_KIND {
            return None;
        }
        let d = body.get("detail")?;
        Some(Truncation {
            marker_seq: r.seq,
            from_seq: d.get("from_seq")?.as_i64()?,
            through_seq: d.get("through_seq")?.as_i64()?,
            anchor_hash: d.get("last_deleted_hash")?.as_str()?.to_string(),
            signature: d.get("signature")?.as_str()?.to_string(),
        })
    }

    pub fn signature_valid(&self, key: &VerifyingKey) -> bool {
        let msg = truncation_message(self.from_seq, self.through_seq, &self.anchor_hash);
        verify_text(key, &msg, &self.signature)
    }
}

/// The retention task.
pub struct Retention {
    store: Store,
    key: Arc<SigningKey>,
    max_age: Duration,
    /// Names of the configured sinks, whose cursors bound the deletion.
    sinks: Vec<String>,
    wake: Option<Arc<Notify>>,
}

impl Retention {
    pub fn new(store: Store, key: Arc<SigningKey>, max_age: Duration, sinks: Vec<String>) -> Self {
        Retention {
            store,
            key,
            max_age,
            sinks,
            wake: None,
        }
    }

    /// Pings `wake` after a truncation so sinks deliver the marker at once.
    pub fn waking(mut self, wake: Arc<Notify>) -> Self {
        self.wake = Some(wake);
        self
    }

    /// Runs now and then every `interval` until `stop`.
    pub async fn run(self, interval: Duration, mut stop: watch::Receiver<bool>) {
        loop {
            match self.run_at(sluice_core::clock::now()).await {
                Ok(Some(t)) => tracing::info!(
                    from = t.from_seq,
                    through = t.through_seq,
                    marker = t.marker_seq,
                    "audit retention deleted old events"
                ),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "audit retention failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// Deletes what may be deleted as of `now`; returns the truncation made.
    pub async fn run_at(&self, now: DateTime<Utc>) -> Result<Option<Truncation>, ExportError> {
        let cutoff = now.timestamp_millis() - self.max_age.as_millis() as i64;
        let Some(mut bound) = self.store.audit_last_seq_before(cutoff).await? else {
            return Ok(None);
        };
        for name in &self.sinks {
            bound = bound.min(self.store.sink_cursor(name).await?.unwrap_or(0));
        }
        let Some(cp) = self.store.checkpoint_at_or_before(bound).await? else {
            return Ok(None);
        };
        let Some(first) = self.store.audit_first().await? else {
            return Ok(None);
        };
        if cp.seq < first.seq {
            return Ok(None);
        }
        if !check_signature(&self.key.verifying_key(), &cp) {
            return Err(ExportError::Refused(format!(
                "the checkpoint at {} is not signed by this gateway's key",
                cp.seq
            )));
        }
        self.verify_range(&first, cp.seq, &cp.hash).await?;
        for _ in 0..20 {
            let marker = self.marker(first.seq, cp.seq, &cp.hash, now).await?;
            match self.store.audit_truncate(&marker, cp.seq).await {
                Ok(_) => {
                    if let Some(w) = &self.wake {
                        w.notify_waiters();
                    }
                    return Ok(Truncation::from_row(&marker));
                }
                // The writer appended meanwhile: rechain on the new tail.
                Err(StoreError::SeqTaken(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ExportError::Refused(
            "kept colliding with the audit writer".into(),
        ))
    }

    /// Verifies `first..=through` so retention never deletes evidence of
    /// tampering, and that `through` still has the signed hash.
    async fn verify_range(
        &self,
        first: &AuditRow,
        through: i64,
        signed_hash: &str,
    ) -> Result<(), ExportError> {
        let start = chain_start(&self.store, first)
            .await?
            .map_err(|b| ExportError::Refused(b.to_string()))?;
        let mut walker = Walker::new(start.seq, start.prev);
        let mut after = first.seq - 1;
        while after < through {
            let rows = self.store.audit_after(after, 1000).await?;
            let Some(last) = rows.last() else { break };
            for r in rows.iter().take_while(|r| r.seq <= through) {
                walker
                    .step(r)
                    .map_err(|b| ExportError::Refused(b.to_string()))?;
                if r.seq == through && r.hash != signed_hash {
                    return Err(ExportError::Refused(format!(
                        "event {through} does not match its signed checkpoint"
                    )));
                }
            }
            after = last.seq;
        }
        Ok(())
    }

    /// The marker chained onto the current tail.
    async fn marker(
        &self,
        from: i64,
        through: i64,
        anchor: &str,
        now: DateTime<Utc>,
    ) -> Result<AuditRow, ExportError> {
        let (tail_seq, tail_hash) = self
            .store
            .audit_tail()
            .await?
            .ok_or_else(|| ExportError::Refused("the chain is empty".into()))?;
        let seq = tail_seq + 1;
        let signature = self
            .key
            .sign(truncation_message(from, through, anchor).as_bytes());
        let event = json!({
            "kind": TRUNCATED_KIND,
            "actor": Actor::system("retention"),
            "detail": {
                "from_seq": from,
                "through_seq": through,
                "events": through - from + 1,
                "last_deleted_hash": anchor,
                "max_age": humantime_secs(self.max_age),
                "key_id": key_id(&self.key.verifying_key()),
                "signature": STANDARD.encode(signature.to_bytes()),
            },
        });
        let body = canonical_value(seq, now, event);
        let hash = chain_hash(&tail_hash, &body);
        Ok(AuditRow {
            seq,
            ts: now.timestamp_millis(),
            kind: TRUNCATED_KIND.into(),
            grant_id: None,
            session_id: None,
            body,
            prev_hash: tail_hash,
            hash,
        })
    }
}

fn humantime_secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}
