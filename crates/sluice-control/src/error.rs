//! The control plane's errors: a kind (which the HTTP API turns into a
//! status), a short machine code and a message written for the caller.
//! Internals go to the log, never to the message.

/// What kind of failure, for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    /// Sluice's side failed; nothing was changed.
    Unavailable,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: Kind,
    pub code: &'static str,
    pub message: String,
}

impl Error {
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        Error {
            kind,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Kind::BadRequest, "bad_request", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(Kind::Unauthorized, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Kind::Forbidden, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, "not_found", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, "conflict", message)
    }
    /// A failure on our side. `detail` goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            Kind::Unavailable,
            "unavailable",
            "Sluice could not complete the request; nothing was changed. Try again shortly.",
        )
    }
}

impl From<sluice_store::StoreError> for Error {
    fn from(e: sluice_store::StoreError) -> Self {
        Error::internal(e)
    }
}

impl From<sluice_core::audit::AuditError> for Error {
    fn from(e: sluice_core::audit::AuditError) -> Self {
        Error::internal(e)
    }
}
