//! Grants end to end: tokens from a real OIDC provider, the API over real
//! HTTP, the SQLite store on disk, the sweeper running.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_core::secret::ScramVerifier;

#[tokio::test]
async fn valid_token_gets_an_active_grant_with_credentials() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;

    let g = gw
        .grant(
            &token,
            json!({"connection": "playground", "reason": "weekly report", "ttl": "10m"}),
        )
        .await;

    assert!(g["id"].as_str().unwrap().starts_with("g_"), "{g}");
    assert_eq!(g["status"], "active");
    assert_eq!(g["connection"], "playground");
    assert_eq!(g["profile"], "read");
    assert_eq!(g["rule"], "analytics-read");
    assert_eq!(g["reason"], "weekly report");
    assert_eq!(g["identity"]["subject"], AGENT);
    assert_eq!(g["identity"]["issuer"], gw.idp.issuer());
    assert_eq!(g["ttl_secs"], 600);
    assert_eq!(secs_between(&g["created_at"], &g["expires_at"]), 600);
    let c = &g["credentials"];
    let password = c["password"].as_str().unwrap();
    assert!(password.len() >= 4 + 43, "at least 256 bits: {password}");
    assert_eq!(c["user"], g["id"]);
    assert_eq!(c["host"], "127.0.0.1");
    assert_eq!(c["port"], 15432);
    assert_eq!(
        c["dsn"],
        format!(
            "postgresql://{}:{password}@127.0.0.1:15432/playground",
            g["id"].as_str().unwrap()
        )
    );

    // The secret is shown once: reading the grant again does not repeat it.
    let (status, again) = gw.show(&token, g["id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["status"], "active");
    assert!(again.get("credentials").is_none(), "{again}");

    let kinds: Vec<String> = gw.audit_rows().await.into_iter().map(|r| r.kind).collect();
    assert_eq!(kinds, ["grant.requested", "grant.activated"]);
    gw.assert_audit_chain_verifies().await;
}

#[tokio::test]
async fn ttl_is_the_smaller_of_asked_and_the_rule_max() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;

    // The rule allows 15 minutes: an hour is cut down to it.
    let long = gw
        .grant(&token, json!({"connection": "playground", "ttl": "1h"}))
        .await;
    assert_eq!(long["ttl_secs"], 900);
    assert_eq!(secs_between(&long["created_at"], &long["expires_at"]), 900);

    // Never longer than asked.
    let short = gw
        .grant(&token, json!({"connection": "playground", "ttl": "2m"}))
        .await;
    assert_eq!(short["ttl_secs"], 120);
    assert_eq!(
        secs_between(&short["created_at"], &short["expires_at"]),
        120
    );

    // A bare number is seconds.
    let secs = gw
        .grant(&token, json!({"connection": "playground", "ttl": 90}))
        .await;
    assert_eq!(secs["ttl_secs"], 90);

    // No ttl takes the server default (10m), still under the rule.
    let default = gw.grant(&token, json!({"connection": "playground"})).await;
    assert_eq!(default["ttl_secs"], 600);
    gw.assert_audit_chain_verifies().await;
}

