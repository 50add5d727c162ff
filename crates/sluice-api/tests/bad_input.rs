//! Hostile and mistaken requests: each answered with the right status and a
//! JSON `{error, message}`, nothing stored, and the server keeps serving.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Sends a raw body with a content type to `POST /v1/grants`.
async fn post_raw(
    gw: &Gateway,
    token: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let resp = gw
        .request(Method::POST, "/v1/grants", token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("POST /v1/grants");
    parts(resp).await
}

/// After a bad request: nothing stored, still serving, a good request works.
async fn assert_unharmed(gw: &Gateway, token: &str) {
    assert_eq!(gw.grant_count().await, 0, "a bad request stored a grant");
    gw.assert_serving().await;
    let resp = gw
        .request(Method::GET, "/v1/connections", token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    for body in [
        r#"{"connection": "playground""#,
        "not json",
        "",
        "[1, 2",
        r#"{"connection": playground}"#,
    ] {
        let (status, json) = post_raw(&gw, &token, "application/json", body).await;
        assert_error(status, &json, StatusCode::BAD_REQUEST, "bad_request");
        assert!(
            json["message"].as_str().unwrap().contains("JSON") || body.is_empty(),
            "{body:?}: {json}"
        );
    }
    assert_unharmed(&gw, &token).await;
}

#[tokio::test]
async fn unknown_fields_and_wrong_types_are_a_400() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    for body in [
        json!({"connection": "playground", "ttl": "5m", "admin": true}),
        json!({"connection": "playground", "profile": "root"}),
        json!({"connection": 7}),
        json!({"reason": "no connection"}),
        json!(["playground"]),
    ] {
        let (status, json) = parts(gw.ask(&token, body.clone()).await).await;
        assert_error(status, &json, StatusCode::BAD_REQUEST, "bad_request");
        assert!(
            json["message"]
                .as_str()
                .unwrap()
                .starts_with("invalid request"),
            "{body}: {json}"
        );
    }
    let (_, json) = parts(
        gw.ask(&token, json!({"connection": "playground", "admin": true}))
            .await,
    )
    .await;
    assert!(
        json["message"].as_str().unwrap().contains("admin"),
        "names the field: {json}"
    );
    assert_unharmed(&gw, &token).await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    let body = r#"{"connection": "playground"}"#;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        let (status, json) = post_raw(&gw, &token, content_type, body).await;
        assert_error(
            status,
            &json,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    // No content type at all.
    let resp = gw
        .request(Method::POST, "/v1/grants", &token)
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, json) = parts(resp).await;
    assert_error(
        status,
        &json,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    assert_unharmed(&gw, &token).await;
}

#[tokio::test]
async fn a_duplicated_field_is_a_400() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    // Two parsers could disagree on which value wins; refuse both.
    let body = r#"{"connection": "playground", "connection": "warehouse"}"#;
    let (status, json) = post_raw(&gw, &token, "application/json", body).await;
    assert_error(status, &json, StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        json["message"].as_str().unwrap().contains("duplicate"),
        "{json}"
    );
    assert_unharmed(&gw, &token).await;
}

#[tokio::test]
async fn json_content_types_with_parameters_or_suffixes_are_accepted() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    let body = r#"{"connection": "playground"}"#;
    for content_type in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.sluice+json",
    ] {
        let (status, json) = post_raw(&gw, &token, content_type, body).await;
        assert_eq!(status, StatusCode::CREATED, "{content_type}: {json}");
    }
    assert_eq!(gw.grant_count().await, 3);
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    let reason = "x".repeat(MAX_BODY * 4);
    let body = json!({"connection": "playground", "reason": reason}).to_string();

    let (status, json) = post_raw(&gw, &token, "application/json", body.clone()).await;
    assert_error(
        status,
        &json,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    // Without a declared length (chunked), the cap holds all the same.
    let mut request = format!(
        "POST /v1/grants HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for chunk in body.as_bytes().chunks(1024) {
        request.push_str(&format!(
            "{:x}\r\n{}\r\n",
            chunk.len(),
            std::str::from_utf8(chunk).unwrap()
        ));
    }
    request.push_str("0\r\n\r\n");
    let response = raw_http(&gw, request.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.contains(r#""error":"payload_too_large""#),
        "{response}"
    );
    assert_unharmed(&gw, &token).await;
}

#[tokio::test]
async fn an_unknown_connection_is_a_404() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    let (status, json) = parts(gw.ask(&token, json!({"connection": "prod-db"})).await).await;
    assert_error(status, &json, StatusCode::NOT_FOUND, "unknown_connection");
    assert!(
        json["message"].as_str().unwrap().contains("prod-db"),
        "{json}"
    );
    assert_unharmed(&gw, &token).await;
}

