use super::*;
use serde_json::json;

fn ev(ms: i64, kind: &str, detail: Value) -> Value {
    let ts = DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap();
    json!({
        "kind": kind,
        "ts": ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "session_id": "s_1",
        "grant_id": "g_1",
        "connection": "orders",
        "detail": detail,
    })
}

fn stmt(text: &str, class: &str) -> Value {
    json!({"text": text, "classes": [class], "commands": ["X"], "tables": [], "fingerprint": "f"})
}

fn recording() -> Vec<Value> {
    vec![
        ev(
            0,
            "session.opened",
            json!({"client_addr": "127.0.0.1:5000", "profile": "read"}),
        ),
        ev(
            1200,
            "statement.allowed",
            json!({
                "seq": 1, "protocol": "simple",
                "statements": [stmt("SELECT id,\n  email FROM customers LIMIT 2", "read")],
                "decision": "allow", "rule": "profile:read", "reason": "read is allowed",
            }),
        ),
        ev(
            1203,
            "statement.results",
            json!({
                "seq": 1, "index": 0, "columns": ["id", "email"],
                "rows": [["1", "a***@example.com"], ["2", null]], "truncated": false,
            }),
        ),
        ev(
            1204,
            "statement.completed",
            json!({
                "seq": 1, "index": 0, "outcome": "ok", "command": "SELECT 2", "rows": 2,
                "duration_ms": 1.5, "error": null,
            }),
        ),
        ev(
            2000,
            "statement.denied",
            json!({
                "seq": 2, "protocol": "simple", "statements": [stmt("DROP TABLE orders", "ddl")],
                "decision": "deny", "rule": "profile:read", "reason": "DROP TABLE is ddl",
            }),
        ),
        ev(
            3000,
            "approval.requested",
            json!({"approval_id": "a_1", "rule": "big-deletes"}),
        ),
        ev(
            7490,
            "approval.approved",
            json!({"approval_id": "a_1", "kind": "statement", "by": "dba-1", "reason": "looks\nfine", "scope": "once"}),
        ),
        ev(
            7500,
            "statement.allowed",
            json!({
                "seq": 3, "protocol": "extended", "statements": [stmt("DELETE FROM t", "write")],
                "decision": "approve", "rule": "big-deletes", "reason": "needs a dba",
                "approval": {"id": "a_1", "by": "dba-1", "outcome": "approved"},
            }),
        ),
        ev(
            7600,
            "statement.completed",
            json!({
                "seq": 3, "index": 0, "outcome": "error", "command": null, "rows": null,
                "duration_ms": 0.25, "error": {"sqlstate": "42P01", "message": "relation \"t\" does not exist"},
            }),
        ),
        ev(
            9000,
            "session.closed",
            json!({
                "duration_ms": 9000, "statements_allowed": 2, "statements_denied": 1,
                "outcomes_lost": 0, "end": "client",
            }),
        ),
    ]
}

