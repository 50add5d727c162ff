//! `statement.completed`: each statement's rows, duration and error,
//! joined to its `statement.allowed` event by `seq`, recorded without
//! holding up results, and never carrying row values from an error's
//! DETAIL.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use sluice_core::Profile;
use sluice_core::audit::{AuditEvent, EventKind};

/// The completion events of the allowed requests whose text contains
/// `needle`, joined by session and `seq`, in order.
fn completions_of(h: &Harness, needle: &str) -> Vec<AuditEvent> {
    let allowed: Vec<(Option<String>, Value)> = h
        .audit
        .of_kind(EventKind::StatementAllowed)
        .into_iter()
        .filter(|e| {
            e.detail["statements"][0]["text"]
                .as_str()
                .is_some_and(|t| t.contains(needle))
        })
        .map(|e| (e.session_id, e.detail["seq"].clone()))
        .collect();
    assert!(!allowed.is_empty(), "no allowed event for {needle}");
    assert!(
        allowed.iter().all(|(_, seq)| seq.is_u64()),
        "allowed events carry seq"
    );
    let mut done: Vec<AuditEvent> = h
        .audit
        .of_kind(EventKind::StatementCompleted)
        .into_iter()
        .filter(|e| allowed.contains(&(e.session_id.clone(), e.detail["seq"].clone())))
        .collect();
    done.sort_by_key(|e| (e.detail["seq"].as_u64(), e.detail["index"].as_u64()));
    done
}

