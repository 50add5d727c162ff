//! Upgrading a store made before grants recorded their holder's groups:
//! the older grants still read, with no groups (nobody is exempt through
//! them), on SQLite and on PostgreSQL.

use sluice_store::Store;
use sluice_testkit::pg::PgServer;
use sqlx::Executor;
use sqlx::any::{AnyPoolOptions, install_default_drivers};

/// The migrations before 0005 (grant groups).
const BEFORE_GROUPS: &[&str] = &[
    "0001_init.sql",
    "0002_audit_export.sql",
    "0003_approvals.sql",
    "0004_sessions.sql",
];

/// Builds the pre-0005 schema at `url` and stores one grant in it, as that
/// version of Sluice would have.
async fn old_store_with_a_grant(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for name in BEFORE_GROUPS {
        std::fs::copy(source.join(name), dir.path().join(name)).unwrap();
    }
    install_default_drivers();
    let pool = AnyPoolOptions::new().connect(url).await.unwrap();
    let old = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    old.run(&pool).await.unwrap();
    pool.execute(
        "INSERT INTO grants (id, subject, issuer, identity_name, identity_kind, connection, \
         profile, rule, status, reason, ttl_secs, created_at, activated_at, expires_at, \
         decided_by, scram_verifier) VALUES ('g_aaaaaaaaaaaaaaaaaaaaaaaaaa', 'agent-1', \
         'https://idp.example', 'agent-1', 'agent', 'orders', 'read', 'readers', 'active', \
         'before the upgrade', 600, 0, 0, 4102444800000, 'rule:readers', '')",
    )
    .await
    .unwrap();
    pool.close().await;
}

async fn upgraded_grant_has_no_groups(url: &str, store_url: &str) {
    old_store_with_a_grant(url).await;
    let store = Store::open(store_url).await.unwrap();
    let g = store
        .grant("g_aaaaaaaaaaaaaaaaaaaaaaaaaa")
        .await
        .unwrap()
        .expect("the older grant survives the upgrade");
    assert_eq!(g.reason, "before the upgrade");
    assert!(g.identity_groups.is_empty(), "{:?}", g.identity_groups);
    store.close().await;
}

#[tokio::test]
async fn sqlite_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    upgraded_grant_has_no_groups(&url, &format!("sqlite:{}", path.display())).await;
}

#[tokio::test]
async fn postgres_upgrade() {
    let (_pg, url) = PgServer::start_with_database("sluice").await.unwrap();
    upgraded_grant_has_no_groups(&url, &url).await;
}
