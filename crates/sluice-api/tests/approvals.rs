//! Grant approvals end to end over HTTP with a real OIDC provider: pending
//! grants approved (and then usable), denied, self-approval refused, N-of-M.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn start(min_approvals: u32) -> Gateway {
    Gateway::start_with(move |c| {
        c.replace(
            "pending_grant_timeout = \"1s\"",
            "pending_grant_timeout = \"10m\"",
        )
        .replace(
            "approver_groups = [\"dba\"]",
            &format!("approver_groups = [\"dba\"]\nmin_approvals = {min_approvals}"),
        )
    })
    .await
}

async fn call(
    gw: &Gateway,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = gw.request(method, path, token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn pending_grant(gw: &Gateway, writer: &str) -> (Value, Value) {
    let grant = gw
        .grant(
            writer,
            json!({"connection": "orders", "reason": "fix order 42"}),
        )
        .await;
    assert_eq!(grant["status"], "pending");
    assert!(grant.get("credentials").is_none());
    let (status, list) = call(
        gw,
        Method::GET,
        "/v1/approvals?status=pending",
        writer,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let approval = list["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["grant_id"] == grant["id"])
        .cloned()
        .expect("the requester sees its own approval");
    assert_eq!(approval["kind"], "grant");
    assert_eq!(approval["reason"], "fix order 42");
    (grant, approval)
}

#[tokio::test]
async fn an_approved_grant_becomes_active_and_its_secret_is_delivered_once() {
    let gw = start(1).await;
    let writer = gw.token(WRITER).await;
    let dba = gw.token(DBA1).await;
    let (grant, approval) = pending_grant(&gw, &writer).await;
    let id = grant["id"].as_str().unwrap();
    let aid = approval["id"].as_str().unwrap();

    // The requester waits on the grant while the approver decides.
    let waiter = {
        let http = gw.http.clone();
        let url = format!("{}/v1/grants/{id}?wait=20s", gw.url);
        let writer = writer.clone();
        tokio::spawn(async move {
            let r = http.get(url).bearer_auth(writer).send().await.unwrap();
            r.json::<Value>().await.unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, decided) = call(
        &gw,
        Method::POST,
        &format!("/v1/approvals/{aid}/approve"),
        &dba,
        Some(json!({"reason": "ticket ok"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["decided_by"], DBA1);

    let seen = waiter.await.unwrap();
    assert_eq!(seen["status"], "active");
    let password = seen["credentials"]["password"]
        .as_str()
        .expect("secret delivered on first read");
    let stored = gw.state.store.grant(id).await.unwrap().unwrap();
    assert!(
        sluice_core::secret::ScramVerifier::parse(&stored.scram_verifier)
            .unwrap()
            .verify(password)
    );
    // Its TTL runs from the approval.
    assert_eq!(
        stored
            .activated_at
            .map(|t| (stored.expires_at - t).num_seconds()),
        Some(300)
    );
    let (_, again) = gw.show(&writer, id).await;
    assert!(again.get("credentials").is_none(), "shown once");
}

#[tokio::test]
async fn denial_needs_a_reason_and_denies_the_grant() {
    let gw = start(1).await;
    let writer = gw.token(WRITER).await;
    let dba = gw.token(DBA1).await;
    let (grant, approval) = pending_grant(&gw, &writer).await;
    let aid = approval["id"].as_str().unwrap();
    let (status, _) = call(
        &gw,
        Method::POST,
        &format!("/v1/approvals/{aid}/deny"),
        &dba,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, denied) = call(
        &gw,
        Method::POST,
        &format!("/v1/approvals/{aid}/deny"),
        &dba,
        Some(json!({"reason": "not during the freeze"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(denied["status"], "denied");
    assert_eq!(denied["decision_reason"], "not during the freeze");
    let (_, g) = gw.show(&writer, grant["id"].as_str().unwrap()).await;
    assert_eq!(g["status"], "denied");
    // Closed is closed.
    let (status, _) = call(
        &gw,
        Method::POST,
        &format!("/v1/approvals/{aid}/approve"),
        &dba,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn nobody_approves_their_own_request_and_non_approvers_cannot() {
    let gw = start(1).await;
    let me = gw.token(DBA_WRITER).await;
    let (_, approval) = pending_grant(&gw, &me).await;
    let aid = approval["id"].as_str().unwrap();
    let (status, body) = call(
        &gw,
        Method::POST,
        &format!("/v1/approvals/{aid}/approve"),
        &me,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["message"].as_str().unwrap().contains("own request"),
        "{body}"
    );
    let agent = gw.token(AGENT).await;
    let (status, _) = call(
        &gw,
        Method::POST,
        &format!("/v1/approvals/{aid}/approve"),
        &agent,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a stranger cannot even see it"
    );
    let writer = gw.token(WRITER).await;
    let (status, list) = call(&gw, Method::GET, "/v1/approvals", &writer, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        list["approvals"].as_array().unwrap().is_empty(),
        "others' approvals stay hidden"
    );
}

#[tokio::test]
async fn two_of_many_need_two_distinct_approvers() {
    let gw = start(2).await;
    let writer = gw.token(WRITER).await;
    let (grant, approval) = pending_grant(&gw, &writer).await;
    let aid = approval["id"].as_str().unwrap();
    let dba1 = gw.token(DBA1).await;
    let (_, first) = call(
        &gw,
        Method::POST,
        &format!("/v1/approvals/{aid}/approve"),
        &dba1,
        None,
    )
    .await;
    assert_eq!(first["status"], "pending");
    assert_eq!(first["approvals"], 1);
    let (status, _) = call(
        &gw,
        Method::POST,
        &format!("/v1/approvals/{aid}/approve"),
        &dba1,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "one vote per approver");
    let (_, g) = gw.show(&writer, grant["id"].as_str().unwrap()).await;
    assert_eq!(g["status"], "pending");
    let dba2 = gw.token(DBA2).await;
    let (_, second) = call(
        &gw,
        Method::POST,
        &format!("/v1/approvals/{aid}/approve"),
        &dba2,
        None,
    )
    .await;
    assert_eq!(second["status"], "approved");
    let (_, g) = gw.show(&writer, grant["id"].as_str().unwrap()).await;
    assert_eq!(g["status"], "active");

    // Every step is in the chain.
    let rows = gw.state.store.audit_after(0, 1000).await.unwrap();
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    for k in [
        "approval.requested",
        "approval.voted",
        "approval.approved",
        "grant.activated",
    ] {
        assert!(kinds.contains(&k), "{k} missing: {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "approval.voted").count(), 2);
    assert!(sluice_audit::verify(&gw.state.store).await.unwrap().is_ok());
}

/// Opens a statement approval held in session `session` on `grant`.
async fn held(gw: &Gateway, grant: &Value, session: &str, statement: &str) -> String {
    let grant = gw
        .state
        .store
        .grant(grant["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    sluice_control::approvals::open_for_statement(
        &gw.state,
        sluice_control::approvals::StatementRequest {
            grant,
            session_id: session.into(),
            statement: statement.into(),
            parameters: None,
            analysis: json!({"reason": "writes need a dba"}),
            fingerprint: format!("fp-{session}"),
            rule: "writes-need-approval".into(),
        },
    )
    .await
    .unwrap()
    .id
}

#[tokio::test]
async fn every_event_of_a_statement_approval_names_its_session() {
    let gw = start(1).await;
    let dba1 = gw.token(DBA1).await;
    let dba2 = gw.token(DBA2).await;
    // dba-1 works on the warehouse (active at once); dba-2 decides.
    let grant = gw
        .grant(
            &dba1,
            json!({"connection": "warehouse", "reason": "cleanup"}),
        )
        .await;
    assert_eq!(grant["status"], "active");
    let gid = grant["id"].as_str().unwrap();
    let approved = held(&gw, &grant, "s_held", "DELETE FROM t WHERE id = 1").await;
    let denied = held(&gw, &grant, "s_held", "DELETE FROM t").await;
    let expired = held(&gw, &grant, "s_held", "TRUNCATE t").await;
    let (status, _) = call(
        &gw,
        Method::POST,
        &format!("/v1/approvals/{approved}/approve"),
        &dba2,
        Some(json!({"reason": "one row is fine"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &gw,
        Method::POST,
        &format!("/v1/approvals/{denied}/deny"),
        &dba2,
        Some(json!({"reason": "not all of it"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    sluice_control::approvals::expire(&gw.state, &expired).await;
    // A grant approval has no session, and says none.
    let writer = gw.token(WRITER).await;
    let (_, grant_approval) = pending_grant(&gw, &writer).await;
    let gaid = grant_approval["id"].as_str().unwrap();
    let (status, _) = call(
        &gw,
        Method::POST,
        &format!("/v1/approvals/{gaid}/approve"),
        &dba1,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let rows = gw.state.store.audit_after(0, 1000).await.unwrap();
    let events: Vec<Value> = rows
        .iter()
        .filter(|r| r.kind.starts_with("approval."))
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    let about = |id: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["detail"]["approval_id"] == id)
            .collect()
    };
    let kinds = |id: &str| -> Vec<&str> {
        about(id)
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect()
    };
    assert_eq!(
        kinds(&approved),
        ["approval.requested", "approval.voted", "approval.approved"]
    );
    assert_eq!(
        kinds(&denied),
        ["approval.requested", "approval.voted", "approval.denied"]
    );
    assert_eq!(kinds(&expired), ["approval.requested", "approval.expired"]);
    for id in [&approved, &denied, &expired] {
        for e in about(id) {
            assert_eq!(e["session_id"], "s_held", "{e}");
            assert_eq!(e["grant_id"], gid, "{e}");
            assert_eq!(e["connection"], "warehouse", "{e}");
        }
    }
    let decision = about(&denied)[2];
    assert_eq!(decision["detail"]["reason"], "not all of it");
    for e in about(gaid) {
        assert!(e.get("session_id").is_none(), "{e}");
        assert_eq!(e["grant_id"], grant_approval["grant_id"]);
    }

    // So the session's own events hold every decision, in order.
    let session: Vec<String> = gw
        .state
        .store
        .session_events("s_held")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(
        session
            .iter()
            .filter(|k| k.starts_with("approval."))
            .count(),
        8,
        "{session:?}"
    );
    let decided: Vec<&str> = session
        .iter()
        .map(String::as_str)
        .filter(|k| ["approval.approved", "approval.denied", "approval.expired"].contains(k))
        .collect();
    assert_eq!(
        decided,
        ["approval.approved", "approval.denied", "approval.expired"]
    );
    assert!(sluice_audit::verify(&gw.state.store).await.unwrap().is_ok());
}
