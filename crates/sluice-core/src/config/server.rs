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
    /// On SIGTERM, how long open sessions may go on before they are ended
    /// (readiness turns false and listeners stop accepting at once).
    /// Default "30s".
    #[serde(default = "default_drain")]
    pub drain_timeout: Dur,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            api_listen: default_api(),
            public_url: None,
            data_dir: default_data_dir(),
            store: None,
            admin_groups: vec![],
            default_grant_ttl: default_ttl(),
            pending_grant_timeout: default_pending(),
            max_body_bytes: default_body(),
            sweep_interval: default_sweep(),
            drain_timeout: default_drain(),
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
}

/// The Postgres listener (`[postgres]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresListenerConfig {
    /// Listener address. Default "127.0.0.1:15432".
    #[serde(default = "default_pg")]
    pub listen: String,
    /// Host name put in grant credentials. Default: the listener's address.
    #[serde(default)]
    pub public_host: Option<String>,
    /// TLS certificate chain (PEM) offered to clients that ask for TLS.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Refuse clients that do not negotiate TLS. Default false.
    #[serde(default)]
    pub require_tls: bool,
    /// Largest message accepted after authentication, in bytes. Default
    /// 268435456 (256 MiB).
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
    /// Largest SQL text (a Query, or a Parse) Sluice analyses, in bytes;
    /// a longer one is refused (send bulk data with COPY). Default
    /// 1048576 (1 MiB).
    #[serde(default = "default_max_statement")]
    pub max_statement_bytes: usize,
    /// Time a client has to finish the startup and authentication. Default "10s".
    #[serde(default = "default_auth_timeout")]
    pub auth_timeout: Dur,
}

impl Default for PostgresListenerConfig {
    fn default() -> Self {
        PostgresListenerConfig {
            listen: default_pg(),
            public_host: None,
            tls_cert: None,
            tls_key: None,
            require_tls: false,
            max_message_bytes: default_max_message(),
            max_statement_bytes: default_max_statement(),
            auth_timeout: default_auth_timeout(),
        }
    }
}

impl PostgresListenerConfig {
    /// Host and port put into grant credentials.
    pub fn endpoint(&self) -> (String, u16) {
        endpoint(&self.listen, self.public_host.as_deref(), 15432)
    }
}

/// Host and port of a listener as clients reach it.
fn endpoint(listen: &str, public_host: Option<&str>, default_port: u16) -> (String, u16) {
    let (host, port) = match listen.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_matches(['[', ']']).to_string(),
            p.parse().unwrap_or(default_port),
        ),
        None => (listen.to_string(), default_port),
    };
    (public_host.map(str::to_string).unwrap_or(host), port)
}

/// The SSH listener (`[ssh]`), started when a connection is `kind = "ssh"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshListenerConfig {
    /// Listener address. Default "127.0.0.1:2222".
    #[serde(default = "default_ssh")]
    pub listen: String,
    /// Host name put in grant credentials. Default: the listener's address.
    #[serde(default)]
    pub public_host: Option<String>,
    /// The gateway's own host key (OpenSSH format), generated on first
    /// start when missing. Default `{data_dir}/ssh_host_ed25519_key`.
    #[serde(default)]
    pub host_key_file: Option<PathBuf>,
    /// Time a client has to authenticate. Default "10s".
    #[serde(default = "default_auth_timeout")]
    pub auth_timeout: Dur,
    /// Authentication attempts per connection. Default 3.
    #[serde(default = "default_auth_attempts")]
    pub max_auth_attempts: usize,
    /// Longest command line judged, in bytes; a longer one is refused.
    /// Default 65536.
    #[serde(default = "default_max_command")]
    pub max_command_bytes: usize,
}

impl Default for SshListenerConfig {
    fn default() -> Self {
        SshListenerConfig {
            listen: default_ssh(),
            public_host: None,
            host_key_file: None,
            auth_timeout: default_auth_timeout(),
            max_auth_attempts: default_auth_attempts(),
            max_command_bytes: default_max_command(),
        }
    }
}

