//! `/v1/sessions`: recorded sessions from synthetic events in the real
//! audit chain; filters, visibility and the replay timeline.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_core::audit::{AuditEvent, EventKind};
use std::time::Duration;

/// Records a small session under `grant` (a grant's JSON): opened, one
/// allowed statement with its result rows and outcome, one denied, closed.
async fn record_session(gw: &Gateway, grant: &Value, session: &str, close: bool) {
    let g = grant["id"].as_str().unwrap();
    let conn = grant["connection"].as_str().unwrap();
    let ev = |kind, detail| {
        AuditEvent::new(kind)
            .grant(g)
            .connection(conn)
            .session(session)
            .detail(detail)
    };
    let events = vec![
        ev(
            EventKind::SessionOpened,
            json!({"client_addr": "127.0.0.1:40000", "profile": "read"}),
        ),
        ev(
            EventKind::StatementAllowed,
            json!({"seq": 1, "protocol": "simple", "decision": "allow", "rule": "profile:read",
                   "reason": "reads are allowed",
                   "statements": [{"text": "SELECT id, email FROM customers LIMIT 2",
                                   "classes": ["read"], "tables": ["customers"]}]}),
        ),
        ev(
            EventKind::StatementResults,
            json!({"seq": 1, "index": 0, "columns": ["id", "email"],
                   "rows": [["1", "a***@example.com"], ["2", null]], "truncated": false}),
        ),
        ev(
            EventKind::StatementCompleted,
            json!({"seq": 1, "index": 0, "outcome": "ok", "command": "SELECT 2", "rows": 2,
                   "duration_ms": 0.8, "error": null}),
        ),
        ev(
            EventKind::StatementDenied,
            json!({"seq": 2, "protocol": "simple", "decision": "deny", "rule": "profile:read",
                   "reason": "DROP TABLE is ddl",
                   "statements": [{"text": "DROP TABLE orders", "classes": ["ddl"]}]}),
        ),
    ];
    for e in events {
        gw.state.audit.append(e).await.unwrap();
    }
    if close {
        gw.state
            .audit
            .append(ev(
                EventKind::SessionClosed,
                json!({"duration_ms": 42, "statements_allowed": 1, "statements_denied": 1,
                       "outcomes_lost": 0, "end": "client"}),
            ))
            .await
            .unwrap();
    }
}

async fn get(gw: &Gateway, token: &str, path: &str) -> (StatusCode, Value) {
    parts(gw.request(Method::GET, path, token).send().await.unwrap()).await
}

