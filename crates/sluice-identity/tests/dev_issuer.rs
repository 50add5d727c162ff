//! The dev issuer served over real HTTP, verified by the normal `Verifier`
//! path; and the claim checks that need tokens signed with unusual claims.

mod common;

use common::{DevServer, forge, header_of, now, payload_of, signature_of};
use serde_json::json;
use sluice_core::IdentityKind;
use sluice_core::config::IssuerConfig;
use sluice_identity::{Rejection, Verifier};
use std::time::Duration;

const AUD: &str = "sluice-dev";

fn verifier_for(servers: &[&DevServer]) -> Verifier {
    let cfgs = servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            IssuerConfig::new(
                &format!("dev{i}"),
                s.issuer.issuer_url(),
                s.issuer.audience(),
            )
        })
        .collect();
    Verifier::new(cfgs).expect("valid config")
}

#[tokio::test]
async fn minted_token_verifies_over_http() {
    let dev = DevServer::start("/dev-issuer", AUD).await;
    let verifier = verifier_for(&[&dev]);
    let groups = vec!["db-readers".to_string(), "approvers".to_string()];
    let token = dev.issuer.mint(
        "ada",
        Some("Ada Lovelace"),
        &groups,
        Duration::from_secs(300),
    );

    let id = verifier.verify(&token).await.expect("dev token verifies");
    assert_eq!(id.subject, "ada");
    assert_eq!(id.name, "Ada Lovelace");
    assert_eq!(id.issuer, dev.issuer.issuer_url());
    assert_eq!(id.groups, groups);
    assert_eq!(id.kind, IdentityKind::Human);
    assert_eq!(header_of(&token)["alg"], "EdDSA");
    assert_eq!(header_of(&token)["kid"], dev.issuer.kid());
}

