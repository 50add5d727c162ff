//! Walks the chain and names the first sequence number where it breaks.
//!
//! The walk starts at genesis, or — after retention deleted old events — at
//! the anchor hash recorded by the newest truncation marker. Stored
//! checkpoints are matched against the chain as it is walked; given the
//! public key, each checkpoint's and marker's signature is checked too, so a
//! range rewritten by someone without the key (even with every hash
//! recomputed) no longer matches what was signed.
//!
//! Limits: events after the last signed checkpoint are covered by the hash
//! chain alone; deleting them (with any checkpoint past them) cannot be told
//! from a log that simply ended there. `VerifyReport::unsigned_tail` says
//! how many events that is; the sinks' external copies cover the rest.

use ed25519_dalek::VerifyingKey;
use sluice_store::{AuditRow, CheckpointRow, Store, StoreError};
use std::collections::VecDeque;

use crate::chain::{GENESIS, chain_hash};
use crate::checkpoint::check_signature;
use crate::keys::key_id;
use crate::retention::{TRUNCATED_KIND, Truncation};

/// A chain that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    /// The oldest stored event (1 unless retention truncated the chain).
    pub first_seq: i64,
    pub last_seq: i64,
    pub last_hash: String,
    /// The truncation the walk started from, if any.
    pub truncated: Option<Truncation>,
    /// Checkpoints matched against the chain.
    pub checkpoints: u64,
    /// Checkpoints over deleted events (only their signatures are checked).
    pub checkpoints_truncated: u64,
    /// Whether signatures were checked (a public key was given).
    pub signatures_checked: bool,
    /// The newest checkpoint's sequence number.
    pub last_checkpoint: Option<i64>,
    /// Events after the newest checkpoint: covered by the chain only.
    pub unsigned_tail: u64,
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at sequence {seq}: {why}")]
pub struct ChainBreak {
    pub seq: i64,
    pub why: String,
}

fn broken<T>(seq: i64, why: impl Into<String>) -> Result<T, ChainBreak> {
    Err(ChainBreak {
        seq,
        why: why.into(),
    })
}

const PAGE: i64 = 1000;

/// Verifies the chain (and checkpoints' positions) without signatures.
pub async fn verify(store: &Store) -> Result<Result<VerifyReport, ChainBreak>, StoreError> {
    verify_with(store, None).await
}

