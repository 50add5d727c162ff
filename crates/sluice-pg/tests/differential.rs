//! Differential test (issue 12): generated statements go through the
//! gateway to a real PostgreSQL, and Sluice's analysis (its audit record)
//! must agree with what the server ran, statement by statement:
//!
//! - the commands the server completed (CommandComplete tags) are, in
//!   order, the commands Sluice judged, with none it did not see;
//! - no trap function ran: the database defines functions whose names
//!   Sluice would read as something else (built-ins of newer PostgreSQL,
//!   overloads of built-in names, new syntax an older server reads as a
//!   call); each raises a NOTICE the client sees when it runs, and Sluice
//!   must have refused every statement that could reach one.
//!
//! The texts mix every lexical hazard (backslashes, quotes, dollar quotes,
//! comments ending at \r, Unicode escapes) with hidden statements, and
//! settings that would change the lexer. The admin profile allows every
//! class but `unknown`, so what Sluice allows is exactly what it believes
//! it understands.

mod common;

use common::*;
use sluice_core::Profile;
use sluice_core::audit::EventKind;

/// Functions that must never run unnoticed: each says so with a NOTICE.
const TRAP: &str = "CREATE FUNCTION public.trap(name text) RETURNS int LANGUAGE plpgsql AS
  $$ BEGIN RAISE NOTICE 'sluice-trap:%', name; RETURN 1; END $$;";

const TRAPS: &str = "
CREATE TABLE diff_t (v int); INSERT INTO diff_t VALUES (1);
CREATE FUNCTION public.json_query(jsonb, text) RETURNS int LANGUAGE sql AS $$ SELECT trap('json_query') $$;
CREATE FUNCTION public.json_scalar(int) RETURNS int LANGUAGE sql AS $$ SELECT trap('json_scalar') $$;
CREATE FUNCTION public.json_serialize(json) RETURNS int LANGUAGE sql AS $$ SELECT trap('json_serialize') $$;
CREATE FUNCTION public.json(text) RETURNS int LANGUAGE sql AS $$ SELECT trap('json') $$;
CREATE FUNCTION public.merge_action() RETURNS int LANGUAGE sql AS $$ SELECT trap('merge_action') $$;
CREATE FUNCTION public.json_array(int, int) RETURNS int LANGUAGE sql AS $$ SELECT trap('json_array') $$;
CREATE FUNCTION public.json_object(int, int) RETURNS int LANGUAGE sql AS $$ SELECT trap('json_object') $$;
CREATE FUNCTION public.uuidv7() RETURNS int LANGUAGE sql AS $$ SELECT trap('uuidv7') $$;
CREATE FUNCTION public.casefold(text) RETURNS int LANGUAGE sql AS $$ SELECT trap('casefold') $$;
CREATE FUNCTION public.lower(int) RETURNS int LANGUAGE sql AS $$ SELECT trap('lower') $$;
CREATE FUNCTION public.probe(diff_t) RETURNS int LANGUAGE sql AS $$ SELECT trap('probe') $$;
CREATE AGGREGATE public.any_value(int) (sfunc = int4larger, stype = int, finalfunc = trap_final);
";

/// `any_value`'s final function, created first.
const TRAP_FINAL: &str = "CREATE FUNCTION public.trap_final(int) RETURNS int LANGUAGE sql AS $$ SELECT trap('any_value') $$;";

/// Pieces that end, continue or hide a string or comment, depending on
/// how the server lexes them.
const OPENERS: &[&str] = &[
    "'a\\'",
    "'a\\' , '",
    "E'a\\''",
    "E'a\\\\'",
    "'a'''",
    "''''",
    "$$a$$",
    "$x$a$$",
    "$x$a$x$",
    "U&'\\0061'",
    "U&'!0061' UESCAPE '!'",
    "'a' /* '",
    "/* /* */ '",
    "-- x\r'",
    "-- x\n'",
    "--\u{b}x\n'",
    "\"a\"\"'\"",
    "'\u{00df}\\'",
];

const HIDDEN: &[&str] = &[
    "UPDATE diff_t SET v = v + 1",
    "SELECT v FROM diff_t",
    "SELECT 2",
    "SELECT trap('hidden')",
    "SET standard_conforming_strings = off",
];

const SEPARATORS: &[&str] = &[
    " ",
    "; ",
    ";\r",
    ", ",
    "\r",
    "\n",
    " -- x\r",
    " -- x\n",
    " /* x */ ;",
    "\u{b};",
];

