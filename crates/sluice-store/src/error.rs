use thiserror::Error;

/// Store failures. Messages never carry the store's password.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open the store: {0}")]
    Open(String),
    #[error("cannot migrate the store: {0}")]
    Migrate(String),
    #[error("store query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Another writer took an audit sequence number first: the number, or
    /// for a batch the first of its numbers (the batch is refused whole).
    #[error("audit sequence {0} (or one after it in the same batch) was taken by another writer")]
    SeqTaken(i64),
}