/// Verifies the chain; with `public_key`, also every checkpoint's and
/// truncation marker's signature, and that something is signed at all.
pub async fn verify_with(
    store: &Store,
    public_key: Option<&VerifyingKey>,
) -> Result<Result<VerifyReport, ChainBreak>, StoreError> {
    let mut cps = Checkpoints::new(store);
    let Some(first) = store.audit_first().await? else {
        if let Some(cp) = cps.next().await? {
            return Ok(broken(
                cp.seq,
                "the chain is empty but a checkpoint was signed here: events were deleted",
            ));
        }
        return Ok(Ok(VerifyReport {
            events: 0,
            first_seq: 0,
            last_seq: 0,
            last_hash: GENESIS.into(),
            truncated: None,
            checkpoints: 0,
            checkpoints_truncated: 0,
            signatures_checked: public_key.is_some(),
            last_checkpoint: None,
            unsigned_tail: 0,
        }));
    };
    let start = match chain_start(store, &first).await? {
        Ok(s) => s,
        Err(b) => return Ok(Err(b)),
    };
    let mut report = VerifyReport {
        events: 0,
        first_seq: first.seq,
        last_seq: first.seq - 1,
        last_hash: start.prev.clone(),
        truncated: start.truncation.clone(),
        checkpoints: 0,
        checkpoints_truncated: 0,
        signatures_checked: public_key.is_some(),
        last_checkpoint: None,
        unsigned_tail: 0,
    };
    // Checkpoints over deleted events: the one at the truncation point must
    // name the anchor the marker recorded; older ones can only be checked
    // for their signature.
    while let Some(cp) = cps.peek().await?.filter(|cp| cp.seq < first.seq).cloned() {
        cps.next().await?;
        if let Err(b) = checkpoint_signature(public_key, &cp) {
            return Ok(Err(b));
        }
        if cp.seq == first.seq - 1 && cp.hash != start.prev {
            return Ok(broken(
                cp.seq,
                "the signed checkpoint here does not match the anchor hash recorded by the \
                 truncation marker (the marker or the checkpoint was forged)",
            ));
        }
        report.checkpoints_truncated += 1;
        report.last_checkpoint = Some(cp.seq);
    }

    let mut walker = Walker::new(start.seq, start.prev.clone());
    let mut after = first.seq - 1;
    loop {
        let rows = store.audit_after(after, PAGE).await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            if let Err(b) = walker.step(r) {
                return Ok(Err(b));
            }
            if r.kind == TRUNCATED_KIND
                && let Some(key) = public_key
                && let Err(b) = marker_signature(key, r)
            {
                return Ok(Err(b));
            }
            while let Some(cp) = cps.peek().await?.filter(|cp| cp.seq == r.seq).cloned() {
                cps.next().await?;
                if let Err(b) = checkpoint_signature(public_key, &cp) {
                    return Ok(Err(b));
                }
                if cp.hash != r.hash {
                    return Ok(broken(
                        cp.seq,
                        "the signed checkpoint here does not match the chain: the events up to \
                         it were rewritten (hashes recomputed, but the signature names the \
                         original)",
                    ));
                }
                report.checkpoints += 1;
                report.last_checkpoint = Some(cp.seq);
            }
            report.events += 1;
            report.last_seq = r.seq;
            report.last_hash = r.hash.clone();
        }
        after = report.last_seq;
    }
    if let Some(cp) = cps.next().await? {
        return Ok(broken(
            cp.seq,
            format!(
                "a checkpoint was signed here, past the end of the chain (last sequence {}): \
                 events were deleted from the tail",
                report.last_seq
            ),
        ));
    }
    report.unsigned_tail = (report.last_seq - report.last_checkpoint.unwrap_or(0))
        .min(report.events as i64)
        .max(0) as u64;
    if public_key.is_some() && report.last_checkpoint.is_none() {
        return Ok(broken(
            report.last_seq,
            "no signed checkpoint exists, so nothing here is covered by a signature \
             (is [audit.checkpoints] configured?)",
        ));
    }
    Ok(Ok(report))
}

fn checkpoint_signature(key: Option<&VerifyingKey>, cp: &CheckpointRow) -> Result<(), ChainBreak> {
    let Some(key) = key else { return Ok(()) };
    if check_signature(key, cp) {
        return Ok(());
    }
    let given = key_id(key);
    let why = if cp.key_id != given {
        format!(
            "the checkpoint's signature does not verify with the given public key (key id {given}; \
             the checkpoint names key id {})",
            cp.key_id
        )
    } else {
        "the checkpoint's signature does not verify: it was forged or altered".into()
    };
    broken(cp.seq, why)
}

fn marker_signature(key: &VerifyingKey, r: &AuditRow) -> Result<(), ChainBreak> {
    match Truncation::from_row(r) {
        Some(t) if t.signature_valid(key) => Ok(()),
        Some(_) => broken(
            r.seq,
            "the truncation marker's signature does not verify: a deletion the gateway's \
             retention did not make",
        ),
        None => broken(r.seq, "the truncation marker is malformed"),
    }
}

/// Where a walk of the stored chain begins.
#[derive(Debug, Clone)]
pub(crate) struct ChainStart {
    pub seq: i64,
    pub prev: String,
    pub truncation: Option<Truncation>,
}

