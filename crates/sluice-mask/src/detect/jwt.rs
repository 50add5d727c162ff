//! JSON Web Tokens: base64url segments joined by dots (three for a JWS,
//! five for a JWE) whose first segment decodes to a JSON object with an
//! `alg` member. The `eyJ` prefix (`{"` in base64) makes the search cheap;
//! the header check keeps other dotted base64 strings visible.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::util::{before, find_from};
use super::{Finding, Kind};

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

pub(crate) fn find(t: &[u8], out: &mut Vec<Finding>) {
    let mut from = 0;
    while let Some(i) = find_from(t, b"eyJ", from) {
        from = i + 3;
        if is_b64url(before(t, i)) {
            continue;
        }
        if let Some(end) = token_end(t, i) {
            out.push(Finding {
                kind: Kind::Jwt,
                start: i,
                end,
            });
            from = end;
        }
    }
}

fn token_end(t: &[u8], i: usize) -> Option<usize> {
    let seg_end = |s: usize| s + t[s..].iter().take_while(|&&b| is_b64url(b)).count();
    let header_end = seg_end(i);
    let mut segments = 1;
    let mut p = header_end;
    // The signature may be empty (`alg: none`), other segments may not.
    while segments < 5 && t.get(p) == Some(&b'.') {
        let e = seg_end(p + 1);
        if e == p + 1 && segments != 2 {
            break;
        }
        segments += 1;
        p = e;
    }
    if !(segments == 3 || segments == 5) || header_end - i < 10 || header_end - i > 2048 {
        return None;
    }
    let header = URL_SAFE_NO_PAD.decode(&t[i..header_end]).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&header).ok()?;
    value.get("alg")?.as_str()?;
    Some(p)
}
