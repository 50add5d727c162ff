//! The usual drivers, unchanged, through a grant: PyMySQL (text protocol)
//! and Node's mysql2 (text and server-side prepared statements), with
//! denials surfacing as MySQL errors the driver understands.

mod common;

use common::*;
use sluice_core::Profile;
use sluice_core::audit::EventKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pymysql_queries_and_sees_denials_as_mysql_errors() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Read);
    let r = gw.pymysql(
        &g,
        &[
            "SELECT id, name FROM customers ORDER BY id",
            "DELETE FROM orders",
            "SELECT count(*) FROM orders",
        ],
    );
    assert_eq!(
        r[0]["rows"],
        serde_json::json!([[1, "Ada"], [2, "Grace"]]),
        "{r:?}"
    );
    assert_eq!(r[1]["error"]["code"], 1142, "{r:?}");
    assert_eq!(
        r[2]["rows"],
        serde_json::json!([[2]]),
        "the session goes on: {r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql2_prepared_statements_are_judged_and_bound() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Write);
    let r = gw.mysql2(
        &g,
        "execute",
        &[
            (
                "SELECT id, name, balance FROM customers WHERE id = ?",
                "[2]",
            ),
            ("UPDATE orders SET total = ? WHERE id = ?", "[77, 1]"),
            ("SELECT total FROM orders WHERE id = ?", "[1]"),
            ("DROP TABLE orders", "[]"),
        ],
    );
    assert_eq!(
        r[0]["rows"],
        serde_json::json!([{"id": 2, "name": "Grace", "balance": 200}]),
        "{r:?}"
    );
    assert_eq!(r[1]["rows"]["affectedRows"], 1, "{r:?}");
    assert_eq!(r[2]["rows"], serde_json::json!([{"total": 77}]), "{r:?}");
    assert_eq!(r[3]["error"]["code"], 1142, "DDL is not write: {r:?}");
    assert_eq!(gw.direct("SELECT count(*) FROM orders").trim(), "2");
    // Each execution is decided and recorded, with the prepared text.
    let allowed = gw.audit.wait_for(EventKind::StatementAllowed, 3).await;
    let texts: Vec<String> = allowed.iter().map(|e| e.detail.to_string()).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("UPDATE orders SET total = ? WHERE id = ?")),
        "{texts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql2_text_queries_work_too() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Read);
    let r = gw.mysql2(
        &g,
        "query",
        &[("SELECT name FROM customers WHERE id = ?", "[1]")],
    );
    assert_eq!(r[0]["rows"], serde_json::json!([{"name": "Ada"}]), "{r:?}");
}

/// Runs statements with MariaDB Connector/J (Debian's libmariadb-java),
/// server-side prepared: one output line per statement.
fn connector_j(gw: &Gateway, g: &TestGrant, args: &[&str]) -> Vec<String> {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/connectorj"
    );
    let url = format!(
        "jdbc:mariadb://127.0.0.1:{}/{}?useServerPrepStmts=true&allowPublicKeyRetrieval=true",
        gw.addr.port(),
        gw.db
    );
    let out = std::process::Command::new("java")
        .args(["-cp", "/usr/share/java/mariadb-java-client.jar"])
        .arg(format!("{fixture}/Client.java"))
        .args([&url, &g.id, &g.secret])
        .args(args)
        .output()
        .expect("run java (make test installs default-jdk-headless and libmariadb-java)");
    assert!(
        out.status.success(),
        "java: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out).lines().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connector_j_prepared_statements_work_and_are_judged() {
    let gw = Gateway::start("\n[connections.masking]\ncolumns = [{ column = \"customers.card\", style = \"redact\" }]\n").await;
    let g = gw.grant(Profile::Write);
    let lines = connector_j(
        &gw,
        &g,
        &[
            "SELECT name, card FROM customers WHERE id = ?",
            "?1",
            "UPDATE orders SET total = ? WHERE id = ?",
            "?5",
            "?2",
            "DROP TABLE orders",
        ],
    );
    assert_eq!(lines[0], "rows [Ada, [REDACTED]]", "{lines:?}");
    assert_eq!(lines[1], "updated 1", "{lines:?}");
    assert!(lines[2].starts_with("error 1142 42000"), "{lines:?}");
    assert_eq!(
        gw.direct("SELECT total FROM orders WHERE id = 2").trim(),
        "5"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn protocol_commands_keep_the_session_who_it_is() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Read);
    let r = gw.mysql2(
        &g,
        "query",
        &[
            ("!ping", ""),
            ("!changeUser root", ""),
            ("SELECT CURRENT_USER()", "[]"),
        ],
    );
    assert_eq!(r[0]["rows"], "ok", "{r:?}");
    assert!(r[1]["error"].is_object(), "identity never changes: {r:?}");
    // PyMySQL's select_db sends COM_INIT_DB.
    let script = r#"
import sys, pymysql
conn = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user=sys.argv[2], password=sys.argv[3], database=sys.argv[4])
conn.select_db(sys.argv[4])
print("same ok")
try:
    conn.select_db("mysql")
    print("other ok")
except pymysql.err.MySQLError as e:
    print("other", e.args[0])
"#;
    let out = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            script,
            &gw.addr.port().to_string(),
            &g.id,
            &g.secret,
            &gw.db,
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "same ok\nother 1044\n", "{}", stderr(&out));
}
