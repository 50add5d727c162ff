//! Guardrails: per-connection rules over what a statement does.
//!
//! The protocol layer analyses a statement (for Postgres, `sluice-sql` with the
//! real parser) into [`StatementFacts`]; this module decides, purely, whether
//! those facts are allowed, denied, or need a human's approval under a
//! connection's [`Profile`] and [`GuardrailRule`]s. See [`evaluate`] for the
//! exact semantics.

mod class;
mod eval;
mod glob;
mod profile;
mod rule;

pub use class::{StatementClass, StatementFacts};
pub use eval::{DecidedBy, Verdict, evaluate, evaluate_all};
pub use glob::{glob_match, glob_match_exact};
pub use profile::{ParseProfileError, Profile};
pub use rule::{Action, GuardrailRule, Hold};
