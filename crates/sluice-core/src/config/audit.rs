//! `[audit]`: where audit events are exported (`[[audit.sinks]]`), how the
//! chain is signed (`[audit.checkpoints]`) and how long events are kept
//! (`[audit.retention]`). Every part is off until configured; nothing here
//! ever weakens the chain itself.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use super::Dur;

/// The `[audit]` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Export sinks (`[[audit.sinks]]`), each fed from the whole chain with
    /// its own delivery cursor.
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
    /// Signed checkpoints; none are made when this table is absent.
    #[serde(default)]
    pub checkpoints: Option<CheckpointConfig>,
    /// Retention; when absent no event is ever deleted.
    #[serde(default)]
    pub retention: Option<RetentionConfig>,
}

/// Which kind of receiver a sink delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// JSON lines in a local file, rotated by size.
    File,
    /// HTTP POST of batches (generic JSON or Splunk HEC).
    Http,
    /// RFC 5424 syslog over UDP or TCP.
    Syslog,
}

impl SinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::File => "file",
            SinkKind::Http => "http",
            SinkKind::Syslog => "syslog",
        }
    }
}

/// The body an HTTP sink sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HttpFormat {
    /// A JSON array of events, `Content-Type: application/json`.
    #[default]
    Json,
    /// Splunk HTTP Event Collector: one `{"event", "time", "sourcetype"}`
    /// object per event, with `Authorization: Splunk <token>`.
    SplunkHec,
}

/// The transport of a syslog sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogProtocol {
    /// TCP with octet-counting framing (RFC 6587); the default, because a
    /// failed write is at least noticed and retried.
    #[default]
    Tcp,
    /// One datagram per event (RFC 5426); losses go unnoticed.
    Udp,
}

