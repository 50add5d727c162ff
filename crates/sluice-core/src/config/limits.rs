//! What one connection's agents may use (`[connections.limits]`): how long
//! a statement may run under each profile.
//!
//! A statement timeout is set at backend session start (so `RESET` and
//! `RESET ALL` return to it); a client may lower it with `SET
//! statement_timeout` but not raise it or turn it off.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::Config;
use super::duration::Dur;
use super::locate::Seg::{self, Index, Key};
use crate::Profile;

/// The longest statement timeout a profile may be given.
const MAX_STATEMENT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Limits for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Longest a statement may run, per profile. `"0s"` means no limit.
    #[serde(default)]
    pub statement_timeout: ProfileTimeouts,
}

/// A duration per profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileTimeouts {
    /// Default "1m".
    #[serde(default = "default_read")]
    pub read: Dur,
    /// Default "5m".
    #[serde(default = "default_write")]
    pub write: Dur,
    /// Default "30m".
    #[serde(default = "default_admin")]
    pub admin: Dur,
}

impl Default for ProfileTimeouts {
    fn default() -> Self {
        ProfileTimeouts {
            read: default_read(),
            write: default_write(),
            admin: default_admin(),
        }
    }
}

fn default_read() -> Dur {
    Dur::secs(60)
}
fn default_write() -> Dur {
    Dur::secs(300)
}
fn default_admin() -> Dur {
    Dur::secs(1800)
}

impl ProfileTimeouts {
    /// The timeout for `profile`; `None` when it has no limit.
    pub fn of(&self, profile: Profile) -> Option<Duration> {
        let d = match profile {
            Profile::Read => self.read.0,
            Profile::Write => self.write.0,
            Profile::Admin => self.admin.0,
        };
        (!d.is_zero()).then_some(d)
    }
}

/// Every problem of the connections' `[connections.limits]`.
pub(super) fn problems(c: &Config) -> Vec<(Vec<Seg>, String)> {
    let mut p = Vec::new();
    for (i, conn) in c.connections.iter().enumerate() {
        let t = &conn.limits.statement_timeout;
        for (key, d) in [
            ("read", t.read.0),
            ("write", t.write.0),
            ("admin", t.admin.0),
        ] {
            if d > MAX_STATEMENT_TIMEOUT || (!d.is_zero() && d < Duration::from_millis(1)) {
                p.push((
                    vec![
                        Key("connections"),
                        Index(i),
                        Key("limits"),
                        Key("statement_timeout"),
                        Key(key),
                    ],
                    "must be between 1ms and 24h, or \"0s\" for no limit".to_string(),
                ));
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(limits: &str) -> String {
        format!(
            "[[connections]]\nname = \"orders\"\nkind = \"postgres\"\nhost = \"db\"\n\
             database = \"orders\"\nuser = \"sluice\"\n\n[connections.limits]\n{limits}"
        )
    }

    #[test]
    fn defaults_and_overrides() {
        let c = Config::parse(&file(""), "s.toml").unwrap();
        let t = c.connections[0].limits.statement_timeout;
        assert_eq!(t.of(Profile::Read), Some(Duration::from_secs(60)));
        assert_eq!(t.of(Profile::Admin), Some(Duration::from_secs(1800)));
        let c = Config::parse(
            &file("statement_timeout = { read = \"10s\", admin = \"0s\" }\n"),
            "s.toml",
        )
        .unwrap();
        let t = c.connections[0].limits.statement_timeout;
        assert_eq!(t.of(Profile::Read), Some(Duration::from_secs(10)));
        assert_eq!(t.of(Profile::Write), Some(Duration::from_secs(300)));
        assert_eq!(t.of(Profile::Admin), None);
    }

    #[test]
    fn too_long_is_refused_with_its_line() {
        let text = file("statement_timeout = { write = \"48h\" }\n");
        let err = Config::parse(&text, "s.toml").unwrap_err();
        assert_eq!(err.0.len(), 1, "{err:?}");
        assert!(err.0[0].message.contains("24h"), "{err:?}");
        assert_eq!(err.0[0].location, "s.toml:9");
    }
}
