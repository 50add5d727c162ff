//! Guardrail rules as written in configuration, and when one matches.

use serde::{Deserialize, Serialize};

use super::{StatementClass, StatementFacts, glob_match};

/// What a matching rule does with a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Forward the statement.
    Allow,
    /// Refuse it with an error naming the rule.
    Deny,
    /// Hold it until an approver decides.
    Approve,
}

impl Action {
    /// The lowercase name used in configuration and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Approve => "approve",
        }
    }
}

/// What a session does when a rule holds its statement for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hold {
    /// The session waits for the decision (up to `[approvals]
    /// statement_timeout`), then runs or refuses the statement. Suits
    /// people at a prompt; most drivers hide the NOTICE that says why.
    #[default]
    Wait,
    /// The statement is refused at once with an error naming the approval
    /// and where to decide it; the same statement run again after the
    /// approval passes. Suits agents: they see why, and can retry.
    Fail,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One per-connection rule. It matches a statement when every criterion that
/// is not empty matches; a rule with no criteria matches every statement.
///
/// Table and function patterns are globs (`*`, `?`), compared
/// case-insensitively. An unqualified pattern (`customers`, `audit_*`)
/// matches that name in any schema; a qualified one (`public.customers`,
/// `*.secrets`) also names the schema.
///
/// Rules that widen access are read conservatively, so that one harmless
/// name cannot carry a harmful statement through:
/// - an `allow` rule with `tables` (or `functions`) matches only when the
///   statement touches at least one table (calls at least one function) and
///   every one of them matches a pattern, whereas `deny` and `approve` rules
///   match when any one does;
/// - for an `allow` rule, a schema-qualified pattern does not match a name
///   the statement left unqualified (its schema depends on `search_path`),
///   unless the pattern's schema part is `*`; `deny` and `approve` rules do
///   match it;
/// - an `allow` rule matches an `unknown` statement only if `classes` names
///   `unknown` explicitly: fingerprints ignore constants, so one `DO` block's
///   fingerprint is every `DO` block's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailRule {
    /// Names the rule in client errors and audit records.
    pub name: String,
    /// What to do with a matching statement.
    pub action: Action,
    /// Statement classes the rule applies to; empty means any.
    #[serde(default)]
    pub classes: Vec<StatementClass>,
    /// Table globs, optionally schema-qualified; empty means any.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Function globs, optionally schema-qualified; empty means any.
    #[serde(default)]
    pub functions: Vec<String>,
    /// Statement fingerprints (hex); empty means any.
    #[serde(default)]
    pub fingerprints: Vec<String>,
    /// Command globs, matched against each command as written (an SSH
    /// command line's simple commands: `"sudo *"`, `"systemctl restart *"`;
    /// for SQL, the command name: `"DROP TABLE"`); empty means any.
    #[serde(default)]
    pub commands: Vec<String>,
    /// File path globs (SFTP operations, the files a command's
    /// redirections read or write); empty means any. Matched like `tables`.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Grant profiles the rule applies to (`read`, `write`, `admin`); empty
    /// means every grant. Lets a connection hold writes for approval under
    /// `write` grants without offering `read` grants a path to write.
    #[serde(default)]
    pub profiles: Vec<super::Profile>,
    /// Extra words for the client when the rule denies or holds a statement.
    #[serde(default)]
    pub message: Option<String>,
    /// For `approve` rules: `"wait"` (the session waits for the decision;
    /// the default) or `"fail"` (refused at once, naming the approval; the
    /// same statement passes when run again after approval).
    #[serde(default)]
    pub hold: Hold,
}

impl GuardrailRule {
    /// True when the rule applies to grants of `profile`.
    pub fn applies_to(&self, profile: super::Profile) -> bool {
        self.profiles.is_empty() || self.profiles.contains(&profile)
    }

