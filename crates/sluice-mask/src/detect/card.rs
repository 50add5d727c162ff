//! Payment card numbers: 13–19 digits, optionally in groups separated by
//! one kind of separator (space or dash), Luhn-checked.
//!
//! False-positive guards, since a random number passes Luhn one time in ten:
//! the first digit must be a card network's (2–6: Mastercard, Amex, Diners,
//! JCB, Visa, Discover, UnionPay, Maestro); a grouped number starts with a
//! group of four and has groups of 3–6; the number must stand alone (no
//! letter or digit touching it, not part of a decimal like `1.2345…`); runs
//! of one repeated digit are ignored.

use super::util::{clean_end, clean_start, digit_run};
use super::{Finding, Kind};

const MAX_GROUPS: usize = 8;

pub(crate) fn find(t: &[u8], range: std::ops::Range<usize>, out: &mut Vec<Finding>) {
    let mut i = range.start;
    while i < range.end {
        if !t[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // Collect the run of digit groups joined by one separator kind.
        let mut groups = [(0usize, 0usize); MAX_GROUPS];
        let mut n = 0;
        let mut sep = 0u8;
        let mut p = i;
        loop {
            let len = digit_run(t, p);
            groups[n] = (p, p + len);
            n += 1;
            p += len;
            let s = t.get(p).copied().unwrap_or(0);
            let joins = (s == b' ' || s == b'-')
                && (sep == 0 || sep == s)
                && t.get(p + 1).is_some_and(u8::is_ascii_digit);
            if !joins || n == MAX_GROUPS {
                break;
            }
            sep = s;
            p += 1;
        }
        let run_end = groups[n - 1].1;
        check_run(t, &groups[..n], out);
        i = run_end.max(i + 1);
    }
}

/// Finds the card numbers among one run of groups: either the whole single
/// group, or, for grouped runs, the longest valid group sequence from each
/// starting group.
fn check_run(t: &[u8], groups: &[(usize, usize)], out: &mut Vec<Finding>) {
    if let [(s, e)] = groups {
        if (13..=19).contains(&(e - s))
            && clean_start(t, *s)
            && clean_end(t, *e)
            && valid(t, groups)
        {
            out.push(Finding {
                kind: Kind::Card,
                start: *s,
                end: *e,
            });
        }
        return;
    }
    let mut a = 0;
    while a < groups.len() {
        let mut best = None;
        let first_len = groups[a].1 - groups[a].0;
        if first_len == 4 && clean_start(t, groups[a].0) {
            let mut digits = 0;
            for b in a..groups.len() {
                let len = groups[b].1 - groups[b].0;
                if b > a && !(3..=6).contains(&len) {
                    break;
                }
                digits += len;
                if digits > 19 {
                    break;
                }
                if digits >= 13 && clean_end(t, groups[b].1) && valid(t, &groups[a..=b]) {
                    best = Some(b);
                }
            }
        }
        match best {
            Some(b) => {
                out.push(Finding {
                    kind: Kind::Card,
                    start: groups[a].0,
                    end: groups[b].1,
                });
                a = b + 1;
            }
            None => a += 1,
        }
    }
}

/// Network prefix, not one repeated digit, and the Luhn checksum.
fn valid(t: &[u8], groups: &[(usize, usize)]) -> bool {
    let digits = || {
        groups
            .iter()
            .flat_map(|&(s, e)| t[s..e].iter().map(|b| b - b'0'))
    };
    let first = digits().next().unwrap_or(0);
    if !(2..=6).contains(&first) || digits().all(|d| d == first) {
        return false;
    }
    let mut buf = [0u8; 19];
    let mut n = 0;
    for d in digits() {
        if n == buf.len() {
            return false;
        }
        buf[n] = d;
        n += 1;
    }
    luhn(&buf[..n])
}

/// The Luhn checksum over decimal digits (0–9 values, not ASCII).
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}
