//! Error and notice texts in a masked session.
//!
//! The backend quotes row values in its messages: a constraint violation's
//! DETAIL is `Failing row contains (1, Ada, ada@example.com, 123-45-6789)`,
//! a unique violation's is `Key (email)=(ada@example.com) already exists`,
//! a cast's message is `invalid input syntax for type integer: "…"`. So in
//! a masked session every ErrorResponse and NoticeResponse goes through
//! the same protection as result rows:
//!
//! - for data exceptions (SQLSTATE class 22) and integrity violations (23),
//!   DETAIL and CONTEXT are replaced by a note; a data exception's
//!   message has its double-quoted text (the offending value) elided;
//! - the value detectors (cards, e-mail, keys, …) mask every remaining
//!   text field of every error and notice;
//! - the internal-query field (`q`), which quotes SQL run inside a
//!   function, is dropped.
//!
//! The audit outcome keeps the scrubbed message, as the client sees it.

use bytes::{BufMut, BytesMut};
use sluice_mask::{MaskStats, Masker};

use crate::codec::take_cstr;

/// What replaces a withheld DETAIL or CONTEXT.
const WITHHELD: &str = "(withheld by sluice: it may quote masked values)";

/// The fields of a backend ErrorResponse/NoticeResponse body, scrubbed;
/// `None` when nothing had to change. `frame` is the whole message.
pub fn scrub(frame: &[u8], masker: &Masker, stats: &mut MaskStats) -> Option<Vec<u8>> {
    let tag = *frame.first()?;
    let fields = fields(frame.get(5..)?)?;
    let code = fields.iter().find(|(c, _)| *c == b'C').map(|(_, v)| *v);
    let data_class = code.is_some_and(|c| c.starts_with("22") || c.starts_with("23"));
    // Data exceptions quote the offending value in the message itself;
    // integrity violations name constraints and relations there.
    let quotes_value = code.is_some_and(|c| c.starts_with("22"));
    let mut changed = false;
    let mut out: Vec<(u8, Vec<u8>)> = Vec::with_capacity(fields.len());
    for (code, value) in fields {
        let value: Vec<u8> = match code {
            b'q' => {
                changed = true;
                continue;
            }
            b'D' | b'W' if data_class => {
                changed = true;
                WITHHELD.as_bytes().to_vec()
            }
            b'M' if quotes_value => {
                let elided = elide_quoted(value);
                changed |= elided != value;
                elided.into_bytes()
            }
            _ => value.as_bytes().to_vec(),
        };
        let masked = match code {
            b'M' | b'D' | b'H' | b'W' => match masker.mask_text(&value, stats) {
                Some(v) if *v != value[..] => {
                    changed = true;
                    v.into_owned()
                }
                Some(_) => value,
                None => {
                    changed = true;
                    WITHHELD.as_bytes().to_vec()
                }
            },
            _ => value,
        };
        out.push((code, masked));
    }
    changed.then(|| encode(tag, &out))
}

/// A NotificationResponse (`NOTIFY`, `pg_notify`) as a masked session's
/// client may see it: other sessions' payloads (a trigger's
/// `pg_notify(…, row_to_json(NEW)::text)`) go through the value detectors.
pub fn scrub_notification(frame: &[u8], masker: &Masker, stats: &mut MaskStats) -> Option<Vec<u8>> {
    let mut body = frame.get(5..)?;
    let pid = body.get(..4)?.to_vec();
    body = &body[4..];
    let channel = take_cstr(&mut body)?;
    let payload = take_cstr(&mut body)?;
    let masked = match masker.mask_text(payload.as_bytes(), stats) {
        Some(v) if *v == *payload.as_bytes() => return None,
        Some(v) => v.into_owned(),
        None => WITHHELD.as_bytes().to_vec(),
    };
    let mut b = BytesMut::new();
    b.put_u8(b'A');
    b.put_i32(0);
    b.put_slice(&pid);
    b.put_slice(channel.as_bytes());
    b.put_u8(0);
    b.put_slice(&masked);
    b.put_u8(0);
    let len = (b.len() - 1) as i32;
    b[1..5].copy_from_slice(&len.to_be_bytes());
    Some(b.to_vec())
}

fn fields(mut body: &[u8]) -> Option<Vec<(u8, &str)>> {
    let mut out = Vec::new();
    loop {
        let (&code, rest) = body.split_first()?;
        if code == 0 {
            return Some(out);
        }
        body = rest;
        out.push((code, take_cstr(&mut body)?));
    }
}