/// Finds where the stored chain must begin: sequence 1 at genesis, or just
/// after the newest truncation marker's range, at the hash it recorded.
/// Events missing before `first` without a marker that accounts for them
/// are a break.
pub(crate) async fn chain_start(
    store: &Store,
    first: &AuditRow,
) -> Result<Result<ChainStart, ChainBreak>, StoreError> {
    let marker = match store.audit_last_truncation().await? {
        None => None,
        Some(row) => match Truncation::from_row(&row) {
            Some(t) => Some(t),
            None => return Ok(broken(row.seq, "the truncation marker is malformed")),
        },
    };
    let expected = marker.as_ref().map(|m| m.through_seq + 1).unwrap_or(1);
    if first.seq > expected {
        let why = match &marker {
            None => format!(
                "events {expected}–{} are missing and no truncation marker records their deletion",
                first.seq - 1
            ),
            Some(m) => format!(
                "events {expected}–{} are missing; the last truncation marker (sequence {}) \
                 records deletion only through {}",
                first.seq - 1,
                m.marker_seq,
                m.through_seq
            ),
        };
        return Ok(broken(expected, why));
    }
    if first.seq < expected {
        return Ok(broken(
            first.seq,
            format!(
                "this event is stored although the truncation marker at sequence {} records \
                 its deletion",
                marker.as_ref().map(|m| m.marker_seq).unwrap_or(0)
            ),
        ));
    }
    let prev = marker
        .as_ref()
        .map(|m| m.anchor_hash.clone())
        .unwrap_or_else(|| GENESIS.to_string());
    if let Some(m) = &marker
        && first.prev_hash != m.anchor_hash
    {
        return Ok(broken(
            first.seq,
            format!(
                "does not link to the hash recorded by the truncation marker at sequence {} \
                 (the marker or this event was altered)",
                m.marker_seq
            ),
        ));
    }
    Ok(Ok(ChainStart {
        seq: first.seq,
        prev,
        truncation: marker,
    }))
}

/// Checks one row after another: position, link and content.
pub(crate) struct Walker {
    next_seq: i64,
    prev: String,
}

impl Walker {
    pub fn new(next_seq: i64, prev: String) -> Walker {
        Walker { next_seq, prev }
    }

    pub fn step(&mut self, r: &AuditRow) -> Result<(), ChainBreak> {
        let expected = self.next_seq;
        if r.seq != expected {
            return broken(
                expected,
                format!("event {expected} is missing (next is {})", r.seq),
            );
        }
        if embedded_seq(&r.body) != Some(r.seq) {
            return broken(
                r.seq,
                "the event's body belongs to another position (reordered)",
            );
        }
        if r.prev_hash != self.prev {
            return broken(
                r.seq,
                "does not link to the previous event (deleted, inserted or reordered)",
            );
        }
        if chain_hash(&r.prev_hash, &r.body) != r.hash {
            return broken(r.seq, "content does not match its hash (edited)");
        }
        self.prev = r.hash.clone();
        self.next_seq += 1;
        Ok(())
    }
}

fn embedded_seq(body: &str) -> Option<i64> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()?
        .get("seq")?
        .as_i64()
}

/// Stored checkpoints in order, read a page at a time.
struct Checkpoints<'a> {
    store: &'a Store,
    buf: VecDeque<CheckpointRow>,
    after: i64,
    done: bool,
}

impl<'a> Checkpoints<'a> {
    fn new(store: &'a Store) -> Self {
        Checkpoints {
            store,
            buf: VecDeque::new(),
            after: i64::MIN,
            done: false,
        }
    }

    async fn peek(&mut self) -> Result<Option<&CheckpointRow>, StoreError> {
        if self.buf.is_empty() && !self.done {
            let page = self.store.checkpoints_after(self.after, PAGE).await?;
            self.done = (page.len() as i64) < PAGE;
            if let Some(last) = page.last() {
                self.after = last.seq;
            }
            self.buf.extend(page);
        }
        Ok(self.buf.front())
    }

    async fn next(&mut self) -> Result<Option<CheckpointRow>, StoreError> {
        self.peek().await?;
        Ok(self.buf.pop_front())
    }
}
