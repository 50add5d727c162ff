//! SIGHUP reloads the configuration without dropping sessions: new
//! sessions get the new policy, sessions already open keep the one they
//! started with; a configuration that does not load, or changes what needs
//! a restart, is refused and the gateway goes on with the last good one.

mod common;

use common::{AGENT, Options, Serve};
use tokio_postgres::NoTls;

const DENY_DELETES: &str = r#"
[[connections.guardrails]]
name = "no-deletes-on-things"
action = "deny"
classes = ["write"]
tables = ["things"]

[[rules]]"#;

async fn connect(dsn: &str) -> tokio_postgres::Client {
    let (db, conn) = tokio_postgres::connect(dsn, NoTls).await.expect("connect");
    tokio::spawn(conn);
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sighup_gives_new_sessions_the_new_policy_and_keeps_open_ones() {
    let mut serve = Serve::start(Options {
        setup: "CREATE TABLE things (id int); INSERT INTO things SELECT generate_series(1, 5);"
            .into(),
        ..Options::default()
    })
    .await;
    let g = serve.grant(AGENT).await;
    let dsn = Serve::dsn(&g);
    let before = connect(&dsn).await;
    before.simple_query("SELECT 1").await.unwrap();

    // A guardrail added, then SIGHUP.
    let text = std::fs::read_to_string(&serve.config).unwrap();
    let good = text.replacen("\n[[rules]]", DENY_DELETES, 1);
    assert_ne!(good, text);
    std::fs::write(&serve.config, &good).unwrap();
    serve.hangup();
    serve.wait_for_log("configuration reloaded", 1).await;

    // The open session keeps the policy it started with...
    before
        .simple_query("DELETE FROM things WHERE id = 1")
        .await
        .expect("a session open before the reload keeps its policy");
    // ...new sessions get the new one.
    let after = connect(&dsn).await;
    let err = after
        .simple_query("DELETE FROM things WHERE id = 2")
        .await
        .expect_err("denied under the new policy");
    let db = err.as_db_error().expect("a database error");
    assert_eq!(db.code().code(), "42501");
    assert!(
        db.message().contains("no-deletes-on-things"),
        "{}",
        db.message()
    );
    let left = serve
        .pg
        .psql("postgres", "SELECT count(*) FROM things")
        .unwrap();
    assert_eq!(left, "4");

    // A file that does not load is refused; the last good policy stays.
    std::fs::write(&serve.config, "this is not = [toml").unwrap();
    serve.hangup();
    serve.wait_for_log("reload refused", 1).await;
    // So is a change only a restart can make.
    let moved = good.replacen(
        &format!("listen = \"127.0.0.1:{}\"", serve.pg_port),
        "listen = \"127.0.0.1:1\"",
        1,
    );
    assert_ne!(moved, good);
    std::fs::write(&serve.config, &moved).unwrap();
    serve.hangup();
    serve.wait_for_log("reload refused", 2).await;
    assert!(
        serve.log().contains("[postgres] listen changed"),
        "{}",
        serve.log()
    );
    let again = connect(&dsn).await;
    assert!(
        again
            .simple_query("DELETE FROM things WHERE id = 3")
            .await
            .is_err()
    );
    before.simple_query("SELECT 1").await.expect("still open");

    // The reload is in the audit chain, with the new policy's hash.
    let loads: Vec<_> = serve
        .audit_events()
        .into_iter()
        .filter(|e| e["kind"] == "config.loaded")
        .collect();
    assert_eq!(loads.len(), 2, "{loads:?}");
    assert_eq!(loads[1]["detail"]["reload"], true);
    assert_ne!(
        loads[0]["detail"]["policy_hash"],
        loads[1]["detail"]["policy_hash"]
    );
    std::fs::write(&serve.config, &good).unwrap();
    drop((before, after, again));
    serve.stop().await;
}

/// Sessions opened before a reload still count against the limits after
/// it: a reload hands out no second quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn session_limits_hold_across_a_reload() {
    let mut serve = Serve::start(Options {
        connection: "[connections.limits]\nmax_sessions_per_grant = 1\n".into(),
        ..Options::default()
    })
    .await;
    let g = serve.grant(AGENT).await;
    let dsn = Serve::dsn(&g);
    let first = connect(&dsn).await;
    first.simple_query("SELECT 1").await.unwrap();
    serve.hangup();
    serve.wait_for_log("configuration reloaded", 1).await;
    let err = tokio_postgres::connect(&dsn, NoTls)
        .await
        .err()
        .expect("the grant's one session is taken");
    let db = err.as_db_error().expect("a database error");
    assert!(db.message().contains("session"), "{}", db.message());
    drop(first);
    // Its seat is given back once the old front's session closes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Ok((db, conn)) = tokio_postgres::connect(&dsn, NoTls).await {
            tokio::spawn(conn);
            db.simple_query("SELECT 1").await.unwrap();
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the seat was not given back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    serve.stop().await;
}