    /// Every problem with this rule, for `config check`.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push("guardrail rule needs a name".to_string());
        }
        if self.name.starts_with("default:") {
            problems.push(format!(
                "guardrail rule name {:?}: the prefix \"default:\" is reserved for profile defaults",
                self.name
            ));
        }
        for (what, patterns) in [
            ("tables", &self.tables),
            ("functions", &self.functions),
            ("commands", &self.commands),
            ("paths", &self.paths),
        ] {
            if patterns.iter().any(|p| p.trim().is_empty()) {
                problems.push(format!(
                    "guardrail rule {:?}: empty pattern in {what}",
                    self.name
                ));
            }
        }
        for fp in &self.fingerprints {
            if fp.is_empty() || !fp.chars().all(|c| c.is_ascii_hexdigit()) {
                problems.push(format!(
                    "guardrail rule {:?}: fingerprint {fp:?} is not hex",
                    self.name
                ));
            }
        }
        problems
    }

    /// If the rule matches the statement, a short phrase saying why, such as
    /// `"DROP TABLE is ddl"` or `"SELECT reads public.secrets"`.
    pub fn matches(&self, stmt: &StatementFacts) -> Option<String> {
        let widening = self.action == Action::Allow;
        if widening
            && stmt.class == StatementClass::Unknown
            && !self.classes.contains(&StatementClass::Unknown)
        {
            return None;
        }
        if !self.classes.is_empty() && !self.classes.contains(&stmt.class) {
            return None;
        }
        let table = if self.tables.is_empty() {
            None
        } else {
            Some(pick(&self.tables, stmt.tables(), widening)?)
        };
        let path = if self.paths.is_empty() {
            None
        } else {
            Some(pick_paths(&self.paths, stmt.tables(), widening)?)
        };
        if !self.commands.is_empty()
            && !self
                .commands
                .iter()
                .any(|c| super::glob::glob_match(c, &stmt.command))
        {
            return None;
        }
        let function = if self.functions.is_empty() {
            None
        } else {
            Some(pick(
                &self.functions,
                stmt.functions.iter().map(String::as_str),
                widening,
            )?)
        };
        if !self.fingerprints.is_empty()
            && !self
                .fingerprints
                .iter()
                .any(|f| f.eq_ignore_ascii_case(&stmt.fingerprint))
        {
            return None;
        }
        let command = &stmt.command;
        Some(if let Some(f) = function {
            format!("{command} calls {f}")
        } else if let Some(t) = table.or(path) {
            let verb = if stmt.tables_written.iter().any(|w| w == t) {
                "writes"
            } else {
                "reads"
            };
            format!("{command} {verb} {t}")
        } else if !self.fingerprints.is_empty() {
            format!("{command} has fingerprint {}", stmt.fingerprint)
        } else {
            format!("{command} is {}", stmt.class)
        })
    }
}

/// The name that makes the patterns match, under any-of (deny, approve) or
/// every-of (allow) semantics; `None` when the patterns do not match.
fn pick<'a>(
    patterns: &[String],
    names: impl Iterator<Item = &'a str>,
    every: bool,
) -> Option<&'a str> {
    let mut first = None;
    for name in names {
        let hit = patterns.iter().any(|p| name_matches(p, name, every));
        match (hit, every) {
            (true, false) => return Some(name),
            (false, true) => return None,
            (true, true) => first = first.or(Some(name)),
            (false, false) => {}
        }
    }
    first
}

/// Whether a possibly-qualified glob matches a possibly-qualified name; see
/// [`GuardrailRule`] for why `strict` (allow rules) treats unqualified names
/// differently.
/// [`pick`] for file paths: whole paths, case kept (a dot in a file name
/// is not a schema's).
fn pick_paths<'a>(
    patterns: &[String],
    paths: impl Iterator<Item = &'a str>,
    every: bool,
) -> Option<&'a str> {
    let mut first = None;
    for path in paths {
        let hit = patterns
            .iter()
            .any(|p| super::glob::glob_match_exact(p.trim(), path));
        match (hit, every) {
            (true, false) => return Some(path),
            (false, true) => return None,
            (true, true) => first = first.or(Some(path)),
            (false, false) => {}
        }
    }
    first
}

