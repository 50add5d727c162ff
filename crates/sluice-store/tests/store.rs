//! The same suite against embedded SQLite and a real PostgreSQL.

use chrono::Duration;
use sluice_core::secret::{ScramVerifier, native_verifier, new_secret};
use sluice_core::{Grant, GrantStatus, Profile, grant::new_grant_id};
use sluice_store::{AuditRow, Backend, Store, StoreError};
use sluice_testkit::pg::PgServer;

fn grant(subject: &str, status: GrantStatus, expires_in: i64) -> Grant {
    let now = sluice_core::clock::now();
    Grant {
        id: new_grant_id(),
        subject: subject.into(),
        issuer: "https://idp.example".into(),
        identity_name: subject.into(),
        identity_kind: "agent".into(),
        identity_groups: vec!["analytics".into(), "dba".into()],
        connection: "orders".into(),
        profile: Profile::Read,
        rule: "readers".into(),
        status,
        reason: "ticket-42".into(),
        ttl_secs: 600,
        created_at: now,
        activated_at: (status == GrantStatus::Active).then_some(now),
        expires_at: now + Duration::seconds(expires_in),
        decided_by: None,
        scram_verifier: ScramVerifier::derive(&new_secret()).to_text(),
        native_verifier: native_verifier("sls_x"),
        ssh_key: None,
    }
}

async fn grants_round_trip_and_transition(store: &Store) {
    let g = grant("agent-a", GrantStatus::Active, 600);
    store.insert_grant(&g).await.unwrap();
    let back = store.grant(&g.id).await.unwrap().unwrap();
    assert_eq!(back.id, g.id);
    assert_eq!(back.profile, Profile::Read);
    assert_eq!(back.scram_verifier, g.scram_verifier);
    assert_eq!(back.native_verifier, g.native_verifier);
    assert_eq!(back.identity_groups, ["analytics", "dba"]);
    assert_eq!(
        back.expires_at.timestamp_millis(),
        g.expires_at.timestamp_millis()
    );
    assert!(store.grant("g_missing").await.unwrap().is_none());

    // Revoke once; a second revoke (another gateway) changes nothing.
    let from = [GrantStatus::Active, GrantStatus::Pending];
    assert!(
        store
            .transition_grant(&g.id, &from, GrantStatus::Revoked, "admin")
            .await
            .unwrap()
    );
    assert!(
        !store
            .transition_grant(&g.id, &from, GrantStatus::Revoked, "admin")
            .await
            .unwrap()
    );
    let back = store.grant(&g.id).await.unwrap().unwrap();
    assert_eq!(back.status, GrantStatus::Revoked);
    assert_eq!(back.decided_by.as_deref(), Some("admin"));
}

async fn pending_grants_activate_with_their_ttl_from_now(store: &Store) {
    let g = grant("agent-b", GrantStatus::Pending, 900);
    store.insert_grant(&g).await.unwrap();
    let now = sluice_core::clock::now() + Duration::seconds(120);
    assert!(store.activate_grant(&g.id, now, "approver").await.unwrap());
    assert!(!store.activate_grant(&g.id, now, "approver").await.unwrap());
    let back = store.grant(&g.id).await.unwrap().unwrap();
    assert_eq!(back.status, GrantStatus::Active);
    assert_eq!(
        back.expires_at.timestamp_millis(),
        now.timestamp_millis() + 600_000
    );
}

async fn due_grants_are_found(store: &Store) {
    let late = grant("agent-c", GrantStatus::Active, -5);
    let fresh = grant("agent-c", GrantStatus::Active, 600);
    let gone = grant("agent-c", GrantStatus::Revoked, -5);
    for g in [&late, &fresh, &gone] {
        store.insert_grant(g).await.unwrap();
    }
    let due: Vec<String> = store
        .due_grants(sluice_core::clock::now())
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert!(due.contains(&late.id));
    assert!(!due.contains(&fresh.id));
    assert!(!due.contains(&gone.id));
    let mine = store
        .grants_of("agent-c", "https://idp.example", 10)
        .await
        .unwrap();
    assert_eq!(mine.len(), 3);
}

fn row(seq: i64) -> AuditRow {
    AuditRow {
        seq,
        ts: 1_700_000_000_000 + seq,
        kind: "grant.requested".into(),
        grant_id: Some("g_x".into()),
        session_id: None,
        body: format!("{{\"seq\":{seq}}}"),
        prev_hash: "p".into(),
        hash: format!("h{seq}"),
    }
}

