//! Who is asking: OIDC bearer-token verification for every configured
//! issuer (discovery, a JWKS cache keyed by `kid`, claim checks) and the
//! mapping of verified claims to a [`sluice_core::Identity`].
//!
//! ```no_run
//! # async fn demo(cfg: Vec<sluice_core::config::IssuerConfig>, token: &str) {
//! let verifier = sluice_identity::Verifier::new(cfg).expect("valid issuer config");
//! verifier.warm().await;
//! match verifier.verify(token).await {
//!     Ok(identity) => println!("hello {}", identity.name),
//!     Err(rejection) => println!("401 {}: {rejection}", rejection.reason()),
//! }
//! # }
//! ```
//!
//! Token content is never logged: log lines carry the issuer's name, the
//! `kid` (when printable) and the rejection reason.

mod claims;
mod config;
pub mod dev;
mod fetch;
mod jwks;
mod keys;
mod rejection;
mod token;
mod verifier;

pub use config::{ConfigError, ConfigProblem};
pub use rejection::Rejection;
pub use verifier::Verifier;

/// The largest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = token::MAX_TOKEN_BYTES;

/// Entry points for the fuzz targets (`fuzz/`): the parts of verification
/// that read untrusted bytes. Not an API; nothing else should call these.
#[doc(hidden)]
pub mod fuzzing {
    use sluice_core::config::IssuerConfig;

    /// Whether `token` gets past the unverified look (size, shape,
    /// header, `iss`) that picks the issuer and key.
    pub fn peek(token: &str) -> bool {
        crate::token::peek(token).is_ok()
    }

    /// How many usable signing keys a JWKS document holds; `None` when it
    /// is refused.
    pub fn jwks(doc: &[u8]) -> Option<usize> {
        let doc: serde_json::Value = serde_json::from_slice(doc).ok()?;
        crate::keys::KeySet::from_jwks(&doc).ok().map(|k| k.len())
    }

    /// The identity verified claims map to, for an Okta-like issuer.
    pub fn identity(claims: &[u8]) -> Option<sluice_core::Identity> {
        let claims: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(claims).ok()?;
        let cfg = IssuerConfig::new("okta", "https://idp.example/oauth2/default", "api://sluice");
        crate::claims::identity(&cfg, &claims).ok()
    }
}
