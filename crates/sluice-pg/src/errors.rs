//! Errors of the Postgres proxy layer, and the errors clients are shown.
//!
//! What a client sees is always built by a named constructor on
//! [`ClientError`] with a fixed SQLSTATE and a message written for the client,
//! never the `Display` of an internal error: internals (backend addresses,
//! credentials, I/O details) stay in log lines.

use bytes::Bytes;

use crate::codec::{FrameError, ReadError};
use crate::messages::{Malformed, error_response};

/// Who caused a failure: decides what is logged and what the client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Client,
    Backend,
    Gateway,
}

/// The proxy layer's error.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("TLS configuration: {0}")]
    TlsConfig(String),
    #[error("client protocol: {0}")]
    Protocol(String),
    #[error("client framing: {0}")]
    Frame(#[from] FrameError),
    #[error("malformed message: {0}")]
    Malformed(#[from] Malformed),
    #[error("connection closed in the middle of a message")]
    Truncated,
    #[error("timed out")]
    Timeout,
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("backend: {0}")]
    Backend(String),
    #[error("masking: {0}")]
    Masking(String),
    #[error("audit: {0}")]
    Audit(#[from] sluice_core::audit::AuditError),
}

impl From<ReadError> for PgError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Frame(f) => PgError::Frame(f),
            ReadError::Truncated => PgError::Truncated,
            ReadError::Io(io) => PgError::Io(io),
        }
    }
}

impl PgError {
    pub fn fault(&self) -> Fault {
        match self {
            PgError::Protocol(_)
            | PgError::Frame(_)
            | PgError::Malformed(_)
            | PgError::Truncated
            | PgError::Timeout
            | PgError::Io(_) => Fault::Client,
            PgError::Backend(_) => Fault::Backend,
            PgError::TlsConfig(_) | PgError::Masking(_) | PgError::Audit(_) => Fault::Gateway,
        }
    }

    /// What the client is told when this error ends its connection.
    pub fn to_client(&self) -> ClientError {
        match self {
            PgError::Frame(FrameError::TooLarge { cap, .. }) => {
                ClientError::message_too_large(*cap)
            }
            PgError::Protocol(_)
            | PgError::Frame(_)
            | PgError::Malformed(_)
            | PgError::Truncated => ClientError::protocol_violation(),
            PgError::Timeout => ClientError::auth_timeout(),
            PgError::Backend(_) => ClientError::backend_unavailable(),
            PgError::Audit(_) => ClientError::audit_unavailable(),
            _ => ClientError::internal(),
        }
    }
}

/// An ErrorResponse for a client: severity, SQLSTATE and a client-safe message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub fatal: bool,
    pub code: &'static str,
    pub message: String,
}

impl ClientError {
    fn fatal(code: &'static str, message: impl Into<String>) -> Self {
        ClientError {
            fatal: true,
            code,
            message: message.into(),
        }
    }

