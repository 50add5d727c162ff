//! Typed `detail` of the events every protocol writes about its sessions
//! and requests: one struct per event kind, used by the writers (the gate,
//! the protocol adapters) and by replay, so a field is named in one place.
//! Reading is lenient (every field has a default): events written before a
//! field existed still read.
//!
//! The stored form is the same JSON as before these types: exports and
//! `audit verify` see no change.

use serde::{Deserialize, Serialize};

/// `session.opened`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionOpened {
    /// 0: before the session's first request (names the event for the
    /// journal's recovery).
    pub seq: u64,
    pub client_addr: String,
    pub profile: String,
    /// `postgres`, `ssh`…; absent in records from before SSH.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// `session.closed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionClosed {
    /// After the session's requests' numbers.
    pub seq: u64,
    pub duration_ms: u64,
    pub statements_allowed: u64,
    pub statements_denied: u64,
    /// Outcome records the audit writer could not take.
    pub outcomes_lost: u64,
    /// How it ended: `client closed`, `expired`, `revoked`, `terminated`,
    /// `shutdown`, `refused by sluice`, `client protocol error`…
    pub end: String,
}

/// `session.rejected`: a login that did not become a session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionRejected {
    /// In the client's words.
    pub reason: String,
    /// For the operator (never a credential).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    /// The protocol's error code the client got (Postgres' SQLSTATE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
}

/// `session.terminated`: an operator ended a live session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionTerminated {
    pub reason: String,
    /// The grant holder's name.
    pub identity: String,
}

/// One statement (or command, or file operation) of a request, as the
/// record shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatementRecord {
    /// Comments removed and long literals elided (see `truncated`).
    pub text: String,
    /// Whether `text` differs from what the client sent; then `sha256` is
    /// the full text's hash.
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
    pub classes: Vec<String>,
    pub commands: Vec<String>,
    /// Tables, for SQL; paths, for file operations.
    pub tables: Vec<String>,
}

/// `statement.allowed` and `statement.denied`: one request's decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Decision {
    /// The request's number in its session; its outcome events carry it.
    pub seq: u64,
    pub protocol: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<StatementRecord>,
    /// `allow`, `deny` or `approve`.
    pub decision: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub reason: String,
    /// The approval the request waited on, or the shape approval that let
    /// it through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<serde_json::Value>,
    /// The masked column a refusal protects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked_column: Option<String>,
}

/// What went wrong with a statement, in the backend's words.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Failure {
    /// The backend's error code (Postgres' SQLSTATE; an exit status as
    /// text for commands), when it gave one.
    pub sqlstate: Option<String>,
    pub message: Option<String>,
}

/// `statement.completed`: what became of one statement of an allowed
/// request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Completed {
    pub seq: u64,
    /// The statement's place in its request.
    pub index: u64,
    pub protocol: String,
    /// `ok`, `error`, `suspended`, `empty`, `skipped`.
    pub outcome: String,
    pub command: Option<String>,
    pub rows: Option<u64>,
    pub duration_ms: f64,
    pub error: Option<Failure>,
    /// Values masked in its result, by rule or detector (counts only).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub masked: std::collections::BTreeMap<String, u64>,
    /// For a forwarded connection: bytes the client sent through it, and
    /// bytes it received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
}

/// `statement.results`: the first rows of a result as the client got them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Results {
    pub seq: u64,
    pub index: u64,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// More rows followed.
    pub truncated: bool,
    /// Values longer than this were cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values_cut_at: Option<usize>,
}

/// `session.terminal`: a stretch of an interactive terminal, in the event
/// form of asciicast v2: seconds since the shell started, `"o"` (what the
/// terminal showed), `"i"` (what was typed) or `"r"` (a resize,
/// `"COLSxROWS"`), and the text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Terminal {
    /// The shell's request number (its `statement.allowed`).
    pub seq: u64,
    /// This stretch's place among the shell's.
    pub part: u64,
    pub width: u32,
    pub height: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub term: String,
    pub events: Vec<(f64, String, String)>,
}

/// A typed detail as the event's JSON.
pub fn to_value(detail: &impl Serialize) -> serde_json::Value {
    // Plain data with string keys: serialising cannot fail.
    serde_json::to_value(detail).unwrap_or_default()
}

/// An event's detail read as `T`; fields it lacks take their defaults.
pub fn read<T: for<'de> Deserialize<'de> + Default>(detail: &serde_json::Value) -> T {
    serde_json::from_value(detail.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_written_before_these_types_still_read() {
        let old = serde_json::json!({
            "seq": 3, "protocol": "simple", "decision": "deny", "rule": "no-ddl",
            "reason": "DROP TABLE is ddl",
            "statements": [{"text": "DROP TABLE t", "truncated": false, "fingerprint": "ab",
                            "classes": ["ddl"], "commands": ["DROP TABLE"], "tables": ["t"]}]
        });
        let d: Decision = read(&old);
        assert_eq!(d.seq, 3);
        assert_eq!(d.statements[0].tables, ["t"]);
        assert_eq!(to_value(&d), old, "the same JSON as before");
        let closed: SessionClosed = read(&serde_json::json!({ "end": "client closed" }));
        assert_eq!(closed.end, "client closed");
        assert_eq!(closed.seq, 0);
    }
}
