//! Deciding one statement, or a whole query string, under a profile and rules.

use serde::{Deserialize, Serialize};

use super::{Action, GuardrailRule, Profile, StatementFacts};

/// Who took a decision: a named rule, or a profile's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "profile")]
pub enum DecidedBy {
    /// A configured guardrail rule, named in [`Verdict::rule`].
    Rule,
    /// The profile's defaults (no rule matched, or a rule cannot override it).
    Profile(Profile),
}

/// The decision about a statement or query string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// What to do.
    pub action: Action,
    /// The deciding rule's name, or `default:<profile>-profile`,
    /// `default:read-only-guard` or `default:empty` for built-in decisions.
    pub rule: String,
    /// Why, in words for the client: `"DROP TABLE is ddl"`.
    pub reason: String,
    /// Whether a rule or a profile decided.
    pub by: DecidedBy,
    /// For a held statement: whether the session waits or fails at once.
    #[serde(default)]
    pub hold: super::Hold,
}

impl Verdict {
    /// The message for the client, e.g.
    /// `sluice: statement denied by rule "no-ddl": DROP TABLE is ddl` or
    /// `sluice: statement denied by profile "read": DELETE is write`.
    pub fn client_message(&self) -> String {
        let outcome = match self.action {
            Action::Allow => "allowed",
            Action::Deny => "denied",
            Action::Approve => "held for approval",
        };
        let by = match self.by {
            DecidedBy::Rule => format!("rule \"{}\"", self.rule),
            DecidedBy::Profile(p) => format!("profile \"{p}\""),
        };
        format!("sluice: statement {outcome} by {by}: {}", self.reason)
    }

    fn by_profile(action: Action, profile: Profile, rule: String, reason: String) -> Self {
        Self {
            action,
            rule,
            reason,
            by: DecidedBy::Profile(profile),
            hold: super::Hold::Wait,
        }
    }
}

/// Decides one statement.
///
/// 0. A statement the analysis marked [`StatementFacts::refused`] is
///    denied, whatever the profile and rules say: it would break what the
///    analysis relies on (the server reading statements as Sluice does).
/// 1. Under the `read` profile, a statement that turns read-only off is
///    denied, whatever the rules say: the read-only backend session is the
///    second wall behind classification, and no rule may take it down.
/// 2. Otherwise the rules are tried in order and the first that matches
///    decides (see [`GuardrailRule`] for matching).
/// 3. If none matches, the profile's defaults decide ([`Profile::allows`]):
///    `read` allows read, tcl and session; `write` adds write; `admin` allows
///    all but `unknown`, which fails closed. Profiles other than `read` judge
///    a statement that is `admin` only because it turns read-only off by its
///    [`StatementFacts::base_class`], since their sessions are not read-only.
pub fn evaluate(profile: Profile, rules: &[GuardrailRule], stmt: &StatementFacts) -> Verdict {
    if let Some(why) = &stmt.refused {
        return Verdict::by_profile(
            Action::Deny,
            profile,
            "default:invariant".to_string(),
            format!("{} is refused: {why}", stmt.command),
        );
    }
    if profile == Profile::Read && stmt.disables_read_only {
        return Verdict::by_profile(
            Action::Deny,
            profile,
            "default:read-only-guard".to_string(),
            format!(
                "{} turns read-only off, which the read profile never allows",
                stmt.command
            ),
        );
    }
    for rule in rules.iter().filter(|r| r.applies_to(profile)) {
        if let Some(phrase) = rule.matches(stmt) {
            let reason = match &rule.message {
                Some(message) if !message.trim().is_empty() => {
                    format!("{phrase}; {}", message.trim())
                }
                _ => phrase,
            };
            return Verdict {
                action: rule.action,
                rule: rule.name.clone(),
                reason,
                by: DecidedBy::Rule,
                hold: rule.hold,
            };
        }
    }
    let judged = match stmt.base_class {
        Some(base) if stmt.disables_read_only && profile != Profile::Read => base,
        _ => stmt.class,
    };
    let action = if profile.allows(judged) {
        Action::Allow
    } else {
        Action::Deny
    };
    Verdict::by_profile(
        action,
        profile,
        format!("default:{profile}-profile"),
        describe(stmt),
    )
}

