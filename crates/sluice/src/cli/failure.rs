//! How the CLI fails: a machine code per kind of failure, its exit status,
//! and the JSON shape `--json` prints (`{"error": CODE, "message": TEXT}` on
//! standard output). The codes and statuses are a stable interface:
//!
//! | code | exit | when |
//! | --- | --- | --- |
//! | (none) | 0 | success |
//! | `failed` | 1 | anything else (a command that ran and failed, a broken file) |
//! | `usage` | 2 | the command line itself is wrong |
//! | `unauthorized` | 3 | no token, or the token was refused |
//! | `forbidden` | 4 | the identity may not do this |
//! | `not_found` | 5 | no such grant, approval, session or connection (for you) |
//! | `pending` | 6 | still waiting for an approval |
//! | `denied` | 7 | an approver or a rule said no |
//! | `expired` | 8 | the grant or approval ran out |
//! | `unavailable` | 9 | the gateway could not be reached or is not ready |
//! | `invalid` | 10 | the gateway refused the request as malformed or conflicting |
//!
//! `sluice exec` passes the command's own exit status on instead.

use std::process::ExitCode;

/// A kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Failed,
    Unauthorized,
    Forbidden,
    NotFound,
    Pending,
    Denied,
    Expired,
    Unavailable,
    Invalid,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Failed => "failed",
            Code::Unauthorized => "unauthorized",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::Pending => "pending",
            Code::Denied => "denied",
            Code::Expired => "expired",
            Code::Unavailable => "unavailable",
            Code::Invalid => "invalid",
        }
    }

    pub fn exit(self) -> ExitCode {
        ExitCode::from(match self {
            Code::Failed => 1,
            Code::Unauthorized => 3,
            Code::Forbidden => 4,
            Code::NotFound => 5,
            Code::Pending => 6,
            Code::Denied => 7,
            Code::Expired => 8,
            Code::Unavailable => 9,
            Code::Invalid => 10,
        })
    }

    /// The code for an API answer's HTTP status.
    pub fn of_status(status: u16) -> Code {
        match status {
            401 => Code::Unauthorized,
            403 => Code::Forbidden,
            404 => Code::NotFound,
            400 | 409 | 413 | 415 | 422 => Code::Invalid,
            502..=504 => Code::Unavailable,
            _ => Code::Failed,
        }
    }

    /// The code for a grant or approval status that is not success.
    pub fn of_outcome(status: &str) -> Code {
        match status {
            "pending" => Code::Pending,
            "denied" | "withdrawn" => Code::Denied,
            "expired" | "revoked" => Code::Expired,
            _ => Code::Failed,
        }
    }
}

/// A failure with its code, carried through `anyhow`.
#[derive(Debug)]
pub struct Failure {
    pub code: Code,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// An `anyhow` error of kind `code`.
pub fn fail(code: Code, message: impl Into<String>) -> anyhow::Error {
    Failure {
        code,
        message: message.into(),
    }
    .into()
}

/// Reports `e` as the CLI does (JSON on stdout with `--json`, one line on
/// stderr otherwise) and returns the exit status for it.
pub fn report(e: &anyhow::Error, json: bool) -> ExitCode {
    let code = e
        .chain()
        .find_map(|c| c.downcast_ref::<Failure>())
        .map_or(Code::Failed, |f| f.code);
    let message = format!("{e:#}");
    if json {
        println!(
            "{}",
            serde_json::json!({ "error": code.as_str(), "message": message })
        );
    } else {
        eprintln!("sluice: {message}");
    }
    code.exit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_found_through_context() {
        let all = [
            Code::Failed,
            Code::Unauthorized,
            Code::Forbidden,
            Code::NotFound,
            Code::Pending,
            Code::Denied,
            Code::Expired,
            Code::Unavailable,
            Code::Invalid,
        ];
        let exits: std::collections::HashSet<String> =
            all.iter().map(|c| format!("{:?}", c.exit())).collect();
        assert_eq!(exits.len(), all.len());
        let e = fail(Code::Denied, "no").context("grant g_1");
        let code = e
            .chain()
            .find_map(|c| c.downcast_ref::<Failure>())
            .unwrap()
            .code;
        assert_eq!(code, Code::Denied);
        assert_eq!(Code::of_status(401), Code::Unauthorized);
        assert_eq!(Code::of_outcome("expired"), Code::Expired);
    }
}
