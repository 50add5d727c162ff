//! Recorded sessions read back from the audit chain, on embedded SQLite
//! and a real PostgreSQL.

use chrono::Duration;
use sluice_core::secret::{ScramVerifier, new_secret};
use sluice_core::{Grant, GrantStatus, Profile, grant::new_grant_id};
use sluice_store::{AuditRow, SessionFilter, Store};
use sluice_testkit::pg::PgServer;

fn grant(subject: &str, name: &str, connection: &str) -> Grant {
    let now = sluice_core::clock::now();
    Grant {
        id: new_grant_id(),
        subject: subject.into(),
        issuer: "https://idp.example".into(),
        identity_name: name.into(),
        identity_kind: "agent".into(),
        identity_groups: vec!["analytics".into(), "dba".into()],
        connection: connection.into(),
        profile: Profile::Read,
        rule: "readers".into(),
        status: GrantStatus::Active,
        reason: "ticket-42".into(),
        ttl_secs: 600,
        created_at: now,
        activated_at: Some(now),
        expires_at: now + Duration::seconds(600),
        decided_by: None,
        scram_verifier: ScramVerifier::derive(&new_secret()).to_text(),
        native_verifier: String::new(),
        ssh_key: None,
    }
}

/// Appends events one by one with the given times (the store does not
/// check the chain; the audit layer does).
struct Chain<'a> {
    store: &'a Store,
    seq: i64,
}

impl Chain<'_> {
    async fn push(&mut self, ts: i64, kind: &str, grant: Option<&str>, session: Option<&str>) {
        self.seq += 1;
        let body = format!(r#"{{"kind":"{kind}","seq":{},"detail":{{}}}}"#, self.seq);
        let row = AuditRow {
            seq: self.seq,
            ts,
            kind: kind.into(),
            grant_id: grant.map(str::to_string),
            session_id: session.map(str::to_string),
            body,
            prev_hash: "p".into(),
            hash: format!("h{}", self.seq),
        };
        self.store.audit_append(&[row]).await.unwrap();
    }
}

async fn suite(store: &Store) {
    let alice = grant("sub-alice", "Alice", "orders");
    let bob = grant("sub-bob", "Bob", "warehouse");
    store.insert_grant(&alice).await.unwrap();
    store.insert_grant(&bob).await.unwrap();
    let (a, b) = (Some(alice.id.as_str()), Some(bob.id.as_str()));
    let mut c = Chain { store, seq: 0 };
    // s1: Alice, 1000..2000; s2: Bob, 1500..5000; s3: Alice, 6000, still open.
    c.push(1000, "session.opened", a, Some("s1")).await;
    c.push(1100, "statement.allowed", a, Some("s1")).await;
    c.push(1500, "session.opened", b, Some("s2")).await;
    c.push(1600, "approval.requested", a, Some("s1")).await;
    c.push(1700, "grant.requested", a, None).await;
    c.push(2000, "session.closed", a, Some("s1")).await;
    c.push(5000, "session.closed", b, Some("s2")).await;
    c.push(6000, "session.opened", a, Some("s3")).await;
    c.push(6100, "session.rejected", a, Some("s4")).await;

    let ids = |f: SessionFilter| async move {
        store
            .sessions(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.session_id)
            .collect::<Vec<_>>()
    };

    // All, newest first; a rejected login is not a session.
    assert_eq!(ids(SessionFilter::default()).await, ["s3", "s2", "s1"]);
    // By subject or by name.
    let by = |who: &str| SessionFilter {
        identity: Some(who.into()),
        ..Default::default()
    };
    assert_eq!(ids(by("sub-alice")).await, ["s3", "s1"]);
    assert_eq!(ids(by("Bob")).await, ["s2"]);
    assert!(ids(by("nobody")).await.is_empty());
    // By connection.
    let on = SessionFilter {
        connection: Some("warehouse".into()),
        ..Default::default()
    };
    assert_eq!(ids(on).await, ["s2"]);
    // A time window keeps sessions that were open in it.
    let window = |since, until| SessionFilter {
        since,
        until,
        ..Default::default()
    };
    assert_eq!(ids(window(Some(2500), Some(5500))).await, ["s2"]);
    assert_eq!(ids(window(Some(1800), None)).await, ["s3", "s2", "s1"]);
    assert_eq!(ids(window(Some(2001), None)).await, ["s3", "s2"]);
    assert_eq!(ids(window(None, Some(1200))).await, ["s1"]);
    assert_eq!(ids(window(Some(7000), None)).await, ["s3"]);
    // Only one's own, combined with other filters; a limit.
    let own = SessionFilter {
        owner: Some(("sub-bob".into(), "https://idp.example".into())),
        ..Default::default()
    };
    assert_eq!(ids(own).await, ["s2"]);
    let wrong_issuer = SessionFilter {
        owner: Some(("sub-bob".into(), "https://evil.example".into())),
        ..Default::default()
    };
    assert!(ids(wrong_issuer).await.is_empty());
    let mixed = SessionFilter {
        owner: Some(("sub-alice".into(), "https://idp.example".into())),
        identity: Some("Alice".into()),
        since: Some(1),
        until: Some(1_000_000),
        limit: 1,
        ..Default::default()
    };
    assert_eq!(ids(mixed).await, ["s3"]);

    // One session, with who and when.
    let s1 = store.session("s1", None).await.unwrap().unwrap();
    assert_eq!(s1.grant_id.as_deref(), a);
    assert_eq!(s1.connection.as_deref(), Some("orders"));
    assert_eq!(s1.subject.as_deref(), Some("sub-alice"));
    assert_eq!(s1.issuer.as_deref(), Some("https://idp.example"));
    assert_eq!(s1.identity_name.as_deref(), Some("Alice"));
    assert_eq!(s1.identity_kind.as_deref(), Some("agent"));
    assert_eq!((s1.opened_at, s1.closed_at), (1000, Some(2000)));
    assert!(s1.opened.contains("session.opened"));
    assert!(s1.closed.as_deref().unwrap().contains("session.closed"));
    let s3 = store.session("s3", None).await.unwrap().unwrap();
    assert_eq!((s3.closed_at, s3.closed), (None, None));
    assert!(store.session("s4", None).await.unwrap().is_none());
    assert!(store.session("nope", None).await.unwrap().is_none());
    let bobs = Some(("sub-bob".to_string(), "https://idp.example".to_string()));
    assert!(store.session("s1", bobs.clone()).await.unwrap().is_none());
    assert!(store.session("s2", bobs).await.unwrap().is_some());

    // A session's events, in chain order, and only its own.
    let events = store.session_events("s1").await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "session.opened",
            "statement.allowed",
            "approval.requested",
            "session.closed"
        ]
    );
    assert!(store.session_events("nope").await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite:{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    suite(&store).await;
}

#[tokio::test]
async fn postgres_sessions() {
    let (_pg, url) = PgServer::start_with_database("sluice").await.unwrap();
    let store = Store::open(&url).await.unwrap();
    suite(&store).await;
}