async fn audit_appends_are_atomic_and_unique(store: &Store) {
    assert_eq!(store.audit_tail().await.unwrap(), None);
    store.audit_append(&[row(1), row(2)]).await.unwrap();
    assert_eq!(store.audit_tail().await.unwrap(), Some((2, "h2".into())));
    // A batch colliding on seq 2 leaves nothing behind, not even seq 3;
    // the error names the batch by its first number.
    let err = store.audit_append(&[row(3), row(2)]).await.unwrap_err();
    assert!(matches!(err, StoreError::SeqTaken(3)), "{err}");
    assert_eq!(store.audit_tail().await.unwrap(), Some((2, "h2".into())));
    let rows = store.audit_after(0, 10).await.unwrap();
    assert_eq!(rows, vec![row(1), row(2)]);
    assert_eq!(
        store
            .audit_first_seq_since(1_700_000_000_002)
            .await
            .unwrap(),
        Some(2)
    );
    assert_eq!(store.audit_first_seq_since(i64::MAX).await.unwrap(), None);
    // A group commit larger than one INSERT statement holds: all or none.
    let big: Vec<AuditRow> = (3..=602).map(row).collect();
    let mut clash = big.clone();
    clash[599] = row(2);
    assert!(store.audit_append(&clash).await.is_err());
    assert_eq!(store.audit_tail().await.unwrap(), Some((2, "h2".into())));
    store.audit_append(&big).await.unwrap();
    assert_eq!(
        store.audit_tail().await.unwrap(),
        Some((602, "h602".into()))
    );
    assert_eq!(store.audit_after(300, 1).await.unwrap(), vec![row(301)]);
}

async fn approvals_votes_and_shapes(store: &Store) {
    use sluice_core::approval::*;
    // The store keeps milliseconds.
    let now = chrono::DateTime::from_timestamp_millis(sluice_core::clock::now().timestamp_millis())
        .unwrap();
    let a = Approval {
        id: new_approval_id(),
        kind: ApprovalKind::Statement,
        status: ApprovalStatus::Pending,
        grant_id: "g_1".into(),
        connection: "orders".into(),
        requester_subject: "agent".into(),
        requester_issuer: "https://idp".into(),
        requester_name: "agent".into(),
        reason: "fix".into(),
        session_id: Some("s_1".into()),
        statement: Some("UPDATE orders SET status = $1".into()),
        parameters: Some(vec![Some("paid".into()), None]),
        analysis: Some(serde_json::json!({"class": "write"})),
        fingerprint: Some("abc".into()),
        rule: Some("writes-need-approval".into()),
        min_approvals: 2,
        created_at: now,
        expires_at: now - Duration::seconds(1),
        decided_at: None,
        decided_by: None,
        decision_reason: None,
        scope: None,
    };
    store.insert_approval(&a).await.unwrap();
    let back = store.approval(&a.id).await.unwrap().unwrap();
    assert_eq!(back.parameters, a.parameters);
    assert_eq!(back.analysis, a.analysis);
    assert_eq!(
        store
            .approvals(Some(ApprovalStatus::Pending), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.approvals(None, 10).await.unwrap().len(), 1);
    assert_eq!(store.due_approvals(now).await.unwrap().len(), 1);

    let vote = Vote {
        approver_subject: "dba-1".into(),
        approver_issuer: "https://idp".into(),
        approver_name: "Dee".into(),
        decision: Decision::Approve,
        reason: "ok".into(),
        scope: Scope::Shape,
        created_at: now,
    };
    assert!(store.add_vote(&a.id, &vote).await.unwrap());
    assert!(
        !store.add_vote(&a.id, &vote).await.unwrap(),
        "one vote per approver"
    );
    assert_eq!(store.votes(&a.id).await.unwrap(), vec![vote]);

    assert!(
        store
            .close_approval(
                &a.id,
                ApprovalStatus::Approved,
                "Dee",
                "ok",
                Some(Scope::Shape),
                now
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .close_approval(&a.id, ApprovalStatus::Denied, "x", "late", None, now)
            .await
            .unwrap()
    );
    assert!(!store.shape_approved("g_1", "abc").await.unwrap());
    store.approve_shape("g_1", "abc", &a.id).await.unwrap();
    store.approve_shape("g_1", "abc", &a.id).await.unwrap();
    assert!(store.shape_approved("g_1", "abc").await.unwrap());
    assert!(!store.shape_approved("g_2", "abc").await.unwrap());
}

async fn suite(store: Store) {
    approvals_votes_and_shapes(&store).await;
    grants_round_trip_and_transition(&store).await;
    pending_grants_activate_with_their_ttl_from_now(&store).await;
    due_grants_are_found(&store).await;
    audit_appends_are_atomic_and_unique(&store).await;
    assert!(store.ping().await);
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/sluice.db");
    let store = Store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    suite(store.clone()).await;
    store.close().await;
    // Reopening runs migrations again without harm and keeps the data.
    let again = Store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    assert_eq!(
        again.audit_tail().await.unwrap(),
        Some((602, "h602".into()))
    );
}

#[tokio::test]
async fn postgres_store() {
    let (_pg, url) = PgServer::start_with_database("sluice").await.unwrap();
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    suite(store).await;
}

#[tokio::test]
async fn open_errors_never_show_the_password() {
    let err = Store::open("postgres://sluice:hunter2secret@127.0.0.1:1/x")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(!err.contains("hunter2secret"), "{err}");
    assert!(Store::open("mysql://x").await.is_err());
}

/// Issue 12: the store file (audit chain, approvals with their bound
/// values, grant verifiers) was created world-readable.
#[tokio::test]
async fn an_sqlite_store_is_private_to_the_gateway_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh").join("sluice.db");
    let store = Store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    store.ping().await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    for extra in ["-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{extra}", path.display()));
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
    store.close().await;
    // A store an older version left readable to others is tightened.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    store.close().await;
}
