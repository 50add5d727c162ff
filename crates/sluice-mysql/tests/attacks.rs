//! The attack corpus: MySQL's own dangers and the ways around a gate that
//! reads statements differently from the server, each run through Sluice
//! against a real MariaDB with the database checked unchanged after; and
//! a benign corpus that must pass.

mod common;

use common::*;
use sluice_core::Profile;

/// What the attacks could change, read directly.
fn state(gw: &Gateway) -> String {
    gw.direct(
        "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM customers), \
         (SELECT group_concat(total ORDER BY id) FROM orders), \
         (SELECT count(*) FROM mysql.user WHERE user = 'evil'), @@global.max_connections, \
         (SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE())",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_attack_corpus_is_refused_and_changes_nothing() {
    let gw = Gateway::start("").await;
    // Owner-made routines an agent might reach for.
    gw.direct(
        "CREATE PROCEDURE wipe() DELETE FROM orders;\nDELIMITER //\n\
         CREATE FUNCTION wipe_fn() RETURNS INT MODIFIES SQL DATA BEGIN DELETE FROM orders; RETURN 1; END//\n\
         DELIMITER ;",
    );
    let before = state(&gw);
    let g = gw.grant(Profile::Write);
    let attacks = [
        // Files on the server.
        "SELECT * FROM orders INTO OUTFILE '/tmp/sluice-attack-out'",
        "SELECT * FROM orders INTO DUMPFILE '/tmp/sluice-attack-dump'",
        "SELECT load_file('/etc/passwd')",
        "LOAD DATA INFILE '/etc/hostname' INTO TABLE orders",
        "LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE orders",
        // The server and other sessions.
        "SET GLOBAL max_connections = 1",
        "SET @@global.max_connections = 1",
        "SET SESSION sql_log_bin = 0",
        "SHOW PROCESSLIST",
        "SELECT * FROM mysql.user",
        "KILL 1",
        // Users and grants.
        "CREATE USER 'evil'@'%' IDENTIFIED BY 'x'",
        "GRANT ALL ON *.* TO CURRENT_USER",
        "SET PASSWORD = PASSWORD('x')",
        // Statements outside SQL's analysis.
        "HANDLER orders OPEN",
        "DO sleep(1)",
        "SELECT sleep(1)",
        "SELECT benchmark(1000000, md5('x'))",
        "CALL wipe()",
        "SELECT wipe_fn()",
        "SELECT * FROM orders WHERE wipe_fn() = 1",
        // Text the server reads differently from a naive gate.
        "/*! DELETE FROM orders */",
        "/*!50000 DELETE FROM orders */",
        "/*M!100000 DELETE FROM orders */",
        "SELECT 1 /*!, wipe_fn() */",
        "SELECT 1--1, wipe_fn()",
        "SELECT 1 --\u{a0}, wipe_fn()",
        "SELECT 1 --\u{85}, wipe_fn()",
        "EXECUTE IMMEDIATE 'DELETE FROM orders'",
        "SELECT * FROM information_schema.PROCESSLIST",
        "SET SESSION max_statement_time = 0",
        "PREPARE s FROM 'DELETE FROM orders'",
        "SET @q = 'DELETE FROM orders'",
        "PREPARE s FROM @q",
        "EXECUTE s",
        "SET NAMES gbk",
        "SET CHARACTER SET sjis",
        "SET STATEMENT max_statement_time=1 FOR DELETE FROM orders",
        // Other databases.
        "USE mysql",
        "SELECT * FROM other_db.t",
        "DROP DATABASE mysql",
    ];
    let mut passed = Vec::new();
    for sql in attacks {
        let out = gw.mariadb(&g, sql);
        // `SET @q` alone is harmless; what it feeds is refused.
        if out.status.success() && sql != "SET @q = 'DELETE FROM orders'" {
            passed.push(sql);
        }
    }
    assert!(passed.is_empty(), "these passed: {passed:?}");
    // Several statements in one query (the `mariadb` client would split
    // them; PyMySQL sends the text as it is, and asks for multi-statements).
    let r = gw.pymysql(
        &g,
        &[
            "SELECT 1; DELETE FROM orders",
            "SELECT 1;DROP TABLE orders",
            "BEGIN NOT ATOMIC DELETE FROM orders; END",
        ],
    );
    assert!(r.iter().all(|r| r["error"]["code"] == 1142), "{r:?}");
    assert_eq!(state(&gw), before, "the database changed");
    assert!(!std::path::Path::new("/tmp/sluice-attack-out").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sql_mode_cannot_turn_on_a_mode_that_changes_lexing() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Write);
    // In one session: each SET, then what the server's mode is, then an
    // attack that ANSI_QUOTES or NO_BACKSLASH_ESCAPES would let through.
    let r = gw.pymysql(
        &g,
        &[
            "SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')",
            "SELECT @@sql_mode LIKE '%ANSI_QUOTES%'",
            "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES,STRICT_ALL_TABLES'",
            "SELECT @@sql_mode",
            r"SELECT 'a\' , (SELECT count(*) FROM orders) , '",
            "SET sql_mode = CONCAT(@@sql_mode, ',ERROR_FOR_DIVISION_BY_ZERO')",
        ],
    );
    assert_eq!(r[0]["error"]["code"], 1231, "{r:?}");
    assert_eq!(r[1]["rows"], serde_json::json!([[0]]), "{r:?}");
    assert_eq!(r[2]["error"]["code"], 1231, "{r:?}");
    assert_eq!(
        r[3]["rows"],
        serde_json::json!([["STRICT_ALL_TABLES"]]),
        "the rest applies: {r:?}"
    );
    assert!(
        r[4]["rows"].is_array(),
        "read as the server reads it: {r:?}"
    );
    assert!(r[5]["rows"].is_array(), "a harmless mode is fine: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_session_is_read_only_at_the_server_too() {
    // A guardrail that (wrongly) allows writes to read grants: the backend
    // session is still read-only.
    let gw = Gateway::start(
        r#"
[[connections.guardrails]]
name = "too-generous"
profiles = ["read"]
classes = ["write"]
action = "allow"
"#,
    )
    .await;
    let g = gw.grant(Profile::Read);
    let out = gw.mariadb(&g, "DELETE FROM orders");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("1792"),
        "read-only transaction: {}",
        stderr(&out)
    );
    for sql in [
        "SET SESSION TRANSACTION READ WRITE",
        "START TRANSACTION READ WRITE",
        "SET SESSION tx_read_only = 0",
    ] {
        let out = gw.mariadb(&g, sql);
        assert!(!out.status.success(), "{sql}");
    }
    assert_eq!(gw.direct("SELECT count(*) FROM orders").trim(), "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_database_at_login_is_refused() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Read);
    let out = gw.mariadb_args(&g, &["-D", "mysql", "-e", "SELECT 1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("1044"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_benign_corpus_passes() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Write);
    let benign = [
        "SELECT c.name, sum(o.total) FROM customers c JOIN orders o ON o.cid = c.id GROUP BY c.name",
        "SELECT id, total, rank() OVER (ORDER BY total DESC) FROM orders",
        "WITH big AS (SELECT * FROM orders WHERE total > 40) SELECT count(*) FROM big",
        "SELECT * FROM orders WHERE note IS NULL OR note LIKE 'f%'",
        "SELECT json_object('id', id, 'total', total) FROM orders",
        "SELECT DATABASE(), NOW() > '2000-01-01', VERSION() IS NOT NULL",
        "SELECT upper(name), length(email), substring(name, 1, 2) FROM customers",
        "INSERT INTO orders VALUES (3, 1, 10, 'third')",
        "UPDATE orders SET note = 'changed' WHERE id = 3",
        "DELETE FROM orders WHERE id = 3",
        "SHOW TABLES",
        "SHOW COLUMNS FROM orders",
        "DESCRIBE customers",
        "EXPLAIN SELECT * FROM orders WHERE id = 1",
        "SET @x = 5",
        "SELECT @x",
        "BEGIN",
        "COMMIT",
        "SELECT 'a\\'b', \"double\", `total` FROM orders LIMIT 1",
        "SELECT id FROM orders # a comment",
        "SELECT id FROM orders -- a comment",
        "SELECT /* a comment */ id FROM orders",
        "SELECT * FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()",
    ];
    let mut failed = Vec::new();
    for sql in benign {
        let out = gw.mariadb(&g, sql);
        if !out.status.success() {
            failed.push(format!("{sql}: {}", stderr(&out)));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(gw.direct("SELECT count(*) FROM orders").trim(), "2");
}
