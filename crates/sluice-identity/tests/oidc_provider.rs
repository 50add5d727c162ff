//! Verification against a real OpenID provider (npm `oidc-provider`), one
//! provider per test on its own port.

mod common;

use common::{forge, header_of, now, payload_of, signature_of};
use serde_json::json;
use sluice_core::IdentityKind;
use sluice_core::config::{Dur, IssuerConfig};
use sluice_identity::{Rejection, Verifier};
use sluice_testkit::oidc::{OidcClient, OidcOptions, OidcProvider};
use std::time::Duration;

async fn provider(clients: Vec<OidcClient>) -> OidcProvider {
    OidcProvider::start(OidcOptions {
        clients,
        ..OidcOptions::default()
    })
    .await
    .expect("start the test OIDC provider")
}

fn agent() -> OidcClient {
    OidcClient::new("agent-1", &["db-readers", "ops"])
}

async fn token(idp: &OidcProvider, client: &OidcClient) -> String {
    idp.client_credentials_token(&client.client_id, &client.client_secret, idp.audience())
        .await
        .expect("client credentials token")
}

fn config(idp: &OidcProvider) -> IssuerConfig {
    IssuerConfig::new("test-idp", idp.issuer(), idp.audience())
}

fn verifier(cfg: IssuerConfig) -> Verifier {
    Verifier::new(vec![cfg]).expect("valid issuer config")
}

/// A token of the provider's issuer naming a kid the provider never had.
fn unknown_kid_token(idp: &OidcProvider, kid: &str) -> String {
    forge(
        &json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}),
        &json!({"iss": idp.issuer(), "aud": idp.audience(), "sub": "agent-1", "exp": now() + 600}),
        "c2lnbmF0dXJl",
    )
}

#[tokio::test]
async fn service_app_token_becomes_an_agent_with_groups() {
    let idp = provider(vec![agent()]).await;
    let t = token(&idp, &agent()).await;
    let id = verifier(config(&idp))
        .verify(&t)
        .await
        .expect("valid token");
    assert_eq!(id.subject, "agent-1");
    assert_eq!(id.issuer, idp.issuer());
    assert_eq!(id.name, "agent-1");
    assert_eq!(id.groups, vec!["db-readers", "ops"]);
    assert_eq!(
        id.kind,
        IdentityKind::Agent,
        "sub == client_id marks a service app"
    );
    assert_eq!(header_of(&t)["kid"], idp.kid().unwrap().as_str());
}

#[tokio::test]
async fn expired_token_is_rejected_without_leeway() {
    let client = OidcClient::new("short-lived", &["ops"]).ttl(1);
    let idp = provider(vec![client.clone()]).await;
    let t = token(&idp, &client).await;
    let mut strict = config(&idp);
    strict.leeway = Dur(Duration::ZERO);
    let strict = verifier(strict);
    strict.warm().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let r = strict.verify(&t).await.unwrap_err();
    assert_eq!(r, Rejection::Expired);
    assert_eq!(r.reason(), "expired");
    // The default 30 s leeway still accepts the same token.
    assert!(verifier(config(&idp)).verify(&t).await.is_ok());
}

#[tokio::test]
async fn token_for_another_audience_is_rejected() {
    let idp = provider(vec![agent()]).await;
    let a = agent();
    let other = idp
        .client_credentials_token(&a.client_id, &a.client_secret, "https://other-api.test")
        .await
        .unwrap();
    assert_eq!(payload_of(&other)["aud"], "https://other-api.test");

    let r = verifier(config(&idp)).verify(&other).await.unwrap_err();
    assert_eq!(r, Rejection::WrongAudience);
    assert_eq!(r.reason(), "wrong_audience");
    // Any one of several configured audiences is enough.
    let mut both = config(&idp);
    both.audiences.push("https://other-api.test".into());
    assert!(verifier(both).verify(&other).await.is_ok());
}

#[tokio::test]
async fn unknown_issuer_is_rejected_before_any_fetch() {
    let idp = provider(vec![agent()]).await;
    let t = token(&idp, &agent()).await;
    let elsewhere = verifier(IssuerConfig::new(
        "other",
        "https://idp.elsewhere.test",
        idp.audience(),
    ));
    let r = elsewhere.verify(&t).await.unwrap_err();
    assert_eq!(r, Rejection::UnknownIssuer);
    assert_eq!(r.reason(), "unknown_issuer");
    assert_eq!(idp.fetch_counts().await.unwrap(), (0, 0));
}