#[tokio::test]
async fn invalid_ttls_are_a_400() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    for ttl in [
        json!("0s"),
        json!(0),
        json!("forever"),
        json!("48h"),
        json!(-5),
        json!("15"),
        json!(1.5),
        json!(null),
    ] {
        let body = json!({"connection": "playground", "ttl": ttl});
        let (status, json) = parts(gw.ask(&token, body).await).await;
        if ttl.is_null() {
            // null is "no ttl": the default applies.
            assert_eq!(status, StatusCode::CREATED, "{json}");
            assert_eq!(json["ttl_secs"], 600);
            let id = json["id"].as_str().unwrap();
            assert_eq!(gw.revoke(&token, id).await.0, StatusCode::OK);
            continue;
        }
        assert_error(status, &json, StatusCode::BAD_REQUEST, "bad_request");
        assert_eq!(gw.grant_count().await, 0, "ttl {ttl} stored a grant");
    }
    gw.assert_serving().await;
}

#[tokio::test]
async fn an_ineligible_identity_is_a_403_naming_why() {
    let gw = Gateway::start().await;
    let token = gw.token(OUTSIDER).await;
    let (status, json) = parts(gw.ask(&token, json!({"connection": "playground"})).await).await;
    assert_error(status, &json, StatusCode::FORBIDDEN, "forbidden");
    let message = json["message"].as_str().unwrap();
    assert!(
        message.contains("marketing") && message.contains("playground"),
        "{message}"
    );

    // Eligible for the connection, but not for the profile asked for.
    let agent = gw.token(AGENT).await;
    let (status, json) = parts(
        gw.ask(
            &agent,
            json!({"connection": "playground", "profile": "write"}),
        )
        .await,
    )
    .await;
    assert_error(status, &json, StatusCode::FORBIDDEN, "forbidden");

    let denied = gw.audit_events("grant.denied").await;
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert_eq!(denied[0]["actor"]["subject"], OUTSIDER);
    assert_unharmed(&gw, &token).await;
    gw.assert_audit_chain_verifies().await;
}

#[tokio::test]
async fn a_reason_over_1000_characters_is_a_400() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    let (status, json) = parts(
        gw.ask(
            &token,
            json!({"connection": "playground", "reason": "r".repeat(1001)}),
        )
        .await,
    )
    .await;
    assert_error(status, &json, StatusCode::BAD_REQUEST, "bad_request");
    assert!(json["message"].as_str().unwrap().contains("1000"), "{json}");
    assert_eq!(gw.grant_count().await, 0);

    // Exactly 1000 characters (multi-byte ones) is fine.
    let g = gw
        .grant(
            &token,
            json!({"connection": "playground", "reason": "é".repeat(1000)}),
        )
        .await;
    assert_eq!(g["reason"].as_str().unwrap().chars().count(), 1000);
    assert_eq!(gw.grant_count().await, 1);
}

#[tokio::test]
async fn unknown_routes_and_grants_are_json_404s() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    let resp = gw
        .request(Method::GET, "/v1/nothing-here", &token)
        .send()
        .await
        .unwrap();
    let (status, json) = parts(resp).await;
    assert_error(status, &json, StatusCode::NOT_FOUND, "not_found");

    let long_id = "g".repeat(10_000);
    for id in ["g_nope", long_id.as_str(), "%27%20OR%201%3D1"] {
        let (status, json) = gw.show(&token, id).await;
        assert_error(status, &json, StatusCode::NOT_FOUND, "not_found");
    }
    assert_unharmed(&gw, &token).await;
}

#[tokio::test]
async fn after_a_burst_of_bad_input_the_audit_chain_verifies() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    let outsider = gw.token(OUTSIDER).await;
    post_raw(&gw, &token, "application/json", "{").await;
    post_raw(&gw, &token, "text/plain", "{}").await;
    gw.ask(&token, json!({"connection": "nope"})).await;
    gw.ask(
        &token,
        json!({"connection": "playground", "ttl": "forever"}),
    )
    .await;
    gw.ask(&outsider, json!({"connection": "playground"})).await;
    refused_anonymously(&gw).await;
    let g = gw
        .grant(&token, json!({"connection": "playground", "ttl": "1s"}))
        .await;
    gw.revoke(&token, g["id"].as_str().unwrap()).await;

    gw.assert_audit_chain_verifies().await;
    let kinds: Vec<String> = gw.audit_rows().await.into_iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            "grant.denied",
            "grant.denied",
            "token.rejected",
            "grant.requested",
            "grant.activated",
            "grant.revoked"
        ]
    );
}