#[tokio::test]
async fn the_grant_lives_on_its_own_terms_not_the_tokens() {
    let gw = Gateway::start().await;

    // A token of an hour yields a grant of two minutes.
    let hour_token = gw.token(AGENT).await;
    let exp = token_exp(&hour_token);
    let g = gw
        .grant(
            &hour_token,
            json!({"connection": "playground", "ttl": "2m"}),
        )
        .await;
    let expires = chrono::DateTime::parse_from_rfc3339(g["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert!(
        exp - expires > 3000,
        "token exp {exp}, grant expires {expires}"
    );

    // A token of one second yields a grant that outlives it.
    let brief = gw.token(SHORT_LIVED).await;
    let g = gw
        .grant(&brief, json!({"connection": "playground", "ttl": "10m"}))
        .await;
    let id = g["id"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = gw.show(&brief, id).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = gw.show(&gw.token(SHORT_LIVED).await, id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["status"], "active",
        "the grant outlived its token: {body}"
    );
}

#[tokio::test]
async fn connections_lists_only_what_the_caller_may_request() {
    let gw = Gateway::start().await;

    let names = |body: &Value| -> Vec<String> {
        body["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let list = |client: &'static str| {
        let gw = &gw;
        async move {
            let resp = gw
                .request(Method::GET, "/v1/connections", &gw.token(client).await)
                .send()
                .await
                .unwrap();
            parts(resp).await
        }
    };

    let (status, agent) = list(AGENT).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&agent), ["playground"]);
    let c = &agent["connections"][0];
    assert_eq!(
        (c["profile"].clone(), c["max_ttl_secs"].clone()),
        (json!("read"), json!(900))
    );
    assert_eq!(c["approval"], "none");

    let (_, writer) = list(WRITER).await;
    assert_eq!(names(&writer), ["orders"]);
    assert_eq!(writer["connections"][0]["approval"], "grant");

    let (status, outsider) = list(OUTSIDER).await;
    assert_eq!(status, StatusCode::OK);
    assert!(names(&outsider).is_empty(), "{outsider}");
}

#[tokio::test]
async fn only_the_owner_or_an_admin_sees_and_revokes_a_grant() {
    let gw = Gateway::start().await;
    let owner = gw.token(AGENT).await;
    let other = gw.token(OTHER_AGENT).await;
    let admin = gw.token(ADMIN).await;
    let g = gw
        .grant(&owner, json!({"connection": "playground", "ttl": "5m"}))
        .await;
    let id = g["id"].as_str().unwrap();

    let (status, body) = gw.show(&owner, id).await;
    assert_eq!((status, body["id"].as_str()), (StatusCode::OK, Some(id)));

    // Another identity, eligible for the same connection, gets the answer
    // for a grant that does not exist, and cannot revoke it.
    let (status, body) = gw.show(&other, id).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = gw.revoke(&other, id).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    // The answer tells nothing: it reads as for an id that does not exist.
    let (_, missing) = gw.show(&other, "g_doesnotexist").await;
    let redacted = |v: &Value, id: &str| v["message"].as_str().unwrap().replace(id, "ID");
    assert_eq!(redacted(&body, id), redacted(&missing, "g_doesnotexist"));
    assert_eq!(
        gw.show(&owner, id).await.1["status"],
        "active",
        "still active"
    );

    // Nor is it in the other identity's list.
    let resp = gw
        .request(Method::GET, "/v1/grants", &other)
        .send()
        .await
        .unwrap();
    let (_, list) = parts(resp).await;
    assert_eq!(list["grants"], json!([]));
    let resp = gw
        .request(Method::GET, "/v1/grants", &owner)
        .send()
        .await
        .unwrap();
    let (_, list) = parts(resp).await;
    assert_eq!(list["grants"][0]["id"], id);

    // An admin sees it and revokes it.
    let (status, body) = gw.show(&admin, id).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("active"))
    );
    assert!(
        body.get("credentials").is_none(),
        "an admin never sees the secret: {body}"
    );
    let (status, body) = gw.revoke(&admin, id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "revoked");
    assert_eq!(body["decided_by"], ADMIN);
    assert_eq!(gw.show(&owner, id).await.1["status"], "revoked");
    gw.assert_audit_chain_verifies().await;
}

#[tokio::test]
async fn revoking_ends_the_grant_once_and_is_audited() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    let g = gw
        .grant(&token, json!({"connection": "playground", "ttl": "5m"}))
        .await;
    let id = g["id"].as_str().unwrap();

    let (status, body) = gw.revoke(&token, id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "revoked");
    assert_eq!(gw.show(&token, id).await.1["status"], "revoked");

    let (status, body) = gw.revoke(&token, id).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    assert!(
        body["message"].as_str().unwrap().contains("revoked"),
        "{body}"
    );

    let revoked = gw.audit_events("grant.revoked").await;
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0]["grant_id"], id);
    assert_eq!(revoked[0]["actor"]["subject"], AGENT);
    assert_eq!(revoked[0]["detail"]["was"], "active");

    // The sweeper never expires what was revoked.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gw.show(&token, id).await.1["status"], "revoked");
    assert!(gw.audit_events("grant.expired").await.is_empty());
    gw.assert_audit_chain_verifies().await;
}

