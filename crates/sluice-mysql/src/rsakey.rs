//! The gateway's RSA key for `caching_sha2_password`'s key exchange: a
//! client without TLS encrypts its password to this key (RSA-OAEP with
//! SHA-1, as the plugin specifies). Made on first start and kept in the
//! data directory, private to its owner, so clients that pin it
//! (`--server-public-key-path`) keep working.

use std::path::Path;

use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};

/// The key and its public half as the plugin sends it (SPKI PEM).
pub struct RsaKey {
    private: RsaPrivateKey,
    pub public_pem: String,
}

impl RsaKey {
    /// Reads the key at `path`, or makes one there.
    pub fn load_or_create(path: &Path) -> Result<RsaKey, String> {
        let private = if path.exists() {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| format!("read the MySQL RSA key {}: {e}", path.display()))?;
            RsaPrivateKey::from_pkcs8_pem(&pem)
                .map_err(|e| format!("parse the MySQL RSA key {}: {e}", path.display()))?
        } else {
            let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                .map_err(|e| format!("make an RSA key: {e}"))?;
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| format!("encode the RSA key: {e}"))?;
            write_private(path, pem.as_bytes())?;
            key
        };
        let public_pem = RsaPublicKey::from(&private)
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| format!("encode the RSA public key: {e}"))?;
        Ok(RsaKey {
            private,
            public_pem,
        })
    }

    /// The plaintext of an OAEP-SHA1 block, or `None`.
    pub fn decrypt(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        self.private.decrypt(Oaep::new::<sha1::Sha1>(), sealed).ok()
    }
}

fn write_private(path: &Path, pem: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("write the MySQL RSA key {}: {e}", path.display()))?;
    f.write_all(pem)
        .map_err(|e| format!("write the MySQL RSA key {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_and_decrypts_what_a_client_encrypts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let key = RsaKey::load_or_create(&path).unwrap();
        let again = RsaKey::load_or_create(&path).unwrap();
        assert_eq!(key.public_pem, again.public_pem);
        // As a client does it: mysql_common's own encryption.
        let sealed = mysql_common::crypto::encrypt(b"secret\0", key.public_pem.as_bytes()).unwrap();
        assert_eq!(key.decrypt(&sealed).unwrap(), b"secret\0");
        assert!(key.decrypt(b"garbage").is_none());
    }
}
