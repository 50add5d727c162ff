//! Token verification across every configured issuer.

use crate::claims;
use crate::config::{ConfigError, validate};
use crate::fetch;
use crate::jwks::IssuerKeys;
use crate::rejection::Rejection;
use crate::token::{self, loggable_kid};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use sluice_core::Identity;
use sluice_core::config::{ALLOWED_ALGORITHMS, IssuerConfig};
use std::str::FromStr;
use std::sync::Arc;

/// Verifies bearer tokens from the configured OIDC issuers and turns them
/// into identities. Cheap to clone; clones share the key caches.
#[derive(Clone)]
pub struct Verifier {
    issuers: Arc<[Issuer]>,
}

struct Issuer {
    cfg: IssuerConfig,
    algorithms: Vec<Algorithm>,
    keys: Arc<IssuerKeys>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.issuers.iter().map(|i| i.cfg.name.as_str()).collect();
        f.debug_struct("Verifier").field("issuers", &names).finish()
    }
}

impl Verifier {
    /// Checks the configuration (algorithms against `ALLOWED_ALGORITHMS`,
    /// URLs, audiences, duplicates) without touching the network.
    pub fn new(issuers: Vec<IssuerConfig>) -> Result<Self, ConfigError> {
        let algorithms = validate(&issuers)?;
        let http = fetch::client();
        let issuers = issuers
            .into_iter()
            .zip(algorithms)
            .map(|(cfg, algorithms)| Issuer {
                keys: Arc::new(IssuerKeys::new(&cfg, http.clone())),
                cfg,
                algorithms,
            })
            .collect();
        Ok(Verifier { issuers })
    }

    /// The configured issuers, in configuration order.
    pub fn issuers(&self) -> impl Iterator<Item = &IssuerConfig> {
        self.issuers.iter().map(|i| &i.cfg)
    }

