//! The masking detectors on arbitrary bytes. Oracles: findings are in
//! bounds, ordered, non-overlapping, and on character boundaries of UTF-8
//! text (so replacing them keeps it valid); every card finding passes a slow
//! reference Luhn check and every IBAN finding a reference mod-97 check;
//! and a valid card number planted alone on a line is always found.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_mask::{Detectors, Kind};

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

fn iban_ok(text: &[u8]) -> bool {
    let chars: Vec<u8> = text
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if chars.len() < 5 {
        return false;
    }
    let rearranged = [&chars[4..], &chars[..4]].concat();
    let mut rem: u64 = 0;
    for c in rearranged {
        let v = match c {
            b'0'..=b'9' => u64::from(c - b'0'),
            b'A'..=b'Z' => u64::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// A 16-digit Visa-like number from `seed` with its Luhn check digit.
fn card_from(seed: &[u8]) -> Vec<u8> {
    let mut d: Vec<u8> = vec![b'4'];
    for i in 0..14 {
        d.push(b'0' + seed.get(i).copied().unwrap_or(7) % 10);
    }
    if d[1..].iter().all(|&c| c == d[1]) {
        d[2] = b'0' + (d[1] - b'0' + 1) % 10;
    }
    for check in b'0'..=b'9' {
        let mut t = d.clone();
        t.push(check);
        if luhn(&t) {
            return t;
        }
    }
    unreachable!("one check digit always fits")
}

fuzz_target!(|data: &[u8]| {
    let found = Detectors::ALL.find_all(data);
    let mut last = 0;
    for f in &found {
        assert!(f.start < f.end && f.end <= data.len(), "{f:?}");
        assert!(f.start >= last, "ordered, not overlapping: {found:?}");
        // Scanners split only at ASCII bytes: in UTF-8 text a span starts
        // and ends on character boundaries.
        if let Ok(text) = std::str::from_utf8(data) {
            assert!(
                text.is_char_boundary(f.start) && text.is_char_boundary(f.end),
                "{f:?}"
            );
        }
        last = f.end;
        let span = &data[f.start..f.end];
        match f.kind {
            Kind::Card => {
                let digits: Vec<u8> = span.iter().copied().filter(u8::is_ascii_digit).collect();
                assert!(
                    (13..=19).contains(&digits.len()) && luhn(&digits),
                    "{span:?}"
                );
            }
            Kind::Iban => assert!(iban_ok(span), "{span:?}"),
            _ => {}
        }
    }
    // Completeness: a valid number alone on its line is found.
    let card = card_from(data);
    let at = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let planted = [&data[..at], b"\n", &card, b"\n", &data[at..]].concat();
    let cards = Detectors::only(Kind::Card).find_all(&planted);
    let start = at + 1;
    assert!(
        cards
            .iter()
            .any(|f| f.start == start && f.end == start + card.len()),
        "the planted card {:?} was not found in {planted:?}: {cards:?}",
        String::from_utf8_lossy(&card)
    );
});
