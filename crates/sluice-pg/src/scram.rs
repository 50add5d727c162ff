//! The server side of SCRAM-SHA-256 (RFC 5802/7677), against a stored
//! verifier, as PostgreSQL runs it. The client proves it knows the grant
//! secret; the secret itself never crosses the wire.
//!
//! Only `SCRAM-SHA-256` is offered, never `-PLUS`: Sluice terminates TLS
//! itself, and a client asking for channel binding (`p=` in its GS2 header)
//! is refused.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sluice_core::secret::ScramVerifier;
use subtle::ConstantTimeEq;

/// The only mechanism advertised.
pub const MECHANISM: &str = "SCRAM-SHA-256";

/// Why an exchange failed. Only `ProofMismatch` is a wrong password; the rest
/// are protocol errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message")]
    Malformed,
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("nonce mismatch")]
    Nonce,
    #[error("proof does not match")]
    ProofMismatch,
}

/// One exchange, between the client-first and client-final messages.
pub struct ScramServer {
    verifier: ScramVerifier,
    /// `n=…,r=…` as the client sent it.
    client_first_bare: String,
    /// `r=…,s=…,i=…` as sent.
    server_first: String,
    /// The GS2 header, which the client echoes in `c=`.
    gs2_header: String,
    nonce: String,
}

impl ScramServer {
    /// Starts an exchange from the client-first message. For a user with no
    /// verifier, pass [`ScramServer::decoy`] so the exchange looks the same
    /// and fails only at the proof.
    pub fn start(verifier: ScramVerifier, client_first: &[u8]) -> Result<Self, ScramError> {
        let text = std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed)?;
        let (gs2_header, bare) = split_gs2(text)?;
        let client_nonce = bare
            .split(',')
            .find_map(|a| a.strip_prefix("r="))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
            .ok_or(ScramError::Malformed)?;
        let mut ours = [0u8; 18];
        rand::rngs::OsRng.fill_bytes(&mut ours);
        let nonce = format!("{client_nonce}{}", STANDARD.encode(ours));
        let server_first = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&verifier.salt),
            verifier.iterations
        );
        Ok(ScramServer {
            verifier,
            client_first_bare: bare.to_string(),
            server_first,
            gs2_header: gs2_header.to_string(),
            nonce,
        })
    }

    /// A verifier no secret matches, for user names that name no grant.
    pub fn decoy() -> ScramVerifier {
        let mut salt = vec![0u8; 16];
        let mut keys = [0u8; 64];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        rand::rngs::OsRng.fill_bytes(&mut keys);
        ScramVerifier {
            iterations: sluice_core::secret::SCRAM_ITERATIONS,
            salt,
            stored_key: keys[..32].try_into().expect("32 bytes"),
            server_key: keys[32..].try_into().expect("32 bytes"),
        }
    }

    /// The server-first message to send.
    pub fn server_first(&self) -> &[u8] {
        self.server_first.as_bytes()
    }

    /// Checks the client-final message; on success returns the server-final
    /// message (`v=…`) to send before AuthenticationOk.
    pub fn finish(&self, client_final: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text = std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed)?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or(ScramError::Malformed)?;
        let mut attrs = without_proof.split(',');
        let binding = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(ScramError::Malformed)?;
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed)?;
        if binding != STANDARD.encode(&self.gs2_header) {
            return Err(ScramError::ChannelBinding);
        }
        if nonce.as_bytes().ct_ne(self.nonce.as_bytes()).into() {
            return Err(ScramError::Nonce);
        }
        let proof: [u8; 32] = STANDARD
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or(ScramError::Malformed)?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let signature = hmac(&self.verifier.stored_key, auth_message.as_bytes());
        let mut client_key = [0u8; 32];
        for (k, (p, s)) in client_key.iter_mut().zip(proof.iter().zip(signature)) {
            *k = p ^ s;
        }
        let stored: [u8; 32] = Sha256::digest(client_key).into();
        if !bool::from(stored.ct_eq(&self.verifier.stored_key)) {
            return Err(ScramError::ProofMismatch);
        }
        let server_signature = hmac(&self.verifier.server_key, auth_message.as_bytes());
        Ok(format!("v={}", STANDARD.encode(server_signature)).into_bytes())
    }
}

/// Splits `gs2-header` (`n,,` or `y,,`, optionally with `a=authzid`) from the
/// bare message. `p=` (channel binding requested) is refused.
fn split_gs2(text: &str) -> Result<(&str, &str), ScramError> {
    let mut parts = text.splitn(3, ',');
    let flag = parts.next().ok_or(ScramError::Malformed)?;
    let authzid = parts.next().ok_or(ScramError::Malformed)?;
    let bare = parts.next().ok_or(ScramError::Malformed)?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(ScramError::ChannelBinding),
        _ => return Err(ScramError::Malformed),
    }
    if !authzid.is_empty() && !authzid.starts_with("a=") {
        return Err(ScramError::Malformed);
    }
    let header_len = flag.len() + authzid.len() + 2;
    Ok((&text[..header_len], bare))
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

    fn exchange(secret: &str, verifier: ScramVerifier) -> Result<(), ScramError> {
        let mut client = ScramSha256::new(secret.as_bytes(), ChannelBinding::unsupported());
        let server = ScramServer::start(verifier, client.message())?;
        client.update(server.server_first()).unwrap();
        let last = server.finish(client.message())?;
        client
            .finish(&last)
            .expect("client accepts the server signature");
        Ok(())
    }

    #[test]
    fn the_right_secret_passes_and_the_server_proves_itself() {
        let v = ScramVerifier::derive("sls_right");
        exchange("sls_right", v).unwrap();
    }

    #[test]
    fn a_wrong_secret_or_a_decoy_fails_at_the_proof() {
        let v = ScramVerifier::derive("sls_right");
        assert_eq!(exchange("sls_wrong", v), Err(ScramError::ProofMismatch));
        assert_eq!(
            exchange("anything", ScramServer::decoy()),
            Err(ScramError::ProofMismatch)
        );
    }

    #[test]
    fn channel_binding_and_garbage_are_refused() {
        let v = ScramVerifier::derive("x");
        assert_eq!(
            ScramServer::start(v.clone(), b"p=tls-server-end-point,,n=,r=abc").err(),
            Some(ScramError::ChannelBinding)
        );
        assert!(ScramServer::start(v.clone(), b"n,,n=,r=").is_err());
        assert!(ScramServer::start(v.clone(), b"\xff").is_err());
        let s = ScramServer::start(v, b"n,,n=,r=abc").unwrap();
        assert!(s.finish(b"c=biws,r=abc,p=AAAA").is_err());
        assert!(s.finish(b"nonsense").is_err());
    }
}
