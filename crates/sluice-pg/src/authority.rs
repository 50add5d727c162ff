//! What the proxy asks of the rest of Sluice: grants, the token fallback,
//! and the news that a grant has ended. The binary implements it over the
//! store and the identity verifier; tests implement it in memory.

use std::net::SocketAddr;

use futures::future::BoxFuture;
use sluice_core::Grant;

/// The grant store could not answer (the login fails closed).
#[derive(Debug, thiserror::Error)]
#[error("grant lookup failed: {0}")]
pub struct AuthorityError(pub String);

/// The token fallback was refused. `message` is shown to the client, so it
/// must be client-safe (no token, no internals).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct LoginRefused {
    pub message: String,
}

impl LoginRefused {
    pub fn new(message: impl Into<String>) -> Self {
        LoginRefused {
            message: message.into(),
        }
    }
}

/// The proxy's view of the grant store and the identity layer.
pub trait Authority: Send + Sync + 'static {
    /// The grant named by a login's user name (grant ids look like `g_` and
    /// 26 base32 characters), or `None`.
    fn grant(&self, id: &str) -> BoxFuture<'_, Result<Option<Grant>, AuthorityError>>;

    /// Fallback login: the OIDC token given as the password (over TLS only).
    /// Verifies it and creates an active grant on the fly for `connection`
    /// when the access rule needs no approval; a client-safe refusal
    /// otherwise.
    fn grant_from_token(
        &self,
        token: &str,
        connection: &str,
        client_addr: SocketAddr,
    ) -> BoxFuture<'_, Result<Grant, LoginRefused>>;

    /// Resolves when the grant stops being usable (revoked, expired, …). The
    /// proxy also sleeps until `expires_at` itself.
    fn ended(&self, grant_id: &str) -> BoxFuture<'static, ()>;
}

/// True when `user` has the shape of a grant id: `g_` and 26 base32 chars.
pub fn is_grant_id(user: &str) -> bool {
    user.len() == 28
        && user.starts_with("g_")
        && user[2..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_id_shape() {
        assert!(is_grant_id(&sluice_core::grant::new_grant_id()));
        assert!(!is_grant_id("postgres"));
        assert!(!is_grant_id("g_ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
        assert!(!is_grant_id("g_abc"));
    }
}
