//! AWS access key ids: `AKIA` (long-term) or `ASIA` (temporary) and 16
//! upper-case letters or digits, standing alone. Other `A…A` ids (roles,
//! users) are identifiers, not credentials, and are left alone.

use super::util::{at, before, next_word};
use super::{Finding, Kind};

pub(crate) fn find(t: &[u8], out: &mut Vec<Finding>) {
    let mut i = next_word(t, 0);
    while i + 20 <= t.len() {
        let prefix = &t[i..i + 4];
        let hit = (prefix == b"AKIA" || prefix == b"ASIA")
            && !before(t, i).is_ascii_alphanumeric()
            && t[i + 4..i + 20]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && !at(t, i + 20).is_ascii_alphanumeric();
        if hit {
            out.push(Finding {
                kind: Kind::AwsKey,
                start: i,
                end: i + 20,
            });
            i = next_word(t, i + 20);
        } else {
            i = next_word(t, i + 1);
        }
    }
}
