//! The `sluice.toml` configuration.

pub mod duration;
pub mod issuer;

pub use duration::{Dur, parse_duration};
pub use issuer::{ALLOWED_ALGORITHMS, IssuerConfig, KindMapping};
