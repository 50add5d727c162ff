//! The audit log: every event appended to a SHA-256 hash chain, written in
//! group commits, verifiable end to end, exportable as JSON lines.
//!
//! Each stored event carries `hash = sha256(prev_hash || "\n" || body)`
//! where `body` is the exact canonical JSON kept beside it (including its
//! own sequence number and time). Editing a body, deleting a row or
//! reordering rows breaks the chain at the first affected sequence number,
//! which `verify` names.

mod chain;
mod export;
mod log;
mod verify;

pub use chain::{GENESIS, SCHEMA_VERSION, canonical_body, chain_hash};
pub use export::export_jsonl;
pub use log::AuditLog;
pub use verify::{ChainBreak, VerifyReport, verify};
