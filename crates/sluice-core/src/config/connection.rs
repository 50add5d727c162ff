//! Connections: named backends, with the credentials Sluice holds for them.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One named backend (`[[connections]]`). Agents name it; they never see
/// its address's credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// The name agents request and connect to, e.g. "orders-db". Lowercase
    /// letters, digits, `-` and `_`.
    pub name: String,
    /// The protocol: "postgres", "mysql" (MySQL and MariaDB) or "ssh".
    pub kind: ConnectionKind,
    /// Backend host name or address.
    pub host: String,
    /// Backend port. Default 5432 for postgres, 3306 for mysql, 22 for ssh.
    #[serde(default)]
    port: Option<u16>,
    /// The database on the backend (postgres, mysql).
    #[serde(default)]
    pub database: String,
    /// The backend user for `write` and `admin` grants (and `read` grants
    /// when no `read_credential` is set).
    pub user: String,
    /// Name of the environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// A file holding the password (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A separate, least-privilege credential used for `read` grants.
    #[serde(default)]
    pub read_credential: Option<Credential>,
    /// TLS to the backend: "disable", "require" (encrypt, no verification)
    /// or "verify-full" (encrypt and verify certificate and host name).
    /// Default "verify-full": fail closed.
    #[serde(default)]
    pub tls: TlsMode,
    /// CA certificate (PEM) for "verify-full"; the system roots otherwise.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Guardrail rules (`[[connections.guardrails]]`), evaluated in order
    /// before the grant's profile defaults; the first that matches decides.
    #[serde(default)]
    pub guardrails: Vec<crate::guardrail::GuardrailRule>,
    /// Result masking (`[connections.masking]`); none when absent.
    #[serde(default)]
    pub masking: Option<super::masking::MaskingConfig>,
    /// What a session recording keeps of each result: "none" (only the
    /// decision), "summary" (row counts, durations and errors; the
    /// default), or "rows:N" (also the first N rows exactly as the client
    /// received them, after masking, for replay). N is 1 to 1000.
    #[serde(default)]
    pub record_results: RecordResults,
    /// Reuse of backend sessions across client sessions
    /// (`[connections.pool]`); on with its defaults when absent.
    #[serde(default)]
    pub pool: super::pool::PoolConfig,
    /// What agents may use (`[connections.limits]`): statement timeouts
    /// per profile.
    #[serde(default)]
    pub limits: super::limits::LimitsConfig,
    /// An SSH host's own settings (`[connections.ssh]`): required for
    /// `kind = "ssh"`, since the backend's host key must be pinned.
    #[serde(default)]
    pub ssh: Option<SshConnectionConfig>,
}

/// `[connections.ssh]`: what Sluice needs to reach an SSH host on an
/// agent's behalf, and what the agent may do there beyond commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshConnectionConfig {
    /// The backend's host key, pinned: an OpenSSH public key line
    /// (`ssh-ed25519 AAAA…`, as in `known_hosts` without the host names)
    /// or its fingerprint (`SHA256:…`). A host presenting another key is
    /// refused, and the refusal audited.
    pub host_key: String,
    /// The private key Sluice logs in with (OpenSSH format); otherwise the
    /// connection's `password_env`/`password_file`.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// The shell every command line runs in, as the analysis reads it.
    /// Default "/bin/bash".
    #[serde(default = "default_shell")]
    pub shell: String,
    /// Profiles that may open an interactive shell (recorded, not judged
    /// command by command). Default `["write", "admin"]`: a `read` grant
    /// runs commands only.
    #[serde(default = "default_shell_profiles")]
    pub shell_profiles: Vec<crate::Profile>,
    /// Profiles that may forward ports (local, remote, dynamic). Default
    /// none.
    #[serde(default)]
    pub forwarding_profiles: Vec<crate::Profile>,
    /// Where local and dynamic forwards may reach, as `host:port` globs
    /// seen from the host (`"127.0.0.1:5432"`, `"*.internal:443"`, `"*"`).
    /// Required when `forwarding_profiles` is set. Remote forwards listen
    /// on the host's loopback only.
    #[serde(default)]
    pub forward_to: Vec<String>,
    /// Whether the sftp subsystem (and so `scp` and `sftp`) is offered;
    /// each file operation is judged. Default true.
    #[serde(default = "yes")]
    pub sftp: bool,
}

fn default_shell() -> String {
    "/bin/bash".into()
}

fn default_shell_profiles() -> Vec<crate::Profile> {
    vec![crate::Profile::Write, crate::Profile::Admin]
}

fn yes() -> bool {
    true
}

/// The `record_results` setting of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordResults {
    None,
    #[default]
    Summary,
    /// Keep the first N rows of each result.
    Rows(u32),
}

/// The largest N of `rows:N`: recordings are audit events, kept small.
pub const MAX_RECORDED_ROWS: u32 = 1000;

impl RecordResults {
    pub fn parse(s: &str) -> Result<RecordResults, String> {
        match s {
            "none" => Ok(RecordResults::None),
            "summary" => Ok(RecordResults::Summary),
            _ => match s.strip_prefix("rows:").map(str::parse::<u32>) {
                Some(Ok(n)) => Ok(RecordResults::Rows(n)),
                _ => Err(format!(
                    "record_results must be \"none\", \"summary\" or \"rows:N\" (e.g. \"rows:20\"), not {s:?}"
                )),
            },
        }
    }

