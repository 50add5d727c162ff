//! Canonical event bodies and the chain hash.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
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
    canonical_value(seq, ts, serde_json::to_value(event).unwrap_or(Value::Null))
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
    sorted(v).to_string()
}

fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Map::new();
            for (k, v) in entries {
                out.insert(k, sorted(v));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
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
}
