//! An issuer's published verification keys, parsed from its JWKS with the
//! checks jsonwebtoken leaves to us: key use, key sizes and curve lengths,
//! and which algorithms each key may verify.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;

/// RSA keys below 2048 bits are refused.
const MIN_RSA_MODULUS_BYTES: usize = 256;
/// A JWKS with more keys than this is hostile or broken; the rest are ignored.
const MAX_KEYS: usize = 64;

/// The key material family, with the curve where it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Rsa,
    P256,
    P384,
    Ed25519,
}

/// One public key and the algorithms it may verify.
#[derive(Clone)]
pub(crate) struct VerifyKey {
    pub(crate) key: DecodingKey,
    kind: KeyType,
    /// The JWK's own `alg`, when it pins one.
    alg: Option<Algorithm>,
}

impl VerifyKey {
    /// True when `alg` fits this key's type (and curve) and its pinned `alg`.
    /// This is what stops a token from choosing an algorithm for a key that
    /// was never meant for it.
    pub(crate) fn accepts(&self, alg: Algorithm) -> bool {
        let fits_type = match self.kind {
            KeyType::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            KeyType::P256 => alg == Algorithm::ES256,
            KeyType::P384 => alg == Algorithm::ES384,
            KeyType::Ed25519 => alg == Algorithm::EdDSA,
        };
        fits_type && self.alg.is_none_or(|pinned| pinned == alg)
    }
}

/// The usable keys of one JWKS.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, VerifyKey>,
    /// Keys published without a `kid`; used only when a token has no `kid`.
    unnamed: Vec<VerifyKey>,
}

/// The outcome of looking a token's key up.
pub(crate) enum Lookup<'a> {
    Found(&'a VerifyKey),
    /// A key has this kid, but its type does not fit the token's `alg`.
    Mismatch,
    NotFound,
}

impl KeySet {
    /// Parses a JWKS document, skipping keys that cannot verify signatures
    /// (encryption keys, HMAC secrets, unknown types, weak or malformed keys).
    pub(crate) fn from_jwks(doc: &serde_json::Value) -> Result<KeySet, String> {
        let keys = doc
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or("the JWKS has no \"keys\" array")?;
        let mut set = KeySet::default();
        for raw in keys.iter().take(MAX_KEYS) {
            let Some((kid, key)) = parse_key(raw) else {
                continue;
            };
            match kid {
                Some(kid) => {
                    // The first key with a kid wins; a duplicate kid is the
                    // publisher's mistake and must not replace a known key.
                    set.by_kid.entry(kid).or_insert(key);
                }
                None => set.unnamed.push(key),
            }
        }
        if set.is_empty() {
            return Err("the JWKS has no usable signing keys".into());
        }
        Ok(set)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_kid.is_empty() && self.unnamed.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_kid.len() + self.unnamed.len()
    }

    /// Finds the key for a token: by `kid`, or, for a token without one, the
    /// single published key that fits `alg` (several would be ambiguous).
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        match kid {
            Some(kid) => match self.by_kid.get(kid) {
                Some(k) if k.accepts(alg) => Lookup::Found(k),
                Some(_) => Lookup::Mismatch,
                None => Lookup::NotFound,
            },
            None => {
                let mut fitting = self
                    .by_kid
                    .values()
                    .chain(self.unnamed.iter())
                    .filter(|k| k.accepts(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => Lookup::Found(k),
                    _ => Lookup::NotFound,
                }
            }
        }
    }
}

