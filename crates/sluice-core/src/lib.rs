//! Sluice's nouns (identity, connection, access rule, grant, audit event),
//! its configuration, and the policy decisions over them. Pure: no I/O
//! beyond reading a password reference.

pub mod access;
pub mod approval;
pub mod audit;
pub mod clock;
pub mod config;
pub mod grant;
pub mod guardrail;
pub mod identity;
pub mod live;
pub mod metrics;
pub mod secret;

pub use grant::{Grant, GrantStatus, Profile};
pub use identity::{Identity, IdentityKind};