fn name_matches(pattern: &str, name: &str, strict: bool) -> bool {
    let pattern = pattern.trim();
    match (pattern.split_once('.'), name.split_once('.')) {
        (None, None) => glob_match(pattern, name),
        (None, Some((_, object))) => glob_match(pattern, object),
        (Some(_), Some(_)) => glob_match(pattern, name),
        (Some((schema, object)), None) => {
            let any_schema = schema.chars().all(|c| c == '*');
            (any_schema || !strict) && glob_match(object, name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StatementClass as C;

    fn rule(action: Action) -> GuardrailRule {
        GuardrailRule {
            name: "r".into(),
            action,
            classes: vec![],
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

    fn facts(
        class: C,
        command: &str,
        read: &[&str],
        written: &[&str],
        functions: &[&str],
    ) -> StatementFacts {
        let mut f = StatementFacts::new(class, command);
        f.tables_read = read.iter().map(|s| s.to_string()).collect();
        f.tables_written = written.iter().map(|s| s.to_string()).collect();
        f.functions = functions.iter().map(|s| s.to_string()).collect();
        f.fingerprint = "abcdef0123456789".into();
        f
    }

    #[test]
    fn commands_and_paths_match_shell_commands_and_files() {
        let mut sudo = rule(Action::Approve);
        sudo.commands = vec!["sudo *".into()];
        let cmd = facts(
            C::Admin,
            "sudo systemctl restart nginx",
            &[],
            &[],
            &["sudo"],
        );
        assert!(sudo.matches(&cmd).is_some());
        let plain = facts(
            C::Admin,
            "systemctl restart nginx",
            &[],
            &[],
            &["systemctl"],
        );
        assert!(sudo.matches(&plain).is_none());

        let mut logs = rule(Action::Allow);
        logs.paths = vec!["/var/log/*".into()];
        let read_log = facts(C::Read, "read", &["/var/log/sys.log"], &[], &[]);
        let read_etc = facts(C::Read, "read", &["/etc/shadow"], &[], &[]);
        assert!(logs.matches(&read_log).is_some());
        assert!(logs.matches(&read_etc).is_none());
    }

    #[test]
    fn deserializes_and_rejects_unknown_fields() {
        let r: GuardrailRule = toml::from_str(
            "name = \"no-ddl\"\naction = \"deny\"\nclasses = [\"ddl\", \"dcl\"]\ntables = [\"*.secrets\"]",
        )
        .unwrap();
        assert_eq!(r.action, Action::Deny);
        assert_eq!(r.classes, vec![C::Ddl, C::Dcl]);
        assert!(
            toml::from_str::<GuardrailRule>("name = \"x\"\naction = \"deny\"\ntable = []").is_err()
        );
        assert!(toml::from_str::<GuardrailRule>("name = \"x\"\naction = \"block\"").is_err());
        assert!(
            toml::from_str::<GuardrailRule>("name = \"x\"\naction = \"deny\"\nclasses = [\"DDL\"]")
                .is_err()
        );
    }

    #[test]
    fn validate_reports_every_problem() {
        let mut r = rule(Action::Deny);
        r.name = "default:mine".into();
        r.tables = vec!["".into()];
        r.fingerprints = vec!["xyz".into()];
        assert_eq!(r.validate().len(), 3);
        assert!(rule(Action::Deny).validate().is_empty());
    }

    #[test]
    fn empty_rule_matches_everything_but_unknown_for_allow() {
        let stmt = facts(C::Ddl, "DROP TABLE", &[], &["t"], &[]);
        assert_eq!(
            rule(Action::Deny).matches(&stmt).as_deref(),
            Some("DROP TABLE is ddl")
        );
        let unknown = facts(C::Unknown, "DO", &[], &[], &[]);
        assert!(rule(Action::Deny).matches(&unknown).is_some());
        assert!(rule(Action::Allow).matches(&unknown).is_none());
        let mut explicit = rule(Action::Allow);
        explicit.classes = vec![C::Unknown];
        assert!(explicit.matches(&unknown).is_some());
    }

    #[test]
    fn classes_criterion() {
        let mut r = rule(Action::Deny);
        r.classes = vec![C::Ddl, C::Dcl];
        assert!(
            r.matches(&facts(C::Ddl, "CREATE TABLE", &[], &["t"], &[]))
                .is_some()
        );
        assert!(
            r.matches(&facts(C::Write, "DELETE", &[], &["t"], &[]))
                .is_none()
        );
    }

    #[test]
    fn table_patterns_any_for_deny() {
        let mut r = rule(Action::Deny);
        r.tables = vec!["*.secrets".into(), "audit_*".into()];
        let m = |read: &[&str], written: &[&str]| {
            r.matches(&facts(C::Read, "SELECT", read, written, &[]))
        };
        assert_eq!(
            m(&["public.secrets"], &[]).as_deref(),
            Some("SELECT reads public.secrets")
        );
        assert_eq!(
            m(&["orders", "secrets"], &[]).as_deref(),
            Some("SELECT reads secrets")
        );
        assert_eq!(
            m(&[], &["audit_log"]).as_deref(),
            Some("SELECT writes audit_log")
        );
        assert_eq!(
            m(&[], &["app.audit_log"]).as_deref(),
            Some("SELECT writes app.audit_log")
        );
        assert!(m(&["orders"], &[]).is_none());
        assert!(m(&[], &[]).is_none());
        assert_eq!(
            m(&["PUBLIC.SECRETS"], &[]).as_deref(),
            Some("SELECT reads PUBLIC.SECRETS")
        );
    }

    #[test]
    fn qualified_pattern_and_unqualified_name() {
        let mut deny = rule(Action::Deny);
        deny.tables = vec!["public.customers".into()];
        let unqualified = facts(C::Write, "DELETE", &[], &["customers"], &[]);
        // It may resolve to public.customers: a deny rule must catch it.
        assert!(deny.matches(&unqualified).is_some());
        assert!(
            deny.matches(&facts(C::Write, "DELETE", &[], &["other.customers"], &[]))
                .is_none()
        );

        let mut allow = rule(Action::Allow);
        allow.tables = vec!["public.customers".into()];
        // ...but an allow rule cannot know where search_path points.
        assert!(allow.matches(&unqualified).is_none());
        assert!(
            allow
                .matches(&facts(C::Write, "DELETE", &[], &["public.customers"], &[]))
                .is_some()
        );
        allow.tables = vec!["*.customers".into()];
        assert!(allow.matches(&unqualified).is_some());
    }

    #[test]
    fn allow_needs_every_table_and_function() {
        let mut r = rule(Action::Allow);
        r.classes = vec![C::Write];
        r.tables = vec!["scratch".into()];
        assert!(
            r.matches(&facts(C::Write, "INSERT", &[], &["scratch"], &[]))
                .is_some()
        );
        // A data-modifying CTE on another table rides along: no match.
        assert!(
            r.matches(&facts(C::Write, "INSERT", &[], &["scratch", "orders"], &[]))
                .is_none()
        );
        assert!(
            r.matches(&facts(C::Write, "INSERT", &[], &[], &[]))
                .is_none()
        );

        let mut f = rule(Action::Allow);
        f.functions = vec!["app.safe_*".into()];
        assert!(
            f.matches(&facts(C::Unknown, "SELECT", &[], &[], &["app.safe_one"]))
                .is_none()
        );
        f.classes = vec![C::Unknown];
        assert!(
            f.matches(&facts(C::Unknown, "SELECT", &[], &[], &["app.safe_one"]))
                .is_some()
        );
        assert!(
            f.matches(&facts(
                C::Unknown,
                "SELECT",
                &[],
                &[],
                &["app.safe_one", "pg_terminate_backend"]
            ))
            .is_none()
        );
    }

    #[test]
    fn function_patterns_for_deny() {
        let mut r = rule(Action::Deny);
        r.functions = vec!["pg_sleep*".into()];
        let stmt = facts(C::Read, "SELECT", &["t"], &[], &["count", "pg_sleep"]);
        assert_eq!(r.matches(&stmt).as_deref(), Some("SELECT calls pg_sleep"));
        assert!(
            r.matches(&facts(C::Read, "SELECT", &[], &[], &["count"]))
                .is_none()
        );
    }

    #[test]
    fn fingerprints_criterion() {
        let mut r = rule(Action::Approve);
        r.fingerprints = vec!["ABCDEF0123456789".into()];
        let stmt = facts(C::Write, "UPDATE", &[], &["t"], &[]);
        assert_eq!(
            r.matches(&stmt).as_deref(),
            Some("UPDATE has fingerprint abcdef0123456789")
        );
        r.fingerprints = vec!["0000000000000000".into()];
        assert!(r.matches(&stmt).is_none());
    }

    #[test]
    fn every_criterion_must_match() {
        let mut r = rule(Action::Deny);
        r.classes = vec![C::Write];
        r.tables = vec!["orders".into()];
        assert!(
            r.matches(&facts(C::Write, "DELETE", &[], &["orders"], &[]))
                .is_some()
        );
        assert!(
            r.matches(&facts(C::Read, "SELECT", &["orders"], &[], &[]))
                .is_none()
        );
        assert!(
            r.matches(&facts(C::Write, "DELETE", &[], &["items"], &[]))
                .is_none()
        );
    }
}
