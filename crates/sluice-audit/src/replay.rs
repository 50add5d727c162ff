//! Session replay: a recorded session's audit events turned into a
//! timeline a person can read — offsets from the session's start, each
//! request with its decision, rule and approval wait, what became of each
//! statement (rows, duration, error), and the recorded result rows as the
//! client saw them. Pure: events in, timeline out, text out.
//!
//! Result rows come from `statement.results` events, which the proxy
//! writes when a connection's `record_results` is `rows:N`:
//!
//! ```json
//! {"kind": "statement.results", "session_id": "s_…", "detail": {
//!   "seq": 3, "index": 0,
//!   "columns": ["id", "email"],
//!   "rows": [["1", "****@example.com"], ["2", null]],
//!   "truncated": true }}
//! ```
//!
//! `seq` and `index` match the request's `statement.allowed` and the
//! statement's `statement.completed`; values are the text the client
//! received after masking (`null` for SQL NULL, `\x…` hex for a value sent
//! in binary format); `truncated` says more rows followed than were kept.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_core::audit::detail as typed;

/// A whole session, ready to print.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub session_id: String,
    #[serde(default)]
    pub grant_id: Option<String>,
    #[serde(default)]
    pub connection: Option<String>,
    /// Who: filled in from the grant by the caller (events name the grant).
    #[serde(default)]
    pub identity: Option<Who>,
    #[serde(default)]
    pub client_addr: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
    /// RFC 3339 time of the first event; offsets count from here.
    #[serde(default)]
    pub started_at: Option<String>,
    /// Present once the session closed.
    #[serde(default)]
    pub closed: Option<Closed>,
    #[serde(default)]
    pub entries: Vec<Entry>,
}

/// The identity behind a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    pub subject: String,
    pub issuer: String,
    pub name: String,
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Closed {
    pub offset_ms: i64,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub end: Option<String>,
    #[serde(default)]
    pub statements_allowed: Option<u64>,
    #[serde(default)]
    pub statements_denied: Option<u64>,
}

/// One thing that happened, `offset_ms` after the session started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub offset_ms: i64,
    #[serde(flatten)]
    pub what: What,
}

// Requests are nearly every entry, so boxing them would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum What {
    Opened,
    /// A request held for a human (`approval.requested`).
    Held {
        approval_id: String,
        #[serde(default)]
        rule: Option<String>,
    },
    /// The decision on a held statement (`approval.approved`, `.denied`,
    /// `.expired`), when it happened.
    Decided(Decided),
    Request(Request),
    Rejected {
        reason: String,
    },
    /// What an interactive terminal showed (`session.terminal`), merged
    /// into stretches of at most [`TERMINAL_STRETCH_MS`].
    Terminal {
        text: String,
    },
    Closed,
}

/// Terminal output closer together than this is one entry.
pub const TERMINAL_STRETCH_MS: i64 = 100;

/// How an approval ended, and who ended it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decided {
    pub approval_id: String,
    /// `approved`, `denied` or `expired`.
    pub outcome: String,
    /// The approvers who decided it (names), none for an expiry.
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// One request (a simple query, or an extended-protocol batch) and what
/// became of its statements.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub seq: u64,
    #[serde(default)]
    pub protocol: Option<String>,
    /// "allow" or "deny" (what finally happened, after any approval).
    pub decision: String,
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub statements: Vec<Text>,
    #[serde(default)]
    pub approval: Option<Approval>,
    #[serde(default)]
    pub outcomes: Vec<Outcome>,
    #[serde(default)]
    pub results: Vec<Results>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Text {
    pub text: String,
    #[serde(default)]
    pub classes: Vec<String>,
    #[serde(default)]
    pub tables: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub outcome: Option<String>,
    /// A shape approval let it through (no wait).
    #[serde(default)]
    pub shape: Option<String>,
    /// From `approval.requested` to the decision being recorded.
    #[serde(default)]
    pub wait_ms: Option<i64>,
}

/// What became of one statement (`statement.completed`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub offset_ms: i64,
    pub index: u64,
    pub outcome: String,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub rows: Option<u64>,
    #[serde(default)]
    pub duration_ms: Option<f64>,
    #[serde(default)]
    pub error: Option<Failure>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub sqlstate: String,
    pub message: String,
}

/// Recorded result rows (`statement.results`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub offset_ms: i64,
    pub index: u64,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    #[serde(default)]
    pub truncated: bool,
}

