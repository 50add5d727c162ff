//! Grants: the short-lived right of one identity to use one connection.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::guardrail::Profile;
use crate::identity::Identity;

/// Where a grant is in its life. Only `Active` grants open sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantStatus {
    Pending,
    Active,
    Denied,
    Expired,
    Revoked,
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Pending => "pending",
            GrantStatus::Active => "active",
            GrantStatus::Denied => "denied",
            GrantStatus::Expired => "expired",
            GrantStatus::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => GrantStatus::Pending,
            "active" => GrantStatus::Active,
            "denied" => GrantStatus::Denied,
            "expired" => GrantStatus::Expired,
            "revoked" => GrantStatus::Revoked,
            _ => return None,
        })
    }

    /// True once the grant can never become usable again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            GrantStatus::Denied | GrantStatus::Expired | GrantStatus::Revoked
        )
    }
}

/// A grant as stored. The secret itself is never kept: only its SCRAM-SHA-256
/// verifier, which lets the Postgres listener authenticate the secret without
/// it ever crossing the wire, and the `mysql_native_password` verifier for
/// MySQL clients that speak only that (see `secret`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub subject: String,
    pub issuer: String,
    pub identity_name: String,
    pub identity_kind: String,
    /// The holder's groups as the verified token stated them when the
    /// grant was issued. Masking exemptions (`exempt_groups`) read these for
    /// the grant's whole life instead of asking the identity provider again:
    /// this is the just-in-time model, where membership is judged once at
    /// issuance and the grant's short, rule-capped TTL bounds how long that
    /// judgement lasts. A session cannot bring a fresher token (its password
    /// is the grant secret), and an identity cannot add groups to a grant
    /// after the fact. A membership the provider withdraws therefore stops
    /// counting at the next grant; to end it sooner, revoke the grant (its
    /// sessions close at once). Grants stored before groups were recorded
    /// have none: nobody is exempt through them.
    pub identity_groups: Vec<String>,
    pub connection: String,
    pub profile: Profile,
    /// The access rule that made the grant possible.
    pub rule: String,
    pub status: GrantStatus,
    pub reason: String,
    /// The life the grant gets once active, in seconds.
    pub ttl_secs: i64,
    pub created_at: DateTime<Utc>,
    /// When the grant became active (its TTL runs from here).
    pub activated_at: Option<DateTime<Utc>>,
    /// For an active grant, the end of its life; for a pending one, when the
    /// request lapses unanswered.
    pub expires_at: DateTime<Utc>,
    /// The identity or process that last changed the status.
    pub decided_by: Option<String>,
    pub scram_verifier: String,
    /// `SHA1(SHA1(secret))` in hex; empty for grants issued before it was
    /// kept (their MySQL clients use `caching_sha2_password`).
    pub native_verifier: String,
    /// An SSH public key (`ssh-ed25519 AAAA…`) its holder may log in with
    /// instead of the secret, registered when the grant was asked for.
    pub ssh_key: Option<String>,
}

/// An SSH public key line as a grant keeps it: `TYPE BASE64` (a comment
/// dropped), its type one OpenSSH knows and its key blob naming that type.
pub fn ssh_public_key(line: &str) -> Result<String, String> {
    use base64::Engine;
    const TYPES: [&str; 6] = [
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "ssh-rsa",
        "sk-ssh-ed25519@openssh.com",
    ];
    let mut parts = line.split_whitespace();
    let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
        return Err("an SSH public key is one line: TYPE BASE64 [COMMENT]".into());
    };
    if !TYPES.contains(&kind) {
        return Err(format!("{kind:?} is not an SSH key type Sluice accepts"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| "the key's BASE64 part does not decode".to_string())?;
    // The blob begins with the type as an SSH string (length, bytes).
    let named = bytes
        .get(4..4 + kind.len())
        .is_some_and(|t| t == kind.as_bytes());
    if bytes.len() < 4 + kind.len() || !named {
        return Err("the key's BASE64 part is not a key of its type".into());
    }
    Ok(format!("{kind} {blob}"))
}

impl Grant {
    /// True when `who` is the identity the grant was issued to.
    pub fn belongs_to(&self, who: &Identity) -> bool {
        who.same_principal(&self.subject, &self.issuer)
    }

    /// True when the grant may be used at `now`.
    pub fn usable_at(&self, now: DateTime<Utc>) -> bool {
        self.status == GrantStatus::Active && now < self.expires_at
    }
}

/// A fresh grant id: `g_` and 26 base32 characters (130 random bits). It is
/// also the Postgres user name, so it stays lowercase and unquoted-safe.
pub fn new_grant_id() -> String {
    format!("g_{}", random_base32(26))
}

fn random_base32(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::rngs::OsRng;
    (0..n)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_postgres_safe() {
        let a = new_grant_id();
        assert_ne!(a, new_grant_id());
        assert_eq!(a.len(), 28);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }

    #[test]
    fn final_states() {
        assert!(!GrantStatus::Pending.is_final());
        assert!(!GrantStatus::Active.is_final());
        assert!(GrantStatus::Revoked.is_final());
        assert_eq!(GrantStatus::parse("expired"), Some(GrantStatus::Expired));
        assert_eq!(GrantStatus::parse("bogus"), None);
    }
}

#[cfg(test)]
mod ssh_key_tests {
    use super::ssh_public_key;

    #[test]
    fn public_keys_are_kept_without_their_comment_and_checked() {
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl agent@laptop";
        assert_eq!(
            ssh_public_key(line).unwrap(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
        );
        assert!(ssh_public_key("ssh-dss AAAAB3NzaC1kc3M=").is_err());
        assert!(ssh_public_key("ssh-ed25519 !!!").is_err());
        // An RSA blob claiming to be ed25519.
        assert!(ssh_public_key("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ").is_err());
        assert!(ssh_public_key("").is_err());
    }
}