/// Calls an older server reads differently, or that reach a trap.
const CALLS: &[&str] = &[
    "SELECT json_query('{}'::jsonb, '$')",
    "SELECT json_scalar(1)",
    "SELECT json_serialize('{}'::json)",
    "SELECT json('{}'::text)",
    "SELECT merge_action()",
    "SELECT json_array(1, 2)",
    "SELECT json_object(1, 2)",
    "SELECT uuidv7()",
    "SELECT casefold('A')",
    "SELECT lower(1)",
    "SELECT any_value(v) FROM diff_t",
    "SELECT d.probe FROM diff_t d",
    "SELECT (d).probe FROM diff_t d",
    "SELECT lower('A'), upper('b')",
];

/// The generated texts: openers with hidden statements behind them, and
/// the calls.
fn cases() -> Vec<String> {
    let mut out = Vec::new();
    for opener in OPENERS {
        for sep in SEPARATORS {
            for hidden in HIDDEN {
                out.push(format!("SELECT {opener}{sep}{hidden}; SELECT 'end'"));
            }
        }
    }
    out.extend(CALLS.iter().map(|c| c.to_string()));
    out
}

/// What the server did with one text: completed command words, whether a
/// trap ran, and the SQLSTATE of an error.
#[derive(Debug, Default)]
struct Ran {
    commands: Vec<String>,
    traps: Vec<String>,
    error: Option<String>,
}

async fn run(s: &mut tokio::net::TcpStream, sql: &str) -> Ran {
    use tokio::io::AsyncWriteExt;
    let mut buf = bytes::BytesMut::new();
    postgres_protocol::message::frontend::query(sql, &mut buf).unwrap();
    s.write_all(&buf).await.unwrap();
    let mut ran = Ran::default();
    loop {
        let (tag, body) = read_message(s).await;
        let text = String::from_utf8_lossy(&body).to_string();
        match tag {
            b'C' => ran.commands.push(
                text.trim_end_matches('\0')
                    .split(' ')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            ),
            b'N' if text.contains("sluice-trap:") => ran.traps.push(text),
            b'E' => {
                let code = text.split('\0').find_map(|f| f.strip_prefix('C'));
                ran.error = code.map(str::to_string);
            }
            b'Z' => return ran,
            _ => {}
        }
    }
}

/// The first word of each command Sluice's audit record says it allowed
/// for `sql`.
fn judged(h: &Harness, sql: &str) -> Option<Vec<String>> {
    let allowed = h.audit.of_kind(EventKind::StatementAllowed);
    // The record keeps a normalized text (no comments) and then the full
    // text's hash.
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(sql.as_bytes()))
    };
    let event = allowed.iter().rev().find(|e| {
        let s = &e.detail["statements"][0];
        s["text"] == sql || s["sha256"] == hash.as_str()
    })?;
    let commands = event.detail["statements"][0]["commands"].as_array()?;
    Some(
        commands
            .iter()
            .filter_map(|c| c.as_str())
            .map(|c| c.split(' ').next().unwrap_or_default().to_string())
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_runs_what_sluice_judged() {
    // The server's own defaults are the dangerous ones: only Sluice's
    // pinning keeps the lexer where the analysis expects it.
    let opts = Options {
        pg_settings: vec![("standard_conforming_strings".into(), "off".into())],
        ..Options::default()
    };
    let h = Harness::start(opts).await;
    h.backend(TRAP);
    h.backend(TRAP_FINAL);
    h.backend(TRAPS);
    let g = h.grant(Profile::Admin);
    let mut s = raw_login(h.addr, &g.id, &g.secret, CONN).await;
    let (mut allowed, mut refused) = (0, 0);
    let mut disagreements = Vec::new();
    for sql in cases() {
        let ran = run(&mut s, &sql).await;
        let Some(judged) = judged(&h, &sql) else {
            // Refused by Sluice: nothing may have run.
            refused += 1;
            if !ran.commands.is_empty() || !ran.traps.is_empty() {
                disagreements.push(format!("{sql:?}: refused, yet ran {ran:?}"));
            }
            continue;
        };
        allowed += 1;
        if !ran.traps.is_empty() {
            disagreements.push(format!("{sql:?}: a trap ran: {:?}", ran.traps));
        }
        // What completed must be what Sluice judged, in order (an error
        // stops the rest).
        let agrees = ran.commands.len() <= judged.len()
            && ran.commands.iter().zip(&judged).all(|(a, b)| a == b)
            && (ran.error.is_some() || ran.commands.len() == judged.len());
        if !agrees {
            disagreements.push(format!(
                "{sql:?}: Sluice judged {judged:?}, the server ran {:?} (error {:?})",
                ran.commands, ran.error
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    // Both sides of the corpus were exercised.
    assert!(
        allowed > 100 && refused > 100,
        "allowed {allowed}, refused {refused}"
    );
    assert_eq!(h.backend("SHOW standard_conforming_strings"), "off");
}
