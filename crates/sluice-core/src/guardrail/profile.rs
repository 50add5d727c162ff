//! Access profiles: what a grant may do when no guardrail rule decides.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::StatementClass;

/// The breadth of a grant. Each profile allows a set of statement classes by
/// default; guardrail rules refine that per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Reads, transaction control and harmless session settings.
    Read,
    /// `read` plus data changes.
    Write,
    /// Everything the analysis understands (never `unknown` by default).
    Admin,
}

impl Profile {
    /// The lowercase name used in configuration and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }

    /// Whether this profile allows a class when no rule matched.
    /// `unknown` is never allowed by default: it fails closed.
    pub fn allows(self, class: StatementClass) -> bool {
        use StatementClass as C;
        match class {
            C::Read | C::Tcl | C::Session => true,
            C::Write => self >= Self::Write,
            C::Ddl | C::Dcl | C::Admin => self == Self::Admin,
            C::Unknown => false,
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A profile name that is not `read`, `write` or `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile {0:?}: expected read, write or admin")]
pub struct ParseProfileError(pub String);

impl FromStr for Profile {
    type Err = ParseProfileError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "admin" => Ok(Self::Admin),
            other => Err(ParseProfileError(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StatementClass as C;

    #[test]
    fn parses_and_prints() {
        for p in [Profile::Read, Profile::Write, Profile::Admin] {
            assert_eq!(p.as_str().parse::<Profile>(), Ok(p));
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        assert!("Read".parse::<Profile>().is_err());
        assert!("superuser".parse::<Profile>().is_err());
    }

    #[test]
    fn defaults_per_profile() {
        let table = [
            (
                Profile::Read,
                [true, true, true, false, false, false, false, false],
            ),
            (
                Profile::Write,
                [true, true, true, true, false, false, false, false],
            ),
            (
                Profile::Admin,
                [true, true, true, true, true, true, true, false],
            ),
        ];
        for (profile, allowed) in table {
            for (class, want) in C::ALL.into_iter().zip(allowed) {
                assert_eq!(profile.allows(class), want, "{profile} {class}");
            }
        }
    }
}
