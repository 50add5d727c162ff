//! Signed checkpoints and retention: what someone with write access to the
//! store but without the signing key can and cannot get past `verify`.

mod common;

use common::TestStore;
use sluice_audit::{
    CheckpointPolicy, Checkpointer, Retention, Round, SigningKey, canonical_value, chain_hash,
    verify, verify_with,
};
use std::sync::Arc;
use std::time::Duration;

fn key(seed: u8) -> Arc<SigningKey> {
    Arc::new(SigningKey::from_bytes(&[seed; 32]))
}

fn checkpointer(t: &TestStore, key: &Arc<SigningKey>) -> Checkpointer {
    Checkpointer::new(
        t.store.clone(),
        key.clone(),
        CheckpointPolicy {
            every_events: 10,
            interval: Duration::from_secs(3600),
        },
    )
}

#[tokio::test]
async fn checkpoints_are_due_by_count_and_verify_with_the_key() {
    let t = TestStore::new().await;
    let k = key(1);
    let cp = checkpointer(&t, &k);
    t.append(5).await;
    // The first checkpoint is due at once (nothing signed yet).
    assert_eq!(cp.round(false).await.unwrap(), Round::Signed(5));
    t.append(5).await;
    assert_eq!(cp.round(false).await.unwrap(), Round::Idle);
    t.append(5).await;
    assert_eq!(cp.round(false).await.unwrap(), Round::Signed(15));
    t.append(2).await;
    assert_eq!(cp.round(true).await.unwrap(), Round::Signed(17));

    let r = verify_with(&t.store, Some(&k.verifying_key()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.events, r.checkpoints, r.last_checkpoint),
        (17, 3, Some(17))
    );
    assert_eq!(r.unsigned_tail, 0);
    assert!(r.signatures_checked);
}

#[tokio::test]
async fn a_rewritten_signed_range_is_detected_even_with_every_hash_recomputed() {
    let t = TestStore::new().await;
    let k = key(2);
    t.append(30).await;
    checkpointer(&t, &k).round(true).await.unwrap();
    t.append(10).await;
    checkpointer(&t, &k).round(true).await.unwrap();

    // The forger edits event 12 and recomputes every hash after it.
    t.rewrite(12, |b| b.replace("\"i\":11", "\"i\":999")).await;
    let b = verify_with(&t.store, Some(&k.verifying_key()))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(b.seq, 30, "{b}");
    assert!(b.why.contains("signed checkpoint"), "{b}");

    // They also rewrite the stored checkpoints' hashes: only the signature
    // tells now, so verify without the key cannot see it and with it does.
    let rows = t.store.audit_after(0, 100).await.unwrap();
    for seq in [30, 40] {
        let h = &rows[seq as usize - 1].hash;
        t.sql(&format!(
            "UPDATE audit_checkpoints SET hash = '{h}' WHERE seq = {seq}"
        ))
        .await;
    }
    assert!(verify(&t.store).await.unwrap().is_ok());
    let b = verify_with(&t.store, Some(&k.verifying_key()))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(b.seq, 30, "{b}");
    assert!(b.why.contains("signature does not verify"), "{b}");
}

#[tokio::test]
async fn a_wrong_public_key_fails_naming_the_checkpoint() {
    let t = TestStore::new().await;
    let k = key(3);
    t.append(8).await;
    checkpointer(&t, &k).round(true).await.unwrap();
    let other = key(4);
    let b = verify_with(&t.store, Some(&other.verifying_key()))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(b.seq, 8);
    assert!(b.why.contains("key id"), "{b}");
}

