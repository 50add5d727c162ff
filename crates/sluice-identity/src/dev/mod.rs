//! The playground's development issuer (`sluice dev` only).
//!
//! An in-process OIDC issuer with an ephemeral Ed25519 key generated at
//! start. It serves a real discovery document and JWKS, so tokens it mints
//! go through Sluice's normal [`Verifier`](crate::Verifier) path, exactly as
//! tokens from Okta or Entra would. Its token endpoint has no client
//! authentication, and its sign-in page lets anyone claim any identity: it
//! must never be enabled outside the local playground.
//!
//! Besides minting tokens directly (`POST /token` with JSON, as
//! `sluice token --dev` does), it runs the authorization code flow with
//! PKCE for the approvers' web page (see `authorize`).

mod authorize;
mod routes;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// PKCS#8 v1 prefix of an Ed25519 private key; the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A development issuer with a key that lives as long as the process.
#[derive(Clone)]
pub struct DevIssuer {
    inner: Arc<Inner>,
}

struct Inner {
    issuer_url: String,
    audience: String,
    kid: String,
    signing_key: EncodingKey,
    /// The public key, base64url, as published in the JWKS (`x`).
    public_x: String,
    /// Authorization codes not yet exchanged.
    codes: authorize::Codes,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer_url", &self.inner.issuer_url)
            .field("audience", &self.inner.audience)
            .field("kid", &self.inner.kid)
            .finish_non_exhaustive()
    }
}

impl DevIssuer {
    /// A new issuer at `issuer_url` (e.g. "http://127.0.0.1:8420/dev-issuer")
    /// minting tokens for `audience`, with a freshly generated key.
    pub fn new(issuer_url: &str, audience: &str) -> Self {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        let mut pkcs8 = ED25519_PKCS8_PREFIX.to_vec();
        pkcs8.extend_from_slice(&seed);
        let mut kid = [0u8; 9];
        rand::rngs::OsRng.fill_bytes(&mut kid);
        DevIssuer {
            inner: Arc::new(Inner {
                issuer_url: issuer_url.trim_end_matches('/').to_owned(),
                audience: audience.to_owned(),
                kid: format!("dev-{}", URL_SAFE_NO_PAD.encode(kid)),
                signing_key: EncodingKey::from_ed_der(&pkcs8),
                public_x: URL_SAFE_NO_PAD.encode(public.as_bytes()),
                codes: authorize::Codes::default(),
            }),
        }
    }

    /// The issuer URL, which is also every token's `iss`.
    pub fn issuer_url(&self) -> &str {
        &self.inner.issuer_url
    }

    /// The `aud` of every minted token.
    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    /// The `kid` of the signing key.
    pub fn kid(&self) -> &str {
        &self.inner.kid
    }

    /// A signed token for `subject`, valid from now for `ttl`.
    pub fn mint(
        &self,
        subject: &str,
        name: Option<&str>,
        groups: &[String],
        ttl: Duration,
    ) -> String {
        let now = unix_now();
        let mut jti = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut jti);
        let mut claims = json!({
            "iss": self.inner.issuer_url,
            "sub": subject,
            "aud": self.inner.audience,
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(ttl.as_secs()),
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "groups": groups,
        });
        if let Some(name) = name {
            claims["name"] = Value::from(name);
        }
        self.sign_claims(&claims)
    }

    /// Signs arbitrary claims with the issuer's key, as given: no claim is
    /// added or checked. For tests and tooling that need unusual tokens.
    pub fn sign_claims(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.inner.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.inner.signing_key)
            // The key is our own, freshly made and well-formed; signing
            // with it cannot fail.
            .expect("sign with the dev issuer's Ed25519 key")
    }

    /// The routes to nest at the issuer URL's path: discovery, JWKS and a
    /// token endpoint (see the module docs).
    pub fn router(&self) -> axum::Router {
        routes::router(self.clone())
    }

    fn discovery_document(&self) -> Value {
        let base = &self.inner.issuer_url;
        json!({
            "issuer": base,
            "jwks_uri": format!("{base}/jwks"),
            "token_endpoint": format!("{base}/token"),
            "authorization_endpoint": format!("{base}/authorize"),
            "response_types_supported": ["code", "token"],
            "grant_types_supported": ["client_credentials", "authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "groups"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "token_endpoint_auth_methods_supported": ["none"],
            "claims_supported": ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "name", "groups", "nonce", "azp", "auth_time"],
        })
    }

    fn jwks(&self) -> Value {
        json!({"keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "use": "sig",
            "alg": "EdDSA",
            "kid": self.inner.kid,
            "x": self.inner.public_x,
        }]})
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
