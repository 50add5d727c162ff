//! The audit log: every event appended to a SHA-256 hash chain, written in
//! group commits, verifiable end to end, exported to SIEM sinks, signed at
//! checkpoints, and trimmed only by recorded truncations.
//!
//! Each stored event carries `hash = sha256(prev_hash || "\n" || body)`
//! where `body` is the exact canonical JSON kept beside it (including its
//! own sequence number and time). Editing a body, deleting a row or
//! reordering rows breaks the chain at the first affected sequence number,
//! which `verify` names. Signed checkpoints (Ed25519 over seq and hash)
//! extend that to someone who can rewrite the store and recompute every
//! hash but does not hold the key.

pub mod cast;
mod chain;
mod checkpoint;
mod commit;
mod error;
mod export;
mod journal;
mod keys;
mod log;
mod recent;
pub mod replay;
mod retention;
mod runner;
pub mod sinks;
mod verify;

pub use chain::{GENESIS, SCHEMA_VERSION, canonical_body, canonical_value, chain_hash};
pub use checkpoint::{
    CheckpointPolicy, Checkpointer, Round, check_signature, checkpoint_message, sign_checkpoint,
};
pub use error::ExportError;
pub use export::{ExportEvent, export_jsonl};
pub use keys::{generate, key_id, load_signing_key, parse_public_key, public_key_base64};
pub use log::AuditLog;
pub use recent::Commits;
pub use retention::{Retention, TRUNCATED_KIND, Truncation, truncation_message};
pub use runner::{RunnerOptions, SinkRunner};
pub use verify::{ChainBreak, VerifyReport, verify, verify_with};

/// Re-exported so callers can name keys without depending on the crate.
pub use ed25519_dalek::{SigningKey, VerifyingKey};
