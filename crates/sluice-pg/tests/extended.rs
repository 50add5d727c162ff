//! A denial in the extended protocol answered as PostgreSQL answers its own
//! errors: the same messages, in the same order, with everything up to
//! Sync skipped. The same raw script runs against PostgreSQL directly
//! (with a Parse that fails there) and through Sluice (with a Parse that
//! Sluice denies), and the two transcripts are compared.

mod common;

use bytes::BytesMut;
use common::*;
use postgres_protocol::IsNull;
use postgres_protocol::message::frontend;
use sluice_core::Profile;
use sluice_core::audit::EventKind;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Parse, Bind and Execute of `sql` on the unnamed statement and portal.
fn run(sql: &str, buf: &mut BytesMut) {
    frontend::parse("", sql, [], buf).unwrap();
    frontend::bind(
        "",
        "",
        [],
        std::iter::empty::<()>(),
        |_, _| Ok(IsNull::No),
        [],
        buf,
    )
    .map_err(|_| "bind")
    .unwrap();
    frontend::execute("", 0, buf).unwrap();
}

/// Message tags (and the SQLSTATE of errors, the status of
/// ReadyForQuery) until ReadyForQuery, or one message when `until_z` is
/// false.
async fn transcript(s: &mut TcpStream, until_z: bool) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let (tag, body) = read_message(s).await;
        out.push(match tag {
            b'E' => format!("E:{}", field(&body, b'C')),
            b'Z' => format!("Z:{}", body[0] as char),
            t => (t as char).to_string(),
        });
        if tag == b'Z' || !until_z {
            return out;
        }
    }
}

fn field(body: &[u8], code: u8) -> String {
    body.split(|b| *b == 0)
        .find(|f| f.first() == Some(&code))
        .map(|f| String::from_utf8_lossy(&f[1..]).to_string())
        .unwrap_or_default()
}

/// The script: (in a transaction block, if `in_block`) a failing Parse
/// and Flush; then a whole statement, Flush; then Sync; then a statement
/// that must run. Returns what the client saw at each step, SQLSTATEs
/// aside (they differ by design: a syntax error against a denial).
async fn script(s: &mut TcpStream, failing: &str, in_block: bool) -> Vec<Vec<String>> {
    let mut steps = Vec::new();
    let mut buf = BytesMut::new();
    if in_block {
        frontend::query("BEGIN", &mut buf).unwrap();
        s.write_all(&buf.split()).await.unwrap();
        steps.push(transcript(s, true).await);
    }
    frontend::parse("", failing, [], &mut buf).unwrap();
    frontend::flush(&mut buf);
    s.write_all(&buf.split()).await.unwrap();
    steps.push(transcript(s, false).await);
    // Skipped until Sync: nothing of this may run or answer.
    run("SELECT 1", &mut buf);
    frontend::describe(b'S', "", &mut buf).unwrap();
    frontend::flush(&mut buf);
    s.write_all(&buf.split()).await.unwrap();
    frontend::sync(&mut buf);
    s.write_all(&buf.split()).await.unwrap();
    steps.push(transcript(s, true).await);
    if in_block {
        frontend::query("ROLLBACK", &mut buf).unwrap();
        s.write_all(&buf.split()).await.unwrap();
        steps.push(transcript(s, true).await);
    }
    run("SELECT 2", &mut buf);
    frontend::sync(&mut buf);
    s.write_all(&buf.split()).await.unwrap();
    steps.push(transcript(s, true).await);
    steps
}

fn without_codes(steps: &[Vec<String>]) -> Vec<Vec<String>> {
    steps
        .iter()
        .map(|s| {
            s.iter()
                .map(|m| {
                    if m.starts_with("E:") {
                        "E".into()
                    } else {
                        m.clone()
                    }
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_parse_then_flush_skips_to_sync_exactly_as_postgres_does() {
    let h = Harness::start(Options::default()).await;
    h.backend("CREATE TABLE items(id int)");
    let g = h.grant(Profile::Read);
    let backend_addr = format!("127.0.0.1:{}", h.pg.port()).parse().unwrap();
    for in_block in [false, true] {
        let mut direct = raw_login(backend_addr, "postgres", h.pg.password(), "postgres").await;
        let expected = script(&mut direct, "SELEC 1", in_block).await;
        let mut proxied = raw_login(h.addr, &g.id, &g.secret, CONN).await;
        let seen = script(&mut proxied, "DROP TABLE items", in_block).await;

        assert_eq!(
            without_codes(&seen),
            without_codes(&expected),
            "in block: {in_block}"
        );
        let first_error = if in_block { &seen[1] } else { &seen[0] };
        assert_eq!(first_error, &vec!["E:42501".to_string()]);
        // After Sync, the idle session (or the aborted block) and nothing else.
        let status = if in_block { "Z:E" } else { "Z:I" };
        let after_sync = if in_block { &seen[2] } else { &seen[1] };
        assert_eq!(after_sync, &vec![status.to_string()]);
        assert_eq!(seen.last().unwrap(), &vec!["1", "2", "D", "C", "Z:I"]);
    }
    assert_eq!(
        h.backend("SELECT count(*) FROM pg_tables WHERE tablename = 'items'"),
        "1"
    );
    // The skipped statement was never decided, so never audited as run.
    let allowed = h.audit.all_json();
    assert!(!allowed.contains("\"SELECT 1\""), "skipped yet audited");
    assert_eq!(h.audit.of_kind(EventKind::StatementDenied).len(), 2);
}
