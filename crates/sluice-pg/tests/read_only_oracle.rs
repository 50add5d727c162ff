//! The analyser against PostgreSQL itself (issue 18's oracle): every text
//! Sluice classifies as reads only must run inside a `READ ONLY`
//! transaction on the real server without "cannot execute … in a
//! read-only transaction" (SQLSTATE 25006). A text the server refuses for
//! writing while Sluice called it a read is a write Sluice would let
//! through a `read` grant's guardrails.
//!
//! The texts are the statement analyser's fuzz seeds (`fuzz/seeds/
//! pg_analyse`, drawn from this suite's corpora) and writes hidden in
//! expressions, run on tables and functions those texts name.

use sluice_core::guardrail::StatementClass;
use sluice_testkit::pg::PgServer;

const SCHEMA: &str = "
CREATE TABLE customers (id int PRIMARY KEY, name text, email text, ssn text, card_number text, notes text);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int, total int);
CREATE TABLE t (a int, b text);
CREATE TABLE accounts (id int, balance int);
CREATE TABLE payouts (id int PRIMARY KEY, status text);
CREATE TABLE items (id int);
CREATE SEQUENCE s;
CREATE VIEW v AS SELECT * FROM t;
INSERT INTO t VALUES (1, 'x');
";

/// Writes hidden where a reader might not look.
const HIDDEN_WRITES: &[&str] = &[
    "SELECT nextval('s')",
    "SELECT setval('s', 5)",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT lo_create(0)",
    "SELECT * FROM t FOR UPDATE",
    "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
    "SELECT * INTO newt FROM t",
    "EXPLAIN ANALYZE INSERT INTO t VALUES (2)",
    "SELECT txid_current()",
    "SELECT pg_current_xact_id()",
    "VALUES (nextval('s'))",
    "SELECT (SELECT nextval('s'))",
    "SELECT * FROM t WHERE a = nextval('s')",
    "TABLE t",
    "SELECT 1",
];

fn texts() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/pg_analyse");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .expect("the analyser's fuzz seeds")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect();
    out.sort();
    out.extend(HIDDEN_WRITES.iter().map(|s| s.to_string()));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_text_sluice_calls_a_read_runs_in_a_read_only_transaction() {
    let pg = tokio::task::spawn_blocking(PgServer::start)
        .await
        .unwrap()
        .expect("start PostgreSQL");
    pg.psql("postgres", SCHEMA).unwrap();
    let (client, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(pg.port())
        .user("postgres")
        .password(pg.password())
        .dbname("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .simple_query("SET statement_timeout = '2s'")
        .await
        .unwrap();
    let (mut reads, mut wrong) = (0, Vec::new());
    for text in texts() {
        let a = sluice_sql::analyze(&text);
        let all_reads = !a.statements.is_empty()
            && a.statements.iter().all(|s| s.class == StatementClass::Read);
        if !all_reads {
            continue;
        }
        reads += 1;
        client
            .simple_query("BEGIN TRANSACTION READ ONLY")
            .await
            .unwrap();
        if let Err(e) = client.simple_query(&text).await
            && e.code() == Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION)
        {
            wrong.push(format!("{text:?}: {e}"));
        }
        let _ = client.simple_query("ROLLBACK").await;
    }
    assert!(
        reads > 100,
        "only {reads} texts were reads: the corpus is thin"
    );
    assert!(
        wrong.is_empty(),
        "Sluice called these reads; the server refused them as writes:\n{}",
        wrong.join("\n")
    );
}