fn rows(e: &AuditEvent) -> Option<u64> {
    e.detail["rows"].as_u64()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_statement_of_a_multi_statement_query_completes_with_its_rows() {
    let h = Harness::start(Options::default()).await;
    h.backend(
        "CREATE TABLE orders(id int, total int); \
         INSERT INTO orders SELECT g, g FROM generate_series(1, 42) g",
    );
    let g = h.grant(Profile::Write);
    let sql = "UPDATE orders SET total = 0 WHERE id <= 3; SELECT * FROM orders; SELECT 1";
    let out = h.psql(&h.url(&g), &["-c", sql], None);
    assert!(out.status.success(), "{}", stderr(&out));
    h.audit.wait_for(EventKind::StatementCompleted, 3).await;
    let done = completions_of(&h, sql);
    let session = h.audit.of_kind(EventKind::SessionOpened)[0]
        .session_id
        .clone();
    assert_eq!(done.len(), 3, "{done:?}");
    let summary: Vec<(u64, &str, Option<u64>)> = done
        .iter()
        .map(|e| {
            let d = &e.detail;
            (
                d["index"].as_u64().unwrap(),
                d["command"].as_str().unwrap(),
                rows(e),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, "UPDATE", Some(3)),
            (1, "SELECT", Some(42)),
            (2, "SELECT", Some(1))
        ]
    );
    for e in &done {
        assert_eq!(e.grant_id.as_deref(), Some(g.id.as_str()));
        assert_eq!(e.connection.as_deref(), Some(CONN));
        assert_eq!(e.session_id, session);
        assert_eq!(e.detail["outcome"], "ok");
        assert_eq!(e.detail["protocol"], "simple");
        assert!(e.detail["duration_ms"].as_f64().unwrap() >= 0.0);
        assert!(e.detail["error"].is_null());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_and_extended_protocol_executes_report_their_rows() {
    let h = Harness::start(Options::default()).await;
    h.backend("CREATE TABLE orders(id int, total int)");
    let g = h.grant(Profile::Write);
    let url = h.url(&g);
    let input: String = (1..=10).map(|i| format!("{i}\t{}\n", i * 10)).collect();
    let out = h.psql(&url, &["-c", "\\copy orders from stdin"], Some(&input));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = h.psql(&url, &["-c", "COPY (SELECT * FROM orders) TO STDOUT"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let client = h.connect(&g).await;
    let n = client
        .execute(
            "UPDATE orders SET total = total + 1 WHERE id > $1",
            &[&6i32],
        )
        .await
        .unwrap();
    assert_eq!(n, 4);
    let slow = "SELECT pg_sleep(0.2), id FROM orders WHERE id = $1";
    client.query(slow, &[&1i32]).await.unwrap();

    h.audit.wait_for(EventKind::StatementCompleted, 4).await;
    let copy_in = completions_of(&h, "FROM STDIN");
    let copy_out = completions_of(&h, "TO STDOUT");
    assert_eq!(rows(&copy_in[0]), Some(10), "{copy_in:?}");
    assert_eq!(rows(&copy_out[0]), Some(10), "{copy_out:?}");
    assert_eq!(copy_out[0].detail["command"], "COPY");
    let update = completions_of(&h, "UPDATE orders SET total = total + 1 WHERE id > $1");
    assert_eq!(update.len(), 1, "one completion per Execute: {update:?}");
    assert_eq!(update[0].detail["protocol"], "extended");
    assert_eq!(update[0].detail["command"], "UPDATE");
    assert_eq!(rows(&update[0]), Some(4));
    let sleep = completions_of(&h, slow);
    let ms = sleep[0].detail["duration_ms"].as_f64().unwrap();
    assert!((200.0..5000.0).contains(&ms), "duration_ms {ms}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_is_recorded_by_sqlstate_and_message_without_its_detail() {
    let h = Harness::start(Options::default()).await;
    h.backend("CREATE TABLE users(id serial, email text UNIQUE)");
    let g = h.grant(Profile::Write);
    let client = h.connect(&g).await;
    // The value travels in Bind, which the audit log never sees; only the
    // error's DETAIL would repeat it.
    let insert = "INSERT INTO users(email) VALUES ($1)";
    let email = "alice.secret@example.com";
    client.execute(insert, &[&email]).await.unwrap();
    let err = client.execute(insert, &[&email]).await.unwrap_err();
    assert_eq!(sqlstate(&err), "23505");
    let detail = err.as_db_error().unwrap().detail().unwrap_or_default();
    assert!(
        detail.contains(email),
        "the client still gets DETAIL: {detail}"
    );
    // A simple-protocol error, too.
    let err = client
        .batch_execute("SELECT 1; SELECT nope FROM users")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42703");

    let done = h.audit.wait_for(EventKind::StatementCompleted, 4).await;
    let failed: Vec<&Value> = done
        .iter()
        .filter(|e| e.detail["outcome"] == "error")
        .map(|e| &e.detail["error"])
        .collect();
    assert_eq!(failed.len(), 2, "{done:?}");
    assert_eq!(failed[0]["sqlstate"], "23505");
    let message = failed[0]["message"].as_str().unwrap();
    assert!(message.contains("users_email_key"), "{message}");
    assert_eq!(failed[1]["sqlstate"], "42703");
    let all = h.audit.all_json();
    assert!(!all.contains(email), "a row value reached the audit log");
    assert!(!all.contains("Key (email)"), "DETAIL reached the audit log");
    // The failing simple statement is the second of its string.
    let simple = completions_of(&h, "SELECT 1; SELECT nope FROM users");
    assert_eq!(simple.len(), 2);
    assert_eq!(simple[1].detail["index"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_or_failing_audit_log_does_not_hold_up_results() {
    let h = Harness::start(Options::default()).await;
    let g = h.grant(Profile::Read);
    *h.audit.slow_kind.lock().unwrap() =
        Some((EventKind::StatementCompleted, Duration::from_secs(3)));
    let client = h.connect(&g).await;
    let started = Instant::now();
    for _ in 0..5 {
        client.query_one("SELECT 1", &[]).await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "statements waited for their outcomes: {:?}",
        started.elapsed()
    );
    let done = h.audit.wait_for(EventKind::StatementCompleted, 5).await;
    assert_eq!(done.len(), 5);
    drop(client);

    // Outcomes that cannot be written are lost, counted, and nothing else.
    *h.audit.slow_kind.lock().unwrap() = None;
    *h.audit.fail_kind.lock().unwrap() = Some(EventKind::StatementCompleted);
    let client = h.connect(&g).await;
    for _ in 0..3 {
        client.query_one("SELECT 1", &[]).await.unwrap();
    }
    drop(client);
    let closed = h.audit.wait_for(EventKind::SessionClosed, 2).await;
    let lost: Vec<u64> = closed
        .iter()
        .map(|e| e.detail["outcomes_lost"].as_u64().unwrap())
        .collect();
    assert!(lost.contains(&3), "{lost:?}");
    assert!(lost.contains(&0), "{lost:?}");
}

/// A driver's COPY FROM STDIN sends Sync both with its Execute and after
/// CopyDone; the backend ignores the first (it arrives during the COPY).
/// Outcomes stay paired with their statements afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn outcomes_stay_in_step_after_a_drivers_copy_from_stdin() {
    use futures::SinkExt;
    let h = Harness::start(Options::default()).await;
    h.backend("CREATE TABLE orders(id int, total int)");
    let g = h.grant(Profile::Write);
    let client = h.connect(&g).await;
    let sink = client
        .copy_in::<_, bytes::Bytes>("COPY orders FROM STDIN")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"1\t10\n2\t20\n3\t30\n"))
        .await
        .unwrap();
    assert_eq!(sink.finish().await.unwrap(), 3);
    let after = "SELECT id FROM orders WHERE id >= 2";
    assert_eq!(client.query(after, &[]).await.unwrap().len(), 2);
    let again = "SELECT id FROM orders WHERE id >= 3";
    assert_eq!(client.query(again, &[]).await.unwrap().len(), 1);

    h.audit.wait_for(EventKind::StatementCompleted, 3).await;
    let copy = completions_of(&h, "FROM STDIN");
    assert_eq!(copy.len(), 1, "{copy:?}");
    assert_eq!(rows(&copy[0]), Some(3));
    let after = completions_of(&h, after);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(rows(&after[0]), Some(2));
    let again = completions_of(&h, again);
    assert_eq!(rows(&again[0]), Some(1), "{again:?}");
}
