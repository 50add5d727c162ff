//! The dev issuer's authorization code flow (PKCE S256) over real HTTP, and
//! `Verifier::verify_id_token` on what it returns.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{DevServer, now, payload_of};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sluice_core::config::IssuerConfig;
use sluice_identity::{Rejection, Verifier};

const AUD: &str = "sluice-dev";
const CLIENT: &str = "sluice-ui";
const VERIFIER: &str = "a-pkce-verifier-that-is-long-enough-0123456789-abcdefgh";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn origin(dev: &DevServer) -> String {
    let u = dev.issuer.issuer_url();
    u[..u.find("/dev-issuer").unwrap()].to_string()
}

fn params(dev: &DevServer) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", CLIENT.into()),
        ("redirect_uri", format!("{}/ui/callback", origin(dev))),
        ("state", "st<ate>\"".into()),
        ("nonce", "n-0S6_WzA2Mj".into()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".into()),
        ("scope", "openid profile".into()),
    ]
}

/// Submits the sign-in form; returns the code from the redirect.
async fn sign_in(dev: &DevServer, sub: &str, groups: &str) -> String {
    let base = dev.issuer.issuer_url();
    let mut form = params(dev);
    form.push(("sub", sub.into()));
    form.push(("groups", groups.into()));
    form.push(("name", "Dee Bee".into()));
    let resp = http()
        .post(format!("{base}/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    let url = url::Url::parse(&loc).unwrap();
    assert!(
        loc.starts_with(&format!("{}/ui/callback?", origin(dev))),
        "{loc}"
    );
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st<ate>\"", "state comes back unchanged");
    q["code"].clone()
}

async fn exchange(dev: &DevServer, code: &str, verifier: &str) -> (StatusCode, Value) {
    let resp = http()
        .post(format!("{}/token", dev.issuer.issuer_url()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &format!("{}/ui/callback", origin(dev))),
            ("client_id", CLIENT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn discovery_lists_the_code_flow() {
    let dev = DevServer::start("/dev-issuer", AUD).await;
    let base = dev.issuer.issuer_url();
    let doc: Value = http()
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["authorization_endpoint"], format!("{base}/authorize"));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
}

#[tokio::test]
async fn the_form_escapes_what_it_relays_and_refuses_bad_requests() {
    let dev = DevServer::start("/dev-issuer", AUD).await;
    let base = dev.issuer.issuer_url();
    let resp = http()
        .get(format!("{base}/authorize"))
        .query(&params(&dev))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let page = resp.text().await.unwrap();
    assert!(page.contains("value=\"st&lt;ate&gt;&quot;\""), "{page}");
    assert!(page.contains("value=\"dba-1\""));

    for (key, bad) in [
        (
            "redirect_uri",
            "https://evil.example/ui/callback".to_string(),
        ),
        ("code_challenge_method", "plain".to_string()),
        ("code_challenge", "short".to_string()),
        ("response_type", "token".to_string()),
    ] {
        let mut p = params(&dev);
        p.retain(|(k, _)| *k != key);
        p.push((key, bad.clone()));
        let resp = http()
            .get(format!("{base}/authorize"))
            .query(&p)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{key}={bad}");
        let resp = http()
            .post(format!("{base}/authorize"))
            .form(&[p, vec![("sub", "x".into())]].concat())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "POST {key}={bad}");
    }
}

#[tokio::test]
async fn code_exchange_needs_the_verifier_and_works_once() {
    let dev = DevServer::start("/dev-issuer", AUD).await;

    let code = sign_in(&dev, "dba-1", "dba, ops").await;
    let (status, body) = exchange(
        &dev,
        &code,
        "wrong-verifier-wrong-verifier-wrong-verifier-00",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    // The failed attempt used the code up.
    let (status, _) = exchange(&dev, &code, VERIFIER).await;
    assert_eq!(status, 400);

    let code = sign_in(&dev, "dba-1", "dba, ops").await;
    let (status, body) = exchange(&dev, &code, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    let id_token = body["id_token"].as_str().unwrap();
    let claims = payload_of(id_token);
    assert_eq!(claims["aud"], CLIENT);
    assert_eq!(claims["sub"], "dba-1");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["groups"], json!(["dba", "ops"]));
    assert!(claims["exp"].as_u64().unwrap() > now());
    let (status, body) = exchange(&dev, &code, VERIFIER).await;
    assert_eq!(status, 400, "a code is single-use: {body}");

    // The access token is for the gateway's audience, as before.
    let verifier =
        Verifier::new(vec![IssuerConfig::new("dev", dev.issuer.issuer_url(), AUD)]).unwrap();
    let access = body_access(&dev).await;
    assert_eq!(verifier.verify(&access).await.unwrap().subject, "dba-1");

    // The JSON minting of `sluice token --dev` still works beside the flow.
    let resp = http()
        .post(format!("{}/token", dev.issuer.issuer_url()))
        .json(&json!({"sub": "agent-1", "groups": ["bots"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn body_access(dev: &DevServer) -> String {
    let code = sign_in(dev, "dba-1", "dba").await;
    let (_, body) = exchange(dev, &code, VERIFIER).await;
    body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn id_tokens_are_verified_for_the_client_and_the_nonce() {
    let dev = DevServer::start("/dev-issuer", AUD).await;
    let other = DevServer::start("/other", AUD).await;
    let verifier = Verifier::new(vec![
        IssuerConfig::new("dev", dev.issuer.issuer_url(), AUD),
        IssuerConfig::new("other", other.issuer.issuer_url(), AUD),
    ])
    .unwrap();
    let code = sign_in(&dev, "dba-1", "dba").await;
    let (_, body) = exchange(&dev, &code, VERIFIER).await;
    let id_token = body["id_token"].as_str().unwrap();
    let access = body["access_token"].as_str().unwrap();

    let who = verifier
        .verify_id_token(id_token, "dev", CLIENT, "n-0S6_WzA2Mj")
        .await
        .expect("a good ID token");
    assert_eq!(
        (who.subject.as_str(), who.name.as_str()),
        ("dba-1", "Dee Bee")
    );
    assert_eq!(who.groups, vec!["dba".to_string()]);

    // An ID token is not an API token (its audience is the client)...
    assert_eq!(
        verifier.verify(id_token).await.unwrap_err(),
        Rejection::WrongAudience
    );
    // ...and an access token is not an ID token.
    assert_eq!(
        verifier
            .verify_id_token(access, "dev", CLIENT, "n-0S6_WzA2Mj")
            .await
            .unwrap_err(),
        Rejection::WrongAudience
    );
    assert_eq!(
        verifier
            .verify_id_token(id_token, "dev", CLIENT, "another-nonce")
            .await
            .unwrap_err(),
        Rejection::InvalidClaim("nonce")
    );
    assert_eq!(
        verifier
            .verify_id_token(id_token, "dev", CLIENT, "")
            .await
            .unwrap_err(),
        Rejection::InvalidClaim("nonce")
    );
    assert_eq!(
        verifier
            .verify_id_token(id_token, "dev", "another-client", "n-0S6_WzA2Mj")
            .await
            .unwrap_err(),
        Rejection::WrongAudience
    );
    // Only the issuer configured for sign-in is accepted.
    assert_eq!(
        verifier
            .verify_id_token(id_token, "other", CLIENT, "n-0S6_WzA2Mj")
            .await
            .unwrap_err(),
        Rejection::UnknownIssuer
    );
    // azp must name the client when present; nonce must be present.
    let mut claims = payload_of(id_token);
    claims["azp"] = json!("someone-else");
    let t = dev.issuer.sign_claims(&claims);
    assert_eq!(
        verifier
            .verify_id_token(&t, "dev", CLIENT, "n-0S6_WzA2Mj")
            .await
            .unwrap_err(),
        Rejection::WrongAudience
    );
    let mut claims = payload_of(id_token);
    claims.as_object_mut().unwrap().remove("nonce");
    let t = dev.issuer.sign_claims(&claims);
    assert_eq!(
        verifier
            .verify_id_token(&t, "dev", CLIENT, "n-0S6_WzA2Mj")
            .await
            .unwrap_err(),
        Rejection::MissingClaim("nonce")
    );
    // Signed by another issuer's key while claiming this one: refused.
    let mut claims = payload_of(id_token);
    claims["iss"] = json!(dev.issuer.issuer_url());
    let forged = other.issuer.sign_claims(&claims);
    assert!(
        verifier
            .verify_id_token(&forged, "dev", CLIENT, "n-0S6_WzA2Mj")
            .await
            .is_err()
    );
}