/// Decodes base64url, tolerating the padding some publishers add.
fn b64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// One JWK to a verification key, or `None` when it is not a usable signing key.
fn parse_key(raw: &serde_json::Value) -> Option<(Option<String>, VerifyKey)> {
    let jwk: Jwk = serde_json::from_value(raw.clone()).ok()?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(ka) => Some(signing_alg(ka)?),
    };
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let n = b64(&p.n)?;
            let e = b64(&p.e)?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            (significant >= MIN_RSA_MODULUS_BYTES && !e.is_empty() && e.len() <= 8)
                .then_some(KeyType::Rsa)?
        }
        AlgorithmParameters::EllipticCurve(p) => {
            let (kind, len) = match p.curve {
                EllipticCurve::P256 => (KeyType::P256, 32),
                EllipticCurve::P384 => (KeyType::P384, 48),
                _ => return None,
            };
            (b64(&p.x)?.len() == len && b64(&p.y)?.len() == len).then_some(kind)?
        }
        // jsonwebtoken slices the first 32 bytes of an Ed25519 key without a
        // length check, so a short `x` must never reach it.
        AlgorithmParameters::OctetKeyPair(p) => (p.curve == EllipticCurve::Ed25519
            && b64(&p.x)?.len() == 32)
            .then_some(KeyType::Ed25519)?,
        // Symmetric secrets are never verification keys here.
        AlgorithmParameters::OctetKey(_) => return None,
        _ => return None,
    };
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some((jwk.common.key_id.clone(), VerifyKey { key, kind, alg }))
}

/// The signing algorithm a JWK pins, or `None` for HMAC, encryption and unknown values.
fn signing_alg(ka: KeyAlgorithm) -> Option<Algorithm> {
    Some(match ka {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ed_key(kid: &str, x_len: usize) -> serde_json::Value {
        json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": URL_SAFE_NO_PAD.encode(vec![7u8; x_len])})
    }

    #[test]
    fn skips_unusable_keys_and_checks_types() {
        let doc = json!({"keys": [
            ed_key("short", 16),
            ed_key("good", 32),
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "weak", "n": URL_SAFE_NO_PAD.encode(vec![0xffu8; 128]), "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": URL_SAFE_NO_PAD.encode(vec![0xffu8; 256]), "e": "AQAB"},
            {"kty": "RSA", "kid": "oaep", "alg": "RSA-OAEP", "n": URL_SAFE_NO_PAD.encode(vec![0xffu8; 256]), "e": "AQAB"},
            {"kty": "RSA", "kid": "rsa", "alg": "RS256", "n": URL_SAFE_NO_PAD.encode(vec![0xffu8; 256]), "e": "AQAB"},
            {"kty": "EC", "kid": "p256-bad", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode([1u8; 31]), "y": URL_SAFE_NO_PAD.encode([1u8; 32])},
        ]});
        let set = KeySet::from_jwks(&doc).unwrap();
        assert_eq!(
            set.len(),
            2,
            "only the Ed25519 and the RS256 key are usable"
        );
        for skipped in ["short", "hmac", "weak", "enc", "oaep", "p256-bad"] {
            assert!(!set.has_kid(skipped), "{skipped} should be skipped");
        }
        assert!(matches!(
            set.find(Some("good"), Algorithm::EdDSA),
            Lookup::Found(_)
        ));
        assert!(matches!(
            set.find(Some("good"), Algorithm::RS256),
            Lookup::Mismatch
        ));
        // The JWK pins RS256, so a PS256 token may not use it.
        assert!(matches!(
            set.find(Some("rsa"), Algorithm::PS256),
            Lookup::Mismatch
        ));
        assert!(matches!(
            set.find(Some("rsa"), Algorithm::RS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            set.find(Some("other"), Algorithm::RS256),
            Lookup::NotFound
        ));
        // Without a kid, the single key fitting the alg is used.
        assert!(matches!(set.find(None, Algorithm::EdDSA), Lookup::Found(_)));
        assert!(matches!(set.find(None, Algorithm::ES256), Lookup::NotFound));
    }

    #[test]
    fn a_jwks_without_usable_keys_is_an_error() {
        assert!(KeySet::from_jwks(&json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})).is_err());
        assert!(KeySet::from_jwks(&json!({"nokeys": []})).is_err());
    }
}
