//! Access decisions: may this identity have a grant for that connection,
//! with which profile, for how long, and does a human have to agree first?

use std::time::Duration;

use crate::config::{AccessRule, ApprovalMode, Config};
use crate::guardrail::Profile;
use crate::identity::Identity;

/// What the caller asks for.
#[derive(Debug, Clone)]
pub struct AccessRequest<'a> {
    pub connection: &'a str,
    /// Requested life; `None` takes the server default. Always capped by the rule.
    pub ttl: Option<Duration>,
    /// A specific profile; `None` takes the first matching rule's.
    pub profile: Option<Profile>,
}

/// A yes: the rule that said it and what it gives.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessDecision<'a> {
    pub rule: &'a AccessRule,
    pub profile: Profile,
    /// min(requested, rule max); never longer than asked.
    pub ttl: Duration,
    pub needs_approval: bool,
}

/// A no, with why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenied {
    #[error("no connection named {0:?}")]
    UnknownConnection(String),
    #[error("no access rule lets {who} use connection {connection:?} (your groups: {groups})")]
    NotEligible {
        who: String,
        connection: String,
        groups: String,
    },
    #[error("no access rule gives you profile {profile:?} on connection {connection:?}")]
    ProfileNotAllowed { connection: String, profile: String },
    #[error("invalid ttl: {0}")]
    InvalidTtl(String),
}

/// Decides a request. Rules are matched in file order; the first rule for the
/// connection whose groups meet the identity's (and whose profile is the one
/// asked for, if any) decides.
pub fn decide<'a>(
    config: &'a Config,
    who: &Identity,
    req: &AccessRequest<'_>,
) -> Result<AccessDecision<'a>, AccessDenied> {
    if config.connection(req.connection).is_none() {
        return Err(AccessDenied::UnknownConnection(req.connection.to_string()));
    }
    if req.ttl.is_some_and(|t| t.is_zero()) {
        return Err(AccessDenied::InvalidTtl("must be more than 0".into()));
    }
    let eligible: Vec<&'a AccessRule> = config
        .rules
        .iter()
        .filter(|r| r.connection == req.connection && who.in_any(&r.groups))
        .collect();
    if eligible.is_empty() {
        return Err(AccessDenied::NotEligible {
            who: who.name.clone(),
            connection: req.connection.to_string(),
            groups: if who.groups.is_empty() {
                "none".into()
            } else {
                who.groups.join(", ")
            },
        });
    }
    let rule = match req.profile {
        None => eligible.first().copied(),
        Some(p) => eligible.iter().copied().find(|r| r.profile == p),
    }
    .ok_or_else(|| AccessDenied::ProfileNotAllowed {
        connection: req.connection.to_string(),
        profile: req.profile.map(|p| p.as_str()).unwrap_or("").to_string(),
    })?;
    let asked = req.ttl.unwrap_or(config.server.default_grant_ttl.0);
    Ok(AccessDecision {
        rule,
        profile: rule.profile,
        ttl: asked.min(rule.max_ttl.0),
        needs_approval: rule.approval == ApprovalMode::Grant,
    })
}

/// Every rule `who` is eligible under, for `GET /v1/connections`.
pub fn eligible_rules<'a>(
    config: &'a Config,
    who: &'a Identity,
) -> impl Iterator<Item = &'a AccessRule> + 'a {
    config.rules.iter().filter(move |r| who.in_any(&r.groups))
}

/// True when `who` may act on every grant (see and revoke others').
pub fn is_admin(config: &Config, who: &Identity) -> bool {
    who.in_any(&config.server.admin_groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdentityKind;

    fn config() -> Config {
        Config::parse(
            r#"
[server]
default_grant_ttl = "10m"
admin_groups = ["sec"]
[approvals]
approver_groups = ["dba"]
[[connections]]
name = "pg"
kind = "postgres"
host = "h"
database = "d"
user = "u"
[[rules]]
name = "readers"
groups = ["analytics"]
connection = "pg"
profile = "read"
max_ttl = "15m"
[[rules]]
name = "writers"
groups = ["writers", "analytics"]
connection = "pg"
profile = "write"
max_ttl = "5m"
approval = "grant"
"#,
            "t",
        )
        .unwrap()
    }

    fn who(groups: &[&str]) -> Identity {
        Identity {
            subject: "agent-1".into(),
            issuer: "https://idp".into(),
            name: "agent-1".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            kind: IdentityKind::Agent,
        }
    }

    fn req(ttl: Option<u64>, profile: Option<Profile>) -> AccessRequest<'static> {
        AccessRequest {
            connection: "pg",
            ttl: ttl.map(Duration::from_secs),
            profile,
        }
    }

    #[test]
    fn ttl_is_capped_by_the_rule_and_never_longer_than_asked() {
        let c = config();
        let a = who(&["analytics"]);
        assert_eq!(
            decide(&c, &a, &req(Some(3600), None))
                .unwrap()
                .ttl
                .as_secs(),
            900
        );
        assert_eq!(
            decide(&c, &a, &req(Some(60), None)).unwrap().ttl.as_secs(),
            60
        );
        assert_eq!(decide(&c, &a, &req(None, None)).unwrap().ttl.as_secs(), 600);
        assert!(matches!(
            decide(&c, &a, &req(Some(0), None)),
            Err(AccessDenied::InvalidTtl(_))
        ));
    }

    #[test]
    fn first_matching_rule_decides_and_profiles_can_be_chosen() {
        let c = config();
        let a = who(&["analytics"]);
        let d = decide(&c, &a, &req(None, None)).unwrap();
        assert_eq!((d.rule.name.as_str(), d.needs_approval), ("readers", false));
        let d = decide(&c, &a, &req(None, Some(Profile::Write))).unwrap();
        assert_eq!(d.rule.name, "writers");
        assert!(d.needs_approval);
        assert_eq!(d.ttl.as_secs(), 300);
        assert!(matches!(
            decide(&c, &a, &req(None, Some(Profile::Admin))),
            Err(AccessDenied::ProfileNotAllowed { .. })
        ));
    }

    #[test]
    fn groups_decide_eligibility() {
        let c = config();
        let err = decide(&c, &who(&["marketing"]), &req(None, None)).unwrap_err();
        assert!(err.to_string().contains("marketing"), "{err}");
        let mut r = req(None, None);
        r.connection = "nope";
        assert_eq!(
            decide(&c, &who(&["analytics"]), &r),
            Err(AccessDenied::UnknownConnection("nope".into()))
        );
        assert!(is_admin(&c, &who(&["sec"])));
        assert!(!is_admin(&c, &who(&["analytics"])));
    }
}
