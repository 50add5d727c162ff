//! Secrets in assignments: the value after `password=`, `token=`,
//! `secret:`, `"api_key": "…"`, `AWS_SECRET_ACCESS_KEY=…`, query strings
//! (`?access_token=…&`) and the like. Only the value is masked; the key name
//! stays, so the text keeps its meaning.
//!
//! The key must end with a keyword at a word boundary (`client_secret`,
//! `apiKey`, `x-api-key`, but not `monkey`). Two tiers decide whether the
//! value is a secret:
//! - password-like keys (`password`, `passwd`, `pwd`, `secret`, `passphrase`):
//!   any value of 4+ characters, since a password need not look random;
//! - other keys (`key`, `token`, `auth`, `credential`…): the value must look
//!   random — 16+ characters, Shannon entropy at or above [`MIN_ENTROPY`]
//!   bits per character ([`MIN_HEX_ENTROPY`] for hex, whose alphabet is
//!   smaller), and digits or mixed case.
//!
//! Placeholders (`${TOKEN}`, `<secret>`, `****`, `[REDACTED]`, `null`) are left
//! alone. Values stop at whitespace, quotes, backslashes and `,;&<>)}]`, so a
//! replacement never eats JSON or array syntax.

use super::util::{at, before};
use super::{Finding, Kind};

/// Bits per character a non-hex value needs to count as random.
pub const MIN_ENTROPY: f64 = 3.5;
/// Bits per character a hex value needs (16 symbols: at most 4 bits).
pub const MIN_HEX_ENTROPY: f64 = 3.0;
/// Shortest value the entropy test looks at.
const MIN_RANDOM_LEN: usize = 16;

const STRONG: &[&str] = &["password", "passwd", "pwd", "secret", "passphrase"];
const WEAK: &[&str] = &[
    "key",
    "apikey",
    "token",
    "auth",
    "authorization",
    "credential",
    "credentials",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tier {
    Strong,
    Weak,
}

pub(crate) fn find(t: &[u8], out: &mut Vec<Finding>) {
    let mut i = 0;
    while i < t.len() {
        let Some(off) = t[i..].iter().position(|&b| b == b'=' || b == b':') else {
            return;
        };
        i += off;
        let b = t[i];
        // Not `://`, `==` or `=>`; `:=` is an assignment too.
        let mut value_at = i + 1;
        if b == b':' && at(t, i + 1) == b'=' {
            value_at += 1;
        } else if matches!(at(t, i + 1), b'/' | b'=' | b'>') || before(t, i) == b'=' {
            i += 1;
            continue;
        }
        if let Some(tier) = key_tier(t, i)
            && let Some((vs, ve)) = value(t, value_at)
            && is_secret(&t[vs..ve], tier)
        {
            out.push(Finding {
                kind: Kind::Secret,
                start: vs,
                end: ve,
            });
            i = ve;
            continue;
        }
        i += 1;
    }
}

/// The tier of the key written just before the operator at `op`, if it is a
/// secret-bearing key.
fn key_tier(t: &[u8], op: usize) -> Option<Tier> {
    let mut e = op;
    while e > 0 && t[e - 1] == b' ' && op - e < 4 {
        e -= 1;
    }
    if e > 0 && (t[e - 1] == b'"' || t[e - 1] == b'\'') {
        e -= 1;
    }
    let mut s = e;
    while s > 0 && is_key_char(t[s - 1]) && e - s < 64 {
        s -= 1;
    }
    let key = &t[s..e];
    for (words, tier) in [(STRONG, Tier::Strong), (WEAK, Tier::Weak)] {
        for w in words {
            if ends_with_word(key, w.as_bytes()) {
                return Some(tier);
            }
        }
    }
    None
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// Whether `key` ends with `word` (ASCII case-insensitively) at a word
/// boundary: the whole key, after `_`, `-` or `.`, or a camelCase hump.
fn ends_with_word(key: &[u8], word: &[u8]) -> bool {
    if key.len() < word.len() {
        return false;
    }
    let at = key.len() - word.len();
    if !key[at..].eq_ignore_ascii_case(word) {
        return false;
    }
    if at == 0 {
        return true;
    }
    let prev = key[at - 1];
    matches!(prev, b'_' | b'-' | b'.')
        || (prev.is_ascii_lowercase() && key[at].is_ascii_uppercase())
}

/// The value after an operator: optional blanks, an optional quote, then
/// up to the closing quote or a delimiter. Skips an HTTP auth scheme word.
fn value(t: &[u8], mut p: usize) -> Option<(usize, usize)> {
    while at(t, p) == b' ' || at(t, p) == b'\t' {
        p += 1;
    }
    let quote = match at(t, p) {
        q @ (b'"' | b'\'') => {
            p += 1;
            Some(q)
        }
        _ => None,
    };
    for scheme in [&b"Bearer "[..], b"Basic ", b"Token "] {
        if t.get(p..p + scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        {
            p += scheme.len();
        }
    }
    let start = p;
    while p < t.len() {
        let b = t[p];
        let stop = match quote {
            Some(q) => b == q || b == b'\\' || b == b'\n',
            None => {
                b.is_ascii_whitespace()
                    || matches!(
                        b,
                        b'"' | b'\''
                            | b'\\'
                            | b','
                            | b';'
                            | b'&'
                            | b'<'
                            | b'>'
                            | b')'
                            | b'}'
                            | b']'
                    )
            }
        };
        if stop {
            break;
        }
        p += 1;
    }
    (p > start).then_some((start, p))
}

fn is_secret(v: &[u8], tier: Tier) -> bool {
    if is_placeholder(v) {
        return false;
    }
    match tier {
        Tier::Strong => v.len() >= 4,
        Tier::Weak => looks_random(v),
    }
}

fn is_placeholder(v: &[u8]) -> bool {
    let first = v[0];
    if matches!(first, b'$' | b'{' | b'<' | b'%' | b'[') || v.iter().all(|&b| b == first) {
        return true;
    }
    const WORDS: &[&str] = &["null", "none", "true", "false", "[redacted]", "redacted"];
    WORDS.iter().any(|w| v.eq_ignore_ascii_case(w.as_bytes())) || v.starts_with(b"hash:")
}

/// 16+ characters, digits or mixed case, and high Shannon entropy.
fn looks_random(v: &[u8]) -> bool {
    if v.len() < MIN_RANDOM_LEN || v.len() > 4096 {
        return false;
    }
    let digit = v.iter().any(u8::is_ascii_digit);
    let lower = v.iter().any(u8::is_ascii_lowercase);
    let upper = v.iter().any(u8::is_ascii_uppercase);
    if !(digit && (lower || upper) || lower && upper) {
        return false;
    }
    let hex = v.iter().all(u8::is_ascii_hexdigit);
    entropy(v) >= if hex { MIN_HEX_ENTROPY } else { MIN_ENTROPY }
}

/// Shannon entropy in bits per byte.
pub(crate) fn entropy(v: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in v {
        counts[b as usize] += 1;
    }
    let n = v.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}
