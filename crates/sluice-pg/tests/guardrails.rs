//! Guardrails in the data path: denials with 42501 that leave the session
//! usable, the transaction state PostgreSQL itself would show, the
//! read-only backstop, fail-closed audit, and what the audit log records.

mod common;

use std::process::{Command, Stdio};

use common::*;
use sluice_core::Profile;
use sluice_core::audit::EventKind;
use sluice_core::guardrail::{Action, GuardrailRule, StatementClass};
use tokio::io::AsyncWriteExt;

fn rule(name: &str, action: Action, classes: &[StatementClass], tables: &[&str]) -> GuardrailRule {
    GuardrailRule {
        name: name.into(),
        action,
        classes: classes.to_vec(),
        tables: tables.iter().map(|t| t.to_string()).collect(),
        functions: vec![],
        fingerprints: vec![],
        commands: vec![],
        paths: vec![],
        profiles: vec![],
        message: None,
        hold: Default::default(),
    }
}

/// Runs a psql script (no -q, verbose errors) and returns stdout, stderr.
fn psql_script(url: &str, script: &str) -> (String, String) {
    use std::io::Write;
    let mut child = Command::new(sluice_testkit::pg::bin("psql").unwrap())
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "VERBOSITY=verbose",
            "-d",
            url,
            "-f",
            "-",
        ])
        .env_remove("PGPASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (stdout(&out), stderr(&out))
}

