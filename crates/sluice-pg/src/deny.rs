//! How a denial reaches the client with the transaction state PostgreSQL
//! itself would show.
//!
//! A denied request is not simply answered by Sluice: inside a transaction
//! block PostgreSQL would abort the transaction (every later statement gets
//! `25P02` until ROLLBACK, and COMMIT answers ROLLBACK), and the backend's
//! transaction must really be rolled back. So in place of the denied request
//! Sluice sends the backend a *sentinel*: a statement that is one bare,
//! per-session random identifier, `sluice_denied_<nonce>_<n>`. It is a
//! syntax error, raised by the raw parser before any catalog access or
//! aborted-transaction check, so it fails deterministically in every state
//! and has no side effect; an error is exactly what aborts a transaction
//! block, outside a block it leaves the session idle, and the ReadyForQuery
//! that follows carries the true status. The backend log shows the sentinel,
//! which tells a DBA Sluice stopped something there.
//!
//! The backend→client pump recognises the sentinel's ErrorResponse by its
//! identifier and replaces it with the denial (`42501`, naming the rule).
//! Simple protocol: the sentinel is a Query. Extended protocol: it is a Parse
//! followed by the client's own Sync (or Flush), so the backend skips to Sync
//! exactly as it would after a real error.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rand::RngCore;

use crate::messages::error_fields;

/// The denials a session has sent sentinels for and not yet seen answered.
pub struct Denials {
    prefix: String,
    next: AtomicU64,
    pending: Mutex<HashMap<u64, Bytes>>,
}

impl Default for Denials {
    fn default() -> Self {
        Self::new()
    }
}

impl Denials {
    pub fn new() -> Self {
        let mut nonce = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        Denials {
            prefix: format!("sluice_denied_{hex}_"),
            next: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Registers `error` (a whole ErrorResponse) and returns the sentinel
    /// statement whose backend error it replaces. Register before sending.
    pub fn sentinel(&self, error: Bytes) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(n, error);
        format!("{}{n}", self.prefix)
    }

    /// If `body` (of a backend ErrorResponse) is a sentinel's error, the
    /// denial to send instead. Earlier entries whose sentinel the backend
    /// skipped (it was already skipping to Sync) are dropped with it.
    pub fn replacement(&self, body: &[u8]) -> Option<Bytes> {
        let message = error_fields(body)
            .into_iter()
            .find(|(code, _)| *code == b'M')?
            .1;
        let start = message.find(&self.prefix)? + self.prefix.len();
        let digits: String = message[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        let n: u64 = digits.parse().ok()?;
        let mut pending = self.lock();
        let found = pending.remove(&n);
        pending.retain(|k, _| *k > n);
        found
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Bytes>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::error_response;

    fn backend_error(message: &str) -> Vec<u8> {
        error_response("ERROR", "42601", message)[5..].to_vec()
    }

    #[test]
    fn a_sentinel_error_is_replaced_once() {
        let d = Denials::new();
        let ours = error_response("ERROR", "42501", "denied");
        let s = d.sentinel(ours.clone());
        let body = backend_error(&format!("syntax error at or near \"{s}\""));
        assert_eq!(d.replacement(&body), Some(ours));
        assert_eq!(d.replacement(&body), None);
        assert_eq!(
            d.replacement(&backend_error("syntax error at or near \"x\"")),
            None
        );
    }

    #[test]
    fn skipped_sentinels_are_forgotten() {
        let d = Denials::new();
        let _skipped = d.sentinel(Bytes::from_static(b"a"));
        let s2 = d.sentinel(Bytes::from_static(b"b"));
        let body = backend_error(&format!("syntax error at or near \"{s2}\""));
        assert_eq!(d.replacement(&body), Some(Bytes::from_static(b"b")));
        assert!(d.lock().is_empty());
    }

    #[test]
    fn other_sessions_sentinels_do_not_match() {
        let a = Denials::new();
        let b = Denials::new();
        let s = a.sentinel(Bytes::from_static(b"a"));
        let body = backend_error(&format!("syntax error at or near \"{s}\""));
        assert_eq!(b.replacement(&body), None);
    }
}
