//! Approval notifications to a local HTTP receiver: the generic webhook's
//! HMAC signature, retries after 500s, Slack-shaped messages, permanent
//! failures, the audit of each delivery, and a caller that never waits.

mod ui_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use ui_support::*;

const SECRET: &str = "whsec-test-0123456789";

#[derive(Default)]
struct Received {
    generic_attempts: usize,
    generic: Vec<(HeaderMap, Bytes)>,
    slack: Vec<Value>,
    gone_attempts: usize,
    slow: usize,
}

type Shared = Arc<Mutex<Received>>;

async fn generic(State(r): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut r = r.lock().unwrap();
    r.generic_attempts += 1;
    if r.generic_attempts <= 2 {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    r.generic.push((headers, body));
    StatusCode::NO_CONTENT
}

async fn slack(State(r): State<Shared>, body: Bytes) -> StatusCode {
    r.lock()
        .unwrap()
        .slack
        .push(serde_json::from_slice(&body).unwrap());
    StatusCode::OK
}

async fn gone(State(r): State<Shared>) -> StatusCode {
    r.lock().unwrap().gone_attempts += 1;
    StatusCode::GONE
}

async fn slow(State(r): State<Shared>) -> StatusCode {
    tokio::time::sleep(Duration::from_secs(2)).await;
    r.lock().unwrap().slow += 1;
    StatusCode::OK
}

async fn receiver() -> (String, Shared) {
    let state = Shared::default();
    let app = axum::Router::new()
        .route("/hook", post(generic))
        .route("/services/T000/B000/slack-url-secret", post(slack))
        .route("/gone", post(gone))
        .route("/slow", post(slow))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

fn verify(headers: &HeaderMap, body: &[u8]) {
    let ts = headers["x-sluice-timestamp"].to_str().unwrap();
    let age = sluice_core::clock::now().timestamp() - ts.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "fresh timestamp");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(headers["x-sluice-signature"].to_str().unwrap(), expected);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["x-sluice-event"], "approval.opened");
}

#[tokio::test]
async fn approvals_are_announced_signed_retried_and_audited() {
    let (hooks, received) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("hook.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let extra = format!(
        "[[approvals.webhooks]]\nurl = \"{hooks}/hook\"\nsecret_file = \"{}\"\n\
         [[approvals.webhooks]]\nurl = \"{hooks}/services/T000/B000/slack-url-secret\"\nkind = \"slack\"\n\
         [[approvals.webhooks]]\nurl = \"{hooks}/gone\"\n\
         [[approvals.webhooks]]\nurl = \"{hooks}/slow\"\n\
         {DEV_UI}",
        secret_file.display()
    );
    let gw = UiGateway::start_with(&extra).await;

    let started = Instant::now();
    let (gid, aid) = gw
        .pending_grant("writer-1", &["writers"], "ship the <fix> & go")
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the request did not wait for the slow receiver ({:?})",
        started.elapsed()
    );

    // Two 500s, then success: three attempts, about 1 s + 2 s apart.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        {
            let r = received.lock().unwrap();
            if !r.generic.is_empty() && !r.slack.is_empty() && r.gone_attempts > 0 && r.slow > 0 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "deliveries did not arrive in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (headers, body, slack_msg, gone_attempts) = {
        let r = received.lock().unwrap();
        assert_eq!(r.generic_attempts, 3);
        let (h, b) = r.generic[0].clone();
        (h, b, r.slack[0].clone(), r.gone_attempts)
    };
    verify(&headers, &body);
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["event"], "approval.opened");
    assert_eq!(json["approval"]["id"], aid.as_str());
    assert_eq!(json["approval"]["grant_id"], gid.as_str());
    assert_eq!(json["approval"]["kind"], "grant");
    assert_eq!(
        json["approval"]["url"],
        format!("{}/ui/approvals/{aid}", gw.url)
    );
    // The same delivery id on every attempt lets receivers drop duplicates.
    assert!(
        headers["x-sluice-delivery"]
            .to_str()
            .unwrap()
            .starts_with(&aid)
    );

    // Slack: text plus blocks, escaped, with a button to the page.
    let text = slack_msg["text"].as_str().unwrap();
    assert!(
        text.contains("writer-1") && text.contains("orders") && text.contains("grant"),
        "{text}"
    );
    let blocks = slack_msg["blocks"].as_array().unwrap();
    let all = serde_json::to_string(blocks).unwrap();
    assert!(all.contains("ship the &lt;fix&gt; &amp; go"), "{all}");
    let button = blocks
        .iter()
        .find(|b| b["type"] == "actions")
        .map(|b| b["elements"][0]["url"].clone())
        .unwrap();
    assert_eq!(button, format!("{}/ui/approvals/{aid}", gw.url));

    // 410 is final: one attempt only.
    assert_eq!(gone_attempts, 1);

    // Each delivery's final result is audited; no secret, no URL path.
    let deadline = Instant::now() + Duration::from_secs(5);
    let notified = loop {
        let rows = gw.state.store.audit_after(0, 1000).await.unwrap();
        let n: Vec<Value> = rows
            .iter()
            .filter(|r| r.kind == "approval.notified")
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect();
        if n.len() == 4 {
            for r in &rows {
                assert!(
                    !r.body.contains(SECRET),
                    "the secret never reaches the audit log"
                );
                assert!(
                    !r.body.contains("slack-url-secret"),
                    "nor a webhook URL's path"
                );
            }
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "4 approval.notified events expected, got {}",
            n.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let host = hooks.trim_start_matches("http://");
    let find = |kind: &str, status: u64| {
        notified
            .iter()
            .map(|e| &e["detail"])
            .find(|d| d["kind"] == kind && d["status"] == status)
            .unwrap_or_else(|| panic!("no {kind} {status} in {notified:?}"))
            .clone()
    };
    let g = find("generic", 204);
    assert_eq!(
        (g["delivered"].as_bool(), g["attempts"].as_u64()),
        (Some(true), Some(3))
    );
    assert_eq!(g["webhook"], host);
    assert_eq!(g["approval_id"], aid.as_str());
    let s = find("slack", 200);
    assert_eq!(s["attempts"], 1);
    let gone = find("generic", 410);
    assert_eq!(
        (gone["delivered"].as_bool(), gone["attempts"].as_u64()),
        (Some(false), Some(1))
    );
}
