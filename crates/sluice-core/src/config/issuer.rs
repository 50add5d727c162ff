//! Configuration of one trusted OIDC issuer.

use super::duration::Dur;
use crate::identity::IdentityKind;
use serde::{Deserialize, Serialize};

/// One OIDC issuer whose tokens Sluice accepts (`[[issuers]]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// A short name used in logs and messages, e.g. "okta".
    pub name: String,
    /// The exact `iss` value, e.g. "https://example.okta.com/oauth2/default".
    pub issuer: String,
    /// Accepted `aud` values; a token must carry at least one. Required: an
    /// issuer without an audience check would accept tokens minted for any app.
    pub audiences: Vec<String>,
    /// Where to read the discovery document. Default:
    /// `{issuer}/.well-known/openid-configuration`.
    #[serde(default)]
    pub discovery_url: Option<String>,
    /// The claim holding group names: an array of strings or one
    /// space-separated string. Default "groups".
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Accepted signature algorithms. Only asymmetric ones are allowed
    /// (RS256/384/512, PS256/384/512, ES256/384, EdDSA). Default: RS256, ES256, EdDSA.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`. Default "30s".
    #[serde(default = "default_leeway")]
    pub leeway: Dur,
    /// A token whose `kid` is unknown triggers at most one JWKS refetch per
    /// this interval. Default "30s".
    #[serde(default = "default_refetch")]
    pub jwks_refetch_interval: Dur,
    /// How long fetched keys stay usable when the issuer cannot be reached
    /// for a refresh. Default "24h".
    #[serde(default = "default_max_age")]
    pub jwks_max_age: Dur,
    /// How Sluice tells agents from humans.
    #[serde(default)]
    pub kind: KindMapping,
}

/// Maps token contents to `agent` or `human`. Checked in field order; the
/// first that matches decides, else `default`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindMapping {
    /// A claim whose string value is "agent" or "human" (e.g. a custom
    /// `sluice_kind` claim added by an Okta token hook).
    #[serde(default)]
    pub claim: Option<String>,
    /// Members of any of these groups are agents.
    #[serde(default)]
    pub agent_groups: Vec<String>,
    /// Members of any of these groups are humans.
    #[serde(default)]
    pub human_groups: Vec<String>,
    /// Tokens whose `sub` equals the client id (`cid` or `client_id`), as
    /// Okta issues for service apps using client credentials, are agents.
    /// Default true.
    #[serde(default = "yes")]
    pub service_apps_are_agents: bool,
    /// The kind when nothing above matched. Default "human".
    #[serde(default = "default_kind")]
    pub default: IdentityKind,
}

impl Default for KindMapping {
    fn default() -> Self {
        KindMapping {
            claim: None,
            agent_groups: vec![],
            human_groups: vec![],
            service_apps_are_agents: true,
            default: IdentityKind::Human,
        }
    }
}

/// The algorithms an issuer may be configured to use. HMAC ("HS*") and
/// "none" are absent on purpose: a public key must never be used as an
/// HMAC secret.
pub const ALLOWED_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

fn default_groups_claim() -> String {
    "groups".into()
}
fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into(), "EdDSA".into()]
}
fn default_leeway() -> Dur {
    Dur::secs(30)
}
fn default_refetch() -> Dur {
    Dur::secs(30)
}
fn default_max_age() -> Dur {
    Dur::secs(24 * 3600)
}
fn yes() -> bool {
    true
}
fn default_kind() -> IdentityKind {
    IdentityKind::Human
}

impl IssuerConfig {
    /// A config for `issuer` with every default, for tests and `sluice dev`.
    pub fn new(name: &str, issuer: &str, audience: &str) -> Self {
        IssuerConfig {
            name: name.into(),
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            discovery_url: None,
            groups_claim: default_groups_claim(),
            algorithms: default_algorithms(),
            leeway: default_leeway(),
            jwks_refetch_interval: default_refetch(),
            jwks_max_age: default_max_age(),
            kind: KindMapping::default(),
        }
    }

    /// The discovery document's address.
    pub fn discovery_url(&self) -> String {
        match &self.discovery_url {
            Some(u) => u.clone(),
            None => format!(
                "{}/.well-known/openid-configuration",
                self.issuer.trim_end_matches('/')
            ),
        }
    }
}
