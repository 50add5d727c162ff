//! Host keys: the gateway's own (made on first start, kept private, so its
//! fingerprint stays stable and agents can pin it) and each backend's,
//! pinned in the configuration and compared before anything is sent.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rand::RngCore;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::{HashAlg, PrivateKey, PublicKey};

/// The gateway's host key at `path`, made (Ed25519, owner-only) when
/// missing.
pub fn host_key(path: &Path) -> Result<PrivateKey, String> {
    if path.exists() {
        let mode = std::fs::metadata(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{}: the SSH host key is readable by others (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        return PrivateKey::from_openssh(&text)
            .map_err(|e| format!("{}: not an OpenSSH private key: {e}", path.display()));
    }
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let key = PrivateKey::new(
        KeypairData::Ed25519(Ed25519Keypair::from_seed(&seed)),
        "sluice gateway",
    )
    .map_err(|e| format!("cannot make an SSH host key: {e}"))?;
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| format!("cannot encode the SSH host key: {e}"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), fingerprint = %fingerprint(key.public_key()), "made the gateway's SSH host key");
    Ok(key)
}

/// A key's SHA-256 fingerprint, as `ssh-keygen -lf` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// A key as an OpenSSH public key line, without a comment (`ssh-ed25519
/// AAAA…`), as `known_hosts` holds it.
pub fn public_line(key: &PublicKey) -> String {
    let mut key = key.clone();
    key.set_comment("");
    key.to_openssh().unwrap_or_default()
}

/// A backend's host key as the configuration pins it: its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin(String);

impl Pin {
    /// From `host_key`: an OpenSSH public key line (`ssh-ed25519 AAAA…`,
    /// a trailing comment allowed) or a `SHA256:` fingerprint.
    pub fn parse(host_key: &str) -> Result<Pin, String> {
        let key = host_key.trim();
        if key.starts_with("SHA256:") {
            return Ok(Pin(key.to_string()));
        }
        PublicKey::from_openssh(key)
            .map(|k| Pin(fingerprint(&k)))
            .map_err(|e| {
                format!("host_key is not an OpenSSH public key or SHA256 fingerprint: {e}")
            })
    }

    /// Whether `presented` is the pinned key.
    pub fn matches(&self, presented: &PublicKey) -> bool {
        fingerprint(presented) == self.0
    }

    pub fn fingerprint(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_key_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let first = host_key(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = host_key(&path).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(host_key(&path).unwrap_err().contains("chmod 600"));
    }

    #[test]
    fn pins_compare_by_fingerprint_from_either_form() {
        let dir = tempfile::tempdir().unwrap();
        let key = host_key(&dir.path().join("k")).unwrap();
        let public = key.public_key();
        let line = public.to_openssh().unwrap();
        assert!(Pin::parse(&line).unwrap().matches(public));
        assert!(Pin::parse(&fingerprint(public)).unwrap().matches(public));
        let other = host_key(&dir.path().join("other")).unwrap();
        assert!(!Pin::parse(&line).unwrap().matches(other.public_key()));
        assert!(Pin::parse("not a key").is_err());
    }
}
