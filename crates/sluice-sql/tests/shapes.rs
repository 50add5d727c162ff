//! The shape cache's soundness: an analysis marked cacheable must be the
//! analysis of every string with the same shape key, whatever its literals.
//! Each template below is filled with every combination of scary literal
//! values; where two fillings share a key, their analyses (and their
//! masking analyses) must be identical.

use proptest::prelude::*;
use sluice_core::config::ColumnPattern;
use sluice_sql::shape::shape_key;
use sluice_sql::{MaskedColumns, analyze, literals, masked_uses};

/// `{n}` is a numeric literal, `{s}` a string literal.
const TEMPLATES: &[&str] = &[
    "SELECT abalance FROM pgbench_accounts WHERE aid = {n};",
    "SELECT * FROM t WHERE a = {s} AND b > {n} ORDER BY c LIMIT {n}",
    "SELECT a, ssn FROM customers ORDER BY {n}",
    "SELECT a, ssn FROM customers GROUP BY {n}, a",
    "SELECT set_config({s}, {s}, false)",
    "SELECT current_setting({s})",
    "SELECT {s}::regclass",
    "SELECT nextval({s})",
    "SELECT pg_read_file({s})",
    "SELECT pg_terminate_backend({n})",
    "SELECT * FROM customers WHERE ssn LIKE {s}",
    "SELECT email FROM customers WHERE id = {n} FOR UPDATE",
    "INSERT INTO t (a, b) VALUES ({n}, {s}) RETURNING a",
    "UPDATE t SET a = {s} WHERE id = {n}",
    "DELETE FROM t WHERE id = {n}",
    "WITH d AS (DELETE FROM t WHERE id = {n} RETURNING *) SELECT * FROM d",
    "SELECT {n} INTO newtable",
    "SELECT * FROM customers ORDER BY {n} DESC, {s}",
    "SELECT date_trunc({s}, now()) + interval {s}",
    "SELECT jsonb_path_query(j, {s}) FROM docs WHERE id = {n}",
    "SET client_encoding = {s}",
    "SET search_path = {s}",
    "SET ROLE {s}",
    "COPY customers TO {s}",
    "COPY customers TO STDOUT (FORMAT {s})",
    "EXPLAIN (ANALYZE {n}) DELETE FROM t",
    "DO {s}",
    "NOTIFY chan, {s}",
    "SELECT {n}; DELETE FROM t WHERE id = {n}",
    "VALUES ({n}, {s})",
    "MERGE INTO t USING s ON t.id = s.id AND s.k = {n} WHEN MATCHED THEN DELETE",
    // A Unicode identifier's meaning depends on the UESCAPE literal after it.
    "SELECT U&\"!0073sn\" UESCAPE {s} FROM customers",
    "SELECT * FROM U&\"!0073ecrets\" UESCAPE {s}",
    "SELECT upper(U&\"!0073sn\" UESCAPE {s}) FROM customers",
];

const NUMBERS: &[&str] = &["0", "1", "2", "7", "99999", "1.5"];
const STRINGS: &[&str] = &[
    "''",
    "'x'",
    "'role'",
    "'search_path'",
    "'transaction_read_only'",
    "'LATIN1'",
    "'UTF8'",
    "'off'",
    "'binary'",
    "'csv'",
    "'/etc/passwd'",
    "'ssn'",
    "'customers'",
    "'postgres'",
    "'BEGIN DELETE FROM t; END'",
    "'1 day'",
    "'!'",
    "'#'",
];

/// Every filling of `template`, cycling through the values so each
/// placeholder sees each value with a bounded number of strings.
fn fillings(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    for round in 0..STRINGS.len().max(NUMBERS.len()) {
        for shift in 0..3 {
            let (mut n, mut s) = (round, round + shift);
            let mut text = String::new();
            let mut rest = template;
            while let Some(pos) = rest.find('{') {
                text.push_str(&rest[..pos]);
                let (value, skip) = if rest[pos..].starts_with("{n}") {
                    n += shift + 1;
                    (NUMBERS[n % NUMBERS.len()], 3)
                } else {
                    s += 1;
                    (STRINGS[s % STRINGS.len()], 3)
                };
                text.push_str(value);
                rest = &rest[pos + skip..];
            }
            text.push_str(rest);
            out.push(text);
        }
    }
    out
}