#[test]
fn a_recording_becomes_a_timeline() {
    let t = timeline("s_1", &recording());
    assert_eq!(t.grant_id.as_deref(), Some("g_1"));
    assert_eq!(t.connection.as_deref(), Some("orders"));
    assert_eq!(t.client_addr.as_deref(), Some("127.0.0.1:5000"));
    assert_eq!(t.profile.as_deref(), Some("read"));
    assert_eq!(t.started_at.as_deref(), Some("2023-11-14T22:13:20.000Z"));
    let offsets: Vec<i64> = t.entries.iter().map(|e| e.offset_ms).collect();
    assert_eq!(offsets, [0, 1200, 2000, 3000, 7490, 7500, 9000]);
    assert_eq!(
        t.entries[4].what,
        What::Decided(Decided {
            approval_id: "a_1".into(),
            outcome: "approved".into(),
            by: Some("dba-1".into()),
            reason: Some("looks\nfine".into()),
        })
    );
    let requests: Vec<&Request> = t
        .entries
        .iter()
        .filter_map(|e| match &e.what {
            What::Request(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 3);
    let first = requests[0];
    assert_eq!(first.decision, "allow");
    assert_eq!(first.outcomes[0].rows, Some(2));
    assert_eq!(first.results[0].columns, ["id", "email"]);
    assert_eq!(first.results[0].rows[1], [Some("2".to_string()), None]);
    assert_eq!(requests[1].decision, "deny");
    assert!(requests[1].outcomes.is_empty());
    // The held statement: its final decision and how long it waited (from
    // the request to the decision).
    let held = requests[2];
    assert_eq!(held.decision, "allow");
    let a = held.approval.as_ref().unwrap();
    assert_eq!(
        (a.id.as_deref(), a.by.as_deref()),
        (Some("a_1"), Some("dba-1"))
    );
    assert_eq!(a.wait_ms, Some(4490));
    assert_eq!(held.outcomes[0].error.as_ref().unwrap().sqlstate, "42P01");
    let c = t.closed.as_ref().unwrap();
    assert_eq!((c.offset_ms, c.end.as_deref()), (9000, Some("client")));

    // It survives the API's JSON.
    let back: Timeline = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
    assert_eq!(back, t);
}

#[test]
fn the_rendering_reads_like_the_session() {
    let mut t = timeline("s_1", &recording());
    t.identity = Some(Who {
        subject: "agent-1".into(),
        issuer: "https://idp".into(),
        name: "Agent One".into(),
        kind: "agent".into(),
    });
    let lines = render(&t);
    let text: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    let all = text.join("\n");
    assert!(
        text[0].starts_with("session s_1 · Agent One (agent-1, agent) · grant g_1"),
        "{all}"
    );
    let want = [
        "   +0.000s  session opened on orders (read) from 127.0.0.1:5000",
        "   +1.200s  [1] ALLOWED SELECT id, email FROM customers LIMIT 2",
        "                class read · rule profile:read · read is allowed",
        "   +1.204s      → ok SELECT 2, 2 rows in 1.5 ms",
        "                   id | email",
        "                  ----+------------------",
        "                   1  | a***@example.com",
        "                   2  |",
        "                  (2 rows)",
        "   +2.000s  [2] DENIED  DROP TABLE orders",
        "                class ddl · rule profile:read · DROP TABLE is ddl",
        "   +3.000s  held for approval a_1 by big-deletes",
        "   +7.490s  approval a_1 approved by dba-1: looks fine",
        "   +7.500s  [3] ALLOWED DELETE FROM t",
        "                class write · rule big-deletes · needs a dba",
        "                approval a_1: approved by dba-1 after waiting 4.490s",
        "   +7.600s      → error 42P01: relation \"t\" does not exist in 0.2 ms",
        "   +9.000s  session closed (client): 2 allowed, 1 denied",
    ];
    assert_eq!(&text[1..], want, "\n{all}");
    // Offsets never go backwards, so pacing can sleep the differences.
    assert!(lines.windows(2).all(|w| w[0].offset_ms <= w[1].offset_ms));
}

#[test]
fn truncated_results_and_missing_records_still_show() {
    let events = vec![
        ev(0, "session.opened", json!({})),
        // The request's record was trimmed away; its rows remain.
        ev(
            10,
            "statement.results",
            json!({
                "seq": 9, "index": 0, "columns": ["n"], "rows": [["1"], [2]], "truncated": true,
            }),
        ),
        ev(20, "some.future.kind", json!({})),
    ];
    let t = timeline("s_1", &events);
    let text: Vec<String> = render(&t).into_iter().map(|l| l.text).collect();
    let all = text.join("\n");
    assert!(all.contains("[9] unrecorded"), "{all}");
    assert!(all.contains("(first 2 rows recorded)"), "{all}");
    assert!(
        all.contains(" 2\n") || all.ends_with(" 2") || all.contains(" 2\n"),
        "{all}"
    );
    assert!(all.contains("(session not closed in the record)"), "{all}");
}

#[test]
fn a_held_statement_that_nobody_decided_shows_its_expiry() {
    let events = vec![
        ev(0, "session.opened", json!({})),
        ev(
            100,
            "approval.requested",
            json!({"approval_id": "a_9", "rule": "r"}),
        ),
        ev(
            5100,
            "approval.expired",
            json!({"approval_id": "a_9", "kind": "statement", "reason": "nobody decided in time"}),
        ),
        ev(
            5102,
            "statement.denied",
            json!({
                "seq": 1, "protocol": "simple", "statements": [stmt("DELETE FROM t", "write")],
                "decision": "approve", "rule": "r", "reason": "needs a dba",
                "approval": {"id": "a_9", "outcome": "timed out"},
            }),
        ),
    ];
    let t = timeline("s_1", &events);
    let text: Vec<String> = render(&t).into_iter().map(|l| l.text).collect();
    let all = text.join("\n");
    assert!(
        all.contains("   +5.100s  approval a_9 expired: nobody decided in time"),
        "{all}"
    );
    assert!(all.contains("[1] DENIED  DELETE FROM t"), "{all}");
    assert!(
        all.contains("approval a_9: timed out after waiting 5.000s"),
        "{all}"
    );
}

#[test]
fn a_terminal_recording_plays_at_the_times_it_was_shown() {
    let events = vec![
        ev(
            0,
            "session.opened",
            json!({"client_addr": "127.0.0.1:1", "profile": "write", "protocol": "ssh"}),
        ),
        ev(
            500,
            "statement.allowed",
            json!({"seq": 1, "protocol": "ssh-shell", "decision": "allow",
                   "statements": [stmt("(interactive shell)", "admin")]}),
        ),
        // Written after the fact (a second later): placed by its own times.
        ev(
            2500,
            "session.terminal",
            json!({"seq": 1, "part": 0, "width": 80, "height": 24,
                   "events": [[0.1, "o", "\u{1b}[1;32m$ \u{1b}[0m"], [0.15, "o", "echo hi\r\n"],
                              [0.3, "i", "secret typed"], [1.0, "o", "hi\r\n"]]}),
        ),
        ev(3000, "session.closed", json!({"end": "client closed"})),
    ];
    let t = timeline("s_1", &events);
    let shown: Vec<(i64, String)> = t
        .entries
        .iter()
        .filter_map(|e| match &e.what {
            What::Terminal { text } => Some((e.offset_ms, text.clone())),
            _ => None,
        })
        .collect();
    // 0.1 s and 0.15 s are one stretch; 1.0 s another; input is not shown.
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert_eq!(shown[0].0, 600);
    assert_eq!(shown[1], (1500, "hi\r\n".to_string()));
    let lines: Vec<String> = render(&t).into_iter().map(|l| l.text).collect();
    let all = lines.join("\n");
    assert!(all.contains("│ $ echo hi"), "{all}");
    assert!(all.contains("│ hi"), "{all}");
    assert!(
        !all.contains("\u{1b}"),
        "escape sequences are not printed: {all}"
    );
    assert!(!all.contains("secret typed"));
}
