//! Grant secrets and their SCRAM-SHA-256 verifiers.
//!
//! A secret is 256 random bits, shown to its holder once. Sluice keeps only
//! the verifier PostgreSQL itself would keep (`SCRAM-SHA-256$iter:salt$StoredKey:ServerKey`,
//! RFC 5803), so the Postgres listener can run a SCRAM exchange and the
//! secret never crosses the wire; a stolen store yields no usable secret.
//!
//! MySQL clients that speak only `mysql_native_password` need a second
//! verifier, `SHA1(SHA1(secret))`, the one MySQL itself keeps for that
//! plugin ([`native_verifier`]). It is weaker than SCRAM in one way MySQL's
//! is: whoever holds the stored value *and* sees one login's exchange can
//! answer later challenges for that plugin. The secret's 256 random bits
//! keep it from being guessed from either alone.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use subtle::ConstantTimeEq;

/// PBKDF2 rounds, as PostgreSQL's default `scram_iterations`.
pub const SCRAM_ITERATIONS: u32 = 4096;

/// A new grant secret: 32 random bytes, base64url, prefixed so scanners can
/// recognise a leaked one.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("sls_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The parts of a SCRAM-SHA-256 verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl ScramVerifier {
    /// Derives a verifier for `secret` with a fresh 16-byte salt.
    pub fn derive(secret: &str) -> Self {
        let mut salt = vec![0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        Self::derive_with(secret, salt, SCRAM_ITERATIONS)
    }

    /// Derives a verifier with a given salt and iteration count (tests
    /// and fuzzing, where the fixed cost of 4096 rounds would dominate).
    pub fn derive_with(secret: &str, salt: Vec<u8>, iterations: u32) -> Self {
        let salted = salted_password(secret.as_bytes(), &salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        ScramVerifier {
            iterations,
            salt,
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted, b"Server Key"),
        }
    }

    /// Parses the PostgreSQL text form.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys) = rest.split_once('$')?;
        let (iter, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        Some(ScramVerifier {
            iterations: iter.parse().ok().filter(|i| *i > 0)?,
            salt: STANDARD.decode(salt).ok()?,
            stored_key: STANDARD.decode(stored).ok()?.try_into().ok()?,
            server_key: STANDARD.decode(server).ok()?.try_into().ok()?,
        })
    }

    /// The PostgreSQL text form.
    pub fn to_text(&self) -> String {
        format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.stored_key),
            STANDARD.encode(self.server_key)
        )
    }

    /// True when `secret` matches, compared in constant time.
    pub fn verify(&self, secret: &str) -> bool {
        let salted = salted_password(secret.as_bytes(), &self.salt, self.iterations);
        let stored: [u8; 32] = Sha256::digest(hmac(&salted, b"Client Key")).into();
        stored.ct_eq(&self.stored_key).into()
    }
}

/// `mysql_native_password`'s stored form of `secret`: `SHA1(SHA1(secret))`,
/// hex.
pub fn native_verifier(secret: &str) -> String {
    hex::encode(sha1::Sha1::digest(sha1::Sha1::digest(secret.as_bytes())))
}

/// True when `scramble`, a client's `mysql_native_password` answer to
/// `nonce`, proves the secret behind `verifier` (compared in constant
/// time). The answer is `SHA1(secret) XOR SHA1(nonce ‖ SHA1(SHA1(secret)))`:
/// undoing the XOR gives `SHA1(secret)`, whose hash must be the verifier.
pub fn native_check(verifier: &str, nonce: &[u8], scramble: &[u8]) -> bool {
    let Ok(stored) = <[u8; 20]>::try_from(hex::decode(verifier).unwrap_or_default()) else {
        return false;
    };
    let Ok(scramble) = <[u8; 20]>::try_from(scramble) else {
        return false;
    };
    let mut mix = sha1::Sha1::new();
    mix.update(nonce);
    mix.update(stored);
    let mut stage1: [u8; 20] = mix.finalize().into();
    for (s, x) in stage1.iter_mut().zip(scramble) {
        *s ^= x;
    }
    let again: [u8; 20] = sha1::Sha1::digest(stage1).into();
    again.ct_eq(&stored).into()
}

fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
    out
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_round_trips_and_checks_the_secret() {
        let secret = new_secret();
        assert!(secret.len() >= 4 + 43, "256 bits of base64url");
        let v = ScramVerifier::derive(&secret);
        let text = v.to_text();
        assert!(!text.contains(&secret));
        let parsed = ScramVerifier::parse(&text).unwrap();
        assert_eq!(parsed, v);
        assert!(parsed.verify(&secret));
        assert!(!parsed.verify("sls_wrong"));
    }

    #[test]
    fn matches_a_verifier_postgres_made() {
        // `CREATE ROLE pencil PASSWORD 'pencil'` on PostgreSQL 15.
        let pg = "SCRAM-SHA-256$4096:janrsByD2dvObS8xSr7X+w==$4uWA3ttZTRjhURUDCqjT9mPSObakdwiB/Bq8edCq1YI=:QgfZksKgf8VdV9OxVtSruVqIFZug1NaRZ+W8ubprTpE=";
        let v = ScramVerifier::parse(pg).unwrap();
        assert!(v.verify("pencil"));
        assert!(!v.verify("pencil "));
        let ours = ScramVerifier::derive_with("pencil", v.salt.clone(), 4096);
        assert_eq!(ours.to_text(), pg);
    }

    #[test]
    fn native_verifier_checks_what_mysql_clients_send() {
        // What a client sends, as MySQL's own scramble_native computes it.
        fn client(secret: &str, nonce: &[u8]) -> Vec<u8> {
            let stage1 = sha1::Sha1::digest(secret.as_bytes());
            let stage2 = sha1::Sha1::digest(stage1);
            let mut mix = sha1::Sha1::new();
            mix.update(nonce);
            mix.update(stage2);
            let mix = mix.finalize();
            stage1.iter().zip(mix).map(|(a, b)| a ^ b).collect()
        }
        // MySQL's `PASSWORD('password')`, less its leading `*`.
        assert_eq!(
            native_verifier("password").to_uppercase(),
            "2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
        let secret = new_secret();
        let v = native_verifier(&secret);
        let nonce = b"abcdefghijklmnopqrst";
        assert!(native_check(&v, nonce, &client(&secret, nonce)));
        assert!(!native_check(&v, nonce, &client("sls_wrong", nonce)));
        assert!(!native_check(
            &v,
            b"another nonce 123456",
            &client(&secret, nonce)
        ));
        assert!(!native_check("", nonce, &client(&secret, nonce)));
        assert!(!native_check(&v, nonce, &[]));
    }

    #[test]
    fn rejects_malformed_text() {
        assert!(ScramVerifier::parse("md5abc").is_none());
        assert!(ScramVerifier::parse("SCRAM-SHA-256$0:AAAA$AAAA:AAAA").is_none());
    }
}