async fn refused_anonymously(gw: &Gateway) {
    let resp = gw
        .http
        .post(format!("{}/v1/grants", gw.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// Writes `request` on a fresh connection and reads the answer to the end.
async fn raw_http(gw: &Gateway, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = gw.url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before reading everything we send.
    let _ = conn.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        conn.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn an_ssh_key_is_refused_for_a_database_grant() {
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFl0ZGVvYnJhbmRvbmtleWZvcnRoZXRlc3QxMjM0 agent";
    let (status, json) = parts(
        gw.ask(&token, json!({"connection": "playground", "ssh_key": key}))
            .await,
    )
    .await;
    assert_error(status, &json, StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("SSH connections"),
        "{json}"
    );
    assert_unharmed(&gw, &token).await;
}

/// Generated bodies, from a fixed seed: valid requests with fields
/// replaced by any JSON value (deep, huge, odd numbers, control and
/// non-ASCII text), fields added, and the text itself cut, spliced and
/// flipped. Every answer is a JSON error or a success, never a 5xx or a
/// hang; the server keeps serving and the chain verifies after.
#[tokio::test]
async fn generated_bodies_get_json_answers_never_a_server_error() {
    use rand::{Rng, SeedableRng};
    let gw = Gateway::start().await;
    let token = gw.token(AGENT).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(18);
    let templates = [
        (
            "/v1/grants",
            json!({"connection": "playground", "reason": "fuzz", "ttl": "5m"}),
        ),
        (
            "/v1/approvals/a_nosuchapproval/approve",
            json!({"reason": "ok", "scope": "statement"}),
        ),
        (
            "/v1/approvals/a_nosuchapproval/deny",
            json!({"reason": "no"}),
        ),
    ];
    let mut answered = 0;
    for round in 0..600 {
        let (path, template) = &templates[round % templates.len()];
        let body = mutate(&mut rng, template);
        let resp = gw
            .request(Method::POST, path, &token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("an answer");
        let (status, json) = parts(resp).await;
        assert!(
            !status.is_server_error(),
            "{path} {status} for {:?}: {json}",
            String::from_utf8_lossy(&body)
        );
        if status.is_client_error() {
            assert!(json["error"].is_string(), "{status}: {json}");
        }
        answered += 1;
    }
    assert_eq!(answered, 600);
    gw.assert_serving().await;
    gw.assert_audit_chain_verifies().await;

    fn any_value(rng: &mut impl Rng, depth: u32) -> Value {
        match rng.gen_range(0..10) {
            0 => Value::Null,
            1 => json!(rng.r#gen::<bool>()),
            2 => json!(rng.r#gen::<i64>()),
            3 => json!(rng.r#gen::<f64>() * 1e300),
            4 => json!("x".repeat(rng.gen_range(0..5000))),
            5 => json!(
                (0..rng.gen_range(0..40))
                    .map(|_| char::from_u32(rng.gen_range(0..0x2_0000)).unwrap_or('\u{fffd}'))
                    .collect::<String>()
            ),
            6 => json!(
                [
                    "5m",
                    "1h",
                    "0s",
                    "-1s",
                    "999999999h",
                    "5 minutes",
                    "PT5M",
                    "5m\0"
                ][rng.gen_range(0..8)]
            ),
            7 if depth < 60 => json!([any_value(rng, depth + 1)]),
            8 if depth < 60 => json!({"k": any_value(rng, depth + 1)}),
            _ => json!(u64::MAX),
        }
    }

    fn mutate(rng: &mut impl Rng, template: &Value) -> Vec<u8> {
        let mut v = template.clone();
        let fields: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        for _ in 0..rng.gen_range(1..4) {
            let obj = v.as_object_mut().unwrap();
            match rng.gen_range(0..4) {
                0 => {
                    let f = &fields[rng.gen_range(0..fields.len())];
                    obj.insert(f.clone(), any_value(rng, 0));
                }
                1 => {
                    let f = &fields[rng.gen_range(0..fields.len())];
                    obj.remove(f);
                }
                2 => {
                    obj.insert(format!("extra{}", rng.gen_range(0..3)), any_value(rng, 0));
                }
                _ => {}
            }
        }
        let mut text = serde_json::to_vec(&v).unwrap();
        // Sometimes damage the text itself.
        for _ in 0..rng.gen_range(0..3) {
            if text.is_empty() {
                break;
            }
            let at = rng.gen_range(0..text.len());
            match rng.gen_range(0..3) {
                0 => text[at] = rng.r#gen(),
                1 => text.truncate(at),
                _ => text.insert(at, b"{}[]\",:\\0e-"[rng.gen_range(0..11)]),
            }
        }
        text
    }
}