/// Decides a whole query string from its statements' facts. Nothing of a
/// string is sent unless all of it may be, so: the first denial wins; failing
/// that, the first statement held for approval; otherwise the string is
/// allowed (with the first statement's verdict). Denial outranks approval so
/// that approving a string can never carry a statement that is denied
/// outright. An empty string is allowed.
pub fn evaluate_all(
    profile: Profile,
    rules: &[GuardrailRule],
    stmts: &[StatementFacts],
) -> Verdict {
    let mut first_allow = None;
    let mut first_approve = None;
    for stmt in stmts {
        let verdict = evaluate(profile, rules, stmt);
        match verdict.action {
            Action::Deny => return verdict,
            Action::Approve => first_approve = first_approve.or(Some(verdict)),
            Action::Allow => first_allow = first_allow.or(Some(verdict)),
        }
    }
    first_approve.or(first_allow).unwrap_or_else(|| {
        Verdict::by_profile(
            Action::Allow,
            profile,
            "default:empty".to_string(),
            "empty query".to_string(),
        )
    })
}

/// `"DELETE is write"`, with the analysis's main reason when the command
/// alone does not explain the class: `"SELECT is admin: calls pg_terminate_backend (admin)"`.
fn describe(stmt: &StatementFacts) -> String {
    match stmt.reasons.first() {
        Some(reason) if !reason.is_empty() => {
            format!("{} is {}: {reason}", stmt.command, stmt.class)
        }
        _ => format!("{} is {}", stmt.command, stmt.class),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardrail::StatementClass as C;

    fn stmt(class: C, command: &str) -> StatementFacts {
        StatementFacts::new(class, command)
    }

    fn rule(name: &str, action: Action, classes: &[C]) -> GuardrailRule {
        GuardrailRule {
            name: name.into(),
            action,
            classes: classes.to_vec(),
            tables: vec![],
            functions: vec![],
            fingerprints: vec![],
            commands: vec![],
            paths: vec![],
            profiles: vec![],
            message: None,
            hold: Default::default(),
        }
    }

    fn read_write_toggle(base: C) -> StatementFacts {
        let mut s = stmt(C::Admin, "BEGIN");
        s.disables_read_only = true;
        s.base_class = Some(base);
        s.reasons.push("turns read-only off".into());
        s
    }

    #[test]
    fn profile_defaults() {
        let v = evaluate(Profile::Read, &[], &stmt(C::Write, "DELETE"));
        assert_eq!(v.action, Action::Deny);
        assert_eq!(v.rule, "default:read-profile");
        assert_eq!(
            v.client_message(),
            "sluice: statement denied by profile \"read\": DELETE is write"
        );

        assert_eq!(
            evaluate(Profile::Read, &[], &stmt(C::Read, "SELECT")).action,
            Action::Allow
        );
        assert_eq!(
            evaluate(Profile::Read, &[], &stmt(C::Tcl, "BEGIN")).action,
            Action::Allow
        );
        assert_eq!(
            evaluate(Profile::Read, &[], &stmt(C::Session, "SET")).action,
            Action::Allow
        );
        assert_eq!(
            evaluate(Profile::Write, &[], &stmt(C::Write, "DELETE")).action,
            Action::Allow
        );
        assert_eq!(
            evaluate(Profile::Write, &[], &stmt(C::Ddl, "DROP TABLE")).action,
            Action::Deny
        );
        assert_eq!(
            evaluate(Profile::Admin, &[], &stmt(C::Ddl, "DROP TABLE")).action,
            Action::Allow
        );
        assert_eq!(
            evaluate(Profile::Admin, &[], &stmt(C::Admin, "VACUUM")).action,
            Action::Allow
        );
    }

    #[test]
    fn unknown_fails_closed_for_every_profile() {
        let s = StatementFacts::unknown("DO", "runs arbitrary code");
        for p in [Profile::Read, Profile::Write, Profile::Admin] {
            let v = evaluate(p, &[], &s);
            assert_eq!(v.action, Action::Deny, "{p}");
            assert_eq!(v.reason, "DO is unknown: runs arbitrary code");
        }
        // A catch-all allow is not explicit enough...
        assert_eq!(
            evaluate(Profile::Admin, &[rule("all", Action::Allow, &[])], &s).action,
            Action::Deny
        );
        // ...naming the class is.
        let v = evaluate(
            Profile::Read,
            &[rule("do-ok", Action::Allow, &[C::Unknown])],
            &s,
        );
        assert_eq!(v.action, Action::Allow);
        assert_eq!(v.rule, "do-ok");
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = [
            rule("no-ddl", Action::Deny, &[C::Ddl]),
            rule("ddl-ok", Action::Allow, &[C::Ddl]),
            rule("writes-need-approval", Action::Approve, &[C::Write]),
        ];
        let v = evaluate(Profile::Admin, &rules, &stmt(C::Ddl, "DROP TABLE"));
        assert_eq!(v.action, Action::Deny);
        assert_eq!(v.by, DecidedBy::Rule);
        assert_eq!(
            v.client_message(),
            "sluice: statement denied by rule \"no-ddl\": DROP TABLE is ddl"
        );

        let v = evaluate(Profile::Read, &rules, &stmt(C::Write, "UPDATE"));
        assert_eq!(v.action, Action::Approve);
        assert_eq!(
            v.client_message(),
            "sluice: statement held for approval by rule \"writes-need-approval\": UPDATE is write"
        );
        // No rule matches a read: the profile decides.
        assert_eq!(
            evaluate(Profile::Read, &rules, &stmt(C::Read, "SELECT")).rule,
            "default:read-profile"
        );
    }

    #[test]
    fn rule_message_is_appended() {
        let mut r = rule("no-ddl", Action::Deny, &[C::Ddl]);
        r.message = Some("use the migration pipeline".into());
        let v = evaluate(Profile::Admin, &[r], &stmt(C::Ddl, "ALTER TABLE"));
        assert_eq!(
            v.client_message(),
            "sluice: statement denied by rule \"no-ddl\": ALTER TABLE is ddl; use the migration pipeline"
        );
    }

    #[test]
    fn rules_can_widen_a_profile() {
        let allow = rule("writes-ok", Action::Allow, &[C::Write]);
        assert_eq!(
            evaluate(Profile::Read, &[allow], &stmt(C::Write, "INSERT")).action,
            Action::Allow
        );
    }

    #[test]
    fn read_only_toggle_is_always_denied_under_read() {
        let s = read_write_toggle(C::Tcl);
        let allow_all = [
            rule("all", Action::Allow, &[]),
            rule("admin", Action::Allow, &[C::Admin]),
        ];
        let v = evaluate(Profile::Read, &allow_all, &s);
        assert_eq!(v.action, Action::Deny);
        assert_eq!(v.rule, "default:read-only-guard");
        assert_eq!(
            v.client_message(),
            "sluice: statement denied by profile \"read\": BEGIN turns read-only off, which the read profile never allows"
        );
    }

    #[test]
    fn read_only_toggle_is_judged_by_base_class_elsewhere() {
        assert_eq!(
            evaluate(Profile::Write, &[], &read_write_toggle(C::Tcl)).action,
            Action::Allow
        );
        assert_eq!(
            evaluate(Profile::Write, &[], &read_write_toggle(C::Ddl)).action,
            Action::Deny
        );
        // Without a base class, the class stands.
        let mut s = read_write_toggle(C::Tcl);
        s.base_class = None;
        assert_eq!(evaluate(Profile::Write, &[], &s).action, Action::Deny);
        assert_eq!(evaluate(Profile::Admin, &[], &s).action, Action::Allow);
        // Rules still see the admin class.
        let deny_admin = rule("no-admin", Action::Deny, &[C::Admin]);
        assert_eq!(
            evaluate(Profile::Write, &[deny_admin], &read_write_toggle(C::Tcl)).action,
            Action::Deny
        );
    }

    #[test]
    fn whole_string_denial_outranks_approval() {
        let rules = [rule("approve-writes", Action::Approve, &[C::Write])];
        let stmts = [
            stmt(C::Read, "SELECT"),
            stmt(C::Write, "UPDATE"),
            stmt(C::Ddl, "DROP TABLE"),
        ];
        let v = evaluate_all(Profile::Read, &rules, &stmts);
        assert_eq!(v.action, Action::Deny);
        assert_eq!(v.reason, "DROP TABLE is ddl");

        let v = evaluate_all(Profile::Read, &rules, &stmts[..2]);
        assert_eq!(v.action, Action::Approve);
        assert_eq!(v.rule, "approve-writes");

        let v = evaluate_all(Profile::Read, &rules, &stmts[..1]);
        assert_eq!(v.action, Action::Allow);
    }

    #[test]
    fn empty_string_is_allowed() {
        let v = evaluate_all(Profile::Read, &[], &[]);
        assert_eq!(v.action, Action::Allow);
        assert_eq!(v.rule, "default:empty");
    }

    #[test]
    fn verdict_serializes() {
        let v = evaluate(Profile::Read, &[], &stmt(C::Write, "DELETE"));
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["action"], "deny");
        assert_eq!(json["by"]["kind"], "profile");
        assert_eq!(json["by"]["profile"], "read");
    }

    #[test]
    fn rules_can_be_limited_to_profiles() {
        let mut hold = rule("writes-need-approval", Action::Approve, &[C::Write]);
        hold.profiles = vec![Profile::Write];
        let update = StatementFacts::new(C::Write, "UPDATE");
        let rules = [hold];
        assert_eq!(
            evaluate(Profile::Write, &rules, &update).action,
            Action::Approve
        );
        // A read grant never reaches the approval: its profile denies writes.
        let v = evaluate(Profile::Read, &rules, &update);
        assert_eq!(v.action, Action::Deny);
        assert_eq!(v.by, DecidedBy::Profile(Profile::Read));
    }
}
