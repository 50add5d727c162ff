//! Backend session reuse (`[connections.pool]`): how many idle backend
//! sessions a connection keeps per profile, and for how long.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::Config;
use super::duration::Dur;
use super::locate::Seg::{self, Index, Key};

/// The most idle backend sessions one connection may keep per profile.
pub const MAX_IDLE_LIMIT: usize = 1000;
/// The longest an idle or live backend session may be kept.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Reuse of backend sessions across client sessions of one connection and
/// profile. A backend goes back to the pool only when its client left
/// cleanly and idle; it is reset (`DISCARD ALL`) before anyone else gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Idle backend sessions kept per profile (`read`, `write`, `admin`
    /// never share). 0 turns reuse off: every client session opens its own
    /// backend session and closes it at the end. Default 10.
    #[serde(default = "default_max_idle")]
    pub max_idle: usize,
    /// An idle backend session unused this long is closed. Default "1m".
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Dur,
    /// A backend session older than this is closed when its client leaves
    /// instead of being reused. Default "1h".
    #[serde(default = "default_max_lifetime")]
    pub max_lifetime: Dur,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_idle: default_max_idle(),
            idle_timeout: default_idle_timeout(),
            max_lifetime: default_max_lifetime(),
        }
    }
}

fn default_max_idle() -> usize {
    10
}
fn default_idle_timeout() -> Dur {
    Dur::secs(60)
}
fn default_max_lifetime() -> Dur {
    Dur::secs(3600)
}

/// Every problem of the connections' `[connections.pool]`, with its key path.
pub(super) fn problems(c: &Config) -> Vec<(Vec<Seg>, String)> {
    let mut p = Vec::new();
    for (i, conn) in c.connections.iter().enumerate() {
        let pool = &conn.pool;
        let mut at = |k: &'static str, m: String| {
            p.push((vec![Key("connections"), Index(i), Key("pool"), Key(k)], m))
        };
        if pool.max_idle > MAX_IDLE_LIMIT {
            at(
                "max_idle",
                format!("must be at most {MAX_IDLE_LIMIT} (0 turns reuse off)"),
            );
        }
        for (key, d) in [
            ("idle_timeout", pool.idle_timeout.0),
            ("max_lifetime", pool.max_lifetime.0),
        ] {
            if d < Duration::from_secs(1) || d > MAX_TIMEOUT {
                at(key, "must be at least 1s and at most 24h".into());
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(pool: &str) -> String {
        format!(
            "[[connections]]\nname = \"orders\"\nkind = \"postgres\"\nhost = \"db\"\n\
             database = \"orders\"\nuser = \"sluice\"\n\n[connections.pool]\n{pool}"
        )
    }

    #[test]
    fn defaults_apply_with_and_without_the_table() {
        let text = file("").replace("\n[connections.pool]\n", "");
        let c = Config::parse(&text, "s.toml").unwrap();
        assert_eq!(c.connections[0].pool, PoolConfig::default());
        let c = Config::parse(&file("max_idle = 0\n"), "s.toml").unwrap();
        let pool = c.connections[0].pool;
        assert_eq!(pool.max_idle, 0);
        assert_eq!(pool.idle_timeout, Dur::secs(60));
        assert_eq!(pool.max_lifetime, Dur::secs(3600));
    }

    #[test]
    fn bad_values_point_at_their_lines() {
        let text = file("max_idle = 5000\nidle_timeout = \"0s\"\nmax_lifetime = \"48h\"\n");
        let err = Config::parse(&text, "s.toml").unwrap_err();
        let line = |key: &str| {
            let n = text.lines().position(|l| l.starts_with(key)).unwrap() + 1;
            format!("s.toml:{n}")
        };
        for key in ["max_idle", "idle_timeout", "max_lifetime"] {
            let p = err.0.iter().find(|p| p.message.contains(key));
            let p = p.unwrap_or_else(|| panic!("{key}: {err:?}"));
            assert_eq!(p.location, line(key), "{key}: {err:?}");
        }
        assert_eq!(err.0.len(), 3, "{err:?}");
    }

    #[test]
    fn unknown_keys_and_bare_numbers_are_refused() {
        assert!(Config::parse(&file("max_size = 3\n"), "s.toml").is_err());
        assert!(Config::parse(&file("idle_timeout = \"60\"\n"), "s.toml").is_err());
    }
}
