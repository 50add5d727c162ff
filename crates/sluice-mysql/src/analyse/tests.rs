use super::*;

fn a(sql: &str) -> StatementFacts {
    analyse(sql, "shop")
}

#[track_caller]
fn class(sql: &str, want: C) {
    let f = a(sql);
    assert_eq!(f.class, want, "{sql}: {f:?}");
}

#[track_caller]
fn refused(sql: &str) {
    let f = a(sql);
    assert!(f.refused.is_some(), "{sql} should be refused: {f:?}");
}

#[test]
fn reads_and_writes_are_told_apart_with_their_tables() {
    let f = a("SELECT c.name FROM customers c JOIN orders o ON o.cid = c.id WHERE o.total > 10");
    assert_eq!(f.class, C::Read);
    assert_eq!(f.tables_read, ["customers", "orders"]);
    let f = a("INSERT INTO audit_copy SELECT * FROM orders");
    assert_eq!(f.class, C::Write);
    assert_eq!(f.tables_written, ["audit_copy"]);
    assert_eq!(f.tables_read, ["orders"]);
    class("UPDATE orders SET total = 0 WHERE id = 1", C::Write);
    class("DELETE FROM orders WHERE id = 1", C::Write);
    class("REPLACE INTO orders VALUES (1, 2)", C::Write);
    class("SELECT * FROM orders FOR UPDATE", C::Write);
    class("DROP TABLE orders", C::Ddl);
    class("TRUNCATE TABLE orders", C::Ddl);
    class("CREATE TABLE t2 AS SELECT * FROM orders", C::Ddl);
    class("GRANT ALL ON *.* TO 'x'@'%'", C::Dcl);
    assert!(a("CREATE USER 'x'@'%' IDENTIFIED BY 'y'").class >= C::Dcl);
    class("BEGIN", C::Tcl);
    class("COMMIT", C::Tcl);
}

#[test]
fn ctes_are_not_tables() {
    let f = a("WITH recent AS (SELECT * FROM orders) SELECT * FROM recent");
    assert_eq!(f.tables_read, ["orders"]);
}

#[test]
fn mysqls_own_dangers_are_named() {
    for sql in [
        "SELECT load_file('/etc/passwd')",
        "SELECT sleep(10)",
        "SELECT benchmark(100000000, md5('x'))",
        "SET GLOBAL max_connections = 1",
        "SET @@global.max_connections = 1",
        "SET SESSION sql_log_bin = 0",
        "CALL cleanup()",
        "KILL 12",
        "SHOW PROCESSLIST",
        "SELECT * FROM mysql.user",
    ] {
        assert!(a(sql).class >= C::Admin, "{sql}: {:?}", a(sql));
    }
    for sql in [
        "SELECT * FROM orders INTO OUTFILE '/tmp/x'",
        "SELECT * FROM orders INTO DUMPFILE '/tmp/x'",
        "LOAD DATA INFILE '/etc/passwd' INTO TABLE orders",
        "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE orders",
        "HANDLER orders OPEN",
        "DO sleep(5)",
        "SELECT my_udf(1)",
        "SELECT sys_exec('id')",
    ] {
        assert!(a(sql).class >= C::Admin, "{sql}: {:?}", a(sql));
    }
}

#[test]
fn turning_read_only_off_is_marked() {
    for sql in [
        "START TRANSACTION READ WRITE",
        "SET TRANSACTION READ WRITE",
        "SET SESSION TRANSACTION READ WRITE",
        "SET SESSION transaction_read_only = 0",
        "SET @@tx_read_only = 0",
    ] {
        let f = a(sql);
        assert!(f.disables_read_only, "{sql}: {f:?}");
        assert_eq!(f.class, C::Admin, "{sql}");
    }
    assert!(!a("START TRANSACTION READ ONLY").disables_read_only);
}

#[test]
fn what_would_change_the_servers_reading_is_refused() {
    // sql_mode runs, and is checked at the server after (see the session).
    for sql in [
        "SET sql_mode = 'ANSI_QUOTES'",
        "SET @@session.sql_mode = 'ORACLE'",
    ] {
        let f = a(sql);
        assert!(f.refused.is_none(), "{sql}");
        assert!(f.settings.iter().any(|(k, _)| k == "sql_mode"), "{sql}");
    }
    assert_eq!(a("SET GLOBAL sql_mode = ''").class, C::Admin);
    refused("SET NAMES gbk");
    refused("SET CHARACTER SET gbk");
    refused("SET character_set_client = 'sjis'");
    refused("SET a = 1, character_set_client = 'gbk'");
    refused("USE other");
    refused("SELECT * FROM other.secrets");
    refused("SELECT 1; DROP TABLE orders");
    refused("PREPARE s FROM 'DROP TABLE orders'");
    refused("EXECUTE s");
    assert_eq!(a("USE shop").class, C::Session);
    assert_eq!(a("SELECT * FROM shop.orders").class, C::Read);
    assert_eq!(a("SELECT * FROM information_schema.tables").class, C::Read);
}