/// `invalid input syntax for type integer: "Ada"` → `…: "…"`.
fn elide_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        match (c, inside) {
            ('"', false) => {
                out.push_str("\"…");
                inside = true;
            }
            ('"', true) => {
                out.push('"');
                inside = false;
            }
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    if inside {
        out.push('"');
    }
    out
}

fn encode(tag: u8, fields: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_u8(tag);
    b.put_i32(0);
    for (code, value) in fields {
        b.put_u8(*code);
        // A NUL inside would end the field early: there is none in text
        // the backend sent, and the masks write none.
        b.put_slice(value);
        b.put_u8(0);
    }
    b.put_u8(0);
    let len = (b.len() - 1) as i32;
    b[1..5].copy_from_slice(&len.to_be_bytes());
    b.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::config::MaskingConfig;

    fn masker() -> Masker {
        let config: MaskingConfig = toml::from_str("columns = []").unwrap();
        Masker::from_config(&config).unwrap()
    }

    fn error(fields: &[(u8, &str)]) -> Vec<u8> {
        let owned: Vec<(u8, Vec<u8>)> = fields
            .iter()
            .map(|(c, v)| (*c, v.as_bytes().to_vec()))
            .collect();
        encode(b'E', &owned)
    }

    fn stats() -> MaskStats {
        masker().new_stats()
    }

    fn text(frame: &[u8]) -> String {
        String::from_utf8_lossy(frame).to_string()
    }

    #[test]
    fn a_failing_row_is_withheld() {
        let e = error(&[
            (b'S', "ERROR"),
            (b'C', "23514"),
            (
                b'M',
                "new row for relation \"customers\" violates check constraint \"pin\"",
            ),
            (
                b'D',
                "Failing row contains (1, Ada, ada@example.com, 123-45-6789, -1).",
            ),
            (b't', "customers"),
            (b'n', "pin"),
        ]);
        let out = scrub(&e, &masker(), &mut stats()).unwrap();
        let t = text(&out);
        assert!(!t.contains("123-45-6789") && !t.contains("ada@"), "{t}");
        assert!(
            t.contains("23514") && t.contains("customers") && t.contains("withheld"),
            "{t}"
        );
        // The frame is well formed: its fields read back.
        assert_eq!(fields(&out[5..]).unwrap().len(), 6);
        let len = i32::from_be_bytes(out[1..5].try_into().unwrap()) as usize;
        assert_eq!(len + 1, out.len());
    }

    #[test]
    fn a_quoted_value_in_a_data_exception_is_elided() {
        let e = error(&[
            (b'S', "ERROR"),
            (b'C', "22P02"),
            (
                b'M',
                "invalid input syntax for type integer: \"{\"ssn\": \"123-45-6789\"}\"",
            ),
        ]);
        let t = text(&scrub(&e, &masker(), &mut stats()).unwrap());
        assert!(
            !t.contains("123-45-6789") && t.contains("type integer: \"…"),
            "{t}"
        );
    }

    #[test]
    fn notification_payloads_are_masked() {
        let mut b = BytesMut::new();
        b.put_u8(b'A');
        b.put_i32(0);
        b.put_i32(4242);
        b.put_slice(b"orders\0{\"email\": \"ada@example.com\"}\0");
        let len = (b.len() - 1) as i32;
        b[1..5].copy_from_slice(&len.to_be_bytes());
        let out = scrub_notification(&b, &masker(), &mut stats()).unwrap();
        let t = text(&out);
        assert!(
            !t.contains("ada@example.com") && t.contains("orders"),
            "{t}"
        );
        assert_eq!(
            i32::from_be_bytes(out[1..5].try_into().unwrap()) as usize + 1,
            out.len()
        );
    }

    #[test]
    fn detectors_mask_every_other_error_and_notices() {
        let e = error(&[
            (b'S', "ERROR"),
            (b'C', "42703"),
            (b'M', "column \"ada@example.com\" does not exist"),
            (b'q', "SELECT secret FROM t"),
        ]);
        let t = text(&scrub(&e, &masker(), &mut stats()).unwrap());
        assert!(
            !t.contains("ada@example.com") && !t.contains("SELECT secret"),
            "{t}"
        );
        let plain = error(&[
            (b'S', "ERROR"),
            (b'C', "42P01"),
            (b'M', "relation \"t\" does not exist"),
        ]);
        assert!(scrub(&plain, &masker(), &mut stats()).is_none());
    }
}
