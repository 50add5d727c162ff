//! E-mail addresses: `local@domain.tld`, found around each `@`.
//!
//! The local part takes the characters people actually use (letters,
//! digits, `.`, `_`, `%`, `+`, `-`); the domain needs at least two labels
//! and an alphabetic top-level label of two or more letters, so `user@host`,
//! `@mentions` and `a@1.2` are left alone. A trailing dot (end of a
//! sentence) is not part of the address.

use super::{Finding, Kind};

pub(crate) fn find(t: &[u8], out: &mut Vec<Finding>) {
    let mut from = 0;
    while let Some(off) = t[from..].iter().position(|&b| b == b'@') {
        let at = from + off;
        from = at + 1;
        let Some(start) = local_start(t, at) else {
            continue;
        };
        let Some(end) = domain_end(t, at + 1) else {
            continue;
        };
        out.push(Finding {
            kind: Kind::Email,
            start,
            end,
        });
        from = end;
    }
}

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn local_start(t: &[u8], at: usize) -> Option<usize> {
    let mut s = at;
    while s > 0 && is_local(t[s - 1]) && at - s < 64 {
        s -= 1;
    }
    // A local part neither starts nor ends with a dot.
    while s < at && t[s] == b'.' {
        s += 1;
    }
    (s < at && t[at - 1] != b'.').then_some(s)
}

fn domain_end(t: &[u8], start: usize) -> Option<usize> {
    let mut p = start;
    let mut labels = 0;
    let mut last = (start, start);
    loop {
        let ls = p;
        let mut q = p;
        while q < t.len() && (t[q].is_ascii_alphanumeric() || t[q] == b'-') && q - ls < 63 {
            q += 1;
        }
        // An empty or dash-edged label ends the domain before it.
        if q == ls || t[ls] == b'-' || t[q - 1] == b'-' {
            break;
        }
        labels += 1;
        last = (ls, q);
        if q + 1 < t.len() && t[q] == b'.' && t[q + 1].is_ascii_alphanumeric() {
            p = q + 1;
        } else {
            break;
        }
    }
    let (ts, te) = last;
    let tld_ok = te - ts >= 2 && t[ts..te].iter().all(u8::is_ascii_alphabetic);
    (labels >= 2 && tld_ok).then_some(te)
}