#[test]
fn executable_comments_are_code_and_refused() {
    refused("SELECT 1 /*! , load_file('/etc/passwd') */");
    refused("SELECT 1 /*!50000 , load_file('/etc/passwd') */");
    refused("SELECT 1 /*M!100000 , load_file('/etc/passwd') */");
    refused("SELECT 1 /*m! , 2 */");
    // A plain comment is a comment.
    assert_eq!(a("SELECT 1 /* hello */").class, C::Read);
    // Optimizer hints are not code.
    assert_eq!(a("SELECT /*+ MAX_EXECUTION_TIME(100) */ 1").class, C::Read);
}

#[test]
fn the_lexer_reads_as_the_server_does() {
    // `--` needs a space to start a comment: `1--1` is 1 - -1, and what
    // follows is code.
    let f = a("SELECT 1--1, load_file('/etc/passwd')");
    assert!(f.class >= C::Admin, "{f:?}");
    // `#` starts a comment in MySQL.
    assert_eq!(a("SELECT 1 # , load_file('x')").class, C::Read);
    // A backslash escapes a quote inside a string (sql_mode is pinned
    // without NO_BACKSLASH_ESCAPES): the string does not end early.
    assert_eq!(a(r"SELECT 'a\' , load_file(1) , '").class, C::Read);
    let f = a(r"SELECT 'a\\', load_file('x')");
    assert!(f.class >= C::Admin, "{f:?}");
    // Double quotes delimit strings (ANSI_QUOTES is pinned off).
    assert_eq!(a(r#"SELECT "load_file('x')""#).class, C::Read);
}

#[test]
fn unknown_functions_and_statements_fail_closed() {
    class("SELECT my_fn(1)", C::Unknown);
    class("SELECT * FROM orders WHERE shop.fn(id)", C::Unknown);
    class("THIS IS NOT SQL", C::Unknown);
    class(
        "SELECT concat(upper(name), lower(name)) FROM customers",
        C::Read,
    );
    class(
        "SELECT count(*), max(total) FROM orders GROUP BY cid",
        C::Read,
    );
}

#[test]
fn explain_runs_nothing_but_analyze_does() {
    class("EXPLAIN DELETE FROM orders", C::Read);
    class("EXPLAIN ANALYZE DELETE FROM orders", C::Write);
    class("DESCRIBE orders", C::Read);
}

#[test]
fn fingerprints_ignore_constants() {
    assert_eq!(
        fingerprint("SELECT * FROM t WHERE id = 1"),
        fingerprint("select *  from t where id = 42")
    );
    assert_ne!(
        fingerprint("SELECT * FROM t WHERE id = 1"),
        fingerprint("SELECT * FROM u WHERE id = 1")
    );
}

#[test]
fn text_the_lexers_may_read_differently_is_refused() {
    // `--` then a character Rust calls whitespace and MySQL does not (a
    // no-break space): the parser would skip code the server runs.
    refused("SELECT 1 --\u{a0}, sleep(1)");
    refused("SELECT 1 --\u{2028}, sleep(1)");
    // `--` then a control character MySQL takes as the comment's start.
    refused("SELECT 1 --\u{1}, sleep(1)");
    // A NUL byte: the server may end a comment (or the text) there.
    refused("SELECT 1 -- x\0, sleep(1)");
    refused("SELECT 1 /* \0 */");
    // Compound statements and dynamic SQL.
    assert!(a("BEGIN NOT ATOMIC DELETE FROM orders; END").class == C::Unknown);
    refused("EXECUTE IMMEDIATE 'DELETE FROM orders'");
    // Other sessions and the statement time limit.
    class("SELECT * FROM information_schema.PROCESSLIST", C::Admin);
    assert!(a("SET SESSION max_statement_time = 0").class >= C::Admin);
    assert!(a("SET max_execution_time = 0").class >= C::Admin);
    // Plain `--` comments still are comments.
    assert_eq!(a("SELECT 1 -- fine\n").class, C::Read);
    assert_eq!(a("SELECT 1 --\tfine\n").class, C::Read);
}
