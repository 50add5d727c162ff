//! The `sluice.toml` configuration: one file, unknown keys rejected, secrets
//! by reference, every problem reported at once with its line.

pub mod audit;
pub mod connection;
pub mod duration;
pub mod issuer;
pub mod limits;
mod locate;
pub mod masking;
pub mod pool;
pub mod rule;
pub mod server;
pub mod ui;
mod validate;
pub mod webhook;

pub use connection::{
    ConnectionConfig, ConnectionKind, Credential, Password, RecordResults, TlsMode,
    resolve_password,
};
pub use duration::{Dur, parse_duration};
pub use issuer::{ALLOWED_ALGORITHMS, IssuerConfig, KindMapping};
pub use limits::{LimitsConfig, ProfileTimeouts};
pub use masking::{
    ColumnPattern, ColumnRule, DetectorSwitches, MaskStyle, MaskingConfig, NameRule,
};
pub use pool::PoolConfig;
pub use rule::{AccessRule, ApprovalMode, ApprovalsConfig};
pub use server::{PostgresListenerConfig, ServerConfig};
pub use ui::UiConfig;
pub use webhook::{WebhookConfig, WebhookKind};

use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    /// The Postgres listener.
    #[serde(default)]
    pub postgres: PostgresListenerConfig,
    /// Trusted OIDC issuers (`[[issuers]]`).
    #[serde(default)]
    pub issuers: Vec<IssuerConfig>,
    /// Named backends (`[[connections]]`).
    #[serde(default)]
    pub connections: Vec<ConnectionConfig>,
    /// Access rules (`[[rules]]`), matched in file order.
    #[serde(default)]
    pub rules: Vec<AccessRule>,
    #[serde(default)]
    pub approvals: ApprovalsConfig,
    /// Audit export sinks, signed checkpoints, retention (`[audit]`).
    #[serde(default)]
    pub audit: audit::AuditConfig,
    /// The approvers' web page and its sign-in (`[ui]`). Absent: no web page.
    #[serde(default)]
    pub ui: Option<UiConfig>,
}

/// One thing wrong with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `file:line` when known.
    pub location: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<Problem>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Parses and validates `text`, read from `file` (used in messages).
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigErrors> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| locate::line_of(text, s.start))
                .map(|l| format!("{file}:{l}"))
                .unwrap_or_else(|| file.to_string());
            ConfigErrors(vec![Problem {
                location: line,
                message: e.message().trim().to_string(),
            }])
        })?;
        let problems = validate::validate(&config);
        if problems.is_empty() {
            return Ok(config);
        }
        Err(ConfigErrors(
            problems
                .into_iter()
                .map(|(path, message)| Problem {
                    location: match locate::line_of_path(text, &path) {
                        Some(l) => format!("{file}:{l}"),
                        None => file.to_string(),
                    },
                    message: format!("{}: {message}", locate::display_path(&path)),
                })
                .collect(),
        ))
    }

    pub fn connection(&self, name: &str) -> Option<&ConnectionConfig> {
        self.connections.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests;
