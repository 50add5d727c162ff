//! Verified claims to an `Identity`: subject, display name, groups and kind.
//!
//! Shapes handled: plain OIDC tokens (`name`, `preferred_username`, `email`),
//! Okta custom authorization server access tokens (`groups`, `scp`, `cid`,
//! `uid`, with `sub` the user's login), and service apps using client
//! credentials, whose `sub` equals the client id (`cid` at Okta, `client_id`
//! in RFC 9068 tokens).

use crate::rejection::Rejection;
use serde_json::{Map, Value};
use sluice_core::config::{IssuerConfig, KindMapping};
use sluice_core::{Identity, IdentityKind};

/// More groups than this is refused rather than truncated: a partial group
/// list could silently change what an identity may reach.
pub(crate) const MAX_GROUPS: usize = 1000;
/// Longest accepted group name, in bytes.
pub(crate) const MAX_GROUP_BYTES: usize = 256;
/// Longest accepted subject or display name, in bytes.
const MAX_NAME_BYTES: usize = 1024;

/// Builds the identity from claims whose signature, issuer, audience and
/// times are already verified.
pub(crate) fn identity(
    cfg: &IssuerConfig,
    claims: &Map<String, Value>,
) -> Result<Identity, Rejection> {
    let subject = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        None | Some(Value::Null) => return Err(Rejection::MissingClaim("sub")),
        Some(Value::String(_)) => return Err(Rejection::MissingClaim("sub")),
        Some(_) => return Err(Rejection::InvalidClaim("sub")),
    };
    if subject.len() > MAX_NAME_BYTES {
        return Err(Rejection::Malformed);
    }
    let name = display_name(claims).unwrap_or_else(|| subject.clone());
    let groups = groups(claims.get(&cfg.groups_claim))?;
    let kind = kind(&cfg.kind, claims, &subject, &groups);
    Ok(Identity {
        subject,
        issuer: cfg.issuer.clone(),
        name,
        groups,
        kind,
    })
}

/// The first non-empty string of `name`, `preferred_username`, `email`.
fn display_name(claims: &Map<String, Value>) -> Option<String> {
    ["name", "preferred_username", "email"]
        .iter()
        .filter_map(|c| claims.get(*c).and_then(Value::as_str))
        .map(str::trim)
        .find(|s| !s.is_empty() && s.len() <= MAX_NAME_BYTES)
        .map(str::to_owned)
}

/// Groups from an array of strings or one space-separated string; missing
/// or null means none. Duplicates and empty names are dropped.
fn groups(value: Option<&Value>) -> Result<Vec<String>, Rejection> {
    let names: Vec<&str> = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => s.split_whitespace().collect(),
        Some(Value::Array(items)) => {
            if items.len() > MAX_GROUPS {
                return Err(Rejection::Malformed);
            }
            items
                .iter()
                .map(|v| v.as_str().ok_or(Rejection::InvalidClaim("groups")))
                .collect::<Result<_, _>>()?
        }
        Some(_) => return Err(Rejection::InvalidClaim("groups")),
    };
    if names.len() > MAX_GROUPS || names.iter().any(|g| g.len() > MAX_GROUP_BYTES) {
        return Err(Rejection::Malformed);
    }
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for g in names.into_iter().filter(|g| !g.is_empty()) {
        if !out.iter().any(|o| o == g) {
            out.push(g.to_owned());
        }
    }
    Ok(out)
}

/// Agent or human, by the first rule of the mapping that matches.
fn kind(
    m: &KindMapping,
    claims: &Map<String, Value>,
    subject: &str,
    groups: &[String],
) -> IdentityKind {
    if let Some(claim) = &m.claim {
        match claims.get(claim).and_then(Value::as_str) {
            Some("agent") => return IdentityKind::Agent,
            Some("human") => return IdentityKind::Human,
            _ => {}
        }
    }
    if groups.iter().any(|g| m.agent_groups.contains(g)) {
        return IdentityKind::Agent;
    }
    if groups.iter().any(|g| m.human_groups.contains(g)) {
        return IdentityKind::Human;
    }
    if m.service_apps_are_agents && is_service_app(claims, subject) {
        return IdentityKind::Agent;
    }
    m.default
}

