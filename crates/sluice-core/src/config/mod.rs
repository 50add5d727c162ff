//! The `sluice.toml` configuration: one file, unknown keys rejected, secrets
//! by reference, every problem reported at once with its line.

pub mod audit;
pub mod connection;
pub mod duration;
mod every;
pub mod issuer;
pub mod limits;
pub mod locate;
pub mod masking;
mod paths;
pub mod pool;
pub mod rule;
pub mod server;
pub mod ui;
mod validate;
pub mod webhook;

pub use connection::{
    ConnectionConfig, ConnectionKind, Credential, Password, RecordResults, SshConnectionConfig,
    TlsMode, resolve_password,
};
pub use duration::{Dur, parse_duration};
pub use issuer::{ALLOWED_ALGORITHMS, IssuerConfig, KindMapping};
pub use limits::{LimitsConfig, ProfileTimeouts};
pub use masking::{
    ColumnPattern, ColumnRule, DetectorSwitches, MaskStyle, MaskingConfig, NameRule,
};
pub use pool::PoolConfig;
pub use rule::{AccessRule, ApprovalMode, ApprovalsConfig};
pub use server::{MysqlListenerConfig, PostgresListenerConfig, ServerConfig, SshListenerConfig};
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
    /// The SSH listener.
    #[serde(default)]
    pub ssh: SshListenerConfig,
    /// The MySQL/MariaDB listener.
    #[serde(default)]
    pub mysql: MysqlListenerConfig,
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
        let (config, mut problems) = match every::deserialize(text, file) {
            Ok(c) => (Some(c), Vec::new()),
            Err(every::Unread { problems, rest }) => (rest.map(|c| *c), problems),
        };
        // What read is validated too, so one type error does not hide the
        // rest; a file whose array entries moved is not, as its problems
        // could not be placed.
        if let Some(c) = &config {
            problems.extend(
                validate::validate(c)
                    .into_iter()
                    .map(|(path, message)| Problem {
                        location: match locate::line_of_path(text, &path) {
                            Some(l) => format!("{file}:{l}"),
                            None => file.to_string(),
                        },
                        message: format!("{}: {message}", locate::display_path(&path)),
                    }),
            );
        }
        match config {
            Some(c) if problems.is_empty() => Ok(c),
            _ => Err(ConfigErrors(problems)),
        }
    }

    pub fn connection(&self, name: &str) -> Option<&ConnectionConfig> {
        self.connections.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests;