/// Builds the timeline of one session from its events' bodies (as stored:
/// `{kind, ts, seq, session_id, grant_id, connection, detail}`), in chain
/// order. Unknown kinds are skipped, so newer recordings still replay.
pub fn timeline(session_id: &str, events: &[Value]) -> Timeline {
    let mut t = Timeline {
        session_id: session_id.to_string(),
        ..Timeline::default()
    };
    let start = events.iter().filter_map(ts).next();
    t.started_at = start.map(|s| s.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let offset = |e: &Value| match (start, ts(e)) {
        (Some(s), Some(at)) => (at - s).num_milliseconds(),
        _ => 0,
    };
    // When each approval was asked for and decided, for the wait.
    let mut asked: Vec<(String, i64)> = Vec::new();
    let mut decided: Vec<(String, i64)> = Vec::new();
    for e in events {
        let d = &e["detail"];
        let at = offset(e);
        if t.grant_id.is_none() {
            t.grant_id = string(&e["grant_id"]);
        }
        if t.connection.is_none() {
            t.connection = string(&e["connection"]);
        }
        match e["kind"].as_str().unwrap_or_default() {
            "session.opened" => {
                let o: typed::SessionOpened = typed::read(d);
                t.client_addr = Some(o.client_addr).filter(|a| !a.is_empty());
                t.profile = Some(o.profile).filter(|p| !p.is_empty());
                t.entries.push(entry(at, What::Opened));
            }
            "approval.requested" => {
                let id = string(&d["approval_id"]).unwrap_or_default();
                asked.push((id.clone(), at));
                let rule = string(&d["rule"]);
                t.entries.push(entry(
                    at,
                    What::Held {
                        approval_id: id,
                        rule,
                    },
                ));
            }
            kind @ ("approval.approved" | "approval.denied" | "approval.expired") => {
                let d = Decided {
                    approval_id: string(&d["approval_id"]).unwrap_or_default(),
                    outcome: kind.trim_start_matches("approval.").to_string(),
                    by: string(&d["by"]),
                    reason: string(&d["reason"]),
                };
                decided.push((d.approval_id.clone(), at));
                t.entries.push(entry(at, What::Decided(d)));
            }
            "statement.allowed" | "statement.denied" => {
                let r = request(d, at, &asked, &decided);
                t.entries.push(entry(at, What::Request(r)));
            }
            "statement.completed" => {
                let c: typed::Completed = typed::read(d);
                let o = Outcome {
                    offset_ms: at,
                    index: c.index,
                    outcome: c.outcome,
                    command: c.command,
                    rows: c.rows,
                    duration_ms: d["duration_ms"].as_f64(),
                    error: c.error.map(|f| Failure {
                        sqlstate: f.sqlstate.unwrap_or_default(),
                        message: f.message.unwrap_or_default(),
                    }),
                };
                request_for(&mut t, d, at).outcomes.push(o);
            }
            "statement.results" => {
                let r = results(d, at);
                request_for(&mut t, d, at).results.push(r);
            }
            "session.rejected" => {
                let r: typed::SessionRejected = typed::read(d);
                t.entries
                    .push(entry(at, What::Rejected { reason: r.reason }));
            }
            "session.terminal" => terminal(&mut t, d, at),
            "session.closed" => {
                let c: typed::SessionClosed = typed::read(d);
                t.closed = Some(Closed {
                    offset_ms: at,
                    duration_ms: Some(c.duration_ms),
                    end: Some(c.end).filter(|e| !e.is_empty()),
                    statements_allowed: Some(c.statements_allowed),
                    statements_denied: Some(c.statements_denied),
                });
                t.entries.push(entry(at, What::Closed));
            }
            _ => {}
        }
    }
    // Terminal stretches are written after what they show: in time order.
    t.entries.sort_by_key(|e| e.offset_ms);
    t
}

/// A terminal recording's output, placed at the times it was shown
/// (counted from its shell's request), merged into short stretches.
fn terminal(t: &mut Timeline, d: &Value, written_at: i64) {
    let part: typed::Terminal = typed::read(d);
    let last = part.events.last().map_or(0.0, |e| e.0);
    let base = t
        .entries
        .iter()
        .find_map(|e| match &e.what {
            What::Request(r) if r.seq == part.seq => Some(e.offset_ms),
            _ => None,
        })
        .unwrap_or(written_at - (last * 1000.0) as i64);
    let mut stretch: Option<(i64, String)> = None;
    for (secs, code, data) in &part.events {
        if code != "o" {
            continue;
        }
        let at = base + (secs * 1000.0) as i64;
        match &mut stretch {
            Some((start, text)) if at - *start <= TERMINAL_STRETCH_MS => text.push_str(data),
            _ => {
                if let Some((start, text)) = stretch.take() {
                    t.entries.push(entry(start, What::Terminal { text }));
                }
                stretch = Some((at, data.clone()));
            }
        }
    }
    if let Some((start, text)) = stretch {
        t.entries.push(entry(start, What::Terminal { text }));
    }
}

fn entry(offset_ms: i64, what: What) -> Entry {
    Entry { offset_ms, what }
}

fn ts(e: &Value) -> Option<DateTime<Utc>> {
    let s = e["ts"].as_str()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn string(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// `asked` and `decided` hold when each approval so far was requested and
/// decided; a held request waited from the one to the other (or, for a
/// recording without the decision, to its own record).
fn request(d: &Value, at: i64, asked: &[(String, i64)], decided: &[(String, i64)]) -> Request {
    let decision: typed::Decision = typed::read(d);
    let statements = decision
        .statements
        .into_iter()
        .map(|s| Text {
            text: s.text,
            classes: s.classes,
            tables: s.tables,
        })
        .collect();
    let approval = decision
        .approval
        .as_ref()
        .filter(|a| a.is_object())
        .map(|a| {
            let id = string(&a["id"]);
            let when = |list: &[(String, i64)], id: &str| {
                list.iter()
                    .rev()
                    .find(|(x, _)| x == id)
                    .map(|(_, offset)| *offset)
            };
            let wait_ms = id.as_deref().and_then(|id| {
                let from = when(asked, id)?;
                Some(when(decided, id).unwrap_or(at) - from)
            });
            Approval {
                id,
                by: string(&a["by"]),
                outcome: string(&a["outcome"]),
                shape: string(&a["shape"]),
                wait_ms,
            }
        });
    Request {
        seq: decision.seq,
        protocol: Some(decision.protocol).filter(|p| !p.is_empty()),
        decision: decision.decision,
        rule: decision.rule,
        reason: Some(decision.reason).filter(|r| !r.is_empty()),
        statements,
        approval,
        ..Request::default()
    }
    .finally(d)
}

impl Request {
    /// The decision field names the policy's verdict ("approve" for a held
    /// statement); show what happened in the end instead.
    fn finally(mut self, d: &Value) -> Request {
        if self.decision == "approve" {
            let approved = d["approval"]["outcome"].as_str() == Some("approved")
                || d["approval"]["shape"].is_string();
            self.decision = if approved { "allow" } else { "deny" }.into();
        }
        self
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(string).collect())
        .unwrap_or_default()
}

fn results(d: &Value, at: i64) -> Results {
    let cell = |v: &Value| match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    Results {
        offset_ms: at,
        index: d["index"].as_u64().unwrap_or(0),
        columns: strings(&d["columns"]),
        rows: d["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| r.as_array().map(|r| r.iter().map(cell).collect()))
                    .map(Option::unwrap_or_default)
                    .collect()
            })
            .unwrap_or_default(),
        truncated: d["truncated"].as_bool().unwrap_or(false),
    }
}

/// The request an outcome or result row belongs to (by `seq`); one is
/// made up when its record is missing, so nothing recorded is dropped.
fn request_for<'a>(t: &'a mut Timeline, d: &Value, at: i64) -> &'a mut Request {
    let seq = d["seq"].as_u64().unwrap_or(0);
    let found = t
        .entries
        .iter()
        .rposition(|e| matches!(&e.what, What::Request(r) if r.seq == seq));
    let i = match found {
        Some(i) => i,
        None => {
            let r = Request {
                seq,
                decision: "unrecorded".into(),
                ..Request::default()
            };
            t.entries.push(entry(at, What::Request(r)));
            t.entries.len() - 1
        }
    };
    match &mut t.entries[i].what {
        What::Request(r) => r,
        _ => unreachable!("position() matched a request"),
    }
}

mod text;
pub use text::{
    Line, approval, decided, one_line, outcome, render, stamp, table, terminal_lines, unpaired,
    verdict, why,
};

#[cfg(test)]
mod tests;