/// A client-credentials token: its subject is the client itself.
fn is_service_app(claims: &Map<String, Value>, subject: &str) -> bool {
    ["cid", "client_id"]
        .iter()
        .any(|c| claims.get(*c).and_then(Value::as_str) == Some(subject))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> IssuerConfig {
        IssuerConfig::new(
            "okta",
            "https://example.okta.com/oauth2/default",
            "api://sluice",
        )
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn okta_service_app_is_an_agent() {
        // An Okta custom authorization server, client credentials grant.
        let c = claims(json!({
            "ver": 1, "jti": "AT.x", "iss": "https://example.okta.com/oauth2/default",
            "aud": "api://sluice", "iat": 1, "exp": 2, "cid": "0oa1agent",
            "scp": ["sluice.grants"], "sub": "0oa1agent", "groups": ["agents-db"]
        }));
        let id = identity(&cfg(), &c).unwrap();
        assert_eq!(id.subject, "0oa1agent");
        assert_eq!(id.name, "0oa1agent");
        assert_eq!(id.issuer, "https://example.okta.com/oauth2/default");
        assert_eq!(id.groups, vec!["agents-db"]);
        assert_eq!(id.kind, IdentityKind::Agent);
    }

    #[test]
    fn okta_user_access_token_is_human_by_default() {
        let c = claims(json!({
            "sub": "ada@example.com", "uid": "00u1ada", "cid": "0oa1webapp",
            "scp": ["openid", "profile"], "groups": ["dba", "Everyone"]
        }));
        let id = identity(&cfg(), &c).unwrap();
        assert_eq!(id.name, "ada@example.com");
        assert_eq!(id.groups, vec!["dba", "Everyone"]);
        assert_eq!(id.kind, IdentityKind::Human);
    }

    #[test]
    fn rfc9068_client_id_marks_a_service_app_unless_disabled() {
        let c = claims(json!({"sub": "agent-7", "client_id": "agent-7"}));
        assert_eq!(identity(&cfg(), &c).unwrap().kind, IdentityKind::Agent);
        let mut off = cfg();
        off.kind.service_apps_are_agents = false;
        assert_eq!(identity(&off, &c).unwrap().kind, IdentityKind::Human);
    }

    #[test]
    fn display_name_order() {
        let id = identity(
            &cfg(),
            &claims(
                json!({"sub": "u1", "email": "e@x", "preferred_username": "pu", "name": "Ada"}),
            ),
        )
        .unwrap();
        assert_eq!(id.name, "Ada");
        let id = identity(
            &cfg(),
            &claims(json!({"sub": "u1", "email": "e@x", "preferred_username": " "})),
        )
        .unwrap();
        assert_eq!(id.name, "e@x");
    }

    #[test]
    fn groups_shapes() {
        let mut c = cfg();
        c.groups_claim = "roles".into();
        let id = identity(
            &c,
            &claims(json!({"sub": "u", "roles": "a  b a", "groups": ["ignored"]})),
        )
        .unwrap();
        assert_eq!(id.groups, vec!["a", "b"]);
        let id = identity(&c, &claims(json!({"sub": "u"}))).unwrap();
        assert!(id.groups.is_empty());
        let err = identity(&c, &claims(json!({"sub": "u", "roles": ["a", 5]}))).unwrap_err();
        assert_eq!(err, Rejection::InvalidClaim("groups"));
        let err = identity(&c, &claims(json!({"sub": "u", "roles": {"a": 1}}))).unwrap_err();
        assert_eq!(err, Rejection::InvalidClaim("groups"));
    }

    #[test]
    fn group_caps() {
        let many: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
        let err = identity(&cfg(), &claims(json!({"sub": "u", "groups": many}))).unwrap_err();
        assert_eq!(err, Rejection::Malformed);
        let exactly: Vec<String> = (0..MAX_GROUPS).map(|i| format!("g{i}")).collect();
        assert_eq!(
            identity(&cfg(), &claims(json!({"sub": "u", "groups": exactly})))
                .unwrap()
                .groups
                .len(),
            MAX_GROUPS
        );
        let long = "x".repeat(MAX_GROUP_BYTES + 1);
        let err = identity(&cfg(), &claims(json!({"sub": "u", "groups": [long]}))).unwrap_err();
        assert_eq!(err, Rejection::Malformed);
        let long_in_string = format!("a {}", "x".repeat(MAX_GROUP_BYTES + 1));
        let err = identity(
            &cfg(),
            &claims(json!({"sub": "u", "groups": long_in_string})),
        )
        .unwrap_err();
        assert_eq!(err, Rejection::Malformed);
    }

    #[test]
    fn subject_is_required_and_a_string() {
        assert_eq!(
            identity(&cfg(), &claims(json!({}))).unwrap_err(),
            Rejection::MissingClaim("sub")
        );
        assert_eq!(
            identity(&cfg(), &claims(json!({"sub": ""}))).unwrap_err(),
            Rejection::MissingClaim("sub")
        );
        assert_eq!(
            identity(&cfg(), &claims(json!({"sub": 42}))).unwrap_err(),
            Rejection::InvalidClaim("sub")
        );
    }

    #[test]
    fn kind_mapping_order() {
        let mut c = cfg();
        c.kind = KindMapping {
            claim: Some("sluice_kind".into()),
            agent_groups: vec!["bots".into()],
            human_groups: vec!["staff".into()],
            service_apps_are_agents: true,
            default: IdentityKind::Human,
        };
        // The claim wins over everything.
        let t = json!({"sub": "s", "sluice_kind": "human", "groups": ["bots"], "cid": "s"});
        assert_eq!(identity(&c, &claims(t)).unwrap().kind, IdentityKind::Human);
        // An unrecognised claim value falls through to the groups.
        let t = json!({"sub": "s", "sluice_kind": "robot", "groups": ["bots", "staff"]});
        assert_eq!(identity(&c, &claims(t)).unwrap().kind, IdentityKind::Agent);
        // Human groups beat the service-app rule.
        let t = json!({"sub": "s", "groups": ["staff"], "cid": "s"});
        assert_eq!(identity(&c, &claims(t)).unwrap().kind, IdentityKind::Human);
        let t = json!({"sub": "s", "cid": "s"});
        assert_eq!(identity(&c, &claims(t)).unwrap().kind, IdentityKind::Agent);
        // A client id that is not the subject is an app acting for a user.
        let t = json!({"sub": "s", "cid": "other"});
        assert_eq!(identity(&c, &claims(t)).unwrap().kind, IdentityKind::Human);
        c.kind.default = IdentityKind::Agent;
        let t = json!({"sub": "s"});
        assert_eq!(identity(&c, &claims(t)).unwrap().kind, IdentityKind::Agent);
    }
}
