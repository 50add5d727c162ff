//! One shell word: what it is before it runs (its text, when nothing in it
//! is computed at run time) and the commands it runs to be computed
//! (command substitutions, found and analysed like any command).

use brush_parser::ParserOptions;
use brush_parser::word::{self, ParameterExpr, WordPiece};

/// A word as the analysis sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word as written, for the record.
    pub source: String,
    /// Its value after quote removal, when nothing in it is computed at
    /// run time (no expansion, no substitution).
    pub literal: Option<String>,
    /// Command lines run to compute it (command substitutions).
    pub substitutions: Vec<String>,
    /// Why it cannot be judged at all (an arithmetic or a parameter
    /// operator that runs code), if so.
    pub opaque: Option<String>,
}

/// Analyses the word `source`.
pub fn analyse(source: &str, options: &ParserOptions) -> Word {
    let mut w = Word {
        source: source.to_string(),
        literal: Some(String::new()),
        substitutions: Vec::new(),
        opaque: None,
    };
    match word::parse(source, options) {
        Ok(pieces) => {
            for p in pieces {
                piece(&p.piece, &mut w);
            }
        }
        Err(e) => {
            w.literal = None;
            w.opaque = Some(format!("the word {source:?} could not be read: {e}"));
        }
    }
    w
}

fn dynamic(w: &mut Word) {
    w.literal = None;
}

fn text(w: &mut Word, s: &str) {
    if let Some(l) = &mut w.literal {
        l.push_str(s);
    }
}

fn piece(p: &WordPiece, w: &mut Word) {
    match p {
        // Unquoted text may still change when the line runs: filename
        // globs (`-ex?c` matches a file named `-exec`) and brace
        // expansion (`-exe{c,}` is two words, `-exec` first).
        WordPiece::Text(s) if expands(s) => dynamic(w),
        WordPiece::Text(s) | WordPiece::SingleQuotedText(s) => text(w, s),
        // Escapes are kept as written; their value is the character after
        // the backslash, or (ANSI-C quoting) a control character: either
        // way, only a literal.
        WordPiece::EscapeSequence(s) => text(w, s.strip_prefix('\\').unwrap_or(s)),
        WordPiece::AnsiCQuotedText(_) => dynamic(w),
        WordPiece::DoubleQuotedSequence(inner) | WordPiece::GettextDoubleQuotedSequence(inner) => {
            for i in inner {
                piece(&i.piece, w);
            }
        }
        WordPiece::TildeExpansion(_) => dynamic(w),
        WordPiece::ParameterExpansion(expr) => {
            dynamic(w);
            parameter(expr, w);
        }
        WordPiece::CommandSubstitution(s) | WordPiece::BackquotedCommandSubstitution(s) => {
            dynamic(w);
            w.substitutions.push(s.clone());
        }
        WordPiece::ArithmeticExpression(e) => {
            dynamic(w);
            if runs_code(&e.value) {
                w.opaque = Some("an arithmetic expression that runs a command".into());
            }
        }
    }
}

/// A parameter expansion is computed at run time; one whose default or
/// alternative text runs a command (`${x:-$(rm -rf ~)}`) cannot be judged.
fn parameter(expr: &ParameterExpr, w: &mut Word) {
    if let ParameterExpr::Parameter { .. } = expr {
        return;
    }
    let text = format!("{expr:?}");
    if runs_code(&text) {
        w.opaque = Some("a parameter expansion whose value runs a command".into());
    }
}

/// Whether unquoted text is expanded by the shell: globs (and extended
/// globs) and brace expansion.
fn expands(s: &str) -> bool {
    s.contains(['*', '?', '['])
        || ["@(", "!(", "+("].iter().any(|g| s.contains(g))
        || (s.contains('{') && s.contains('}') && (s.contains(',') || s.contains("..")))
}

/// Whether text (an arithmetic expression, a parameter operator's word)
/// holds a command substitution.
fn runs_code(text: &str) -> bool {
    text.contains("$(") || text.contains('`') || text.contains("<(") || text.contains(">(")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Word {
        analyse(s, &ParserOptions::default())
    }

    #[test]
    fn quotes_are_removed_from_literals() {
        assert_eq!(w("'a b'").literal.as_deref(), Some("a b"));
        assert_eq!(w("\"x\"y").literal.as_deref(), Some("xy"));
        assert_eq!(w(r"r\m").literal.as_deref(), Some("rm"));
    }

    #[test]
    fn computed_words_have_no_literal_and_name_what_they_run() {
        let x = w("$(echo rm)");
        assert_eq!(x.literal, None);
        assert_eq!(x.substitutions, ["echo rm"]);
        assert_eq!(w("`id`").substitutions, ["id"]);
        assert_eq!(w("\"$HOME\"").literal, None);
        assert_eq!(w("~/x").literal, None);
        assert!(w("$((1 + $(id -u)))").opaque.is_some());
        assert!(w("${x:-$(rm -rf ~)}").opaque.is_some());
        assert!(w("${x:-y}").opaque.is_none());
    }

    #[test]
    fn globs_and_braces_are_computed_when_unquoted() {
        assert_eq!(w("-ex?c").literal, None);
        assert_eq!(w("-exe{c,}").literal, None);
        assert_eq!(w("{1..3}").literal, None);
        assert_eq!(w("'*.log'").literal.as_deref(), Some("*.log"));
        assert_eq!(w("a,b").literal.as_deref(), Some("a,b"));
    }
}