#[tokio::test]
async fn the_sweeper_expires_a_grant_on_time_and_records_it_once() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    let g = gw
        .grant(&token, json!({"connection": "playground", "ttl": "1s"}))
        .await;
    let id = g["id"].as_str().unwrap().to_string();
    assert_eq!(g["ttl_secs"], 1);

    let expired = eventually(Duration::from_secs(5), || async {
        gw.show(&token, &id).await.1["status"] == "expired"
    })
    .await;
    assert!(expired, "the grant did not expire within 5 s");

    // Several more sweeps pass; the expiry is still recorded exactly once.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let events = gw.audit_events("grant.expired").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["grant_id"], id.as_str());
    assert_eq!(events[0]["actor"]["subject"], "sweeper");
    assert_eq!(events[0]["detail"]["was"], "active");

    // An expired grant cannot be revoked.
    let (status, body) = gw.revoke(&token, &id).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    gw.assert_audit_chain_verifies().await;
}

#[tokio::test]
async fn a_long_poll_returns_as_soon_as_the_status_changes() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    let g = gw
        .grant(&token, json!({"connection": "playground", "ttl": "5m"}))
        .await;
    let id = g["id"].as_str().unwrap().to_string();

    let started = Instant::now();
    let wait = gw
        .request(Method::GET, &format!("/v1/grants/{id}?wait=10s"), &token)
        .send();
    let revoke = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        gw.revoke(&token, &id).await
    };
    let (waited, (revoke_status, _)) = tokio::join!(wait, revoke);
    let (status, body) = parts(waited.unwrap()).await;
    let took = started.elapsed();

    assert_eq!(revoke_status, StatusCode::OK);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "revoked");
    assert!(
        took < Duration::from_secs(8),
        "the long-poll held on for {took:?}"
    );
}

