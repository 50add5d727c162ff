//! The text an audit record keeps of a statement.
//!
//! The record must always identify what ran. Keeping the first bytes of
//! the text did not: a 9,000-byte comment in front left only the comment.
//! So the recorded text is the statement with its comments removed and
//! long literals elided (PostgreSQL's own lexer finds both), cut only if
//! it is still too long; whenever it differs from what the client sent,
//! the record adds a SHA-256 of the full text, so the exact statement can
//! be matched against a server log or a client's copy.

/// Literals longer than this are elided from the record.
pub const MAX_LITERAL: usize = 256;

/// The text to record for `sql`, at most `max` bytes (on a character
/// boundary), and whether it differs from `sql`.
pub fn audit_text(sql: &str, max: usize) -> (String, bool) {
    let plain = sql.len() <= max && !sql.contains("--") && !sql.contains("/*");
    if plain {
        return (sql.to_string(), false);
    }
    let mut text = normalized(sql).unwrap_or_else(|| sql.to_string());
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    let changed = text != sql;
    (text, changed)
}

/// `sql` without comments, with long literals elided; `None` when it does
/// not lex (it is refused then, and recorded as sent).
fn normalized(sql: &str) -> Option<String> {
    use pg_query::protobuf::Token;
    let scan = pg_query::scan(sql).ok()?;
    let mut out = String::with_capacity(sql.len().min(64 * 1024));
    let mut pos = 0;
    for t in &scan.tokens {
        let (start, end) = (t.start as usize, t.end as usize);
        let gap = sql.get(pos..start)?;
        pos = end;
        let token = sql.get(start..end)?;
        match Token::try_from(t.token) {
            Ok(Token::SqlComment | Token::CComment) => {
                out.push_str(gap);
                if !out.ends_with(char::is_whitespace) {
                    out.push(' ');
                }
                continue;
            }
            Ok(
                Token::Sconst
                | Token::Usconst
                | Token::Bconst
                | Token::Xconst
                | Token::Iconst
                | Token::Fconst,
            ) if token.len() > MAX_LITERAL => {
                out.push_str(gap);
                out.push_str(&format!("'…({} bytes elided)'", token.len()));
                continue;
            }
            _ => {}
        }
        out.push_str(gap);
        out.push_str(token);
    }
    out.push_str(sql.get(pos..)?);
    Some(out.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_comment_cannot_hide_the_statement() {
        let sql = format!("/* {} */ UPDATE orders SET total = 0", "x".repeat(9000));
        let (text, changed) = audit_text(&sql, 8192);
        assert!(changed);
        assert_eq!(text, "UPDATE orders SET total = 0");
        let sql = format!("-- {}\rDELETE FROM t", "y".repeat(9000));
        assert_eq!(audit_text(&sql, 8192).0, "DELETE FROM t");
    }

    #[test]
    fn long_literals_are_elided_and_short_statements_kept() {
        let sql = format!("INSERT INTO t VALUES ('{}', 1)", "z".repeat(100_000));
        let (text, changed) = audit_text(&sql, 8192);
        assert!(
            changed && text.starts_with("INSERT INTO t VALUES ('…(100002 bytes elided)', 1)"),
            "{text}"
        );
        assert_eq!(
            audit_text("SELECT 1", 8192),
            ("SELECT 1".to_string(), false)
        );
        // Only what is still too long is cut.
        let sql = format!("SELECT {}", vec!["1"; 5000].join(", "));
        let (text, changed) = audit_text(&sql, 8192);
        assert!(changed && text.len() <= 8192 + '…'.len_utf8() && text.ends_with('…'));
    }
}
