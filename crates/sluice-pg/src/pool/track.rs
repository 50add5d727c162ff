//! Whether a backend session ended idle: what each half of a session saw.
//!
//! Every Query and every Sync the client half sends is answered by exactly
//! one ReadyForQuery; nothing else is. So a backend whose ReadyForQuery
//! count has caught up with those requests, whose last one said `I` (no
//! transaction), and that has no extended-protocol messages waiting for
//! their Sync, is idle between requests. Where the protocol lets a request
//! go unanswered (a Query or Sync swallowed by COPY-in or by the skip after
//! an error), the counts stay apart and the backend is closed: every way
//! to be wrong here errs towards closing.

use sluice_core::guardrail::{StatementClass, StatementFacts};

use crate::params::Parameters;

/// What the client half sent the backend.
#[derive(Debug, Default)]
pub struct Sent {
    /// Queries and Syncs: each gets one ReadyForQuery.
    requests: u64,
    /// Extended-protocol messages since the last Sync.
    open_batch: bool,
    /// A statement ran that a reset may not undo.
    unresettable: Option<String>,
}

impl Sent {
    /// Notes one message written to the backend, by its tag.
    pub fn frame(&mut self, tag: u8) {
        match tag {
            b'Q' => self.requests += 1,
            b'S' => {
                self.requests += 1;
                self.open_batch = false;
            }
            b'P' | b'B' | b'E' | b'D' | b'C' | b'H' => self.open_batch = true,
            _ => {}
        }
    }

    /// Notes statements a request is allowed to run.
    pub fn statements(&mut self, facts: &[StatementFacts]) {
        if self.unresettable.is_none()
            && let Some(f) = facts.iter().find(|f| !resettable(f))
        {
            self.unresettable = Some(f.command.clone());
        }
    }
}

/// Whether `DISCARD ALL` is known to undo what a statement can leave in a
/// session. Changes of settings, role and session authorization it resets;
/// other `admin` statements (`LOAD` a library, …) and anything `unknown`
/// (functions the catalog cannot vouch for, with state of their own) may
/// leave behind what no reset reaches.
fn resettable(f: &StatementFacts) -> bool {
    match f.class {
        StatementClass::Unknown => false,
        StatementClass::Admin => {
            f.command.starts_with("SET")
                || f.command.starts_with("RESET")
                || f.command == "DISCARD ALL"
        }
        _ => true,
    }
}

/// What the pump saw come back from the backend.
#[derive(Debug)]
pub struct Replies {
    ready: u64,
    /// The transaction status of the last ReadyForQuery.
    status: u8,
    /// ParameterStatus reports that reached the client.
    pub parameters: Parameters,
    malformed: bool,
}

impl Default for Replies {
    fn default() -> Self {
        // The session starts after the startup's ReadyForQuery, idle.
        Replies {
            ready: 0,
            status: b'I',
            parameters: Parameters::default(),
            malformed: false,
        }
    }
}

impl Replies {
    /// Notes a whole ReadyForQuery or ParameterStatus from the backend.
    pub fn saw(&mut self, tag: u8, body: &[u8]) {
        match tag {
            b'Z' => {
                self.ready += 1;
                self.status = body.first().copied().unwrap_or(0);
                self.malformed |= body.len() != 1;
            }
            b'S' => self.malformed |= !self.parameters.report(body),
            _ => {}
        }
    }
}

/// `Ok` when the backend is idle and may be reset for reuse; otherwise why
/// not, for the log.
pub fn idle(sent: &Sent, replies: &Replies) -> Result<(), String> {
    if let Some(command) = &sent.unresettable {
        return Err(format!("ran {command}, which a reset may not undo"));
    }
    if replies.malformed {
        return Err("malformed ReadyForQuery or ParameterStatus".into());
    }
    if sent.open_batch {
        return Err("extended-protocol messages without their Sync".into());
    }
    if replies.ready != sent.requests {
        return Err(format!(
            "{} of {} requests answered",
            replies.ready, sent.requests
        ));
    }
    match replies.status {
        b'I' => Ok(()),
        b'T' => Err("inside a transaction".into()),
        b'E' => Err("inside a failed transaction".into()),
        _ => Err("unknown transaction status".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(class: StatementClass, command: &str) -> StatementFacts {
        let mut f = StatementFacts::unknown(command, "test");
        f.class = class;
        f.command = command.to_string();
        f
    }

    fn session(client: &[u8], backend: &[(u8, &[u8])]) -> Result<(), String> {
        let mut sent = Sent::default();
        for t in client {
            sent.frame(*t);
        }
        let mut replies = Replies::default();
        for (t, body) in backend {
            replies.saw(*t, body);
        }
        idle(&sent, &replies)
    }

    #[test]
    fn answered_requests_outside_a_transaction_are_idle() {
        assert!(session(b"", &[]).is_ok());
        assert!(session(b"Q", &[(b'Z', b"I")]).is_ok());
        assert!(session(b"PBDES", &[(b'S', b"TimeZone\0UTC\0"), (b'Z', b"I")]).is_ok());
        // COPY FROM STDIN, its data, its end: one Query, one answer.
        assert!(session(b"Qddc", &[(b'Z', b"I")]).is_ok());
    }

    #[test]
    fn anything_else_is_not() {
        // Left inside BEGIN, or an aborted transaction.
        assert!(session(b"Q", &[(b'Z', b"T")]).is_err());
        assert!(session(b"QQ", &[(b'Z', b"I"), (b'Z', b"E")]).is_err());
        // An answer still on its way; COPY data with no end.
        assert!(session(b"QQ", &[(b'Z', b"I")]).is_err());
        assert!(session(b"Qd", &[]).is_err());
        // Extended messages without Sync (Flush is not Sync).
        assert!(session(b"QPBE", &[(b'Z', b"I")]).is_err());
        assert!(session(b"PBEH", &[]).is_err());
        // A malformed answer.
        assert!(session(b"Q", &[(b'Z', b"")]).is_err());
        assert!(session(b"", &[(b'S', b"x")]).is_err());
    }

    #[test]
    fn statements_a_reset_cannot_undo_keep_the_backend_from_reuse() {
        let mut sent = Sent::default();
        for (class, command) in [
            (StatementClass::Read, "SELECT"),
            (StatementClass::Ddl, "CREATE TABLE"),
            (StatementClass::Admin, "SET ROLE"),
            (StatementClass::Admin, "RESET"),
            (StatementClass::Session, "LISTEN"),
        ] {
            sent.statements(&[facts(class, command)]);
        }
        assert!(idle(&sent, &Replies::default()).is_ok());
        sent.statements(&[facts(StatementClass::Admin, "LOAD")]);
        assert!(
            idle(&sent, &Replies::default())
                .unwrap_err()
                .contains("LOAD")
        );
        let mut sent = Sent::default();
        sent.statements(&[facts(StatementClass::Unknown, "SELECT")]);
        assert!(idle(&sent, &Replies::default()).is_err());
    }
}
