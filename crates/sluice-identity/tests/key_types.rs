//! Key types and hostile discovery/JWKS documents, served by a test issuer
//! whose documents the test controls.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{StaticIssuer, forge, header_of, now, payload_of, signature_of};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};
use sluice_core::config::IssuerConfig;
use sluice_identity::{Rejection, Verifier};

const AUD: &str = "https://sluice.test";

/// A fresh P-256 key: its JWK (public) and its signing key.
fn es256_key(kid: &str) -> (Value, EncodingKey) {
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let point = secret.public_key().to_encoded_point(false);
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(point.x().expect("x")),
        "y": URL_SAFE_NO_PAD.encode(point.y().expect("y")),
    });
    let der = secret.to_pkcs8_der().expect("pkcs8");
    (jwk, EncodingKey::from_ec_der(der.as_bytes()))
}

fn sign(key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

fn claims(issuer: &StaticIssuer) -> Value {
    json!({"iss": issuer.url, "aud": AUD, "sub": "svc", "exp": now() + 600, "groups": "a b"})
}

#[tokio::test]
async fn es256_tokens_verify_and_the_curve_must_fit_the_alg() {
    let (jwk, key) = es256_key("ec-1");
    let idp = StaticIssuer::start(json!({"keys": [jwk]})).await;
    let mut cfg = IssuerConfig::new("ec", &idp.url, AUD);
    cfg.algorithms = vec!["ES256".into(), "ES384".into()];
    let v = Verifier::new(vec![cfg]).unwrap();

    let t = sign(&key, "ec-1", &claims(&idp));
    let id = v.verify(&t).await.expect("ES256 token");
    assert_eq!(id.groups, vec!["a", "b"], "space-separated groups");

    // The same P-256 key claimed as ES384.
    let mut header = header_of(&t);
    header["alg"] = json!("ES384");
    let t384 = forge(&header, &payload_of(&t), signature_of(&t));
    assert_eq!(
        v.verify(&t384).await.unwrap_err(),
        Rejection::AlgorithmKeyMismatch
    );

    // Signed by another key under the published kid.
    let (_, other) = es256_key("ec-1");
    let t = sign(&other, "ec-1", &claims(&idp));
    assert_eq!(v.verify(&t).await.unwrap_err(), Rejection::BadSignature);
}

#[tokio::test]
async fn a_token_without_kid_uses_the_single_fitting_key() {
    let (jwk, key) = es256_key("only");
    let idp = StaticIssuer::start(json!({"keys": [jwk]})).await;
    let v = Verifier::new(vec![IssuerConfig::new("ec", &idp.url, AUD)]).unwrap();
    let t = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims(&idp), &key).unwrap();
    assert!(v.verify(&t).await.is_ok());

    // With two candidate keys a kid-less token is ambiguous.
    let (jwk2, _) = es256_key("second");
    let idp2 = StaticIssuer::start(json!({"keys": [es256_key("first").0, jwk2]})).await;
    let v2 = Verifier::new(vec![IssuerConfig::new("ec", &idp2.url, AUD)]).unwrap();
    let t2 = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims(&idp2), &key).unwrap();
    assert_eq!(v2.verify(&t2).await.unwrap_err(), Rejection::UnknownKey);
}

#[tokio::test]
async fn oversized_jwks_is_refused() {
    let (jwk, key) = es256_key("ec-1");
    let padding = "x".repeat(1024 * 1024 + 1);
    let idp = StaticIssuer::start(json!({"keys": [jwk], "padding": padding})).await;
    let v = Verifier::new(vec![IssuerConfig::new("ec", &idp.url, AUD)]).unwrap();
    let t = sign(&key, "ec-1", &claims(&idp));
    assert_eq!(
        v.verify(&t).await.unwrap_err(),
        Rejection::IssuerUnreachable
    );
}

#[tokio::test]
async fn jwks_uri_must_be_http() {
    let (jwk, key) = es256_key("ec-1");
    let idp = StaticIssuer::start(json!({"keys": [jwk]})).await;
    idp.discovery.lock().unwrap()["jwks_uri"] = json!("file:///etc/passwd");
    let v = Verifier::new(vec![IssuerConfig::new("ec", &idp.url, AUD)]).unwrap();
    let t = sign(&key, "ec-1", &claims(&idp));
    assert_eq!(
        v.verify(&t).await.unwrap_err(),
        Rejection::IssuerUnreachable
    );

    // Fixed document: after the failure backoff the issuer is retried.
    idp.discovery.lock().unwrap()["jwks_uri"] = json!(format!("{}/jwks", idp.url));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(v.verify(&t).await.is_ok());
}

#[tokio::test]
async fn hmac_keys_in_the_jwks_are_never_used() {
    // A JWKS offering an HMAC secret under the kid the token names.
    let secret = b"not-a-public-key";
    let idp = StaticIssuer::start(json!({"keys": [
        {"kty": "oct", "kid": "k", "k": URL_SAFE_NO_PAD.encode(secret)},
        es256_key("ec").0,
    ]}))
    .await;
    let mut cfg = IssuerConfig::new("ec", &idp.url, AUD);
    cfg.algorithms = vec!["ES256".into()];
    let v = Verifier::new(vec![cfg]).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k".into());
    let t =
        jsonwebtoken::encode(&header, &claims(&idp), &EncodingKey::from_secret(secret)).unwrap();
    assert_eq!(
        v.verify(&t).await.unwrap_err(),
        Rejection::DisallowedAlgorithm("HS256".into())
    );
}
