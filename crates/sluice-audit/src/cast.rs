//! A recorded terminal as an asciicast v2 file, for `asciinema play` or any
//! player that reads the format: a JSON header line (size, start time,
//! `TERM`), then one `[seconds, "o"|"i", data]` line per event.
//!
//! The recording is already kept in that event form (`session.terminal`
//! stretches, see `sluice-ssh`'s `terminal.rs`); this joins a shell's
//! stretches back together in order.

use chrono::DateTime;
use serde_json::{Value, json};
use sluice_core::audit::detail::{self, Terminal};

/// One shell's recording in a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Cast {
    /// The shell's request number in its session.
    pub seq: u64,
    /// The asciicast v2 text, newline-terminated lines.
    pub text: String,
}

/// Every shell recorded among a session's events (bodies as stored, in
/// chain order), first shell first.
pub fn casts(events: &[Value]) -> Vec<Cast> {
    let mut shells: Vec<(u64, Option<i64>, Vec<Terminal>)> = Vec::new();
    for e in events {
        let d = &e["detail"];
        match e["kind"].as_str().unwrap_or_default() {
            "statement.allowed" => {
                let seq = d["seq"].as_u64().unwrap_or_default();
                if !shells.iter().any(|s| s.0 == seq) {
                    shells.push((seq, unix(e), Vec::new()));
                }
            }
            "session.terminal" => {
                let part: Terminal = detail::read(d);
                match shells.iter_mut().find(|s| s.0 == part.seq) {
                    Some(s) => s.2.push(part),
                    None => shells.push((part.seq, unix(e), vec![part])),
                }
            }
            _ => {}
        }
    }
    shells
        .into_iter()
        .filter(|s| !s.2.is_empty())
        .map(|(seq, started, mut parts)| {
            parts.sort_by_key(|p| p.part);
            Cast {
                seq,
                text: render(started, &parts),
            }
        })
        .collect()
}

fn render(started: Option<i64>, parts: &[Terminal]) -> String {
    let first = &parts[0];
    let mut header = json!({"version": 2, "width": first.width, "height": first.height});
    if let Some(t) = started {
        header["timestamp"] = t.into();
    }
    if !first.term.is_empty() {
        header["env"] = json!({"TERM": first.term});
    }
    let mut out = format!("{header}\n");
    for (secs, code, data) in parts.iter().flat_map(|p| &p.events) {
        out.push_str(&json!([secs, code, data]).to_string());
        out.push('\n');
    }
    out
}

/// The event's time as Unix seconds.
fn unix(e: &Value) -> Option<i64> {
    let ts = e["ts"].as_str()?;
    DateTime::parse_from_rfc3339(ts).ok().map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, ts: &str, detail: Value) -> Value {
        json!({"kind": kind, "ts": ts, "detail": detail})
    }

    #[test]
    fn a_shells_stretches_join_into_one_cast_in_order() {
        let events = [
            ev("session.opened", "2026-12-07T10:00:00Z", json!({"seq": 0})),
            ev(
                "statement.allowed",
                "2026-12-07T10:00:01Z",
                json!({"seq": 1}),
            ),
            ev(
                "statement.allowed",
                "2026-12-07T10:00:02Z",
                json!({"seq": 2}),
            ),
            // Written out of order: the part number decides.
            ev(
                "session.terminal",
                "2026-12-07T10:00:09Z",
                json!({"seq": 1, "part": 1, "width": 100, "height": 30, "term": "xterm",
                       "events": [[2.5, "o", "b\r\n"]]}),
            ),
            ev(
                "session.terminal",
                "2026-12-07T10:00:05Z",
                json!({"seq": 1, "part": 0, "width": 100, "height": 30, "term": "xterm",
                       "events": [[0.1, "o", "$ "], [0.4, "i", "ls\r"]]}),
            ),
        ];
        let casts = casts(&events);
        assert_eq!(casts.len(), 1, "the exec (seq 2) has no recording");
        assert_eq!(casts[0].seq, 1);
        let lines: Vec<Value> = casts[0]
            .text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[0],
            json!({"version": 2, "width": 100, "height": 30,
                   "timestamp": 1796637601, "env": {"TERM": "xterm"}})
        );
        assert_eq!(
            lines[1..],
            [
                json!([0.1, "o", "$ "]),
                json!([0.4, "i", "ls\r"]),
                json!([2.5, "o", "b\r\n"])
            ]
        );
    }

    #[test]
    fn no_terminal_no_cast() {
        let events = [ev(
            "statement.allowed",
            "2026-12-07T10:00:01Z",
            json!({"seq": 1}),
        )];
        assert!(casts(&events).is_empty());
    }
}
