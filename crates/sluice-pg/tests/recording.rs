//! Result rows in the session recording (issue 6): with
//! `record_results = "rows:N"` each statement's first N rows reach the
//! audit log as `statement.results`, exactly as the client received them
//! (masked), paired with the statement by `seq` and `index`.

mod common;

use common::*;
use serde_json::{Value, json};
use sluice_core::Profile;
use sluice_core::audit::EventKind;
use sluice_core::config::{MaskingConfig, RecordResults};

const SETUP: &str = "
CREATE TABLE customers (id int PRIMARY KEY, email text, ssn text);
INSERT INTO customers VALUES (1, 'ada@example.com', '123-45-6789'),
  (2, 'bob@corp.example', '987-65-4321'), (3, NULL, '111-22-3333');
";

async fn harness(record: RecordResults, masked: bool) -> Harness {
    let pg = start_pg(&Options::default()).await;
    let masking: Option<MaskingConfig> = masked.then(|| {
        toml::from_str(
            r#"
columns = [{ column = "customers.ssn", style = "redact" }]
exempt_groups = ["dba"]
"#,
        )
        .unwrap()
    });
    let h = Harness::on(pg, Options::default(), |c| {
        c.record_results = record;
        c.masking = masking;
    })
    .await;
    h.backend(SETUP);
    h
}

fn details(h: &Harness, kind: EventKind) -> Vec<Value> {
    h.audit
        .of_kind(kind)
        .into_iter()
        .map(|e| e.detail)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_rows_are_recorded_masked_and_paired_with_their_statement() {
    let h = harness(RecordResults::Rows(2), true).await;
    let g = h.grant(Profile::Write);
    let sql = "SELECT id, email, ssn FROM customers ORDER BY id; \
               UPDATE customers SET email = email WHERE id = 1; SELECT 1 AS one";
    let o = h.psql(&h.url(&g), &["-c", sql], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let results = h.audit.wait_for(EventKind::StatementResults, 2).await;
    h.audit.wait_for(EventKind::StatementCompleted, 3).await;
    let results: Vec<Value> = results.into_iter().map(|e| e.detail).collect();
    assert_eq!(results.len(), 2, "the UPDATE returns no rows: {results:?}");
    assert_eq!(results[0]["columns"], json!(["id", "email", "ssn"]));
    assert_eq!(
        results[0]["rows"],
        json!([
            ["1", "****@example.com", "[REDACTED]"],
            ["2", "****@corp.example", "[REDACTED]"]
        ])
    );
    assert_eq!(results[0]["truncated"], json!(true), "3 rows, 2 kept");
    assert_eq!(results[1]["columns"], json!(["one"]));
    assert_eq!(results[1]["rows"], json!([["1"]]));
    assert_eq!(results[1]["truncated"], json!(false));
    // The same seq and index as the statements they belong to.
    let completed = details(&h, EventKind::StatementCompleted);
    let key = |d: &Value| (d["seq"].clone(), d["index"].clone());
    assert_eq!(key(&results[0]), key(&completed[0]));
    assert_eq!(key(&results[1]), key(&completed[2]));
    assert_eq!(completed[1]["command"], "UPDATE");
    let all = h.audit.all_json();
    assert!(!all.contains("123-45-6789") && !all.contains("987-65-4321"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_results_of_prepared_statements_are_recorded_as_hex() {
    let h = harness(RecordResults::Rows(5), false).await;
    let g = h.grant(Profile::Read);
    let client = h.connect(&g).await;
    let rows = client
        .query(
            "SELECT id, email FROM customers WHERE id <= $1 ORDER BY id",
            &[&2i32],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let results = h.audit.wait_for(EventKind::StatementResults, 1).await;
    let d = &results[0].detail;
    // tokio-postgres asks for binary results: an int4 is four bytes.
    assert_eq!(d["columns"], json!(["id", "email"]), "{d}");
    assert_eq!(
        d["rows"],
        json!([
            ["\\x00000001", "ada@example.com"],
            ["\\x00000002", "bob@corp.example"]
        ])
    );
    // A NULL stays null.
    let row = client
        .query_one("SELECT email FROM customers WHERE id = 3", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0), None);
    let results = h.audit.wait_for(EventKind::StatementResults, 2).await;
    assert_eq!(results[1].detail["rows"], json!([[null]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_records_no_rows() {
    let h = harness(RecordResults::Summary, true).await;
    let g = h.grant(Profile::Read);
    let o = h.psql(&h.url(&g), &["-c", "SELECT email FROM customers"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let done = h.audit.wait_for(EventKind::StatementCompleted, 1).await;
    assert_eq!(done[0].detail["rows"], 3);
    assert!(details(&h, EventKind::StatementResults).is_empty());
    assert!(!h.audit.all_json().contains("ada@example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn none_records_decisions_only() {
    let h = harness(RecordResults::None, false).await;
    let g = h.grant(Profile::Read);
    let o = h.psql(&h.url(&g), &["-c", "SELECT email FROM customers"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    h.audit.wait_for(EventKind::SessionClosed, 1).await;
    assert_eq!(details(&h, EventKind::StatementAllowed).len(), 1);
    assert!(details(&h, EventKind::StatementCompleted).is_empty());
    assert!(details(&h, EventKind::StatementResults).is_empty());
}

/// Issue 13: a session exempt from masking sees values in clear, but its
/// recording (an audit event every sink gets) is masked by the
/// connection's rules all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exempt_sessions_recorded_rows_are_masked_all_the_same() {
    let h = harness(RecordResults::Rows(5), true).await;
    let g = h.grant_in_groups(Profile::Read, &["dba"]);
    let sql = "SELECT id, email, ssn FROM customers ORDER BY id";
    // Twice: the first statement's columns are not yet in the catalog cache
    // (redacted); the second has their rules.
    for round in 0..2 {
        let o = h.psql(&h.url(&g), &["-c", sql], None);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("123-45-6789"), "the client is exempt");
        let results = h
            .audit
            .wait_for(EventKind::StatementResults, round + 1)
            .await;
        let rows = results[round].detail["rows"].to_string();
        assert!(!rows.contains("123-45-6789"), "round {round}: {rows}");
        assert!(!rows.contains("ada@example.com"), "detectors: {rows}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let last = h.audit.of_kind(EventKind::StatementResults).pop().unwrap();
    assert_eq!(last.detail["rows"][0][2], "[REDACTED]", "{}", last.detail);
    assert_eq!(last.detail["rows"][0][0], "1");
}
