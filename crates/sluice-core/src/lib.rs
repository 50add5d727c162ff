//! Sluice's nouns (identity, connection, access rule, grant), its
//! configuration, and the policy decisions over them. Pure: no I/O.

pub mod config;
pub mod guardrail;
pub mod identity;

pub use identity::{Identity, IdentityKind};
