//! Ed25519 keys for checkpoints: loading the gateway's signing key, reading
//! a public key given to `verify`, and making a new pair (`keygen`).
//!
//! The signing key file is PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, what
//! `keygen` and `openssl genpkey -algorithm ed25519` write) or exactly 32
//! raw seed bytes. A public key is SPKI PEM (`-----BEGIN PUBLIC KEY-----`),
//! or the 32 key bytes in base64, given inline or in a file.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::path::Path;

use crate::error::ExportError;

/// Reads the signing key from `path`. Error messages never quote the file.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, ExportError> {
    let bad = |why: String| ExportError::Key(format!("{}: {why}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    warn_if_readable_by_others(path);
    if bytes.starts_with(b"-----BEGIN") {
        let pem = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8 PEM".into()))?;
        return SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| bad(format!("not an Ed25519 PKCS#8 private key ({e})")));
    }
    let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        bad("expected PKCS#8 PEM (\"-----BEGIN PRIVATE KEY-----\") or exactly 32 raw bytes".into())
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the audit signing key is readable by group or others; chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

/// Reads a public key given as a file path or inline base64.
pub fn parse_public_key(arg: &str) -> Result<VerifyingKey, ExportError> {
    let path = Path::new(arg);
    if path.is_file() {
        let bytes = std::fs::read(path)
            .map_err(|e| ExportError::Key(format!("{}: cannot read: {e}", path.display())))?;
        return public_key_from_bytes(&bytes)
            .map_err(|why| ExportError::Key(format!("{}: {why}", path.display())));
    }
    public_key_from_bytes(arg.as_bytes()).map_err(|why| {
        ExportError::Key(format!("--public-key is neither a readable file nor {why}"))
    })
}

fn public_key_from_bytes(bytes: &[u8]) -> Result<VerifyingKey, String> {
    if bytes.starts_with(b"-----BEGIN") {
        let pem = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 PEM".to_string())?;
        return VerifyingKey::from_public_key_pem(pem)
            .map_err(|e| format!("not an Ed25519 public key PEM ({e})"));
    }
    if let Ok(raw) = <[u8; 32]>::try_from(bytes) {
        return VerifyingKey::from_bytes(&raw).map_err(|e| format!("not an Ed25519 key ({e})"));
    }
    let text = std::str::from_utf8(bytes).unwrap_or("").trim();
    let raw = STANDARD
        .decode(text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| "a base64 Ed25519 public key (32 bytes)".to_string())?;
    VerifyingKey::from_bytes(&raw).map_err(|e| format!("not an Ed25519 key ({e})"))
}

/// A short fingerprint naming a public key in checkpoints and messages.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// The public key as inline base64 (what `verify --public-key` accepts).
pub fn public_key_base64(key: &VerifyingKey) -> String {
    STANDARD.encode(key.as_bytes())
}

/// A new key pair as (private PKCS#8 PEM, public SPKI PEM, public base64).
pub fn generate() -> Result<(String, String, String), ExportError> {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    let lf = ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF;
    let private = key
        .to_pkcs8_pem(lf)
        .map_err(|e| ExportError::Key(format!("cannot encode the private key: {e}")))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(lf)
        .map_err(|e| ExportError::Key(format!("cannot encode the public key: {e}")))?;
    Ok((
        private.to_string(),
        public,
        public_key_base64(&key.verifying_key()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_load_back_in_every_accepted_form() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public_pem, public_b64) = generate().unwrap();
        let key_file = dir.path().join("k.pem");
        std::fs::write(&key_file, &private).unwrap();
        let key = load_signing_key(&key_file).unwrap();
        let vk = key.verifying_key();

        let pub_file = dir.path().join("k.pub");
        std::fs::write(&pub_file, &public_pem).unwrap();
        assert_eq!(parse_public_key(pub_file.to_str().unwrap()).unwrap(), vk);
        assert_eq!(parse_public_key(&public_b64).unwrap(), vk);
        let b64_file = dir.path().join("k.b64");
        std::fs::write(&b64_file, format!("{public_b64}\n")).unwrap();
        assert_eq!(parse_public_key(b64_file.to_str().unwrap()).unwrap(), vk);

        // A raw 32-byte seed is the same key as its PEM form.
        let raw = dir.path().join("k.raw");
        std::fs::write(&raw, key.to_bytes()).unwrap();
        assert_eq!(load_signing_key(&raw).unwrap().verifying_key(), vk);

        assert!(parse_public_key("not-a-key").is_err());
        std::fs::write(&raw, b"short").unwrap();
        assert!(load_signing_key(&raw).is_err());
    }
}