#[tokio::test(flavor = "multi_thread")]
async fn drop_table_under_read_is_42501_and_the_session_goes_on() {
    let h = Harness::start(Options::default()).await;
    h.backend("CREATE TABLE items(id int)");
    let g = h.grant(Profile::Read);
    let client = h.connect(&g).await;
    let err = client.batch_execute("DROP TABLE items").await.unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    let message = err.as_db_error().unwrap().message().to_string();
    assert!(
        message.starts_with("sluice: statement denied by"),
        "{message}"
    );
    assert!(message.contains("DROP"), "{message}");
    // Extended protocol too.
    let err = client.execute("DROP TABLE items", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    // A multi-statement string is judged whole: nothing of it runs.
    let err = client
        .batch_execute("SELECT 1; DROP TABLE items")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    // The session is still usable, and the table is still there.
    let n: i64 = client
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    assert_eq!(
        h.backend("SELECT count(*) FROM pg_tables WHERE tablename = 'items'"),
        "1"
    );
    let denied = h.audit.of_kind(EventKind::StatementDenied);
    assert_eq!(denied.len(), 3);
    let detail = &denied[0].detail;
    assert_eq!(detail["decision"], "deny");
    assert_eq!(detail["statements"][0]["classes"][0], "ddl");
    assert!(detail["rule"].as_str().unwrap().contains("read"));
    assert!(!h.audit.of_kind(EventKind::StatementAllowed).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denial_inside_a_transaction_aborts_it_as_postgres_would() {
    let h = Harness::start(Options::default()).await;
    h.backend("CREATE TABLE items(id int)");
    let g = h.grant(Profile::Write);
    let script = "BEGIN;\n\
                  INSERT INTO items VALUES (1);\n\
                  DROP TABLE items;\n\
                  SELECT 42;\n\
                  COMMIT;\n\
                  SELECT count(*) FROM items;\n";
    let (out, err) = psql_script(&h.url(&g), script);
    assert!(err.contains("42501"), "{err}");
    assert!(
        err.contains("25P02"),
        "aborted transaction afterwards: {err}"
    );
    assert!(
        !out.contains("42"),
        "nothing ran in the aborted block: {out}"
    );
    assert!(
        out.contains("ROLLBACK"),
        "COMMIT answered as ROLLBACK: {out}"
    );
    assert!(
        out.trim_end().ends_with('0'),
        "the insert was rolled back: {out}"
    );
    assert_eq!(h.backend("SELECT count(*) FROM items"), "0");

    // The extended protocol: a denied Parse inside a transaction.
    let mut client = h.connect(&g).await;
    let tx = client.transaction().await.unwrap();
    tx.execute("INSERT INTO items VALUES (2)", &[])
        .await
        .unwrap();
    let err = tx.execute("DROP TABLE items", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    let err = tx.query("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&err), "25P02");
    tx.rollback().await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_read_only_backstop_holds_when_a_rule_lets_a_write_through() {
    // A misconfigured rule allows writes to a read grant: the backend
    // session is still read-only.
    let h = Harness::start(Options {
        guardrails: vec![rule("oops", Action::Allow, &[StatementClass::Write], &[])],
        ..Default::default()
    })
    .await;
    h.backend("CREATE TABLE items(id int)");
    let g = h.grant(Profile::Read);
    let client = h.connect(&g).await;
    let err = client
        .batch_execute("INSERT INTO items VALUES (1)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "25006", "read_only_sql_transaction");
    assert_eq!(h.backend("SELECT count(*) FROM items"), "0");
    // And it cannot be switched off.
    let err = client
        .batch_execute("SET default_transaction_read_only = off")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    // Startup options cannot switch it off either: the login is refused.
    let url = format!(
        "{}&options=-c%20default_transaction_read_only%3Doff",
        h.url(&g)
    );
    let out = h.psql(&url, &["-c", "SHOW default_transaction_read_only"], None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("turns read-only off"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deny_rule_names_itself_and_approve_says_approval_is_required() {
    let h = Harness::start(Options {
        guardrails: vec![
            rule("no-secrets", Action::Deny, &[], &["secrets"]),
            rule(
                "hold-deletes",
                Action::Approve,
                &[StatementClass::Write],
                &[],
            ),
        ],
        ..Default::default()
    })
    .await;
    h.backend("CREATE TABLE secrets(v text); CREATE TABLE items(id int)");
    let g = h.grant(Profile::Write);
    let client = h.connect(&g).await;
    let err = client
        .query("SELECT * FROM secrets", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("\"no-secrets\"")
    );
    let err = client.execute("DELETE FROM items", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("approval required")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn statements_fail_closed_when_the_audit_log_is_down() {
    let h = Harness::start(Options::default()).await;
    let g = h.grant(Profile::Read);
    let client = h.connect(&g).await;
    h.audit
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let err = client.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&err), "58000");
    h.audit
        .fail
        .store(false, std::sync::atomic::Ordering::SeqCst);
    client.batch_execute("SELECT 1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_function_call_message_is_denied() {
    let h = Harness::start(Options::default()).await;
    let g = h.grant(Profile::Admin);
    let mut s = raw_login(h.addr, &g.id, &g.secret, CONN).await;
    // FunctionCall: oid 1 (whatever), no args, text result.
    let body: &[u8] = &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    let mut msg = vec![b'F'];
    msg.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    msg.extend_from_slice(body);
    s.write_all(&msg).await.unwrap();
    let (tag, body) = read_message(&mut s).await;
    assert_eq!(tag, b'E');
    assert!(String::from_utf8_lossy(&body).contains("42501"));
    assert_eq!(read_message(&mut s).await, (b'Z', vec![b'I']));
}

/// Every wrapper and side-effecting function the issue names is denied under
/// `read` by Sluice itself (42501, not the backend's read-only error), and
/// the database is unchanged afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn wrappers_and_side_effecting_functions_are_denied_under_read() {
    let h = Harness::start(Options::default()).await;
    h.backend(
        "CREATE TABLE items(id int); INSERT INTO items VALUES (1); CREATE SEQUENCE s; \
         CREATE PROCEDURE wipe() LANGUAGE sql AS 'DELETE FROM items'",
    );
    let g = h.grant(Profile::Read);
    let client = h.connect(&g).await;
    let cases = [
        "WITH d AS (DELETE FROM items RETURNING *) SELECT * FROM d",
        "EXPLAIN ANALYZE DELETE FROM items",
        "SELECT * INTO copy_items FROM items",
        "CREATE TABLE t2 AS SELECT 1",
        "PREPARE p AS DELETE FROM items",
        "DO $$ BEGIN DELETE FROM items; END $$",
        "CALL wipe()",
        "COPY items TO PROGRAM 'true'",
        "COPY items FROM '/etc/hostname'",
        "MERGE INTO items USING (SELECT 1 AS id) s ON items.id = s.id WHEN MATCHED THEN DELETE",
        "LOCK items",
        "SELECT * FROM items FOR UPDATE",
        "SET ROLE postgres",
        "SET SESSION AUTHORIZATION postgres",
        "SET default_transaction_read_only = off",
        "SET transaction_read_only = off",
        "BEGIN READ WRITE",
        "START TRANSACTION READ WRITE",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        "SELECT pg_terminate_backend(1)",
        "SELECT pg_cancel_backend(1)",
        "SELECT pg_reload_conf()",
        "SELECT lo_import('/etc/hostname')",
        "SELECT pg_read_file('/etc/hostname')",
        "SELECT nextval('s')",
        "SELECT pg_advisory_lock(1)",
        "SELECT some_function_nobody_declared()",
        "SELECT 1; DELETE FROM items",
    ];
    let mut slipped = Vec::new();
    for sql in cases {
        match client.batch_execute(sql).await {
            Err(e) if sqlstate(&e) == "42501" => {}
            other => slipped.push(format!("{sql}: {other:?}")),
        }
        // Leave no transaction open between cases.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    assert!(
        slipped.is_empty(),
        "not denied by sluice:\n{}",
        slipped.join("\n")
    );
    // EXECUTE of a statement prepared outside the rules is judged too.
    let err = client.batch_execute("EXECUTE p").await.unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    assert_eq!(h.backend("SELECT count(*) FROM items"), "1");
    assert_eq!(
        h.backend("SELECT count(*) FROM pg_tables WHERE tablename IN ('copy_items', 't2')"),
        "0"
    );
    assert_eq!(h.backend("SELECT last_value FROM s"), "1");
    assert_eq!(
        h.backend("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"),
        "0"
    );
}

/// A denial in the middle of a pipeline answers only its own request: the
/// requests before and after it run, in order.
#[tokio::test(flavor = "multi_thread")]
async fn a_denial_inside_a_pipeline_fails_only_its_own_request() {
    let h = Harness::start(Options::default()).await;
    h.backend("CREATE TABLE items(id int)");
    let g = h.grant(Profile::Write);
    let client = h.connect(&g).await;
    let insert = client
        .prepare("INSERT INTO items VALUES ($1)")
        .await
        .unwrap();
    let (a, b, c, d) = tokio::join!(
        client.execute(&insert, &[&1i32]),
        client.batch_execute("DROP TABLE items"),
        client.execute(&insert, &[&2i32]),
        client.query_one("SELECT count(*) FROM items", &[]),
    );
    assert_eq!(a.unwrap(), 1);
    assert_eq!(sqlstate(&b.unwrap_err()), "42501");
    assert_eq!(c.unwrap(), 1);
    assert_eq!(d.unwrap().get::<_, i64>(0), 2);
}