#[tokio::test]
async fn discovery_and_token_endpoint() {
    let dev = DevServer::start("/dev-issuer", AUD).await;
    let base = dev.issuer.issuer_url().to_owned();
    let http = reqwest::Client::new();

    let doc: serde_json::Value = http
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], base.as_str());
    assert_eq!(doc["jwks_uri"], format!("{base}/jwks"));
    assert_eq!(doc["token_endpoint"], format!("{base}/token"));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["EdDSA"])
    );

    let resp = http
        .post(format!("{base}/token"))
        .json(&json!({"sub": "agent-7", "groups": ["bots"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    let exp = payload_of(token)["exp"].as_u64().unwrap();
    assert!(exp.abs_diff(now() + 3600) <= 5);

    let mut cfg = IssuerConfig::new("dev", &base, AUD);
    cfg.kind.agent_groups = vec!["bots".into()];
    let id = Verifier::new(vec![cfg])
        .unwrap()
        .verify(token)
        .await
        .unwrap();
    assert_eq!(
        (id.subject.as_str(), id.kind),
        ("agent-7", IdentityKind::Agent)
    );

    for bad in [
        json!({"sub": "a", "ttl_secs": 86_401}),
        json!({"sub": "a", "ttl_secs": 0}),
        json!({"sub": ""}),
        json!({"groups": ["x"]}),
        json!({"sub": "a", "unknown": 1}),
    ] {
        let resp = http
            .post(format!("{base}/token"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{bad}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn several_issuers_at_once() {
    let a = DevServer::start("/a", AUD).await;
    let b = DevServer::start("/b", "other-aud").await;
    let verifier = verifier_for(&[&a, &b]);
    let ta = a.issuer.mint("u-a", None, &[], Duration::from_secs(60));
    let tb = b.issuer.mint("u-b", None, &[], Duration::from_secs(60));
    assert_eq!(
        verifier.verify(&ta).await.unwrap().issuer,
        a.issuer.issuer_url()
    );
    assert_eq!(
        verifier.verify(&tb).await.unwrap().issuer,
        b.issuer.issuer_url()
    );

    // A token claiming issuer b but signed with a's key: routed to b, whose
    // keys do not include a's kid.
    let mut claims = payload_of(&ta);
    claims["iss"] = json!(b.issuer.issuer_url());
    claims["aud"] = json!("other-aud");
    let cross = a.issuer.sign_claims(&claims);
    assert_eq!(
        verifier.verify(&cross).await.unwrap_err(),
        Rejection::UnknownKey
    );
}

#[tokio::test]
async fn time_claims_of_the_wrong_type_are_rejected() {
    let dev = DevServer::start("/dev-issuer", AUD).await;
    let verifier = verifier_for(&[&dev]);
    let base = json!({"iss": dev.issuer.issuer_url(), "aud": AUD, "sub": "mallory"});
    let with = |extra: serde_json::Value| {
        let mut c = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        dev.issuer.sign_claims(&c)
    };

    // The jsonwebtoken advisory: a string `exp` must not count as "no expiry".
    let t = with(json!({"exp": (now() + 600).to_string()}));
    assert_eq!(
        verifier.verify(&t).await.unwrap_err(),
        Rejection::InvalidClaim("exp")
    );
    let t = with(json!({"exp": -5}));
    assert_eq!(
        verifier.verify(&t).await.unwrap_err(),
        Rejection::InvalidClaim("exp")
    );
    let t = with(json!({}));
    assert_eq!(
        verifier.verify(&t).await.unwrap_err(),
        Rejection::MissingClaim("exp")
    );
    let t = with(json!({"exp": now() + 600, "nbf": (now() + 600).to_string()}));
    assert_eq!(
        verifier.verify(&t).await.unwrap_err(),
        Rejection::InvalidClaim("nbf")
    );
    let t = with(json!({"exp": now() + 600, "nbf": now() + 600}));
    assert_eq!(
        verifier.verify(&t).await.unwrap_err(),
        Rejection::NotYetValid
    );
    // Within the default 30 s leeway.
    let t = with(json!({"exp": now() + 600, "nbf": now() + 10}));
    assert!(verifier.verify(&t).await.is_ok());
    let t = with(json!({"exp": now() - 10}));
    assert!(
        verifier.verify(&t).await.is_ok(),
        "10 s past exp is inside the 30 s leeway"
    );
    let t = with(json!({"exp": now() - 120}));
    assert_eq!(verifier.verify(&t).await.unwrap_err(), Rejection::Expired);
    // Fractional NumericDate is valid JSON-wise.
    let t = with(json!({"exp": (now() + 600) as f64 + 0.5}));
    assert!(verifier.verify(&t).await.is_ok());
}

#[tokio::test]
async fn audience_and_subject_checks() {
    let dev = DevServer::start("/dev-issuer", AUD).await;
    let verifier = verifier_for(&[&dev]);
    let exp = now() + 600;
    let iss = dev.issuer.issuer_url();
    let sign = |c: serde_json::Value| dev.issuer.sign_claims(&c);

    let t = sign(json!({"iss": iss, "sub": "u", "exp": exp, "aud": ["x", AUD]}));
    assert!(
        verifier.verify(&t).await.is_ok(),
        "an audience list containing ours is fine"
    );
    let t = sign(json!({"iss": iss, "sub": "u", "exp": exp, "aud": ["x", "y"]}));
    assert_eq!(
        verifier.verify(&t).await.unwrap_err(),
        Rejection::WrongAudience
    );
    let t = sign(json!({"iss": iss, "sub": "u", "exp": exp}));
    assert_eq!(
        verifier.verify(&t).await.unwrap_err(),
        Rejection::MissingClaim("aud")
    );
    let t = sign(json!({"iss": iss, "sub": "u", "exp": exp, "aud": 7}));
    assert!(
        verifier.verify(&t).await.is_err(),
        "a numeric aud is no audience"
    );
    let t = sign(json!({"iss": iss, "exp": exp, "aud": AUD}));
    assert_eq!(
        verifier.verify(&t).await.unwrap_err(),
        Rejection::MissingClaim("sub")
    );
    let t = sign(json!({"iss": iss, "sub": "u", "exp": exp, "aud": AUD, "groups": 12}));
    assert_eq!(
        verifier.verify(&t).await.unwrap_err(),
        Rejection::InvalidClaim("groups")
    );
}

#[tokio::test]
async fn algorithm_must_fit_the_key_and_the_allow_list() {
    let dev = DevServer::start("/dev-issuer", AUD).await;
    let token = dev.issuer.mint("u", None, &[], Duration::from_secs(60));

    // Same kid (an Ed25519 key) but the header claims RS256.
    let mut header = header_of(&token);
    header["alg"] = json!("RS256");
    let t = forge(&header, &payload_of(&token), signature_of(&token));
    let verifier = verifier_for(&[&dev]);
    assert_eq!(
        verifier.verify(&t).await.unwrap_err(),
        Rejection::AlgorithmKeyMismatch
    );

    // An issuer that allows only RS256 refuses the EdDSA token outright.
    let mut cfg = IssuerConfig::new("dev", dev.issuer.issuer_url(), AUD);
    cfg.algorithms = vec!["RS256".into()];
    let strict = Verifier::new(vec![cfg]).unwrap();
    let r = strict.verify(&token).await.unwrap_err();
    assert_eq!(r, Rejection::DisallowedAlgorithm("EdDSA".into()));
    assert_eq!(r.reason(), "alg_not_allowed");
}

#[tokio::test]
async fn oversized_and_garbage_tokens_are_malformed() {
    let dev = DevServer::start("/dev-issuer", AUD).await;
    let verifier = verifier_for(&[&dev]);
    let huge = "a".repeat(sluice_identity::MAX_TOKEN_BYTES + 1);
    assert_eq!(
        verifier.verify(&huge).await.unwrap_err(),
        Rejection::Malformed
    );
    assert_eq!(
        verifier.verify("not.a.jwt").await.unwrap_err(),
        Rejection::Malformed
    );
    assert_eq!(verifier.verify("").await.unwrap_err(), Rejection::Malformed);
    let r = verifier.verify("not.a.jwt").await.unwrap_err();
    assert!(
        !r.to_string().contains("not.a.jwt"),
        "messages never echo the token"
    );
}

#[tokio::test]
async fn keys_age_out_when_the_issuer_stays_unreachable() {
    let mut dev = DevServer::start("/dev-issuer", AUD).await;
    let mut cfg = IssuerConfig::new("dev", dev.issuer.issuer_url(), AUD);
    cfg.jwks_max_age = sluice_core::config::Dur(Duration::from_secs(2));
    let verifier = Verifier::new(vec![cfg]).unwrap();
    let token = dev.issuer.mint("u", None, &[], Duration::from_secs(600));
    verifier.verify(&token).await.expect("keys fetched");
    dev.stop().await;

    // Cached keys keep working while the issuer is down...
    verifier
        .verify(&token)
        .await
        .expect("cached keys are still usable");
    // ...until they are older than jwks_max_age.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = verifier.verify(&token).await.unwrap_err();
    assert_eq!(r, Rejection::IssuerUnreachable);
    assert_eq!(r.reason(), "issuer_unreachable");
}
