//! Access rules: which groups may ask for which connection, how much, how long.

use super::duration::Dur;
use crate::guardrail::Profile;
use serde::{Deserialize, Serialize};

/// Binds identity groups to one connection (`[[rules]]`). Membership makes
/// an identity *eligible* for a grant; the grant is what gives reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// A name for audit records and messages.
    pub name: String,
    /// Members of any of these groups match.
    pub groups: Vec<String>,
    /// The connection this rule opens.
    pub connection: String,
    /// "read", "write" or "admin".
    pub profile: Profile,
    /// The longest grant this rule gives, e.g. "15m". At most 24h.
    pub max_ttl: Dur,
    /// "none": grants are active at once; "grant": an approver must approve
    /// each grant first.
    #[serde(default)]
    pub approval: ApprovalMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalMode {
    #[default]
    None,
    Grant,
}

/// Who may approve (`[approvals]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// Members of these groups approve or deny pending requests.
    #[serde(default)]
    pub approver_groups: Vec<String>,
}