#[tokio::test]
async fn a_long_poll_without_a_change_answers_at_the_end_of_the_wait() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    let g = gw
        .grant(&token, json!({"connection": "playground", "ttl": "5m"}))
        .await;
    let id = g["id"].as_str().unwrap();

    let started = Instant::now();
    let resp = gw
        .request(Method::GET, &format!("/v1/grants/{id}?wait=1s"), &token)
        .send()
        .await
        .unwrap();
    let (status, body) = parts(resp).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("active"))
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    let resp = gw
        .request(Method::GET, &format!("/v1/grants/{id}?wait=soon"), &token)
        .send()
        .await
        .unwrap();
    let (status, body) = parts(resp).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn a_grant_needing_approval_is_pending_without_credentials_and_lapses() {
    let gw = Gateway::start().await;
    let token = gw.token(WRITER).await;

    let g = gw
        .grant(
            &token,
            json!({"connection": "orders", "reason": "fix order 42", "ttl": "1h"}),
        )
        .await;
    let id = g["id"].as_str().unwrap().to_string();
    assert_eq!(g["status"], "pending");
    assert_eq!(g["profile"], "write");
    assert_eq!(
        g["ttl_secs"], 300,
        "capped by the rule, for when it is approved"
    );
    assert!(g.get("credentials").is_none(), "{g}");
    assert_eq!(g["activated_at"], Value::Null);

    // No secret exists while nobody can use it.
    let db = gw.db().await;
    let verifier: String = sqlx::query_scalar("SELECT scram_verifier FROM grants WHERE id = ?")
        .bind(&id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(verifier, "");
    db.close().await;

    // Nobody approves it: it lapses after pending_grant_timeout (1s).
    let resp = gw
        .request(Method::GET, &format!("/v1/grants/{id}?wait=10s"), &token)
        .send()
        .await
        .unwrap();
    let (status, body) = parts(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "expired");
    assert!(body.get("credentials").is_none(), "{body}");

    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = gw.audit_events("grant.expired").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail"]["was"], "pending");
    assert!(gw.audit_events("grant.activated").await.is_empty());
    gw.assert_audit_chain_verifies().await;
}

#[tokio::test]
async fn the_grant_secret_is_never_stored_in_clear() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    let g = gw
        .grant(&token, json!({"connection": "playground", "ttl": "5m"}))
        .await;
    let id = g["id"].as_str().unwrap();
    let password = g["credentials"]["password"].as_str().unwrap();
    // The random part too, in case a prefix were stripped before storing.
    let random = password.strip_prefix("sls_").unwrap_or(password);

    // Not in the grants table, in any column.
    let db = gw.db().await;
    let row: (String, String) =
        sqlx::query_as("SELECT scram_verifier, id || subject || issuer || reason || COALESCE(decided_by, '') FROM grants WHERE id = ?")
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap();
    db.close().await;
    let (verifier_text, others) = row;
    assert!(!others.contains(random));
    assert!(!verifier_text.contains(random), "{verifier_text}");

    // The stored verifier is a SCRAM-SHA-256 verifier of exactly this secret.
    let verifier = ScramVerifier::parse(&verifier_text).expect("a SCRAM-SHA-256 verifier");
    assert!(verifier.verify(password));
    assert!(!verifier.verify("sls_not-the-secret"));

    // Not in the audit log.
    for r in gw.audit_rows().await {
        assert!(
            !r.body.contains(random),
            "audit event {} holds the secret",
            r.seq
        );
    }

    // Not anywhere in the database files (main file, WAL, shared memory).
    let bytes = gw.store_bytes();
    assert!(!bytes.is_empty());
    assert!(
        !bytes.windows(random.len()).any(|w| w == random.as_bytes()),
        "the secret is in the SQLite files"
    );
    // The same scan does find what is stored, so it would have found the secret.
    assert!(bytes.windows(id.len()).any(|w| w == id.as_bytes()));
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let gw = Gateway::start().await;
    assert_eq!(gw.get_plain("/healthz").await.status(), StatusCode::OK);
    assert_eq!(gw.get_plain("/readyz").await.status(), StatusCode::OK);

    let token = gw.token(AGENT).await;
    gw.grant(&token, json!({"connection": "playground"})).await;
    gw.ask(&token, json!({"connection": "warehouse"})).await;

    // A name no configuration holds is not a label: a caller cannot add
    // series to the gateway's metrics.
    gw.ask(&token, json!({"connection": "made-up-by-caller"}))
        .await;
    let _ = gw
        .http
        .get(format!("{}/v1/grants", gw.url))
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();

    let resp = gw.get_plain("/metrics").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(text.contains("# TYPE sluice_grants counter"), "{text}");
    for line in [
        "sluice_grants_total{connection=\"playground\",profile=\"read\",result=\"active\"} 1",
        "sluice_grants_total{connection=\"warehouse\",profile=\"any\",result=\"refused\"} 1",
        "sluice_grants_total{connection=\"unknown\",profile=\"any\",result=\"refused\"} 1",
        "sluice_token_verifications_total{result=\"ok\"} 3",
        "sluice_token_verifications_total{result=\"malformed\"} 1",
        "sluice_approvals_open 0",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    assert!(!text.contains("made-up-by-caller"), "{text}");
    assert!(!text.contains("sls_"), "no secret in the metrics");
}

/// The `exp` claim of a JWT (read without verifying; the test minted it).
fn token_exp(token: &str) -> i64 {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: Value = serde_json::from_slice(&bytes).unwrap();
    claims["exp"].as_i64().unwrap()
}
