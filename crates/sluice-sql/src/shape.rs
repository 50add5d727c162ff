//! Statement shapes: a key under which statements that differ only in
//! literal values share one analysis.
//!
//! [`shape_key`] is a small lexer over the query text. It copies the text
//! verbatim except for string and numeric literals, which it replaces by a
//! marker holding a NUL byte (which no query string can contain, so a marker
//! never collides with text). Two strings with the same key therefore differ
//! only inside literal tokens, and PostgreSQL parses them to trees that
//! differ only in constant values.
//!
//! That holds only where this lexer splits tokens exactly as PostgreSQL's
//! does, so anything it does not model gives no key (the statement is
//! analysed afresh, as without a cache): comments, dollar quoting, escape
//! and bit/hex/national/Unicode string prefixes (`E'…'`, `B'…'`, `X'…'`,
//! `N'…'`, `U&'…'`), Unicode identifiers (`U&"…"`) and `UESCAPE` (whose
//! literal decides what they spell), any backslash inside a string (whose
//! meaning depends on `standard_conforming_strings`), numbers run into
//! letters or underscores (`0x1F`, `1_000`, `1e`), unterminated tokens,
//! and long texts.
//!
//! Both halves of that claim are tested: keys are checked against
//! PostgreSQL's own lexer (`pg_query::scan`) on generated texts, and
//! statements with equal keys are checked to get equal analyses
//! (`tests/shapes.rs`).
//!
//! Sharing an analysis is sound only when the analysis did not read a
//! literal's value; [`crate::literals`] and [`crate::Analysis::cacheable`]
//! decide that.

/// Longest query text given a key: longer texts are rarely repeated and
/// their keys would cost as much memory as they save parsing.
pub const MAX_SHAPE_TEXT: usize = 8 * 1024;

/// The key for a string literal and for a numeric one: distinct, because
/// `'1'` and `1` have different types.
const STRING: &str = "\0s";
const NUMBER: &str = "\0n";

/// The shape of `sql`, or `None` when the text holds anything the lexer
/// does not model (see the module documentation).
pub fn shape_key(sql: &str) -> Option<String> {
    if sql.len() > MAX_SHAPE_TEXT {
        return None;
    }
    let b = sql.as_bytes();
    let mut key = String::with_capacity(sql.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' => {
                // A prefix letter (E, B, X, N) or `U&` changes the literal.
                if i > 0 && (is_ident(b[i - 1]) || b[i - 1] == b'&') {
                    return None;
                }
                i = string_end(b, i)?;
                key.push_str(STRING);
            }
            b'"' => {
                // `U&"…"` spells an identifier with escapes whose meaning
                // the UESCAPE literal after it decides.
                if i > 0 && b[i - 1] == b'&' {
                    return None;
                }
                let end = quoted_ident_end(b, i)?;
                key.push_str(&sql[i..end]);
                i = end;
            }
            b'$' => {
                // `$1` is a parameter; anything else here is dollar quoting.
                let end = digits_end(b, i + 1);
                if end == i + 1 {
                    return None;
                }
                key.push_str(&sql[i..end]);
                i = end;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => return None,
            b'/' if b.get(i + 1) == Some(&b'*') => return None,
            b'\\' | 0 => return None,
            // `..` is one token (DOT_DOT), and `..5` is not `.` then `.5`.
            b'.' if b.get(i + 1) == Some(&b'.') => return None,
            _ if c.is_ascii_digit()
                || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                i = number_end(b, i)?;
                key.push_str(NUMBER);
            }
            _ if is_ident_start(c) => {
                let end = ident_end(b, i);
                // UESCAPE's literal changes what the `U&` string or
                // identifier before it means.
                if sql[i..end].eq_ignore_ascii_case("uescape") {
                    return None;
                }
                key.push_str(&sql[i..end]);
                i = end;
            }
            _ => {
                // Operators, punctuation and whitespace, verbatim. `c` is
                // ASCII here: bytes >= 0x80 start identifiers.
                key.push(c as char);
                i += 1;
            }
        }
    }
    Some(key)
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

fn ident_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ident(b[i]) {
        i += 1;
    }
    i
}