    /// Fetches every issuer's discovery document and keys now, concurrently.
    /// Best effort: failures are logged and retried on demand by `verify`.
    pub async fn warm(&self) {
        let mut tasks = tokio::task::JoinSet::new();
        for issuer in self.issuers.iter() {
            let keys = Arc::clone(&issuer.keys);
            tasks.spawn(async move { keys.warm().await });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Verifies `token` (signature, issuer, audience, times, algorithm) and
    /// builds the caller's identity from its claims.
    pub async fn verify(&self, token: &str) -> Result<Identity, Rejection> {
        let token = token.trim();
        let peeked = token::peek(token);
        let kid = peeked.as_ref().ok().and_then(|p| p.kid.clone());
        let issuer = peeked
            .as_ref()
            .ok()
            .and_then(|p| self.issuer_for(&p.iss))
            .map(|i| i.cfg.name.as_str())
            .unwrap_or("");
        let result = match peeked {
            Ok(p) => self.verify_peeked(token, p).await,
            Err(r) => Err(r),
        };
        match &result {
            Ok(id) => tracing::debug!(
                issuer,
                kid = loggable_kid(kid.as_deref()),
                kind = id.kind.as_str(),
                "token verified"
            ),
            Err(r) => tracing::info!(
                issuer,
                kid = loggable_kid(kid.as_deref()),
                reason = r.reason(),
                "token rejected"
            ),
        }
        result
    }

    fn issuer_for(&self, iss: &str) -> Option<&Issuer> {
        self.issuers.iter().find(|i| i.cfg.issuer == iss)
    }

    async fn verify_peeked(
        &self,
        token: &str,
        p: token::Unverified,
    ) -> Result<Identity, Rejection> {
        let (issuer, claims) = self.decode(token, p, None).await?;
        claims::identity(&issuer.cfg, &claims)
    }

    /// Checks signature, algorithm, issuer and times, and the audience:
    /// the issuer's configured audiences, or exactly `audience` when given.
    async fn decode(
        &self,
        token: &str,
        p: token::Unverified,
        audience: Option<&str>,
    ) -> Result<(&Issuer, Map<String, Value>), Rejection> {
        // Refuse `none`, HMAC and anything unknown before looking further.
        if !ALLOWED_ALGORITHMS.contains(&p.alg.as_str()) {
            return Err(Rejection::disallowed_alg(&p.alg));
        }
        let alg = Algorithm::from_str(&p.alg).map_err(|_| Rejection::disallowed_alg(&p.alg))?;
        let issuer = self.issuer_for(&p.iss).ok_or(Rejection::UnknownIssuer)?;
        if !issuer.algorithms.contains(&alg) {
            return Err(Rejection::disallowed_alg(&p.alg));
        }
        let key = issuer.keys.key_for(p.kid.as_deref(), alg).await?;
        let mut validation = validation(&issuer.cfg, alg);
        if let Some(aud) = audience {
            validation.set_audience(&[aud]);
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| rejection(e.kind()))?;
        expired_by_our_clock(&data.claims, issuer.cfg.leeway.0.as_secs())?;
        Ok((issuer, data.claims))
    }

    /// Verifies an OpenID Connect ID token from the issuer configured as
    /// `issuer_name`, as a relying party with `client_id`: the same key,
    /// algorithm, time and issuer checks as [`Verifier::verify`], but the
    /// audience must be `client_id` (and `azp`, when present, too), and the
    /// `nonce` claim must equal `nonce`. Used by the approvers' web sign-in.
    pub async fn verify_id_token(
        &self,
        token: &str,
        issuer_name: &str,
        client_id: &str,
        nonce: &str,
    ) -> Result<Identity, Rejection> {
        let token = token.trim();
        let p = token::peek(token)?;
        match self.issuer_for(&p.iss) {
            Some(i) if i.cfg.name == issuer_name => {}
            _ => return Err(Rejection::UnknownIssuer),
        }
        let (issuer, claims) = self.decode(token, p, Some(client_id)).await?;
        match claims.get("azp") {
            None => {}
            Some(Value::String(azp)) if azp == client_id => {}
            Some(_) => return Err(Rejection::WrongAudience),
        }
        let got = match claims.get("nonce") {
            Some(Value::String(n)) => n.as_bytes(),
            None => return Err(Rejection::MissingClaim("nonce")),
            Some(_) => return Err(Rejection::InvalidClaim("nonce")),
        };
        // Constant time: the nonce ties the token to this browser's sign-in.
        if nonce.is_empty() || !bool::from(subtle::ConstantTimeEq::ct_eq(got, nonce.as_bytes())) {
            return Err(Rejection::InvalidClaim("nonce"));
        }
        claims::identity(&issuer.cfg, &claims)
    }
}

/// jsonwebtoken checks `exp` against the wall clock, which a step back
/// rewinds; checked again against [`sluice_core::clock::now`], which it
/// does not. (`exp` is required and a non-negative number by then.)
fn expired_by_our_clock(claims: &Map<String, Value>, leeway: u64) -> Result<(), Rejection> {
    let exp = claims.get("exp").and_then(Value::as_f64).unwrap_or(0.0);
    let now = sluice_core::clock::now().timestamp() as f64;
    if exp + (leeway as f64) < now {
        return Err(Rejection::Expired);
    }
    Ok(())
}

/// The checks jsonwebtoken runs for one token of `issuer`, signed with `alg`.
fn validation(cfg: &IssuerConfig, alg: Algorithm) -> Validation {
    // Exactly the token's algorithm: it has already been checked against
    // the issuer's allow-list and the key's type.
    let mut v = Validation::new(alg);
    v.leeway = cfg.leeway.0.as_secs();
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = true;
    v.set_audience(&cfg.audiences);
    v.set_issuer(&[&cfg.issuer]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v
}

fn rejection(kind: &ErrorKind) -> Rejection {
    match kind {
        ErrorKind::InvalidSignature => Rejection::BadSignature,
        ErrorKind::ExpiredSignature => Rejection::Expired,
        ErrorKind::ImmatureSignature => Rejection::NotYetValid,
        ErrorKind::InvalidAudience => Rejection::WrongAudience,
        ErrorKind::InvalidIssuer => Rejection::UnknownIssuer,
        ErrorKind::InvalidAlgorithm => Rejection::AlgorithmKeyMismatch,
        ErrorKind::MissingRequiredClaim(c) => Rejection::MissingClaim(static_claim(c)),
        ErrorKind::InvalidClaimFormat(c) => Rejection::InvalidClaim(static_claim(c)),
        // A published key that cannot be used proves nothing about the token.
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => Rejection::BadSignature,
        _ => Rejection::Malformed,
    }
}

fn static_claim(name: &str) -> &'static str {
    match name {
        "exp" => "exp",
        "nbf" => "nbf",
        "iss" => "iss",
        "aud" => "aud",
        "sub" => "sub",
        _ => "claim",
    }
}
