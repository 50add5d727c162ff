//! Canonical event bodies and the chain hash.
//!
//! A body is written straight into one buffer, keys sorted at every level,
//! instead of being rebuilt as a sorted `Value` and formatted: the writer
//! does this for every event, so it is on the path of every statement. A
//! test keeps it byte-identical to the plain definition (sort, then
//! serialise), which is what existing chains were hashed over.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sluice_core::audit::AuditEvent;

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The version of the event schema, carried in every body as `v`.
pub const SCHEMA_VERSION: u32 = 1;

/// The canonical JSON of an event at `seq` and `ts`: keys sorted at every
/// level, no whitespace. What the hash covers is this exact string, stored
/// as is, so verification never depends on re-serialising.
pub fn canonical_body(seq: i64, ts: DateTime<Utc>, event: &AuditEvent) -> String {
    let mut out = Object::new(512);
    // Keys in sorted order; `AuditEvent`'s serde names, `None`s skipped.
    if let Some(actor) = &event.actor {
        out.entry("actor", &serde_json::to_value(actor).unwrap_or(Value::Null));
    }
    if let Some(c) = &event.connection {
        out.string("connection", c);
    }
    out.entry("detail", &event.detail);
    if let Some(g) = &event.grant_id {
        out.string("grant_id", g);
    }
    out.scalar("kind", &event.kind);
    out.scalar("seq", &seq);
    if let Some(s) = &event.session_id {
        out.string("session_id", s);
    }
    out.string("ts", &ts.to_rfc3339_opts(SecondsFormat::Millis, true));
    out.scalar("v", &SCHEMA_VERSION);
    out.finish()
}

/// The canonical JSON of an event given as a JSON object, for records the
/// audit layer writes itself (truncation markers) whose kind is not an
/// `EventKind` of the data path.
pub fn canonical_value(seq: i64, ts: DateTime<Utc>, mut v: Value) -> String {
    if let Value::Object(m) = &mut v {
        m.insert("v".into(), Value::from(SCHEMA_VERSION));
        m.insert("seq".into(), Value::from(seq));
        m.insert(
            "ts".into(),
            Value::from(ts.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
    }
    let mut out = Vec::with_capacity(256);
    write_sorted(&mut out, &v);
    into_string(out)
}

/// A JSON object written key by key; the caller gives keys in order.
struct Object {
    out: Vec<u8>,
}

impl Object {
    fn new(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity);
        out.push(b'{');
        Object { out }
    }

    fn key(&mut self, key: &str) {
        if self.out.len() > 1 {
            self.out.push(b',');
        }
        write_json(&mut self.out, key);
        self.out.push(b':');
    }

    fn entry(&mut self, key: &str, v: &Value) {
        self.key(key);
        write_sorted(&mut self.out, v);
    }

    fn string(&mut self, key: &str, s: &str) {
        self.key(key);
        write_json(&mut self.out, s);
    }

    fn scalar<T: Serialize + ?Sized>(&mut self, key: &str, v: &T) {
        self.key(key);
        write_json(&mut self.out, v);
    }

    fn finish(mut self) -> String {
        self.out.push(b'}');
        into_string(self.out)
    }
}

/// Writes `v` compactly with every object's keys sorted.
fn write_sorted(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            // Already sorted unless serde_json keeps insertion order (its
            // `preserve_order` feature, which any crate in the build can
            // turn on); sorting a sorted list is one pass.
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, k.as_str());
                out.push(b':');
                write_sorted(out, v);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_sorted(out, v);
            }
            out.push(b']');
        }
        scalar => write_json(out, scalar),
    }
}

fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing a string, number or map of them into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

fn into_string(out: Vec<u8>) -> String {
    // serde_json writes UTF-8 only.
    String::from_utf8(out).unwrap_or_default()
}

/// `sha256(prev_hash || "\n" || body)`, lowercase hex.
pub fn chain_hash(prev_hash: &str, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::audit::EventKind;

    #[test]
    fn bodies_are_canonical_and_hashes_chain() {
        let ts = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let e = AuditEvent::new(EventKind::GrantRequested)
            .grant("g_1")
            .detail(serde_json::json!({"z": 1, "a": {"y": 2, "b": 3}}));
        let body = canonical_body(7, ts, &e);
        assert_eq!(
            body,
            r#"{"detail":{"a":{"b":3,"y":2},"z":1},"grant_id":"g_1","kind":"grant.requested","seq":7,"ts":"2023-11-14T22:13:20.123Z","v":1}"#
        );
        let h1 = chain_hash(GENESIS, &body);
        assert_eq!(h1.len(), 64);
        assert_ne!(h1, chain_hash(GENESIS, &body.replace("g_1", "g_2")));
        assert_ne!(h1, chain_hash(&h1, &body));
    }

    /// The plain definition the chain was first hashed over: the event as
    /// a `Value`, every object rebuilt sorted, then formatted.
    fn reference(seq: i64, ts: DateTime<Utc>, event: &AuditEvent) -> String {
        fn sorted(v: Value) -> Value {
            match v {
                Value::Object(m) => {
                    let mut entries: Vec<(String, Value)> = m.into_iter().collect();
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                    Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
                }
                Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
                other => other,
            }
        }
        let mut v = serde_json::to_value(event).unwrap();
        let m = v.as_object_mut().unwrap();
        m.insert("v".into(), Value::from(SCHEMA_VERSION));
        m.insert("seq".into(), Value::from(seq));
        m.insert(
            "ts".into(),
            Value::from(ts.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        sorted(v).to_string()
    }

    #[test]
    fn bodies_are_byte_identical_to_the_plain_definition() {
        use sluice_core::audit::Actor;
        let ts = DateTime::from_timestamp_millis(1_764_000_000_001).unwrap();
        let awkward = "quote \" back\\slash \u{1} tab\t é 😀 </script>";
        let details = [
            serde_json::json!({}),
            serde_json::json!(null),
            serde_json::json!("just a string"),
            serde_json::json!({"sql": awkward, "n": -3, "f": 1.5e300, "t": true, "z": null}),
            serde_json::json!({"b": [3, {"y": 1, "x": [{"d": 0, "c": awkward}]}], "a": {}}),
            serde_json::json!({awkward: {"Z": 1, "a": 2, "_": 3, "é": 4}}),
        ];
        for (i, detail) in details.into_iter().enumerate() {
            let mut e = AuditEvent::new(EventKind::StatementAllowed).detail(detail);
            if i % 2 == 1 {
                e = e
                    .grant("g_abc")
                    .connection(awkward)
                    .session("s_1")
                    .actor(Actor {
                        subject: "agent \"7\"".into(),
                        issuer: "https://idp.example/".into(),
                        name: awkward.into(),
                        kind: "machine".into(),
                    });
            }
            assert_eq!(
                canonical_body(i as i64 + 1, ts, &e),
                reference(i as i64 + 1, ts, &e)
            );
        }
        let marker =
            serde_json::json!({"kind": "audit.truncated", "detail": {"b": 1, "a": [awkward]}});
        let mut expected = marker.clone();
        let m = expected.as_object_mut().unwrap();
        m.insert("v".into(), Value::from(SCHEMA_VERSION));
        m.insert("seq".into(), Value::from(9));
        m.insert(
            "ts".into(),
            Value::from(ts.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        assert_eq!(canonical_value(9, ts, marker), expected.to_string());
    }
}
