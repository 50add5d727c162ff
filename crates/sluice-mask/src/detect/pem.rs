//! PEM private key blocks: `-----BEGIN <label> PRIVATE KEY-----` (RSA, EC,
//! OPENSSH, ENCRYPTED, PGP … BLOCK) through the matching `-----END …-----`.
//! A block with no end (a truncated value) is masked to the end of the text:
//! half a key is still a secret. Certificates and public keys stay visible.

use super::util::find_from;
use super::{Finding, Kind};

pub(crate) fn find(t: &[u8], out: &mut Vec<Finding>) {
    let mut from = 0;
    while let Some(i) = find_from(t, b"-----BEGIN ", from) {
        from = i + 11;
        let Some(label_end) = find_from(t, b"-----", from) else {
            return;
        };
        let label = &t[from..label_end];
        if label.contains(&b'\n') || find_from(label, b"PRIVATE KEY", 0).is_none() {
            continue;
        }
        let mut end_marker = Vec::with_capacity(label.len() + 14);
        end_marker.extend_from_slice(b"-----END ");
        end_marker.extend_from_slice(label);
        end_marker.extend_from_slice(b"-----");
        let end = find_from(t, &end_marker, label_end + 5)
            .map(|e| e + end_marker.len())
            .unwrap_or(t.len());
        out.push(Finding {
            kind: Kind::Pem,
            start: i,
            end,
        });
        from = end;
    }
}
