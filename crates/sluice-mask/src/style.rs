//! Mask styles: what a masked value becomes.
//!
//! - `redact`: the fixed text [`REDACTED`] (`[REDACTED]`). Chosen over `****`
//!   so that an agent reading the result knows the value was withheld rather
//!   than stored as asterisks.
//! - `partial`: the value's shape with most of it starred: the last four
//!   digits of a card, SSN or phone (`**** **** **** 1111`, `***-**-6789`),
//!   the country and last four of an IBAN, `****@domain` for an e-mail.
//!   Keys, tokens and secrets have no safe part and are redacted.
//! - `hash`: `hash:` + 16 hex digits of a keyed HMAC-SHA256, stable across
//!   rows and sessions with the same key. Detected values are normalised
//!   first (digits only for numbers, lower case for e-mail), so the same card
//!   written two ways hashes the same.
//! - `null`: SQL NULL (for a detector: the whole value).
//!
//! Every replacement is ASCII without quotes or backslashes (except what a
//! `partial` keeps of the original), so it is safe inside JSON strings,
//! array literals and COPY fields.

use sluice_core::config::MaskStyle;

use crate::detect::Kind;
use crate::hash::HashKey;

/// The `redact` mask.
pub const REDACTED: &[u8] = b"[REDACTED]";
/// What `partial` puts in place of an e-mail's local part.
const LOCAL_MASK: &[u8] = b"****";

/// Appends the masked form of one detected value of `kind` to `out`.
/// `Null` is decided by the caller (the whole value becomes NULL); here it
/// redacts. `Hash` without a key redacts too (a [`crate::Masker`] never has that).
pub(crate) fn mask_finding(
    kind: Kind,
    span: &[u8],
    style: MaskStyle,
    key: Option<&HashKey>,
    out: &mut Vec<u8>,
) {
    match (style, key) {
        (MaskStyle::Partial, _) => match kind {
            Kind::Card | Kind::Ssn | Kind::Phone => keep_last(span, 4, 0, out),
            Kind::Iban => keep_last(span, 4, 2, out),
            Kind::Email => email_partial(span, out),
            Kind::AwsKey | Kind::Jwt | Kind::Pem | Kind::Secret => out.extend_from_slice(REDACTED),
        },
        (MaskStyle::Hash, Some(key)) => key.tag_into(&normalize(kind, span), out),
        _ => out.extend_from_slice(REDACTED),
    }
}

/// The masked form of a whole value under a column rule; `None` is NULL.
pub(crate) fn mask_whole(value: &[u8], style: MaskStyle, key: Option<&HashKey>) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(value.len().max(16));
    mask_whole_into(value, style, key, &mut out).then_some(out)
}

/// As [`mask_whole`], appending to `out`; false (nothing written) for NULL.
pub(crate) fn mask_whole_into(
    value: &[u8],
    style: MaskStyle,
    key: Option<&HashKey>,
    out: &mut Vec<u8>,
) -> bool {
    match (style, key) {
        (MaskStyle::Null, _) => return false,
        (MaskStyle::Partial, _) => partial_whole(value, out),
        (MaskStyle::Hash, Some(key)) => key.tag_into(value, out),
        _ => out.extend_from_slice(REDACTED),
    }
    true
}

/// Stars every ASCII letter or digit except the first `head` and the last
/// `tail`, keeping separators: `4111-1111-1111-1111` → `****-****-****-1111`.
fn keep_last(span: &[u8], tail: usize, head: usize, out: &mut Vec<u8>) {
    let total = span.iter().filter(|b| b.is_ascii_alphanumeric()).count();
    let mut seen = 0;
    for &b in span {
        if b.is_ascii_alphanumeric() {
            seen += 1;
            if seen <= head || seen + tail > total {
                out.push(b);
            } else {
                out.push(b'*');
            }
        } else {
            out.push(b);
        }
    }
}

/// `alice@example.com` → `****@example.com`: the length of the local part
/// is hidden too.
fn email_partial(span: &[u8], out: &mut Vec<u8>) {
    match span.iter().rposition(|&b| b == b'@') {
        Some(at) => {
            out.extend_from_slice(LOCAL_MASK);
            out.extend_from_slice(&span[at..]);
        }
        None => out.extend_from_slice(REDACTED),
    }
}

/// `partial` for a whole column value of unknown shape: an e-mail keeps its
/// domain; anything else keeps its last four letters or digits when it has
/// at least eight (fewer would reveal too much of it) and stars the rest,
/// one `*` per character, keeping punctuation and spaces.
fn partial_whole(value: &[u8], out: &mut Vec<u8>) {
    if let Some(at) = value.iter().rposition(|&b| b == b'@') {
        let domain = &value[at + 1..];
        if domain.contains(&b'.')
            && domain
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b".-".contains(b))
        {
            out.extend_from_slice(LOCAL_MASK);
            out.extend_from_slice(&value[at..]);
            return;
        }
    }
    if value.is_ascii() {
        return partial_ascii(value, out);
    }
    match std::str::from_utf8(value) {
        Ok(text) => partial_chars(text, out),
        Err(_) => out.extend_from_slice(REDACTED),
    }
}

/// [`partial_whole`] of any text, character by character.
fn partial_chars(text: &str, out: &mut Vec<u8>) {
    let total = text.chars().filter(|c| c.is_alphanumeric()).count();
    let keep = if total >= 8 { 4 } else { 0 };
    let mut seen = 0;
    let mut buf = [0u8; 4];
    for c in text.chars() {
        if c.is_alphanumeric() {
            seen += 1;
            if seen + keep > total {
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            } else {
                out.push(b'*');
            }
        } else if c.is_ascii() {
            out.push(c as u8);
        } else {
            out.push(b'*');
        }
    }
}

