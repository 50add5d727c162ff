//! Startup parameters a client may pass to the backend are judged like the
//! statements that would set them: none may make the backend read SQL
//! differently from Sluice's analysis.

mod common;

use common::*;
use sluice_core::Profile;

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
async fn a_search_path_that_shadows_pg_catalog_refuses_the_login() {
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
        if !kept {
            let refused = try_raw_greeting(h.addr, &params, &g.secret).await;
            assert_eq!(refused.err().as_deref(), Some("42501"), "{path}");
            continue;
        }
        let mut s = raw_startup(h.addr, &params, &g.secret).await;
        let shown = simple(&mut s, "SHOW search_path").await.unwrap();
        assert_eq!(shown[0], path);
    }
}