fn digits_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// The end of `'…'` starting at `start` (`''` is a quote inside it); `None`
/// when unterminated or when it holds a backslash.
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match b.get(i)? {
            b'\\' => return None,
            b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The end of `"…"` starting at `start` (`""` is a quote inside it).
fn quoted_ident_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match b.get(i)? {
            b'"' if b.get(i + 1) == Some(&b'"') => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The end of a numeric literal: digits, an optional fraction, an optional
/// exponent. `None` when letters, `_` or another `.` run straight on.
fn number_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = digits_end(b, start);
    if b.get(i) == Some(&b'.') {
        // `1..2` is not a number followed by a range in SQL: leave it.
        if b.get(i + 1) == Some(&b'.') {
            return None;
        }
        i = digits_end(b, i + 1);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let end = digits_end(b, j);
        if end == j {
            return None;
        }
        i = end;
    }
    match b.get(i) {
        Some(&c) if is_ident(c) || c == b'.' => None,
        _ => Some(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) -> bool {
        let (ka, kb) = (shape_key(a), shape_key(b));
        ka.is_some() && ka == kb
    }

    #[test]
    fn literal_values_share_a_key() {
        assert!(same(
            "SELECT abalance FROM pgbench_accounts WHERE aid = 42;",
            "SELECT abalance FROM pgbench_accounts WHERE aid = 913177;",
        ));
        assert!(same(
            "SELECT * FROM t WHERE a = 'x' AND b IN (1.5, .5, 1e10, 2E-3)",
            "SELECT * FROM t WHERE a = 'it''s' AND b IN (7, 3.25, 9, 1)",
        ));
        assert!(same(
            "SELECT $1::int, 'é' FROM \"Odd \"\"Name\"\"\"",
            "SELECT $1::int, 'ü' FROM \"Odd \"\"Name\"\"\"",
        ));
    }

    #[test]
    fn anything_else_that_differs_gives_another_key() {
        for (a, b) in [
            ("SELECT a FROM t WHERE x = 1", "SELECT b FROM t WHERE x = 1"),
            ("SELECT a FROM t1", "SELECT a FROM t2"),
            ("SELECT 1", "SELECT '1'"),
            (
                "SELECT a FROM t WHERE x = $1",
                "SELECT a FROM t WHERE x = $2",
            ),
            ("SELECT \"a\" FROM t", "SELECT \"b\" FROM t"),
            ("SELECT x1 FROM t", "SELECT x2 FROM t"),
            ("SELECT 1 FROM t", "SELECT -1 FROM t"),
            ("SELECT a FROM t;", "SELECT a FROM t; DELETE FROM t"),
        ] {
            assert_ne!(shape_key(a), shape_key(b), "{a} / {b}");
        }
    }

    #[test]
    fn what_the_lexer_does_not_model_gets_no_key() {
        for sql in [
            "SELECT 1 -- comment",
            "SELECT /* c */ 1",
            "SELECT $$text$$",
            "SELECT $q$text$q$",
            "SELECT E'\\n'",
            "SELECT e'x'",
            "SELECT B'101', X'ff'",
            "SELECT N'x'",
            "SELECT U&'d\\0061t'",
            "SELECT 'a\\' , 1",
            "SELECT 0x1F",
            "SELECT 1_000",
            "SELECT 1e",
            "SELECT 1.2.3",
            "SELECT 'unterminated",
            "SELECT \"unterminated",
            "SELECT 1abc",
            "SELECT U&\"!0073sn\" UESCAPE '!' FROM customers",
            "SELECT U&\"d\\0061t\" FROM t",
            "SELECT a FROM t WHERE b = U&'!0061' uescape '!'",
        ] {
            assert_eq!(shape_key(sql), None, "{sql}");
        }
        assert_eq!(shape_key(&"x".repeat(MAX_SHAPE_TEXT + 1)), None);
    }

    #[test]
    fn identifiers_keep_digits_and_dollars() {
        // `t1`, `a$b` and `x_2` are identifiers, not literals.
        assert_eq!(
            shape_key("SELECT a$b, x_2 FROM t1 WHERE c = 3").unwrap(),
            "SELECT a$b, x_2 FROM t1 WHERE c = \0n"
        );
    }
}