fn masked() -> MaskedColumns {
    MaskedColumns::new(
        ["public.customers.ssn", "customers.email"]
            .iter()
            .map(|p| ColumnPattern::parse(p).unwrap())
            .collect(),
    )
}

#[test]
fn a_cacheable_analysis_holds_for_every_string_of_its_shape() {
    let masked = masked();
    let mut cacheable = 0;
    for template in TEMPLATES {
        let mut groups: std::collections::HashMap<String, Vec<String>> = Default::default();
        for text in fillings(template) {
            if let Some(key) = shape_key(&text) {
                groups.entry(key).or_default().push(text);
            }
        }
        for texts in groups.values() {
            // (analysis, masking analysis, may it be cached) per string.
            let judged: Vec<_> = texts
                .iter()
                .map(|t| {
                    let analysis = analyze(t);
                    let (mask, read) = literals::track(|| masked_uses(t, &masked));
                    let shareable = analysis.cacheable && !read;
                    (analysis, mask, shareable)
                })
                .collect();
            let shared = judged.iter().filter(|j| j.2).count();
            if shared == 0 {
                continue;
            }
            cacheable += shared;
            // Any member may be the one cached, and any other then uses it.
            let (first, first_mask, _) = &judged[0];
            for (t, (other, other_mask, _)) in texts.iter().zip(&judged) {
                assert_eq!(first.statements, other.statements, "{} / {t}", texts[0]);
                assert_eq!(first.fingerprint, other.fingerprint, "{} / {t}", texts[0]);
                assert_eq!(first_mask, other_mask, "{} / {t}", texts[0]);
            }
        }
    }
    assert!(
        cacheable > 100,
        "the cache would hardly ever apply: {cacheable}"
    );
}