/// [`partial_whole`] of ASCII text, byte by byte: the same result as the
/// character loop (an ASCII character is alphanumeric exactly when its byte
/// is), without decoding.
fn partial_ascii(value: &[u8], out: &mut Vec<u8>) {
    let total = value.iter().filter(|b| b.is_ascii_alphanumeric()).count();
    let mut stars = if total >= 8 { total - 4 } else { total };
    let start = out.len();
    out.extend_from_slice(value);
    for b in &mut out[start..] {
        if stars == 0 {
            break;
        }
        if b.is_ascii_alphanumeric() {
            *b = b'*';
            stars -= 1;
        }
    }
}

/// The canonical form of a detected value for hashing.
fn normalize(kind: Kind, span: &[u8]) -> Vec<u8> {
    match kind {
        Kind::Card | Kind::Ssn | Kind::Phone | Kind::Iban => span
            .iter()
            .filter(|b| b.is_ascii_alphanumeric())
            .map(u8::to_ascii_uppercase)
            .collect(),
        Kind::Email => span.to_ascii_lowercase(),
        _ => span.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(kind: Kind, span: &str, style: MaskStyle, key: Option<&HashKey>) -> String {
        let mut out = Vec::new();
        mask_finding(kind, span.as_bytes(), style, key, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn whole(value: &str, style: MaskStyle) -> Option<String> {
        mask_whole(value.as_bytes(), style, None).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn partial_keeps_the_recognisable_part() {
        use MaskStyle::Partial as P;
        assert_eq!(
            finding(Kind::Card, "4111-1111-1111-1111", P, None),
            "****-****-****-1111"
        );
        assert_eq!(
            finding(Kind::Card, "4111111111111111", P, None),
            "************1111"
        );
        assert_eq!(finding(Kind::Ssn, "123-45-6789", P, None), "***-**-6789");
        assert_eq!(
            finding(Kind::Phone, "+1-415-555-0100", P, None),
            "+*-***-***-0100"
        );
        assert_eq!(
            finding(Kind::Phone, "(415) 555-0100", P, None),
            "(***) ***-0100"
        );
        assert_eq!(
            finding(Kind::Email, "alice@example.com", P, None),
            "****@example.com"
        );
        assert_eq!(
            finding(Kind::Iban, "DE89 3704 0044 0532 0130 00", P, None),
            "DE** **** **** **** **30 00"
        );
        for kind in [Kind::AwsKey, Kind::Jwt, Kind::Pem, Kind::Secret] {
            assert_eq!(finding(kind, "AKIAIOSFODNN7EXAMPLE", P, None), "[REDACTED]");
        }
    }

    #[test]
    fn whole_values() {
        assert_eq!(
            whole("4111111111111111", MaskStyle::Partial).unwrap(),
            "************1111"
        );
        assert_eq!(
            whole("bob@example.org", MaskStyle::Partial).unwrap(),
            "****@example.org"
        );
        assert_eq!(
            whole("123-45-6789", MaskStyle::Partial).unwrap(),
            "***-**-6789"
        );
        assert_eq!(whole("short", MaskStyle::Partial).unwrap(), "*****");
        assert_eq!(
            whole("Zoë Müller-Lüdenscheidt", MaskStyle::Partial).unwrap(),
            "*** ******-********eidt"
        );
        assert_eq!(whole("anything", MaskStyle::Redact).unwrap(), "[REDACTED]");
        assert_eq!(whole("anything", MaskStyle::Null), None);
        // hash without a key never leaks the value
        assert_eq!(whole("anything", MaskStyle::Hash).unwrap(), "[REDACTED]");
        assert_eq!(
            mask_whole(b"\xff\xfe", MaskStyle::Partial, None).unwrap(),
            REDACTED
        );
    }

    proptest::proptest! {
        #[test]
        fn the_ascii_partial_is_the_character_partial(v in "[ -~]{0,40}") {
            let (mut fast, mut chars) = (Vec::new(), Vec::new());
            partial_ascii(v.as_bytes(), &mut fast);
            partial_chars(&v, &mut chars);
            proptest::prop_assert_eq!(fast, chars);
        }
    }

    #[test]
    fn hash_is_stable_keyed_and_normalised() {
        let k1 = HashKey::new(b"key one");
        let k2 = HashKey::new(b"key two");
        let h = |k: &HashKey, kind, s: &str| finding(kind, s, MaskStyle::Hash, Some(k));
        let a = h(&k1, Kind::Card, "4111 1111 1111 1111");
        assert_eq!(a, h(&k1, Kind::Card, "4111-1111-1111-1111"));
        assert_eq!(a, h(&k1, Kind::Card, "4111111111111111"));
        assert_ne!(a, h(&k2, Kind::Card, "4111111111111111"));
        assert_ne!(a, h(&k1, Kind::Card, "5555555555554444"));
        assert_eq!(h(&k1, Kind::Email, "A@B.io"), h(&k1, Kind::Email, "a@b.io"));
        assert!(a.starts_with("hash:") && a.len() == 21, "{a}");
        assert!(a[5..].bytes().all(|b| b.is_ascii_hexdigit()));
        let w = mask_whole(b"x", MaskStyle::Hash, Some(&k1)).unwrap();
        assert_eq!(w, mask_whole(b"x", MaskStyle::Hash, Some(&k1)).unwrap());
        assert!(!format!("{k1:?}").contains("key one"));
    }
}
