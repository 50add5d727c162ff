//! Phone numbers: international E.164 (`+1-415-555-0100`, `+44 20 7946
//! 0958`, `+14155550100`) and North American national forms (`(415)
//! 555-0100`, `415-555-0100`, `415.555.0100`, `1-415-555-0100`).
//!
//! Guards against ordinary numbers: a national number must have the 3-3-4
//! shape with separators and valid area/exchange codes (first digit 2–9);
//! bare ten-digit runs, dates (4-2-2) and amounts are left alone. An
//! international number needs a `+` not glued to a word or digit, 8–15
//! digits, and must stand alone.

use super::util::{at, before, clean_end, clean_start, digit_run};
use super::{Finding, Kind};

pub(crate) fn find(t: &[u8], range: std::ops::Range<usize>, out: &mut Vec<Finding>) {
    let mut i = range.start;
    while i < range.end {
        let b = t[i];
        let found = if b == b'+' {
            international(t, i)
        } else if b.is_ascii_digit() || b == b'(' {
            national(t, i)
        } else {
            None
        };
        match found {
            Some(end) => {
                out.push(Finding {
                    kind: Kind::Phone,
                    start: i,
                    end,
                });
                i = end;
            }
            // Skip the rest of a digit run: a number never starts inside one.
            None if b.is_ascii_digit() => i += digit_run(t, i),
            None => i += 1,
        }
    }
}

fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.')
}

/// `+` then 8–15 digits, with single separators or parentheses between groups.
fn international(t: &[u8], i: usize) -> Option<usize> {
    let prev = before(t, i);
    if prev.is_ascii_alphanumeric() || prev == b'+' {
        return None;
    }
    if !matches!(at(t, i + 1), b'1'..=b'9') {
        return None;
    }
    let mut p = i + 1;
    let mut digits = 0;
    let mut end = p;
    let mut seps = 0; // consecutive separator bytes
    while p < t.len() {
        let b = t[p];
        if b.is_ascii_digit() {
            digits += 1;
            seps = 0;
            p += 1;
            end = p;
        } else if (is_sep(b) || b == b'(' || b == b')') && seps < 2 {
            seps += 1;
            p += 1;
        } else {
            break;
        }
    }
    ((8..=15).contains(&digits) && clean_end(t, end)).then_some(end)
}

/// North American `[1-](NXX) NXX-XXXX` or `[1-]NXX-NXX-XXXX`.
fn national(t: &[u8], i: usize) -> Option<usize> {
    if !clean_start(t, i) || before(t, i) == b'+' || before(t, i) == b'(' {
        return None;
    }
    let mut p = i;
    // Optional trunk prefix "1" and a separator.
    if at(t, p) == b'1' && is_sep(at(t, p + 1)) && matches!(at(t, p + 2), b'(' | b'2'..=b'9') {
        p += 2;
    }
    // Area code: "(NXX)" optionally followed by one separator, or "NXX" + separator.
    if at(t, p) == b'(' {
        if digit_run(t, p + 1) != 3 || at(t, p + 4) != b')' {
            return None;
        }
        if !matches!(at(t, p + 1), b'2'..=b'9') {
            return None;
        }
        p += 5;
        if matches!(at(t, p), b' ' | b'-') {
            p += 1;
        }
    } else {
        if digit_run(t, p) != 3 || !matches!(at(t, p), b'2'..=b'9') || !is_sep(at(t, p + 3)) {
            return None;
        }
        p += 4;
    }
    // Exchange "NXX", separator, line "XXXX".
    if digit_run(t, p) != 3 || !matches!(at(t, p), b'2'..=b'9') || !is_sep(at(t, p + 3)) {
        return None;
    }
    p += 4;
    if digit_run(t, p) != 4 {
        return None;
    }
    p += 4;
    clean_end(t, p).then_some(p)
}