    /// How many rows of each result to record (0 for none and summary).
    pub fn rows(self) -> u32 {
        match self {
            RecordResults::Rows(n) => n,
            _ => 0,
        }
    }
}

impl std::fmt::Display for RecordResults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordResults::None => f.write_str("none"),
            RecordResults::Summary => f.write_str("summary"),
            RecordResults::Rows(n) => write!(f, "rows:{n}"),
        }
    }
}

impl Serialize for RecordResults {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RecordResults {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RecordResults::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A backend user and where its password comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    pub user: String,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    Postgres,
    Ssh,
    Mysql,
}

impl ConnectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Postgres => "postgres",
            ConnectionKind::Ssh => "ssh",
            ConnectionKind::Mysql => "mysql",
        }
    }

    /// The protocol's usual port.
    pub fn default_port(self) -> u16 {
        match self {
            ConnectionKind::Postgres => 5432,
            ConnectionKind::Ssh => 22,
            ConnectionKind::Mysql => 3306,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    Disable,
    Require,
    #[default]
    VerifyFull,
}

/// A password, redacted in `Debug` so it cannot slip into a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(s: impl Into<String>) -> Self {
        Password(s.into())
    }
    /// The clear text, for the one place that must send it to a backend.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Reads a password by reference. `None` when neither source is set
/// (trust authentication).
pub fn resolve_password(
    env: Option<&str>,
    file: Option<&std::path::Path>,
) -> Result<Option<Password>, String> {
    match (env, file) {
        (Some(_), Some(_)) => Err("set password_env or password_file, not both".into()),
        (Some(var), None) => std::env::var(var)
            .map(|v| Some(Password(v)))
            .map_err(|_| format!("environment variable {var} is not set")),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|v| Some(Password(v.trim_end_matches(['\n', '\r']).to_string())))
            .map_err(|e| format!("cannot read password file {}: {e}", path.display())),
        (None, None) => Ok(None),
    }
}

impl ConnectionConfig {
    /// The backend port: as configured, or the protocol's usual one.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.kind.default_port())
    }

    /// Sets the backend port (tests and the playground build configs).
    pub fn set_port(&mut self, port: u16) {
        self.port = Some(port);
    }

    /// The primary credential's password.
    pub fn password(&self) -> Result<Option<Password>, String> {
        resolve_password(self.password_env.as_deref(), self.password_file.as_deref())
    }
}

impl Credential {
    pub fn password(&self) -> Result<Option<Password>, String> {
        resolve_password(self.password_env.as_deref(), self.password_file.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_results_parses_and_prints() {
        assert_eq!(RecordResults::default(), RecordResults::Summary);
        for (text, want) in [
            ("none", RecordResults::None),
            ("summary", RecordResults::Summary),
            ("rows:20", RecordResults::Rows(20)),
        ] {
            assert_eq!(RecordResults::parse(text).unwrap(), want);
            assert_eq!(want.to_string(), text);
        }
        assert_eq!(RecordResults::Rows(5).rows(), 5);
        assert_eq!(RecordResults::Summary.rows(), 0);
        for bad in ["all", "rows", "rows:", "rows:-1", "rows:x", "Rows:3"] {
            assert!(RecordResults::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn record_results_is_checked_with_its_line() {
        let file = |v: &str| {
            format!(
                "[[connections]]\nname = \"orders\"\nkind = \"postgres\"\nhost = \"db\"\n\
                 database = \"orders\"\nuser = \"sluice\"\nrecord_results = \"{v}\"\n"
            )
        };
        let parse = |v: &str| crate::config::Config::parse(&file(v), "s.toml");
        let c = parse("rows:20").unwrap();
        assert_eq!(c.connections[0].record_results, RecordResults::Rows(20));
        for bad in ["rows:0", "rows:5000", "everything"] {
            let err = parse(bad).unwrap_err();
            let p = err.0.iter().find(|p| p.message.contains("rows:N"));
            let p = p.unwrap_or_else(|| panic!("{bad}: {err:?}"));
            assert_eq!(p.location, "s.toml:7", "{bad}: {err:?}");
        }
        let c = crate::config::Config::parse(
            &file("x").replace("record_results = \"x\"\n", ""),
            "s.toml",
        )
        .unwrap();
        assert_eq!(c.connections[0].record_results, RecordResults::Summary);
    }

    #[test]
    fn passwords_never_print() {
        let p = Password::new("hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn password_file_is_trimmed_and_both_sources_refused() {
        let dir = std::env::temp_dir().join(format!("sluice-pw-{}", std::process::id()));
        std::fs::write(&dir, "s3cret\n").unwrap();
        let p = resolve_password(None, Some(&dir)).unwrap().unwrap();
        assert_eq!(p.expose(), "s3cret");
        assert!(resolve_password(Some("X"), Some(&dir)).is_err());
        std::fs::remove_file(&dir).unwrap();
        assert!(resolve_password(Some("SLUICE_SURELY_UNSET_VAR"), None).is_err());
    }
}
