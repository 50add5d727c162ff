//! Startup parameters a client may pass to the backend are judged like the
//! statements that would set them: none may make the backend read SQL
//! differently from Sluice's analysis.

mod common;

use bytes::BytesMut;
use common::*;
use postgres_protocol::message::frontend;
use sluice_core::Profile;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Runs `sql` as a simple Query; the DataRow texts, or the SQLSTATE.
async fn simple(s: &mut TcpStream, sql: &str) -> Result<Vec<String>, String> {
    let mut buf = BytesMut::new();
    frontend::query(sql, &mut buf).unwrap();
    s.write_all(&buf).await.unwrap();
    let mut rows = Vec::new();
    let mut error = None;
    loop {
        let (tag, body) = read_message(s).await;
        match tag {
            b'D' => {
                let len = i32::from_be_bytes([body[2], body[3], body[4], body[5]]);
                rows.push(String::from_utf8_lossy(&body[6..6 + len as usize]).to_string());
            }
            b'E' => {
                let text = String::from_utf8_lossy(&body).to_string();
                let code = text.split('\0').find_map(|f| f.strip_prefix('C'));
                error = Some(code.unwrap_or("?").to_string());
            }
            b'Z' => return error.map_or(Ok(rows), Err),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multibyte_client_encoding_cannot_hide_a_statement_inside_a_string() {
    let h = Harness::start(Options::default()).await;
    h.backend("CREATE TABLE items(id int)");
    let g = h.grant(Profile::Write);
    let params = [
        ("user", g.id.as_str()),
        ("database", CONN),
        ("client_encoding", "SJIS"),
    ];
    let mut s = raw_startup(h.addr, &params, &g.secret).await;
    // In UTF-8, U+07DF is DF 9F and the backslash escapes the quote: one
    // SELECT of a string. In SJIS, 9F 5C is one character, the quote ends
    // the string, and a DROP follows.
    let sql = "SELECT E'\u{07DF}\\'; DROP TABLE items; --'";
    let _ = simple(&mut s, sql).await;
    assert_eq!(
        h.backend("SELECT count(*) FROM pg_tables WHERE tablename = 'items'"),
        "1",
        "DROP TABLE ran behind a SELECT"
    );
    assert_eq!(
        simple(&mut s, "SHOW client_encoding").await,
        Ok(vec!["UTF8".into()])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_search_path_that_shadows_pg_catalog_is_not_passed_on() {
    let h = Harness::start(Options::default()).await;
    let g = h.grant(Profile::Write);
    for (path, kept) in [
        ("evil, pg_catalog", false),
        ("public, pg_catalog", false),
        ("pg_catalog, public", true),
        ("public", true),
    ] {
        let params = [
            ("user", g.id.as_str()),
            ("database", CONN),
            ("search_path", path),
        ];
        let mut s = raw_startup(h.addr, &params, &g.secret).await;
        let shown = simple(&mut s, "SHOW search_path").await.unwrap();
        assert_eq!(shown[0] == path, kept, "{path}: {shown:?}");
    }
}
