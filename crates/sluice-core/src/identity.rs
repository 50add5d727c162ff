//! Who is asking. Built only from a verified token (see `sluice-identity`).

use serde::{Deserialize, Serialize};

/// Whether the caller is an automated agent or a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityKind {
    Agent,
    Human,
}

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Agent => "agent",
            IdentityKind::Human => "human",
        }
    }
}

/// A verified caller. `subject` is unique only together with `issuer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The token's `sub` claim.
    pub subject: String,
    /// The token's `iss` claim, exactly as configured.
    pub issuer: String,
    /// A display name (`name`, `preferred_username`, `email`, else `sub`).
    pub name: String,
    /// Group names from the configured groups claim.
    pub groups: Vec<String>,
    pub kind: IdentityKind,
}

impl Identity {
    /// True when the identity belongs to any of `groups`.
    pub fn in_any(&self, groups: &[String]) -> bool {
        self.groups.iter().any(|g| groups.contains(g))
    }

    /// True when `other` is the same principal (same subject at the same issuer).
    pub fn same_principal(&self, subject: &str, issuer: &str) -> bool {
        self.subject == subject && self.issuer == issuer
    }
}
