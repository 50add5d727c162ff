//! International bank account numbers: country code, two check digits and
//! the country's fixed-length account part, compact (`DE89370400440532013000`)
//! or in groups of four (`DE89 3704 0044 0532 0130 00`).
//!
//! Guards: the country must be one that issues IBANs and the length must be
//! that country's; the mod-97 checksum must hold (1 in 97 for a random
//! string); the number must stand alone. Upper case only, as IBANs are written.

use super::util::{before, next_word};
use super::{Finding, Kind};

/// IBAN lengths by country (SWIFT registry).
const LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SC", 31),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
];

pub(crate) fn find(t: &[u8], out: &mut Vec<Finding>) {
    let mut i = next_word(t, 0);
    while i + 15 <= t.len() {
        let head = &t[i..i + 4];
        let candidate = head[0].is_ascii_uppercase()
            && head[1].is_ascii_uppercase()
            && head[2].is_ascii_digit()
            && head[3].is_ascii_digit()
            && !before(t, i).is_ascii_alphanumeric();
        if candidate && let Some(end) = account(t, i) {
            out.push(Finding {
                kind: Kind::Iban,
                start: i,
                end,
            });
            i = next_word(t, end);
        } else {
            i = next_word(t, i + 1);
        }
    }
}

/// The end of a valid IBAN starting at `i`, if there is one.
fn account(t: &[u8], i: usize) -> Option<usize> {
    let country = [t[i], t[i + 1]];
    let want = LENGTHS.iter().find(|(c, _)| **c == country)?.1;
    let mut chars = [0u8; 34];
    let mut n = 0;
    let mut p = i;
    let mut grouped = None;
    while n < want {
        let b = *t.get(p)?;
        if b.is_ascii_uppercase() || b.is_ascii_digit() {
            chars[n] = b;
            n += 1;
            p += 1;
        } else if b == b' ' && n % 4 == 0 && grouped != Some(false) {
            grouped = Some(true);
            p += 1;
        } else {
            return None;
        }
        if n == 4 && grouped.is_none() && t.get(p).is_some_and(u8::is_ascii_alphanumeric) {
            grouped = Some(false);
        }
    }
    if t.get(p).is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    mod97(&chars[..n]).then_some(p)
}

/// ISO 13616: move the first four characters to the end, read letters as
/// 10–35, and the number mod 97 must be 1.
fn mod97(iban: &[u8]) -> bool {
    let (head, rest) = iban.split_at(4);
    let mut r = 0u32;
    for &b in rest.iter().chain(head) {
        r = if b.is_ascii_digit() {
            (r * 10 + u32::from(b - b'0')) % 97
        } else {
            (r * 100 + u32::from(b - b'A') + 10) % 97
        };
    }
    r == 1
}