async fn ids(gw: &Gateway, token: &str, query: &str) -> Vec<String> {
    let (status, body) = get(gw, token, &format!("/v1/sessions{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn sessions_are_listed_filtered_and_shown_only_to_who_may_see_them() {
    let gw = Gateway::start().await;
    let agent = gw.token(AGENT).await;
    let other = gw.token(OTHER_AGENT).await;
    let admin = gw.token(ADMIN).await;
    let dba = gw.token(DBA1).await;
    let outsider = gw.token(OUTSIDER).await;
    let mine = gw
        .grant(&agent, json!({"connection": "playground", "reason": "r"}))
        .await;
    let theirs = gw
        .grant(&other, json!({"connection": "playground", "reason": "r"}))
        .await;
    let warehouse = gw
        .grant(&dba, json!({"connection": "warehouse", "reason": "r"}))
        .await;
    record_session(&gw, &mine, "s_agent", true).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = sluice_core::clock::now().to_rfc3339();
    tokio::time::sleep(Duration::from_millis(20)).await;
    record_session(&gw, &theirs, "s_other", false).await;
    record_session(&gw, &warehouse, "s_dba", true).await;

    // Everyone sees their own; admins and approvers see all, newest first.
    assert_eq!(ids(&gw, &agent, "").await, ["s_agent"]);
    assert_eq!(ids(&gw, &other, "").await, ["s_other"]);
    assert_eq!(ids(&gw, &outsider, "").await, Vec::<String>::new());
    let all = ["s_dba", "s_other", "s_agent"];
    assert_eq!(ids(&gw, &admin, "").await, all);
    assert_eq!(ids(&gw, &dba, "").await, all);

    // Filters: identity (subject or name), connection, time window.
    let subject = mine["identity"]["subject"].as_str().unwrap();
    let name = theirs["identity"]["name"].as_str().unwrap();
    assert_eq!(
        ids(&gw, &admin, &format!("?identity={subject}")).await,
        ["s_agent"]
    );
    assert_eq!(
        ids(&gw, &admin, &format!("?identity={name}")).await,
        ["s_other"]
    );
    assert_eq!(ids(&gw, &admin, "?connection=warehouse").await, ["s_dba"]);
    let enc = between.replace('+', "%2B");
    assert_eq!(
        ids(&gw, &admin, &format!("?since={enc}")).await,
        ["s_dba", "s_other"]
    );
    assert_eq!(
        ids(&gw, &admin, &format!("?until={enc}")).await,
        ["s_agent"]
    );
    assert_eq!(ids(&gw, &admin, "?since=1h").await, all);
    assert_eq!(ids(&gw, &admin, "?limit=1").await, ["s_dba"]);
    // Filters never widen what a caller may see.
    assert_eq!(
        ids(&gw, &agent, &format!("?identity={name}")).await,
        Vec::<String>::new()
    );
    let (status, body) = get(&gw, &admin, "/v1/sessions?since=yesterday-ish").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");

    // The summary of a listed session.
    let (_, body) = get(&gw, &admin, "/v1/sessions?connection=playground").await;
    let s = &body["sessions"][1];
    assert_eq!(s["id"], "s_agent");
    assert_eq!(s["grant_id"], mine["id"]);
    assert_eq!(s["identity"]["subject"], subject);
    assert_eq!(s["client_addr"], "127.0.0.1:40000");
    assert_eq!(s["state"], "closed");
    assert_eq!(s["statements_denied"], 1);
    assert_eq!(body["sessions"][0]["state"], "open");

    // One session: its timeline, for its owner and for admins; 404 for others.
    let (status, body) = get(&gw, &agent, "/v1/sessions/s_agent").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let t = &body["timeline"];
    assert_eq!(t["session_id"], "s_agent");
    assert_eq!(t["identity"]["subject"], subject);
    let kinds: Vec<&str> = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["opened", "request", "request", "closed"]);
    let first = &t["entries"][1];
    assert_eq!(first["decision"], "allow");
    assert_eq!(first["outcomes"][0]["rows"], 2);
    assert_eq!(first["results"][0]["rows"][0][1], "a***@example.com");
    assert_eq!(t["entries"][2]["decision"], "deny");
    assert_eq!(t["entries"][2]["rule"], "profile:read");
    for (who, status) in [
        (&admin, StatusCode::OK),
        (&dba, StatusCode::OK),
        (&other, StatusCode::NOT_FOUND),
        (&outsider, StatusCode::NOT_FOUND),
    ] {
        let (got, body) = get(&gw, who, "/v1/sessions/s_agent").await;
        assert_eq!(got, status, "{body}");
        let (got, body) = get(&gw, who, "/v1/sessions/s_agent/events").await;
        assert_eq!(got, status, "{body}");
    }
    let (status, body) = get(&gw, &agent, "/v1/sessions/s_other").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = get(&gw, &admin, "/v1/sessions/s_nope").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // The raw events, in chain order, with their hashes.
    let (_, body) = get(&gw, &agent, "/v1/sessions/s_agent/events").await;
    let events = body["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "session.opened",
            "statement.allowed",
            "statement.results",
            "statement.completed",
            "statement.denied",
            "session.closed"
        ]
    );
    assert!(
        events
            .windows(2)
            .all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64())
    );
    assert_eq!(events[1]["prev_hash"], events[0]["hash"]);

    // Without a token: 401.
    let resp = gw.get_plain("/v1/sessions").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    gw.assert_audit_chain_verifies().await;
}