/// A syslog facility (RFC 5424 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    Kern,
    User,
    Mail,
    Daemon,
    /// Security/authorization messages: the default.
    #[default]
    Auth,
    Syslog,
    Lpr,
    News,
    Uucp,
    Cron,
    Authpriv,
    Ftp,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    /// The numeric facility code.
    pub fn code(self) -> u8 {
        match self {
            Facility::Kern => 0,
            Facility::User => 1,
            Facility::Mail => 2,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Syslog => 5,
            Facility::Lpr => 6,
            Facility::News => 7,
            Facility::Uucp => 8,
            Facility::Cron => 9,
            Facility::Authpriv => 10,
            Facility::Ftp => 11,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

/// One `[[audit.sinks]]` entry. The fields after `poll_interval` belong to
/// one kind each (validation rejects a field set for another kind); the
/// accessors below give their defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// The sink's name. It keys the stored delivery cursor: renaming a sink
    /// makes it start again from the oldest stored event.
    pub name: String,
    /// `"file"`, `"http"` or `"syslog"`.
    pub kind: SinkKind,
    /// Most events handed to the receiver at once (1–10000).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// First wait after a failed delivery; doubles on each failure.
    #[serde(default = "default_retry_initial")]
    pub retry_initial: Dur,
    /// Longest wait between retries (at most 1h).
    #[serde(default = "default_retry_max")]
    pub retry_max: Dur,
    /// How often the store is read when no local commit wakes the sink
    /// (events written by another gateway sharing the store).
    #[serde(default = "default_poll_interval")]
    pub poll_interval: Dur,

    /// file: the file events are appended to (required).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// file: size at which the file is rotated (default 100 MiB, at least 4096).
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// file: rotated files kept as `PATH.1` … `PATH.N` (default 5, at most 1000).
    #[serde(default)]
    pub keep: Option<u32>,

    /// http: the receiver's URL (required); https, or plain http only for
    /// 127.0.0.1/localhost unless `allow_plain_http` says otherwise.
    #[serde(default)]
    pub url: Option<String>,
    /// http: `"json"` (default) or `"splunk-hec"`.
    #[serde(default)]
    pub format: Option<HttpFormat>,
    /// http: environment variable holding the token (HEC token, or a bearer
    /// token for `json`). Never written inline.
    #[serde(default)]
    pub token_env: Option<String>,
    /// http: file holding the token (trailing whitespace ignored).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// http (splunk-hec): the events' `sourcetype` (default `"sluice:audit"`).
    #[serde(default)]
    pub sourcetype: Option<String>,
    /// http (splunk-hec): the Splunk index, when not the token's default.
    #[serde(default)]
    pub index: Option<String>,
    /// http: time allowed for one request, connect included (default 10s, at most 5m).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// http: allow plain http to a host other than 127.0.0.1/localhost.
    #[serde(default)]
    pub allow_plain_http: Option<bool>,

    /// syslog: the collector's `host:port` (required).
    #[serde(default)]
    pub address: Option<String>,
    /// syslog: `"tcp"` (default) or `"udp"`.
    #[serde(default)]
    pub protocol: Option<SyslogProtocol>,
    /// syslog: the facility (default `"auth"`).
    #[serde(default)]
    pub facility: Option<Facility>,
    /// syslog: APP-NAME (default `"sluice"`, 1–48 printable ASCII characters).
    #[serde(default)]
    pub app_name: Option<String>,
    /// syslog: HOSTNAME (default: this machine's host name).
    #[serde(default)]
    pub hostname: Option<String>,
    /// syslog (udp): largest datagram; longer messages are cut and marked
    /// `truncated="1"` (default 8192, 480–65000).
    #[serde(default)]
    pub max_message_bytes: Option<usize>,
}

fn default_batch_size() -> usize {
    500
}
fn default_retry_initial() -> Dur {
    Dur::secs(1)
}
fn default_retry_max() -> Dur {
    Dur::secs(60)
}
fn default_poll_interval() -> Dur {
    Dur::secs(1)
}

impl SinkConfig {
    /// file: rotation size.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes.unwrap_or(100 * 1024 * 1024)
    }
    /// file: rotated files kept.
    pub fn keep(&self) -> u32 {
        self.keep.unwrap_or(5)
    }
    /// http: body format.
    pub fn format(&self) -> HttpFormat {
        self.format.unwrap_or_default()
    }
    /// http (splunk-hec): sourcetype.
    pub fn sourcetype(&self) -> &str {
        self.sourcetype.as_deref().unwrap_or("sluice:audit")
    }
    /// http: request timeout.
    pub fn timeout(&self) -> Dur {
        self.timeout.unwrap_or(Dur::secs(10))
    }
    /// syslog: transport.
    pub fn protocol(&self) -> SyslogProtocol {
        self.protocol.unwrap_or_default()
    }
    /// syslog: facility.
    pub fn facility(&self) -> Facility {
        self.facility.unwrap_or_default()
    }
    /// syslog: APP-NAME.
    pub fn app_name(&self) -> &str {
        self.app_name.as_deref().unwrap_or("sluice")
    }
    /// syslog (udp): largest datagram.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes.unwrap_or(8192)
    }

    /// The kind-specific keys that are set, for validation.
    pub fn keys_set(&self) -> Vec<(&'static str, SinkKind)> {
        use SinkKind::*;
        let mut out = Vec::new();
        let mut add = |set: bool, key, kind| {
            if set {
                out.push((key, kind));
            }
        };
        add(self.path.is_some(), "path", File);
        add(self.max_bytes.is_some(), "max_bytes", File);
        add(self.keep.is_some(), "keep", File);
        add(self.url.is_some(), "url", Http);
        add(self.format.is_some(), "format", Http);
        add(self.token_env.is_some(), "token_env", Http);
        add(self.token_file.is_some(), "token_file", Http);
        add(self.sourcetype.is_some(), "sourcetype", Http);
        add(self.index.is_some(), "index", Http);
        add(self.timeout.is_some(), "timeout", Http);
        add(self.allow_plain_http.is_some(), "allow_plain_http", Http);
        add(self.address.is_some(), "address", Syslog);
        add(self.protocol.is_some(), "protocol", Syslog);
        add(self.facility.is_some(), "facility", Syslog);
        add(self.app_name.is_some(), "app_name", Syslog);
        add(self.hostname.is_some(), "hostname", Syslog);
        add(
            self.max_message_bytes.is_some(),
            "max_message_bytes",
            Syslog,
        );
        out
    }
}

