//! The `[server]` section: listeners, store, timing.

use super::duration::Dur;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// API and web UI listener. Default "127.0.0.1:8420".
    #[serde(default = "default_api")]
    pub api_listen: String,
    /// The URL clients use to reach the API, if it differs from the listener.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Postgres listener. Default "127.0.0.1:15432".
    #[serde(default = "default_pg")]
    pub postgres_listen: String,
    /// Host name put in grant credentials for the Postgres listener.
    /// Default: the listener's address.
    #[serde(default)]
    pub postgres_public_host: Option<String>,
    /// Where Sluice keeps its files (the SQLite store among them).
    /// Default "./sluice-data".
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The store: "sqlite:PATH" or "postgres://…". Default: SQLite at
    /// `{data_dir}/sluice.db`.
    #[serde(default)]
    pub store: Option<String>,
    /// Members of these groups may see and revoke every grant.
    #[serde(default)]
    pub admin_groups: Vec<String>,
    /// Grant life when the request names none (still capped by the rule).
    /// Default "10m".
    #[serde(default = "default_ttl")]
    pub default_grant_ttl: Dur,
    /// How long a grant may wait for approval before it lapses. Default "15m".
    #[serde(default = "default_pending")]
    pub pending_grant_timeout: Dur,
    /// Largest accepted API request body, in bytes. Default 65536.
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// How often the sweeper looks for grants to expire. Default "1s".
    #[serde(default = "default_sweep")]
    pub sweep_interval: Dur,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            api_listen: default_api(),
            public_url: None,
            postgres_listen: default_pg(),
            postgres_public_host: None,
            data_dir: default_data_dir(),
            store: None,
            admin_groups: vec![],
            default_grant_ttl: default_ttl(),
            pending_grant_timeout: default_pending(),
            max_body_bytes: default_body(),
            sweep_interval: default_sweep(),
        }
    }
}

impl ServerConfig {
    /// The store URL, defaulting to SQLite in the data dir.
    pub fn store_url(&self) -> String {
        match &self.store {
            Some(s) => s.clone(),
            None => format!("sqlite://{}", self.data_dir.join("sluice.db").display()),
        }
    }

    /// The API's base URL as clients should use it.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.api_listen),
        }
    }

    /// Host and port put into grant credentials for the Postgres listener.
    pub fn postgres_endpoint(&self) -> (String, u16) {
        let (host, port) = split_host_port(&self.postgres_listen);
        (self.postgres_public_host.clone().unwrap_or(host), port)
    }
}

fn split_host_port(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_matches(['[', ']']).to_string(),
            p.parse().unwrap_or(15432),
        ),
        None => (addr.to_string(), 15432),
    }
}

fn default_api() -> String {
    "127.0.0.1:8420".into()
}
fn default_pg() -> String {
    "127.0.0.1:15432".into()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./sluice-data")
}
fn default_ttl() -> Dur {
    Dur::secs(600)
}
fn default_pending() -> Dur {
    Dur::secs(900)
}
fn default_body() -> usize {
    64 * 1024
}
fn default_sweep() -> Dur {
    Dur::secs(1)
}
