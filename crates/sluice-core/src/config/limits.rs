//! What one connection's agents may use (`[connections.limits]`): how many
//! sessions at once (per connection, per grant, per identity), and how long
//! a statement may run under each profile.
//!
//! Each client session holds a backend session. One identity may hold at
//! most `max_sessions_per_identity` of the connection's `max_sessions`: the
//! rest is kept for everyone else, so one agent opening sessions in a loop
//! cannot lock the others out. A session's place is given back as its
//! client's connection closes, so a client that reconnects at once is let
//! in; its old backend session is parked or closed just after, so for that
//! moment the backend may hold one more than the limit.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Client sessions this connection serves at once. Default 100.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Sessions one grant may hold at once. Default 10.
    #[serde(default = "default_per_grant")]
    pub max_sessions_per_grant: usize,
    /// Sessions one identity may hold at once, across its grants; below
    /// `max_sessions`, the rest being kept for other identities. Default 25.
    #[serde(default = "default_per_identity")]
    pub max_sessions_per_identity: usize,
    /// Longest a statement may run, per profile. `"0s"` means no limit.
    #[serde(default)]
    pub statement_timeout: ProfileTimeouts,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_sessions: default_max_sessions(),
            max_sessions_per_grant: default_per_grant(),
            max_sessions_per_identity: default_per_identity(),
            statement_timeout: ProfileTimeouts::default(),
        }
    }
}

fn default_max_sessions() -> usize {
    100
}
fn default_per_grant() -> usize {
    10
}
fn default_per_identity() -> usize {
    25
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
        let l = &conn.limits;
        let mut at = |key: &'static str, message: String| {
            p.push((
                vec![Key("connections"), Index(i), Key("limits"), Key(key)],
                message,
            ))
        };
        if l.max_sessions == 0 || l.max_sessions > 100_000 {
            at("max_sessions", "must be between 1 and 100000".into());
        }
        if l.max_sessions_per_grant == 0 || l.max_sessions_per_grant > l.max_sessions {
            at(
                "max_sessions_per_grant",
                "must be at least 1 and at most max_sessions".into(),
            );
        }
        if l.max_sessions_per_identity == 0
            || (l.max_sessions_per_identity >= l.max_sessions && l.max_sessions > 1)
        {
            at(
                "max_sessions_per_identity",
                "must be at least 1 and below max_sessions (the rest is kept for other identities)"
                    .into(),
            );
        }
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
    fn session_limits_leave_room_for_others() {
        let c = Config::parse(&file(""), "s.toml").unwrap();
        let l = c.connections[0].limits;
        assert_eq!(
            (
                l.max_sessions,
                l.max_sessions_per_grant,
                l.max_sessions_per_identity
            ),
            (100, 10, 25)
        );
        let err = Config::parse(
            &file("max_sessions = 20\nmax_sessions_per_identity = 20\n"),
            "s.toml",
        )
        .unwrap_err();
        assert!(
            err.0[0].message.contains("kept for other identities"),
            "{err:?}"
        );
        assert_eq!(err.0[0].location, "s.toml:10");
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
