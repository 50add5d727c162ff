//! Returning a backend session to its neutral state when its client leaves.
//!
//! `DISCARD ALL` closes cursors, resets every setting (including `ROLE` and
//! `SESSION AUTHORIZATION`) to its startup value, deallocates prepared
//! statements, unlistens, drops temporary tables and sequence state; the
//! advisory locks of the session are released explicitly as well. The
//! answers are checked message by message: anything but the exact expected
//! answer means the backend was not where Sluice thought, and it is closed.

use std::time::Duration;

use bytes::BytesMut;

use crate::backend::{Backend, backend_error};
use crate::errors::PgError;
use crate::messages;

/// Time allowed for the reset round trip.
const RESET_TIMEOUT: Duration = Duration::from_secs(5);

/// Each is its own Query: `DISCARD ALL` refuses to run inside the implicit
/// transaction of a multi-statement string.
const STATEMENTS: [(&str, &str); 2] = [
    ("SELECT pg_catalog.pg_advisory_unlock_all()", "SELECT 1"),
    ("DISCARD ALL", "DISCARD ALL"),
];

/// Resets `backend` for its next client; `user` is the credential's role,
/// which the session must be back to.
pub async fn reset(backend: &mut Backend, user: &str) -> Result<(), PgError> {
    tokio::time::timeout(RESET_TIMEOUT, exchange(backend))
        .await
        .map_err(|_| PgError::Backend("reset timed out".into()))??;
    if backend.reader.buffered() != 0 {
        return Err(PgError::Backend("bytes after the reset's answer".into()));
    }
    match backend.parameters.get("session_authorization") {
        Some(u) if u == user => Ok(()),
        _ => Err(PgError::Backend(
            "session authorization not back to the credential's role".into(),
        )),
    }
}

async fn exchange(backend: &mut Backend) -> Result<(), PgError> {
    let mut request = BytesMut::new();
    for (sql, _) in STATEMENTS {
        request.extend_from_slice(&messages::query(sql));
    }
    backend.send(&request).await?;
    for (_, tag) in STATEMENTS {
        answer(backend, tag).await?;
    }
    Ok(())
}

/// Reads one Query's answer: at most a one-row result, exactly the command
/// tag `want`, and ReadyForQuery outside any transaction.
async fn answer(backend: &mut Backend, want: &str) -> Result<(), PgError> {
    let mut rows = 0;
    let mut completed = false;
    loop {
        let frame = backend.next().await?;
        match frame.tag {
            b'T' if rows == 0 && !completed => {}
            b'D' if rows == 0 && !completed => rows += 1,
            b'C' if !completed && frame.body().strip_suffix(&[0]) == Some(want.as_bytes()) => {
                completed = true
            }
            b'Z' if completed && frame.body() == b"I" => return Ok(()),
            b'S' => {
                if !backend.parameters.report(frame.body()) {
                    return Err(PgError::Backend("malformed ParameterStatus".into()));
                }
            }
            // Notices, and notifications for the client that left.
            b'N' | b'A' => {}
            b'E' => return Err(backend_error(&frame)),
            tag => {
                return Err(PgError::Backend(format!(
                    "unexpected {:?} in the reset's answer",
                    tag as char
                )));
            }
        }
    }
}