impl SshListenerConfig {
    /// Host and port put into grant credentials.
    pub fn endpoint(&self) -> (String, u16) {
        endpoint(&self.listen, self.public_host.as_deref(), 2222)
    }

    /// Where the gateway's host key is kept.
    pub fn host_key_path(&self, data_dir: &std::path::Path) -> PathBuf {
        self.host_key_file
            .clone()
            .unwrap_or_else(|| data_dir.join("ssh_host_ed25519_key"))
    }
}

/// The MySQL/MariaDB listener (`[mysql]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlListenerConfig {
    /// Listener address. Default "127.0.0.1:13306".
    #[serde(default = "default_mysql")]
    pub listen: String,
    /// Host name put in grant credentials. Default: the listener's address.
    #[serde(default)]
    pub public_host: Option<String>,
    /// TLS certificate chain (PEM) offered to clients. Without one, clients
    /// prove their secret through the RSA key exchange of
    /// `caching_sha2_password`, and the token fallback is refused.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Refuse clients that do not negotiate TLS. Default false.
    #[serde(default)]
    pub require_tls: bool,
    /// The gateway's RSA key (PKCS#8 PEM) for `caching_sha2_password`'s key
    /// exchange, generated on first start when missing. Default
    /// `{data_dir}/mysql_rsa_key.pem`.
    #[serde(default)]
    pub rsa_key_file: Option<PathBuf>,
    /// The server version the gateway announces before it knows which
    /// backend a client wants. Default "8.0.36-sluice".
    #[serde(default = "default_mysql_version")]
    pub server_version: String,
    /// Largest packet accepted after login, in bytes (a statement and its
    /// parameters). Default 67108864 (64 MiB).
    #[serde(default = "default_max_packet")]
    pub max_packet_bytes: usize,
    /// Largest SQL text analysed, in bytes; a longer one is refused.
    /// Default 1048576 (1 MiB).
    #[serde(default = "default_max_statement")]
    pub max_statement_bytes: usize,
    /// Time a client has to finish the handshake and login. Default "10s".
    #[serde(default = "default_auth_timeout")]
    pub auth_timeout: Dur,
}

impl Default for MysqlListenerConfig {
    fn default() -> Self {
        MysqlListenerConfig {
            listen: default_mysql(),
            public_host: None,
            tls_cert: None,
            tls_key: None,
            require_tls: false,
            rsa_key_file: None,
            server_version: default_mysql_version(),
            max_packet_bytes: default_max_packet(),
            max_statement_bytes: default_max_statement(),
            auth_timeout: default_auth_timeout(),
        }
    }
}

impl MysqlListenerConfig {
    /// Host and port put into grant credentials.
    pub fn endpoint(&self) -> (String, u16) {
        endpoint(&self.listen, self.public_host.as_deref(), 13306)
    }

    /// Where the gateway's RSA key is kept.
    pub fn rsa_key_path(&self, data_dir: &std::path::Path) -> PathBuf {
        self.rsa_key_file
            .clone()
            .unwrap_or_else(|| data_dir.join("mysql_rsa_key.pem"))
    }
}

fn default_mysql() -> String {
    "127.0.0.1:13306".into()
}
fn default_mysql_version() -> String {
    "8.0.36-sluice".into()
}
fn default_max_packet() -> usize {
    64 * 1024 * 1024
}

fn default_ssh() -> String {
    "127.0.0.1:2222".into()
}
fn default_auth_attempts() -> usize {
    3
}
fn default_max_command() -> usize {
    64 * 1024
}

fn default_max_message() -> usize {
    256 * 1024 * 1024
}
fn default_max_statement() -> usize {
    1024 * 1024
}
fn default_auth_timeout() -> Dur {
    Dur::secs(10)
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

fn default_drain() -> Dur {
    Dur::secs(30)
}
