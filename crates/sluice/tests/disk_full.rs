//! Disk full under the audit journal and the store, on the real
//! `sluice serve` with its data directory on a small tmpfs of its own:
//! every statement either runs with its decision recorded or is refused
//! with a clear error and not run; the gateway stays up; when space
//! returns it carries on by itself, restarts cleanly, and the chain
//! verifies with every run statement in it.

mod common;

use common::{AGENT, Options, Serve, allowed_texts, text};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

/// Fills the filesystem at `dir` with one file until a write fails.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    // The last bytes of a page: anything left is smaller than a chunk.
    while f.write_all(&chunk[..512]).is_ok() {}
    path
}

/// The values whose insert has a `statement.allowed` in `events`.
fn allowed_values(events: &[Value]) -> BTreeSet<i64> {
    allowed_texts(events)
        .iter()
        .filter_map(|t| {
            t.strip_prefix("INSERT INTO t VALUES (")?
                .strip_suffix(')')?
                .parse()
                .ok()
        })
        .collect()
}

fn rows(serve: &Serve) -> BTreeSet<i64> {
    serve
        .pg
        .psql("postgres", "SELECT x FROM t")
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

async fn insert(db: &tokio_postgres::Client, x: i64) -> Result<(), String> {
    db.simple_query(&format!("INSERT INTO t VALUES ({x})"))
        .await
        .map(|_| ())
        .map_err(|e| match e.as_db_error() {
            Some(d) => format!("{} {}", d.code().code(), d.message()),
            None => format!("{e:?}"),
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_refuses_statements_and_loses_nothing() {
    let mut serve = Serve::start(Options {
        setup: "CREATE TABLE t (x bigint)".into(),
        small_disk_mib: Some(24),
        ..Options::default()
    })
    .await;
    let grant = serve.grant(AGENT).await;
    let (db, conn) = tokio_postgres::connect(&Serve::dsn(&grant), NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    insert(&db, 1).await.unwrap();

    let filler = fill(&serve.data);
    // Until the journal's last page is used up a statement may still be
    // journaled and run; after that each is refused, clearly, unrun.
    let mut ran = BTreeSet::from([1]);
    let mut refused = BTreeSet::new();
    for x in 100..300 {
        match insert(&db, x).await {
            Ok(()) => {
                ran.insert(x);
            }
            Err(e) => {
                assert!(
                    e.starts_with("58000") && e.contains("audit log is unavailable"),
                    "{e}"
                );
                refused.insert(x);
            }
        }
    }
    assert!(
        refused.len() > 150,
        "the full disk refused only {refused:?}"
    );
    assert!(
        rows(&serve).is_disjoint(&refused),
        "a refused statement ran"
    );

    // Space returns: the same session carries on by itself.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut x = 1000;
    loop {
        match insert(&db, x).await {
            Ok(()) => break,
            Err(e) => assert!(Instant::now() < deadline, "no recovery: {e}"),
        }
        x += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ran.insert(x);
    drop(db);

    // A clean restart (the journal is readable), and a chain that verifies
    // with every statement that ran in it.
    serve.stop().await;
    serve.spawn().await;
    let config = serve.config.to_str().unwrap().to_string();
    let out = serve.sluice(None, &["audit", "verify", "--config", &config]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let in_db = rows(&serve);
    let recorded = allowed_values(&serve.audit_events());
    assert!(ran.is_subset(&in_db), "an acknowledged insert is missing");
    let unrecorded: Vec<&i64> = in_db.difference(&recorded).collect();
    assert!(
        unrecorded.is_empty(),
        "rows without their decision: {unrecorded:?}"
    );
    assert!(
        serve.log().is_empty() || !serve.log().contains("damaged journal"),
        "{}",
        serve.log()
    );
}