#[test]
fn statements_judged_by_their_literals_are_not_cacheable() {
    for sql in [
        "SET client_encoding = 'LATIN1'",
        "SELECT set_config('role', 'postgres', false)",
        "COPY customers TO '/tmp/x'",
        "COPY customers TO STDOUT (FORMAT 'binary')",
        "EXPLAIN (ANALYZE 1) DELETE FROM t",
        "DO 'BEGIN NULL; END'",
    ] {
        assert!(!analyze(sql).cacheable, "{sql}");
    }
    let (_, read) =
        literals::track(|| masked_uses("SELECT a, ssn FROM customers ORDER BY 2", &masked()));
    assert!(read, "ORDER BY 2 is judged by its literal");
    assert!(analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 1").cacheable);
}

/// The key as PostgreSQL's own lexer splits the text: each string, integer
/// or float constant token becomes its marker, everything else is copied.
/// (A string continued across a newline, `'a'\n'b'`, is one token; each of
/// its quoted parts is marked, as the shape lexer does.)
fn real_key(sql: &str) -> Option<String> {
    use pg_query::protobuf::Token;
    let scan = pg_query::scan(sql).ok()?;
    let mut key = String::new();
    let mut pos = 0;
    for t in &scan.tokens {
        let (start, end) = (t.start as usize, t.end as usize);
        key.push_str(sql.get(pos..start)?);
        let text = sql.get(start..end)?;
        match Token::try_from(t.token) {
            Ok(Token::Sconst) if text.starts_with('\'') => key.push_str(&mark_strings(text)),
            Ok(Token::Iconst | Token::Fconst) => key.push_str("\0n"),
            _ => key.push_str(text),
        }
        pos = end;
    }
    key.push_str(sql.get(pos..)?);
    Some(key)
}

/// `'a' \n 'b'` → `\0s \n \0s`: quoted parts marked, blanks between kept.
fn mark_strings(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match (inside, b[i]) {
            (true, b'\'') if b.get(i + 1) == Some(&b'\'') => i += 2,
            (true, b'\'') => {
                inside = false;
                i += 1;
            }
            (true, _) => i += 1,
            (false, b'\'') => {
                out.push_str("\0s");
                inside = true;
                i += 1;
            }
            (false, c) => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

/// Pieces of SQL text chosen to stress a lexer: every kind of literal and
/// its look-alikes, comments, quoting, escapes and blanks.
const PIECES: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "customers",
    "ssn",
    "a",
    "t1",
    "_x",
    "a$b",
    "uescape",
    "UESCAPE",
    "U&",
    "E",
    "e",
    "B",
    "X",
    "N",
    "\"q\"",
    "\"a\"\"b\"",
    "U&\"d\\0061\"",
    "'a'",
    "'a''b'",
    "''",
    "'a\\'",
    "E'x\\''",
    "B'01'",
    "X'ff'",
    "N'x'",
    "U&'x'",
    "$$x$$",
    "$a$x$a$",
    "$1",
    "$",
    "1",
    "42",
    "1.5",
    ".5",
    "1.",
    "1e5",
    "1e",
    "1E-3",
    "0x1F",
    "1_000",
    "1..2",
    "+",
    "-",
    "*",
    "/",
    "<",
    ">",
    "=",
    "<=",
    ">=",
    "<>",
    "!=",
    "||",
    "::",
    ".",
    ",",
    ";",
    "(",
    ")",
    "[",
    "]",
    "&",
    "!",
    "@",
    "#",
    "~",
    "^",
    "%",
    "|",
    "--",
    "-- c\n",
    "/*",
    "*/",
    "/* c */",
    " ",
    "  ",
    "\n",
    "\r",
    "\t",
    "\x0c",
    "é",
    "\\",
];

fn soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(0..PIECES.len(), 1..14)
        .prop_map(|ix| ix.into_iter().map(|i| PIECES[i]).collect::<String>())
}

/// Cases per property: the suite's default, or `SLUICE_PROPTEST_CASES`
/// for a long run (`make fuzz`).
fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("SLUICE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(n)
}

proptest! {
    #![proptest_config(cases(4000))]

    /// Where the shape lexer gives a key, PostgreSQL's lexer splits the text
    /// into the same tokens with literals in the same places.
    #[test]
    fn shape_keys_agree_with_postgresqls_lexer(sql in soup()) {
        if let Some(key) = shape_key(&sql) {
            prop_assert_eq!(Some(key), real_key(&sql), "{:?}", sql);
        }
    }
}

/// Statement shapes with literal slots, and values for them: texts of one
/// shape with different literals must share one analysis when it is
/// cacheable (classification and masking).
fn shaped_pair() -> impl Strategy<Value = (String, String)> {
    const SLOTS: &[&str] = &[
        "SELECT {} FROM customers WHERE id = {}",
        "SELECT ssn, {} FROM customers ORDER BY {}",
        "SELECT * FROM customers WHERE email LIKE {} LIMIT {}",
        "UPDATE orders SET ref = {} WHERE id IN ({}, {})",
        "SELECT U&\"!0073sn\" UESCAPE {} FROM customers WHERE id = {}",
        "SELECT a FROM t WHERE b = ANY({}) AND c = {}",
        "SELECT {}::regclass, nextval({})",
        "SELECT x.{} FROM customers x WHERE x.id = {}",
    ];
    const VALUES: &[&str] = &[
        "1", "2", "1.5", "'x'", "'!'", "'#'", "'{1,2}'", "''''", "'ssn'", "'a b'",
    ];
    (
        0..SLOTS.len(),
        proptest::collection::vec((0..VALUES.len(), 0..VALUES.len()), 4),
    )
        .prop_map(|(s, vals)| {
            let fill = |pick: &dyn Fn(&(usize, usize)) -> usize| {
                let mut parts = SLOTS[s].split("{}");
                let mut out = parts.next().unwrap_or_default().to_string();
                for (part, v) in parts.zip(&vals) {
                    out.push_str(VALUES[pick(v)]);
                    out.push_str(part);
                }
                out
            };
            (fill(&|v| v.0), fill(&|v| v.1))
        })
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn texts_with_one_key_share_one_analysis((a, b) in shaped_pair()) {
        let (Some(ka), Some(kb)) = (shape_key(&a), shape_key(&b)) else {
            return Ok(());
        };
        if ka != kb {
            return Ok(());
        }
        let (aa, ab) = (analyze(&a), analyze(&b));
        let masked = masked();
        let (ma, read_a) = literals::track(|| masked_uses(&a, &masked));
        let (mb, read_b) = literals::track(|| masked_uses(&b, &masked));
        if aa.cacheable && !read_a {
            prop_assert_eq!(&aa.statements, &ab.statements, "{} / {}", a, b);
            prop_assert_eq!(ma, mb, "{} / {}", a, b);
        }
        prop_assert_eq!(aa.cacheable && !read_a, ab.cacheable && !read_b, "{} / {}", a, b);
    }
}
