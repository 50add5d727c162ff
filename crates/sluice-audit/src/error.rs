//! Failures of export, checkpointing and retention. None of the messages
//! carries a token or key material: only names, paths and causes.

use sluice_store::StoreError;

/// Why an export, checkpoint or retention step failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A signing or public key could not be read.
    #[error("audit key {0}")]
    Key(String),
    /// A sink is misconfigured (found when it is built, before it runs).
    #[error("audit sink {sink}: {message}")]
    Config { sink: String, message: String },
    /// One delivery attempt failed; the runner retries it.
    #[error("delivery failed: {0}")]
    Delivery(String),
    /// Retention found something that makes deleting unsafe.
    #[error("retention refused: {0}")]
    Refused(String),
}
