//! COPY under a `read` grant: loading data is a write and is denied before
//! any data moves; copying a query's result out is a read.

mod common;

use bytes::Bytes;
use common::*;
use futures::TryStreamExt;
use sluice_core::Profile;
use sluice_core::audit::EventKind;

fn orders(h: &Harness) {
    h.backend(
        "CREATE TABLE orders(id int, total int); \
         INSERT INTO orders SELECT g, g * 10 FROM generate_series(1, 5) g",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_from_stdin_is_denied_under_read_and_writes_nothing() {
    let h = Harness::start(Options::default()).await;
    orders(&h);
    let g = h.grant(Profile::Read);
    // Simple protocol, as psql sends it; the session goes on afterwards.
    let out = h.psql(
        &h.url(&g),
        &[
            "-v",
            "VERBOSITY=verbose",
            "-c",
            "COPY orders FROM STDIN",
            "-c",
            "SELECT count(*) FROM orders",
        ],
        Some("100\t1\n101\t2\n"),
    );
    let err = stderr(&out);
    assert!(err.contains("42501"), "{err}");
    assert!(err.contains("sluice: statement denied"), "{err}");
    assert_eq!(stdout(&out), "5", "the session stayed usable: {err}");
    // Extended protocol, as drivers send it.
    let client = h.connect(&g).await;
    let err = client
        .copy_in::<_, Bytes>("COPY orders FROM STDIN")
        .await
        .err()
        .expect("denied");
    assert_eq!(sqlstate(&err), "42501");
    let n: i64 = client
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 5);
    assert_eq!(h.backend("SELECT count(*) FROM orders"), "5");
    let denied = h.audit.of_kind(EventKind::StatementDenied);
    assert_eq!(denied.len(), 2);
    assert!(
        denied
            .iter()
            .all(|e| e.detail["statements"][0]["classes"][0] == "write")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_of_a_query_to_stdout_is_allowed_under_read() {
    let h = Harness::start(Options::default()).await;
    orders(&h);
    let g = h.grant(Profile::Read);
    let sql = "COPY (SELECT id, total FROM orders WHERE id <= 3 ORDER BY id) TO STDOUT";
    let out = h.psql(&h.url(&g), &["-c", sql], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1\t10\n2\t20\n3\t30");
    // And through a driver, with the extended protocol.
    let client = h.connect(&g).await;
    let stream = client.copy_out(sql).await.unwrap();
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    assert_eq!(chunks.concat(), b"1\t10\n2\t20\n3\t30\n");
    assert!(h.audit.of_kind(EventKind::StatementDenied).is_empty());
    // A read grant cannot write a table out to a file on the server.
    let err = client
        .batch_execute("COPY orders TO '/tmp/sluice-orders.csv'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
}
