//! The keyed hash behind the `hash` style.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// An HMAC-SHA256 key, keyed once and cloned per value. Its `Debug` never
/// shows the key.
#[derive(Clone)]
pub struct HashKey {
    mac: Hmac<Sha256>,
}

/// Prefix of every hashed value.
pub const HASH_PREFIX: &[u8] = b"hash:";
/// Bytes of the MAC kept: 8 bytes, 16 hex digits, 64 bits — plenty to keep
/// distinct values distinct in a result, too few to be a useful MAC oracle.
const KEPT: usize = 8;

impl HashKey {
    /// A key from any bytes (HMAC accepts every length).
    pub fn new(key: &[u8]) -> Self {
        let mac = match Hmac::<Sha256>::new_from_slice(key) {
            Ok(mac) => mac,
            // HMAC keys of any length are valid; this arm is unreachable.
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        Self { mac }
    }

    /// Appends `hash:` and 16 hex digits of HMAC(key, data) to `out`.
    pub fn tag_into(&self, data: &[u8], out: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut mac = self.mac.clone();
        mac.update(data);
        let digest = mac.finalize().into_bytes();
        out.extend_from_slice(HASH_PREFIX);
        for b in &digest[..KEPT] {
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        }
    }

    /// `hash:` and 16 hex digits of HMAC(key, data).
    pub fn tag(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HASH_PREFIX.len() + 2 * KEPT);
        self.tag_into(data, &mut out);
        out
    }
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(***)")
    }
}
