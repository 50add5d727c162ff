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

/// Who may approve, and how long requests wait (`[approvals]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// Members of these groups approve or deny pending requests (never
    /// their own).
    #[serde(default)]
    pub approver_groups: Vec<String>,
    /// Distinct approvers needed to approve. Default 1.
    #[serde(default = "one")]
    pub min_approvals: u32,
    /// How long a paused statement waits before it fails. Default "5m".
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout: Dur,
    /// Where to announce new approvals (`[[approvals.webhooks]]`).
    #[serde(default)]
    pub webhooks: Vec<super::WebhookConfig>,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            approver_groups: vec![],
            min_approvals: one(),
            statement_timeout: default_statement_timeout(),
            webhooks: vec![],
        }
    }
}

fn one() -> u32 {
    1
}

fn default_statement_timeout() -> Dur {
    Dur::secs(300)
}