#[tokio::test]
async fn discovery_naming_another_issuer_is_refused() {
    let idp = provider(vec![agent()]).await;
    // We trust ".../evil" but its discovery document (the provider's) names
    // the provider's issuer: its keys must not be used for ".../evil".
    let evil = format!("{}/evil", idp.issuer());
    let mut cfg = IssuerConfig::new("evil", &evil, idp.audience());
    cfg.discovery_url = Some(format!("{}/.well-known/openid-configuration", idp.issuer()));
    let t = token(&idp, &agent()).await;
    let mut claims = payload_of(&t);
    claims["iss"] = json!(evil);
    let retargeted = forge(&header_of(&t), &claims, signature_of(&t));
    assert_eq!(
        verifier(cfg).verify(&retargeted).await.unwrap_err(),
        Rejection::IssuerUnreachable
    );
    assert_eq!(
        idp.fetch_counts().await.unwrap(),
        (1, 0),
        "discovery read, JWKS never fetched"
    );
}

#[tokio::test]
async fn tampered_tokens_are_rejected() {
    let idp = provider(vec![agent()]).await;
    let t = token(&idp, &agent()).await;
    let v = verifier(config(&idp));
    assert!(v.verify(&t).await.is_ok());

    // More groups in the payload, original signature.
    let mut claims = payload_of(&t);
    claims["groups"] = json!(["db-readers", "ops", "admins"]);
    let widened = forge(&header_of(&t), &claims, signature_of(&t));
    let r = v.verify(&widened).await.unwrap_err();
    assert_eq!(r, Rejection::BadSignature);
    assert_eq!(r.reason(), "bad_signature");

    // A flipped byte in the signature.
    let mut sig = signature_of(&t).as_bytes().to_vec();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    let flipped = forge(
        &header_of(&t),
        &payload_of(&t),
        std::str::from_utf8(&sig).unwrap(),
    );
    assert_eq!(
        v.verify(&flipped).await.unwrap_err(),
        Rejection::BadSignature
    );
}

#[tokio::test]
async fn alg_none_and_hmac_forgeries_are_rejected() {
    let idp = provider(vec![agent()]).await;
    let t = token(&idp, &agent()).await;
    let v = verifier(config(&idp));

    let mut header = header_of(&t);
    header["alg"] = json!("none");
    let none = forge(&header, &payload_of(&t), "");
    let r = v.verify(&none).await.unwrap_err();
    assert_eq!(r, Rejection::DisallowedAlgorithm("none".into()));
    assert_eq!(r.reason(), "alg_not_allowed");

    // The classic key-confusion attack: HS256 "signed" with the public key.
    header["alg"] = json!("HS256");
    let hmac = forge(&header, &payload_of(&t), "c2lnbmF0dXJl");
    assert_eq!(
        v.verify(&hmac).await.unwrap_err(),
        Rejection::DisallowedAlgorithm("HS256".into())
    );
    // Neither forgery made the verifier touch the network.
    assert_eq!(idp.fetch_counts().await.unwrap(), (0, 0));
}

#[tokio::test]
async fn key_rotation_is_picked_up_by_one_refetch() {
    let mut idp = provider(vec![agent()]).await;
    let v = verifier(config(&idp));
    let old = token(&idp, &agent()).await;
    v.verify(&old).await.expect("token before rotation");
    let old_kid = idp.kid().unwrap();

    idp.restart_with_new_key().await.unwrap();
    let new_kid = idp.kid().unwrap();
    assert_ne!(old_kid, new_kid);
    let new = token(&idp, &agent()).await;
    assert_eq!(header_of(&new)["kid"], new_kid.as_str());

    let id = v.verify(&new).await.expect("token after rotation");
    assert_eq!(id.subject, "agent-1");
    assert_eq!(
        idp.fetch_counts().await.unwrap().1,
        1,
        "exactly one JWKS refetch"
    );
    // The withdrawn key is gone from the refreshed set.
    assert_eq!(v.verify(&old).await.unwrap_err(), Rejection::UnknownKey);
}

#[tokio::test]
async fn cached_keys_verify_while_the_provider_is_down() {
    let mut idp = provider(vec![agent()]).await;
    let v = verifier(config(&idp));
    v.warm().await;
    let first = token(&idp, &agent()).await;
    let second = token(&idp, &agent()).await;
    v.verify(&first).await.expect("provider up");
    idp.stop().await;

    let id = v.verify(&second).await.expect("cached key, provider down");
    assert_eq!(id.groups, vec!["db-readers", "ops"]);
}

