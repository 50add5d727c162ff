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
