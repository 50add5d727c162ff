//! Guardrails: per-connection rules over what a statement does.
//! (Placeholder until the statement-analysis work lands: only `Profile`.)

use serde::{Deserialize, Serialize};

/// What a grant lets its holder do on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Read,
    Write,
    Admin,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Read => "read",
            Profile::Write => "write",
            Profile::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Profile::Read),
            "write" => Ok(Profile::Write),
            "admin" => Ok(Profile::Admin),
            other => Err(format!("unknown profile {other:?}: use read, write or admin")),
        }
    }
}
