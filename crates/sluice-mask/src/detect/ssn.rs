//! US social security numbers in the written form `123-45-6789` (or with
//! spaces). Bare nine-digit runs are not flagged: too many ids, zip+4 codes
//! and amounts look the same; mask such columns with a column rule.
//!
//! Guards: the Social Security Administration never issues area 000, 666 or
//! 900–999, group 00 or serial 0000, and the number must stand alone.

use super::util::{clean_end, clean_start, digit_run};
use super::{Finding, Kind};

pub(crate) fn find(t: &[u8], range: std::ops::Range<usize>, out: &mut Vec<Finding>) {
    let mut i = range.start;
    while i + 11 <= range.end {
        if !t[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let run = digit_run(t, i);
        if run == 3 && clean_start(t, i) && matches(t, i) {
            out.push(Finding {
                kind: Kind::Ssn,
                start: i,
                end: i + 11,
            });
            i += 11;
        } else {
            i += run;
        }
    }
}

fn matches(t: &[u8], i: usize) -> bool {
    let sep = t[i + 3];
    if !(sep == b'-' || sep == b' ') || t[i + 6] != sep {
        return false;
    }
    if digit_run(t, i + 4) != 2 || digit_run(t, i + 7) != 4 || !clean_end(t, i + 11) {
        return false;
    }
    let num = |s: usize, e: usize| {
        t[s..e]
            .iter()
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'))
    };
    let (area, group, serial) = (num(i, i + 3), num(i + 4, i + 6), num(i + 7, i + 11));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}