#[tokio::test]
async fn with_a_key_an_unsigned_chain_does_not_pass() {
    let t = TestStore::new().await;
    t.append(3).await;
    assert!(verify(&t.store).await.unwrap().is_ok());
    let b = verify_with(&t.store, Some(&key(5).verifying_key()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(b.why.contains("no signed checkpoint"), "{b}");
}

#[tokio::test]
async fn tail_deletion_is_caught_up_to_the_last_checkpoint_only() {
    let t = TestStore::new().await;
    let k = key(6);
    t.append(20).await;
    checkpointer(&t, &k).round(true).await.unwrap();
    t.append(5).await;

    // Past the last checkpoint: indistinguishable from a log that ended
    // there, but the report says how much is covered by the chain alone.
    let r = verify_with(&t.store, Some(&k.verifying_key()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.unsigned_tail, 5);
    t.sql("DELETE FROM audit_events WHERE seq > 22").await;
    assert!(verify(&t.store).await.unwrap().is_ok());

    // Into the signed range: the checkpoint now lies past the end.
    t.sql("DELETE FROM audit_events WHERE seq > 17").await;
    let b = verify(&t.store).await.unwrap().unwrap_err();
    assert_eq!(b.seq, 20);
    assert!(b.why.contains("past the end"), "{b}");
}

#[tokio::test]
async fn the_checkpointer_refuses_to_sign_a_broken_chain() {
    let t = TestStore::new().await;
    let k = key(7);
    t.append(5).await;
    checkpointer(&t, &k).round(true).await.unwrap();
    t.append(5).await;
    t.sql("UPDATE audit_events SET body = replace(body, 'g_', 'x_') WHERE seq = 7")
        .await;
    assert!(checkpointer(&t, &k).round(true).await.is_err());
    assert_eq!(t.store.last_checkpoint().await.unwrap().unwrap().seq, 5);
}

/// Retention at a time far enough ahead that every event is "old".
async fn retain(t: &TestStore, k: &Arc<SigningKey>, sinks: &[&str]) -> Option<(i64, i64)> {
    let r = Retention::new(
        t.store.clone(),
        k.clone(),
        Duration::from_secs(3600),
        sinks.iter().map(|s| s.to_string()).collect(),
    );
    r.run_at(sluice_core::clock::now() + chrono::Duration::days(1))
        .await
        .unwrap()
        .map(|t| (t.from_seq, t.through_seq))
}

#[tokio::test]
async fn retention_deletes_through_a_chained_marker_that_verify_understands() {
    let t = TestStore::new().await;
    let k = key(8);
    t.append(20).await;
    checkpointer(&t, &k).round(true).await.unwrap();
    t.append(30).await;
    checkpointer(&t, &k).round(true).await.unwrap();
    t.append(10).await;

    // A sink that has delivered only through 40 holds everything after.
    t.store.advance_sink_cursor("siem", 40).await.unwrap();
    // A configured sink that never delivered holds everything.
    assert_eq!(retain(&t, &k, &["siem", "new-sink"]).await, None);
    // Deletion stops at the newest checkpoint the sink allows: 20.
    assert_eq!(retain(&t, &k, &["siem"]).await, Some((1, 20)));

    let first = t.store.audit_first().await.unwrap().unwrap();
    assert_eq!(first.seq, 21);
    let r = verify_with(&t.store, Some(&k.verifying_key()))
        .await
        .unwrap()
        .unwrap();
    let tr = r.truncated.clone().unwrap();
    assert_eq!((tr.from_seq, tr.through_seq, tr.marker_seq), (1, 20, 61));
    assert_eq!(r.first_seq, 21);
    assert_eq!(r.checkpoints_truncated, 1);
    let marker = t.store.audit_after(60, 1).await.unwrap().pop().unwrap();
    assert_eq!(marker.kind, "audit.truncated");
    assert_eq!(
        marker.prev_hash,
        t.store.audit_after(59, 1).await.unwrap()[0].hash
    );

    // The writer learns the new tail and keeps the chain whole.
    t.append(3).await;
    checkpointer(&t, &k).round(true).await.unwrap();
    t.store.advance_sink_cursor("siem", 64).await.unwrap();
    assert_eq!(retain(&t, &k, &["siem"]).await, Some((21, 64)));
    let r = verify_with(&t.store, Some(&k.verifying_key()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.truncated.unwrap().through_seq, 64);
    assert_eq!((r.first_seq, r.last_seq), (65, 65));
}

#[tokio::test]
async fn a_tampered_or_forged_truncation_marker_is_detected() {
    let t = TestStore::new().await;
    let k = key(9);
    t.append(10).await;
    checkpointer(&t, &k).round(true).await.unwrap();
    t.append(5).await;
    retain(&t, &k, &[]).await.unwrap();
    assert!(verify(&t.store).await.unwrap().is_ok());

    // Editing the recorded anchor breaks the link to the first event.
    t.sql("UPDATE audit_events SET body = replace(body, '\"last_deleted_hash\":\"', '\"last_deleted_hash\":\"0') WHERE seq = 16")
        .await;
    let b = verify(&t.store).await.unwrap().unwrap_err();
    assert_eq!(b.seq, 11, "{b}");
    assert!(b.why.contains("truncation marker at sequence 16"), "{b}");
}

#[tokio::test]
async fn a_deletion_without_the_key_is_caught_by_the_marker_signature() {
    let t = TestStore::new().await;
    let k = key(10);
    t.append(10).await;
    checkpointer(&t, &k).round(true).await.unwrap();
    t.append(5).await;

    // Someone with store access deletes 1..=12 and appends a well-chained
    // marker of their own: the chain alone cannot tell.
    let rows = t.store.audit_after(0, 100).await.unwrap();
    let (anchor, tail) = (&rows[11].hash, &rows[14].hash);
    let body = canonical_value(
        16,
        sluice_core::clock::now(),
        serde_json::json!({
            "kind": "audit.truncated",
            "detail": {"from_seq": 1, "through_seq": 12, "last_deleted_hash": anchor,
                       "signature": "AAAA"},
        }),
    );
    let hash = chain_hash(tail, &body);
    t.sql(&format!(
        "INSERT INTO audit_events (seq, ts, kind, body, prev_hash, hash) \
         VALUES (16, 0, 'audit.truncated', '{body}', '{tail}', '{hash}')"
    ))
    .await;
    t.sql("DELETE FROM audit_events WHERE seq <= 12").await;
    assert!(verify(&t.store).await.unwrap().is_ok());
    let b = verify_with(&t.store, Some(&k.verifying_key()))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(b.seq, 16, "{b}");
    assert!(b.why.contains("signature does not verify"), "{b}");
}
