//! Fleet mode in the store, on both backends: leases go to one holder at
//! a time and pass on when they lapse, members are listed by heartbeat,
//! web sign-ins are taken once, and (PostgreSQL) the change feed carries
//! announcements to another connection and says when it reconnected.

use chrono::Duration;
use sluice_store::{Heard, Member, Store};
use sluice_testkit::pg::PgServer;

async fn leases_go_to_one_holder(store: &Store) {
    let now = sluice_core::clock::now();
    let until = now + Duration::seconds(6);
    assert!(store.take_lease("sweeper", "a", now, until).await.unwrap());
    assert!(!store.take_lease("sweeper", "b", now, until).await.unwrap());
    assert!(
        store.take_lease("sweeper", "a", now, until).await.unwrap(),
        "renewed"
    );
    // Once lapsed, another takes it; the old holder cannot renew.
    let later = until + Duration::seconds(1);
    let then = later + Duration::seconds(6);
    assert!(store.take_lease("sweeper", "b", later, then).await.unwrap());
    assert!(!store.take_lease("sweeper", "a", later, then).await.unwrap());
    // Released by its holder only.
    store.release_lease("sweeper", "a").await.unwrap();
    assert_eq!(store.leases().await.unwrap()[0].holder, "b");
    store.release_lease("sweeper", "b").await.unwrap();
    assert!(store.take_lease("sweeper", "a", later, then).await.unwrap());
}

async fn members_are_listed_by_heartbeat(store: &Store) {
    let now = sluice_core::clock::now();
    let member = |id: &str, at| Member {
        id: id.into(),
        host: "h".into(),
        version: "0.1.0".into(),
        policy_hash: "p".into(),
        api_url: "http://127.0.0.1:1".into(),
        state: "serving".into(),
        started_at: now - Duration::minutes(5),
        heartbeat_at: at,
    };
    store.heartbeat(&member("gw_a", now)).await.unwrap();
    store
        .heartbeat(&member("gw_old", now - Duration::hours(2)))
        .await
        .unwrap();
    let mut draining = member("gw_a", now);
    draining.state = "draining".into();
    store.heartbeat(&draining).await.unwrap();
    let seen = store.members(now - Duration::minutes(10)).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].state, "draining");
    assert_eq!(
        store
            .forget_members(now - Duration::hours(1))
            .await
            .unwrap(),
        1
    );
}

async fn sign_ins_are_taken_once(store: &Store) {
    let now = sluice_core::clock::now();
    let soon = now + Duration::minutes(10);
    store.put_ui("k1", "login", "{}", soon).await.unwrap();
    assert_eq!(store.get_ui("k1", "session", now).await.unwrap(), None);
    let (a, b) = tokio::join!(
        store.take_ui("k1", "login", now),
        store.take_ui("k1", "login", now)
    );
    assert_eq!(
        [a.unwrap(), b.unwrap()].iter().flatten().count(),
        1,
        "one of two takers gets it"
    );
    store.put_ui("k2", "session", "{}", now).await.unwrap();
    assert_eq!(
        store.get_ui("k2", "session", now).await.unwrap(),
        None,
        "expired"
    );
    for i in 0..5 {
        let at = soon + Duration::seconds(i);
        store
            .put_ui(&format!("s{i}"), "session", "{}", at)
            .await
            .unwrap();
    }
    store.trim_ui("session", 2, now).await.unwrap();
    for (i, kept) in [false, false, false, true, true].iter().enumerate() {
        let got = store
            .get_ui(&format!("s{i}"), "session", now)
            .await
            .unwrap();
        assert_eq!(got.is_some(), *kept, "s{i}");
    }
}

#[tokio::test]
async fn sqlite_fleet_tables() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite:{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    leases_go_to_one_holder(&store).await;
    members_are_listed_by_heartbeat(&store).await;
    sign_ins_are_taken_once(&store).await;
    assert!(store.listen().await.unwrap().is_none(), "no feed on SQLite");
    store.notify("{}").await.unwrap();
}

#[tokio::test]
async fn postgres_fleet_tables_and_change_feed() {
    let (pg, url) = PgServer::start_with_database("sluice").await.unwrap();
    let store = Store::open(&url).await.unwrap();
    leases_go_to_one_holder(&store).await;
    members_are_listed_by_heartbeat(&store).await;
    sign_ins_are_taken_once(&store).await;

    let mut feed = store.listen().await.unwrap().expect("a feed on PostgreSQL");
    store.notify("hello").await.unwrap();
    match tokio::time::timeout(std::time::Duration::from_secs(5), feed.next()).await {
        Ok(Ok(Heard::Change(p))) => assert_eq!(p, "hello"),
        _ => panic!("the announcement did not arrive"),
    }
    // The feed's connection killed: the listener hears that it may have
    // missed something.
    pg.psql(
        "sluice",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .unwrap();
    match tokio::time::timeout(std::time::Duration::from_secs(5), feed.next()).await {
        Ok(Ok(Heard::Reconnected)) | Ok(Err(_)) => {}
        _ => panic!("a lost feed connection must be reported"),
    }
}
