//! Bearer tokens the API refuses: each a 401 with a clear reason, each
//! recorded as `token.rejected`, and no token content in the record.

mod common;

use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_testkit::oidc::{OidcClient, OidcOptions, OidcProvider};

/// Sends `token` (or no header at all) to `POST /v1/grants` and expects a
/// 401; returns its message, after checking that nothing was issued.
async fn refused(gw: &Gateway, token: Option<&str>) -> String {
    let mut req = gw.http.post(format!("{}/v1/grants", gw.url));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req
        .json(&json!({"connection": "playground"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer")
    );
    let (status, body) = parts(resp).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(gw.grant_count().await, 0);
    body["message"].as_str().unwrap().to_string()
}

/// The one `token.rejected` event: its reason is `reason`, and no part of
/// `token` appears in any audit event.
async fn assert_rejection_recorded(gw: &Gateway, reason: &str, token: &str) {
    let events = gw.audit_events("token.rejected").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail"]["reason"], reason, "{}", events[0]);
    assert!(
        events[0].get("actor").is_none(),
        "an unverified token names nobody"
    );
    for row in gw.audit_rows().await {
        assert_no_token_content(&row.body, token);
    }
    gw.assert_audit_chain_verifies().await;
}

/// Neither the token nor any 16-character piece of its signature is in `text`.
fn assert_no_token_content(text: &str, token: &str) {
    assert!(!text.contains(token), "the token is in {text}");
    let signature = token.rsplit('.').next().unwrap();
    for piece in signature.as_bytes().chunks(16).filter(|p| p.len() == 16) {
        let piece = std::str::from_utf8(piece).unwrap();
        assert!(
            !text.contains(piece),
            "part of the signature ({piece}) is in {text}"
        );
    }
    let payload = token.split('.').nth(1).unwrap();
    assert!(!text.contains(payload), "the token's payload is in {text}");
}

#[tokio::test]
async fn a_missing_header_is_refused_and_recorded() {
    let gw = Gateway::start().await;
    let message = refused(&gw, None).await;
    assert!(message.contains("Authorization: Bearer"), "{message}");

    // A header of another scheme is no bearer token either.
    let resp = gw
        .http
        .get(format!("{}/v1/connections", gw.url))
        .basic_auth(AGENT, Some("password"))
        .send()
        .await
        .unwrap();
    let (status, body) = parts(resp).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    let events = gw.audit_events("token.rejected").await;
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e["detail"]["reason"] == "missing_token")
    );
    gw.assert_audit_chain_verifies().await;
}

#[tokio::test]
async fn an_expired_token_is_refused_and_recorded() {
    let gw = Gateway::start().await;
    let token = gw.token(SHORT_LIVED).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let message = refused(&gw, Some(&token)).await;
    assert!(message.contains("expired"), "{message}");
    assert_rejection_recorded(&gw, "expired", &token).await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused_and_recorded() {
    let gw = Gateway::start().await;
    let token = gw.token_for(AGENT, "https://another-api.test").await;

    let message = refused(&gw, Some(&token)).await;
    assert!(message.contains("another audience"), "{message}");
    assert_rejection_recorded(&gw, "wrong_audience", &token).await;
}

#[tokio::test]
async fn a_token_from_an_issuer_not_configured_is_refused_and_recorded() {
    let gw = Gateway::start().await;
    // A second, real provider with the same client and audience, but not trusted.
    let stranger = OidcProvider::start(OidcOptions {
        clients: vec![OidcClient::new(AGENT, &["analytics-agents"])],
        ..OidcOptions::default()
    })
    .await
    .expect("start a second OIDC provider");
    let token = stranger
        .client_credentials_token(AGENT, &OidcClient::secret_for(AGENT), gw.idp.audience())
        .await
        .unwrap();

    let message = refused(&gw, Some(&token)).await;
    assert!(message.contains("issuer is not trusted"), "{message}");
    assert_rejection_recorded(&gw, "unknown_issuer", &token).await;
    assert_eq!(
        stranger.fetch_counts().await.unwrap(),
        (0, 0),
        "never asked for its keys"
    );
}

#[tokio::test]
async fn a_tampered_signature_is_refused_and_recorded() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    let tampered = flip_signature_char(&token);

    let message = refused(&gw, Some(&tampered)).await;
    assert!(message.contains("signature is invalid"), "{message}");
    assert_rejection_recorded(&gw, "bad_signature", &tampered).await;

    // The genuine token still works.
    gw.grant(&token, json!({"connection": "playground"})).await;
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let gw = Gateway::start().await;
    let token = gw.token(OUTSIDER).await;
    // Claim a group the provider never gave, keeping the original signature.
    let mut parts_ = token.split('.');
    let (header, payload, signature) = (
        parts_.next().unwrap(),
        parts_.next().unwrap(),
        parts_.next().unwrap(),
    );
    let mut claims: Value = serde_json::from_slice(&b64().decode(payload).unwrap()).unwrap();
    claims["groups"] = json!(["analytics-agents"]);
    let forged = format!("{header}.{}.{signature}", b64().encode(claims.to_string()));

    refused(&gw, Some(&forged)).await;
    assert_rejection_recorded(&gw, "bad_signature", &forged).await;
}

#[tokio::test]
async fn the_audit_log_is_for_admins_and_carries_the_rejections() {
    let gw = Gateway::start().await;
    let expired = gw.token(SHORT_LIVED).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    refused(&gw, Some(&expired)).await;
    refused(&gw, Some(&flip_signature_char(&gw.token(AGENT).await))).await;
    refused(&gw, Some("not-a-jwt")).await;

    let resp = gw
        .request(Method::GET, "/v1/audit", &gw.token(AGENT).await)
        .send()
        .await
        .unwrap();
    let (status, body) = parts(resp).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");

    let resp = gw
        .request(Method::GET, "/v1/audit", &gw.token(ADMIN).await)
        .send()
        .await
        .unwrap();
    let (status, body) = parts(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let reasons: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "token.rejected")
        .map(|e| e["detail"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["expired", "bad_signature", "malformed"]);
    let text = body.to_string();
    assert_no_token_content(&text, &expired);
    assert!(!text.contains("not-a-jwt"));
    gw.assert_audit_chain_verifies().await;
}

/// The token with one character of its signature changed (not the last,
/// whose low bits may be padding).
fn flip_signature_char(token: &str) -> String {
    let at = token.rfind('.').unwrap() + 10;
    let mut bytes = token.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

use base64::Engine as _;