    fn error(code: &'static str, message: impl Into<String>) -> Self {
        ClientError {
            fatal: false,
            code,
            message: message.into(),
        }
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Bytes {
        let severity = if self.fatal { "FATAL" } else { "ERROR" };
        error_response(severity, self.code, &self.message)
    }

    /// Wrong secret, or a user name that names no grant. Same words as
    /// PostgreSQL so nothing tells the two apart.
    pub fn bad_password(user: &str) -> Self {
        Self::fatal(
            "28P01",
            format!("password authentication failed for user \"{user}\""),
        )
    }

    /// A grant that exists and was proven, but cannot be used now.
    pub fn grant_not_usable(grant: &str, state: &str) -> Self {
        Self::fatal("28000", format!("sluice: grant {grant} is {state}"))
    }

    pub fn wrong_connection(grant: &str, connection: &str) -> Self {
        Self::fatal(
            "28000",
            format!("sluice: grant {grant} is not for connection \"{connection}\""),
        )
    }

    pub fn unknown_connection(name: &str) -> Self {
        Self::fatal("3D000", format!("sluice: no connection named \"{name}\""))
    }

    pub fn tls_required() -> Self {
        Self::fatal(
            "28000",
            "sluice: this listener requires TLS (sslmode=require)",
        )
    }

    pub fn token_needs_tls() -> Self {
        Self::fatal(
            "28000",
            "sluice: log in with a grant id as the user, or present an OIDC token as the password over TLS",
        )
    }

    /// The token fallback was refused; the message comes from the authority
    /// and is client-safe by contract.
    pub fn login_refused(message: &str) -> Self {
        Self::fatal("28000", format!("sluice: {message}"))
    }

    /// A startup parameter or option Sluice would refuse as a `SET`.
    pub fn startup_setting_refused(why: &str) -> Self {
        Self::fatal("42501", format!("sluice: {why}"))
    }

    pub fn missing_param(name: &str) -> Self {
        Self::fatal("08P01", format!("sluice: startup packet has no \"{name}\""))
    }

    pub fn protocol_violation() -> Self {
        Self::fatal("08P01", "sluice: invalid frontend message")
    }

    pub fn message_too_large(cap: usize) -> Self {
        Self::fatal(
            "54000",
            format!("sluice: message exceeds the limit of {cap} bytes"),
        )
    }

    pub fn auth_timeout() -> Self {
        Self::fatal("08006", "sluice: authentication timed out")
    }

    pub fn backend_unavailable() -> Self {
        Self::fatal(
            "08006",
            "sluice: the database behind this connection is unavailable",
        )
    }

    /// 57P03 (cannot connect now): drivers and poolers retry it.
    pub fn store_unavailable() -> Self {
        Self::fatal(
            "57P03",
            "sluice: the gateway cannot reach its store; try again shortly",
        )
    }

    pub fn backend_lost() -> Self {
        Self::fatal(
            "08006",
            "sluice: the connection to the database was lost; reconnect",
        )
    }

    pub fn audit_unavailable() -> Self {
        Self::error(
            "58000",
            "sluice: the audit log is unavailable, so the statement was not run",
        )
    }

    pub fn internal() -> Self {
        Self::fatal("XX000", "sluice: internal error")
    }

    /// A guardrail denial (or an approval Sluice cannot wait for yet).
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::error("42501", message)
    }

    /// A result row too large to hold while masking it: the session ends
    /// rather than send it unmasked.
    pub fn row_too_large_to_mask(cap: usize) -> Self {
        Self::fatal(
            "54000",
            format!("sluice: a result row larger than {cap} bytes cannot be masked"),
        )
    }

    pub fn function_call_denied() -> Self {
        Self::error(
            "42501",
            "sluice: the function-call protocol message is not allowed; use SELECT",
        )
    }

    pub fn grant_expired(grant: &str) -> Self {
        Self::fatal("57P01", format!("sluice: grant {grant} expired"))
    }

    pub fn grant_revoked(grant: &str) -> Self {
        Self::fatal("57P01", format!("sluice: grant {grant} revoked"))
    }

    /// A session limit of the connection is reached.
    pub fn too_many_sessions(why: &str) -> Self {
        Self::fatal("53300", format!("sluice: too many sessions: {why}"))
    }

    /// The backend answered something that fits no statement or portal
    /// change in flight: what a name holds is no longer known.
    pub fn names_lost() -> Self {
        Self::fatal(
            "08P01",
            "sluice: lost track of the session's prepared statements; the session is ended",
        )
    }

    /// The backend reports that a setting Sluice pins has changed.
    pub fn setting_changed(name: &str) -> Self {
        Self::fatal(
            "42501",
            format!("sluice: the backend session's {name} changed; the session is ended"),
        )
    }

    pub fn shutting_down() -> Self {
        Self::fatal("57P01", "sluice: the gateway is shutting down")
    }

    /// An operator ended the session from the web page.
    pub fn terminated(by: &str) -> Self {
        Self::fatal(
            "57P01",
            format!("sluice: this session was ended by {by}; the grant itself is unchanged"),
        )
    }
}

impl From<sluice_tls::TlsConfigError> for PgError {
    fn from(e: sluice_tls::TlsConfigError) -> Self {
        PgError::TlsConfig(e.0)
    }
}