/// `[audit.checkpoints]`: periodic Ed25519 signatures over the chain head.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// The Ed25519 private key: PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`,
    /// as `sluice audit keygen` and `openssl genpkey -algorithm ed25519`
    /// write it) or a file of exactly 32 raw seed bytes. Required.
    pub signing_key_file: PathBuf,
    /// Sign once this many events are unsigned (1–1000000).
    #[serde(default = "default_every_events")]
    pub every_events: u64,
    /// …or once the oldest unsigned event waited this long.
    #[serde(default = "default_checkpoint_interval")]
    pub interval: Dur,
}

fn default_every_events() -> u64 {
    1000
}
fn default_checkpoint_interval() -> Dur {
    Dur::secs(300)
}

/// `[audit.retention]`: deletes old events, only through a chained
/// truncation marker, and never what a sink has not delivered yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Events older than this may be deleted. Required, at least 1h.
    pub max_age: Dur,
    /// How often retention looks for events to delete.
    #[serde(default = "default_retention_interval")]
    pub interval: Dur,
}

fn default_retention_interval() -> Dur {
    Dur::secs(3600)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn problems(text: &str) -> Vec<String> {
        match Config::parse(text, "sluice.toml") {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn a_full_audit_section_parses() {
        let c = Config::parse(
            r#"
[audit.checkpoints]
signing_key_file = "/etc/sluice/audit.key"
every_events = 500
interval = "1m"

[audit.retention]
max_age = "90d"

[[audit.sinks]]
name = "local"
kind = "file"
path = "/var/log/sluice/audit.jsonl"

[[audit.sinks]]
name = "splunk"
kind = "http"
url = "https://splunk.example.com:8088/services/collector/event"
format = "splunk-hec"
token_env = "SPLUNK_HEC_TOKEN"

[[audit.sinks]]
name = "syslog"
kind = "syslog"
address = "logs.example.com:6514"
facility = "local4"
"#,
            "sluice.toml",
        )
        .unwrap();
        assert_eq!(c.audit.sinks.len(), 3);
        assert_eq!(c.audit.sinks[2].facility().code(), 20);
        assert_eq!(c.audit.checkpoints.unwrap().every_events, 500);
    }

    #[test]
    fn audit_problems_point_at_their_lines() {
        let p = problems(
            r#"[audit.retention]
max_age = "10m"

[[audit.sinks]]
name = "a"
kind = "http"
url = "http://siem.example.com/in"
path = "/tmp/x"
format = "splunk-hec"

[[audit.sinks]]
name = "a"
kind = "syslog"
"#,
        );
        let joined = p.join("\n");
        assert!(
            joined.contains("sluice.toml:2: audit.retention.max_age: must be at least 1h"),
            "{joined}"
        );
        assert!(joined.contains("needs [audit.checkpoints]"), "{joined}");
        assert!(
            joined.contains("sluice.toml:7: audit.sinks[0].url: must use https"),
            "{joined}"
        );
        assert!(
            joined.contains("sluice.toml:8: audit.sinks[0].path: only used with kind = \"file\""),
            "{joined}"
        );
        assert!(
            joined.contains("sluice.toml:9: audit.sinks[0].format: splunk-hec needs the HEC token"),
            "{joined}"
        );
        assert!(
            joined.contains("sluice.toml:12: audit.sinks[1].name: sink \"a\" is defined twice"),
            "{joined}"
        );
        assert!(
            joined.contains("audit.sinks[1].kind: a syslog sink needs address"),
            "{joined}"
        );
        // Unknown keys are refused.
        assert!(!problems("[audit]\nsinkz = []\n").is_empty());
    }
}