#[tokio::test]
async fn unknown_kid_while_the_provider_is_down_is_a_clear_unknown_key() {
    let mut idp = provider(vec![agent()]).await;
    let mut cfg = config(&idp);
    // No throttle, so the refetch is really attempted (and fails).
    cfg.jwks_refetch_interval = Dur(Duration::ZERO);
    let v = verifier(cfg);
    v.verify(&token(&idp, &agent()).await)
        .await
        .expect("provider up");
    idp.stop().await;

    let r = v
        .verify(&unknown_kid_token(&idp, "rotated-away"))
        .await
        .unwrap_err();
    assert_eq!(r, Rejection::UnknownKey);
    assert_eq!(r.reason(), "unknown_key");
    let msg = r.to_string();
    assert!(msg.contains("unknown key"), "{msg}");
    assert!(msg.contains("could not be reached"), "{msg}");
    assert!(
        !msg.contains("rotated-away"),
        "the message never echoes token content"
    );
}

#[tokio::test]
async fn unknown_kid_refetches_are_throttled() {
    let idp = provider(vec![agent()]).await;
    let v = verifier(config(&idp)); // default interval: 30 s
    v.warm().await;
    assert_eq!(idp.fetch_counts().await.unwrap(), (1, 1));

    assert_eq!(
        v.verify(&unknown_kid_token(&idp, "unknown-1"))
            .await
            .unwrap_err(),
        Rejection::UnknownKey
    );
    assert_eq!(
        idp.fetch_counts().await.unwrap().1,
        2,
        "the first unknown kid refetches"
    );
    assert_eq!(
        v.verify(&unknown_kid_token(&idp, "unknown-2"))
            .await
            .unwrap_err(),
        Rejection::UnknownKey
    );
    assert_eq!(
        idp.fetch_counts().await.unwrap().1,
        2,
        "the second, within the interval, does not"
    );
    // Known keys are unaffected by the throttle.
    assert!(v.verify(&token(&idp, &agent()).await).await.is_ok());
}

#[tokio::test]
async fn concurrent_verifications_of_one_unknown_kid_share_a_fetch() {
    let idp = provider(vec![agent()]).await;
    let v = verifier(config(&idp));
    v.warm().await;
    let forged = unknown_kid_token(&idp, "unknown-burst");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (v, t) = (v.clone(), forged.clone());
        tasks.spawn(async move { v.verify(&t).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().unwrap_err(), Rejection::UnknownKey);
    }
    assert_eq!(
        idp.fetch_counts().await.unwrap().1,
        2,
        "warm-up plus one shared refetch"
    );
}

#[tokio::test]
async fn stale_keys_are_refreshed_in_the_background() {
    let idp = provider(vec![agent()]).await;
    let mut cfg = config(&idp);
    // Keys older than half their max age are refreshed off the request path.
    cfg.jwks_max_age = Dur(Duration::from_secs(2));
    let v = verifier(cfg);
    let t = token(&idp, &agent()).await;
    v.verify(&t).await.expect("first fetch");
    let fetched = std::time::Instant::now();
    assert_eq!(idp.fetch_counts().await.unwrap().1, 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    v.verify(&t).await.expect("answered from the cache");
    // Poll rather than sleep a fixed time: the machine may be busy.
    let mut jwks = 1;
    for _ in 0..40 {
        jwks = idp.fetch_counts().await.unwrap().1;
        if jwks > 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(jwks, 2, "one background refresh");
    // Past the first fetch's max age, the refreshed keys are still good.
    tokio::time::sleep(Duration::from_millis(2200).saturating_sub(fetched.elapsed())).await;
    v.verify(&t).await.expect("refreshed keys");
}

#[tokio::test]
async fn provider_down_from_the_start_is_issuer_unreachable() {
    let mut idp = provider(vec![agent()]).await;
    let t = token(&idp, &agent()).await;
    idp.stop().await;
    let v = verifier(config(&idp));
    v.warm().await; // logs, never panics
    let r = v.verify(&t).await.unwrap_err();
    assert_eq!(r, Rejection::IssuerUnreachable);
}

/// Cached keys outlive the provider only up to `jwks_max_age`: past it, a
/// token is refused (the issuer unreachable), not verified with keys the
/// provider may have withdrawn meanwhile.
#[tokio::test]
async fn cached_keys_stop_at_their_max_age_while_the_provider_is_down() {
    let mut idp = provider(vec![agent()]).await;
    let mut cfg = config(&idp);
    cfg.jwks_max_age = Dur(Duration::from_secs(2));
    let v = verifier(cfg);
    let t = token(&idp, &agent()).await;
    v.verify(&t).await.expect("first fetch");
    let fetched = std::time::Instant::now();
    idp.stop().await;
    v.verify(&t).await.expect("cached key, provider down");
    tokio::time::sleep(Duration::from_millis(2300).saturating_sub(fetched.elapsed())).await;
    assert_eq!(
        v.verify(&t).await.unwrap_err(),
        Rejection::IssuerUnreachable
    );
}
