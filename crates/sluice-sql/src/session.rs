//! Session settings: which a client may change, and how Sluice judges each
//! change. The list is an allow-list: a setting not named here is `admin`.
//!
//! Why an allow-list: some settings change how the server *reads* the next
//! statement (`standard_conforming_strings` turns `'a\'` into an unfinished
//! literal, `client_encoding` can turn a backslash into the second byte of
//! a character, `search_path` decides which function a name calls). Sluice
//! parses with fixed lexing rules and resolves names with `pg_catalog`
//! first, so the backend session must keep the same rules. Sluice pins
//! those at backend session start ([`PINNED`]) and refuses any other value
//! whatever the profile or the rules say (`refused`, the guardrail's
//! invariant). Settings that change who the session is (`role`), what
//! DBAs see it as (`application_name`, which carries the grant id), what it
//! may cost (`work_mem`, `temp_file_limit`), or mean something to the
//! application (custom `app.*` settings, which row-level security policies
//! often read) are not a client's to change either.
//!
//! The `read` profile opens its backend session read-only. Any way of
//! undoing that (`SET`, `RESET`, `SET … TO DEFAULT`, `SET SESSION
//! CHARACTERISTICS`, `SET TRANSACTION`, `BEGIN READ WRITE`, `set_config`)
//! is flagged `disables_read_only` and classed `admin`, and the guardrail
//! refuses it under the read profile whatever the rules say.
//!
//! Timeouts (`statement_timeout`, `lock_timeout`, …) are `session`, but
//! `0` (no timeout) and values above the profile's cap are refused by the
//! proxy, which knows the cap: their values are reported in
//! [`StatementFacts::settings`](sluice_core::guardrail::StatementFacts).

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;
use sluice_core::guardrail::StatementClass;

use crate::names;

/// Settings Sluice pins at backend session start, with their values: the
/// server must lex and decode statements exactly as the analysis does.
pub const PINNED: &[(&str, &str)] = &[
    ("client_encoding", "UTF8"),
    ("standard_conforming_strings", "on"),
    ("backslash_quote", "safe_encoding"),
];

/// Timeouts: a client may shorten them; `0` and values above the profile's
/// cap are refused by the proxy.
pub const TIMEOUTS: &[&str] = &[
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "transaction_timeout",
];

/// Settings that only change how values are shown or planned, or this
/// session's transaction modes: any value.
const FREE: &[&str] = &[
    "bytea_output",
    "client_min_messages",
    "constraint_exclusion",
    "cpu_index_tuple_cost",
    "cpu_operator_cost",
    "cpu_tuple_cost",
    "cursor_tuple_fraction",
    "datestyle",
    "default_statistics_target",
    "default_text_search_config",
    "default_transaction_deferrable",
    "default_transaction_isolation",
    "effective_cache_size",
    "extra_float_digits",
    "from_collapse_limit",
    "geqo",
    "geqo_effort",
    "geqo_threshold",
    "intervalstyle",
    "jit",
    "join_collapse_limit",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "parallel_setup_cost",
    "parallel_tuple_cost",
    "plan_cache_mode",
    "random_page_cost",
    "seq_page_cost",
    "synchronous_commit",
    "timezone",
    "transaction_deferrable",
    "transaction_isolation",
    "xmlbinary",
    "xmloption",
];

/// Settings that keep the session read-only.
const READ_ONLY_SETTINGS: &[&str] = &["default_transaction_read_only", "transaction_read_only"];

/// How Sluice treats a change to one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingRule {
    /// Harmless to what statements mean: any value.
    Free,
    /// Keeps the session read-only: only a true value.
    ReadOnly,
    /// Pinned by Sluice ([`PINNED`]): only the pinned value.
    Pinned(&'static str),
    /// Set by Sluice to identify the session to DBAs (`application_name`).
    Identity,
    /// `search_path`: only with `pg_catalog` first.
    SearchPath,
    /// A timeout: a positive value within the profile's cap.
    Timeout,
    /// Changes whom the session acts as.
    Role,
    /// Anything else: not a client's to change.
    NotAllowed,
}

/// The rule for a setting name (any case).
pub fn rule_for(name: &str) -> SettingRule {
    let name = name.to_ascii_lowercase();
    let name = name.as_str();
    if let Some((_, v)) = PINNED.iter().find(|(n, _)| *n == name) {
        return SettingRule::Pinned(v);
    }
    if READ_ONLY_SETTINGS.contains(&name) {
        return SettingRule::ReadOnly;
    }
    if TIMEOUTS.contains(&name) {
        return SettingRule::Timeout;
    }
    if FREE.contains(&name) || name.starts_with("enable_") {
        return SettingRule::Free;
    }
    match name {
        "application_name" => SettingRule::Identity,
        "search_path" => SettingRule::SearchPath,
        "role" | "session_authorization" => SettingRule::Role,
        _ => SettingRule::NotAllowed,
    }
}

/// What a setting change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Effect {
    pub class: StatementClass,
    pub reason: Option<String>,
    /// Turns read-only off (then `class` is `admin`).
    pub toggles: bool,
    /// Refused whatever the profile and rules say, and why.
    pub refused: Option<String>,
}

impl Effect {
    fn harmless() -> Self {
        Self {
            class: StatementClass::Session,
            reason: None,
            toggles: false,
            refused: None,
        }
    }

    fn admin(reason: String) -> Self {
        Self {
            class: StatementClass::Admin,
            reason: Some(reason),
            toggles: false,
            refused: None,
        }
    }

    fn read_only_off(reason: String) -> Self {
        Self {
            toggles: true,
            ..Self::admin(reason)
        }
    }

    fn refused(reason: String) -> Self {
        Self {
            refused: Some(reason.clone()),
            ..Self::admin(reason)
        }
    }
}

/// The effect of setting `name` to `values` (`None`: reset to the session's
/// start value, or a value that is not a constant).
pub(crate) fn setting(name: &str, values: Option<&[String]>) -> Effect {
    let name = name.to_ascii_lowercase();
    let one = match values {
        Some([v]) => Some(v.as_str()),
        _ => None,
    };
    match rule_for(&name) {
        SettingRule::Free => Effect::harmless(),
        SettingRule::ReadOnly if one.is_some_and(is_true) => Effect::harmless(),
        SettingRule::ReadOnly => Effect::read_only_off(format!("turns read-only off ({name})")),
        // A reset returns to the start value, which is the pinned one.
        SettingRule::Pinned(_) if values.is_none() => Effect::harmless(),
        SettingRule::Pinned(pinned) if one.is_some_and(|v| same_value(v, pinned)) => {
            Effect::harmless()
        }
        SettingRule::Pinned(pinned) => Effect::refused(format!(
            "{name} stays {pinned} through Sluice: another value would make the server read \
             statements differently from Sluice's analysis"
        )),
        SettingRule::Identity => Effect::refused(format!(
            "{name} is set by Sluice (it carries the grant id) and cannot be changed"
        )),
        SettingRule::SearchPath => search_path(values),
        // The proxy checks the value against the profile's cap.
        SettingRule::Timeout => Effect::harmless(),
        SettingRule::Role => Effect::admin("changes the role the session acts as".to_string()),
        SettingRule::NotAllowed => Effect::admin(format!(
            "changes setting {name}, which agents may not change through Sluice"
        )),
    }
}

/// `pg_catalog` is searched first unless the path names it later; a schema
/// before it could then shadow built-ins with user functions, and Sluice
/// resolves names with `pg_catalog` first.
fn search_path(values: Option<&[String]>) -> Effect {
    let Some(values) = values else {
        return Effect::harmless();
    };
    let schemas: Vec<String> = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let late = schemas
        .iter()
        .position(|s| s == "pg_catalog")
        .is_some_and(|i| i > 0);
    if late {
        return Effect::refused(
            "puts schemas before pg_catalog in search_path (they could shadow built-ins)"
                .to_string(),
        );
    }
    Effect::harmless()
}

/// Whether two spellings of a setting value are the same: PostgreSQL
/// ignores case, and encoding names also ignore `-` and `_`.
fn same_value(given: &str, pinned: &str) -> bool {
    let norm = |v: &str| -> String {
        v.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let (g, p) = (norm(given), norm(pinned));
    g == p || (p == "utf8" && g == "unicode") || (p == "on" && is_true(given))
}

/// `SET`, `SET LOCAL`, `RESET`, `SET … TO DEFAULT`, `SET TRANSACTION`,
/// `SET SESSION CHARACTERISTICS`: its command name and effect.
pub(crate) fn variable_set(stmt: &pb::VariableSetStmt) -> (String, Effect) {
    use pb::VariableSetKind as K;
    let kind = K::try_from(stmt.kind).unwrap_or(K::Undefined);
    let verb = if matches!(kind, K::VarReset | K::VarResetAll) {
        "RESET"
    } else {
        "SET"
    };
    let command = match stmt.name.as_str() {
        "role" => format!("{verb} ROLE"),
        "session_authorization" => format!("{verb} SESSION AUTHORIZATION"),
        _ => verb.to_string(),
    };
    let effect = match kind {
        K::VarResetAll => reset_all("RESET ALL"),
        K::VarSetMulti => transaction_options(&stmt.args).unwrap_or_else(Effect::harmless),
        K::VarSetValue => {
            let values: Option<Vec<String>> = stmt.args.iter().map(names::const_setting).collect();
            setting(&stmt.name, values.as_deref())
        }
        K::VarSetDefault | K::VarReset | K::VarSetCurrent => setting(&stmt.name, None),
        K::Undefined => Effect {
            class: StatementClass::Unknown,
            reason: Some("unrecognized SET form".to_string()),
            toggles: false,
            refused: None,
        },
    };
    (command, effect)
}

/// `RESET ALL` (and `DISCARD ALL`, which runs it) returns every setting to
/// its start value: `application_name` would lose the grant id, and for a
/// read-only session an unpinned server default could turn read-only off.
fn reset_all(what: &str) -> Effect {
    let mut e = Effect::refused(format!(
        "{what} would reset application_name, which Sluice sets to identify the session \
         (and may turn read-only off)"
    ));
    e.toggles = true;
    e
}

/// The settings a statement changes, with the constant value when there is
/// one (`None` for a reset or a computed value).
pub(crate) fn changes(stmt: &pb::VariableSetStmt) -> Option<(String, Option<String>)> {
    use pb::VariableSetKind as K;
    let name = stmt.name.to_ascii_lowercase();
    match K::try_from(stmt.kind).ok()? {
        K::VarSetValue => {
            let values: Option<Vec<String>> = stmt.args.iter().map(names::const_setting).collect();
            let value = match values.as_deref() {
                Some([v]) => Some(v.clone()),
                _ => None,
            };
            Some((name, value))
        }
        K::VarSetDefault | K::VarReset | K::VarSetCurrent => Some((name, None)),
        _ => None,
    }
}

/// Transaction modes of `BEGIN`/`START TRANSACTION`/`SET TRANSACTION`/`SET
/// SESSION CHARACTERISTICS`: `Some` when they include `READ WRITE`.
pub(crate) fn transaction_options(options: &[pb::Node]) -> Option<Effect> {
    let read_write = options.iter().any(|o| match &o.node {
        Some(N::DefElem(d)) if d.defname == "transaction_read_only" => {
            let value = d.arg.as_deref().and_then(names::const_setting);
            !value.as_deref().is_some_and(is_true)
        }
        _ => false,
    });
    read_write.then(|| Effect::read_only_off("READ WRITE turns read-only off".to_string()))
}

/// `set_config(name, value, is_local)` in a query: judged like the `SET` it
/// performs, or `admin` when the setting's name is computed.
pub(crate) fn set_config(args: &[pb::Node]) -> (Effect, Option<(String, Option<String>)>) {
    let Some(name) = args.first().and_then(names::const_str) else {
        return (
            Effect::admin("set_config with a computed setting name".to_string()),
            None,
        );
    };
    let value = args.get(1).and_then(names::const_setting);
    if value.is_none() {
        // A computed value cannot be judged (and is no reset either).
        let what = format!(
            "set_config of {} with a computed value",
            name.to_ascii_lowercase()
        );
        let effect = match rule_for(name) {
            SettingRule::Free => Effect::harmless(),
            SettingRule::ReadOnly => Effect::read_only_off(what),
            SettingRule::Role | SettingRule::NotAllowed => Effect::admin(what),
            SettingRule::Pinned(_)
            | SettingRule::Identity
            | SettingRule::SearchPath
            | SettingRule::Timeout => Effect::refused(what),
        };
        return (effect, None);
    }
    let mut effect = setting(name, value.as_ref().map(std::slice::from_ref));
    if effect.reason.is_none() {
        effect.reason = Some(format!("set_config changes {}", name.to_ascii_lowercase()));
    }
    (effect, Some((name.to_ascii_lowercase(), value)))
}

/// `DISCARD ALL` resets every setting (as `RESET ALL`) and the role; the
/// other forms only drop caches and temporary objects.
pub(crate) fn discard(target: i32) -> (String, Effect) {
    use pb::DiscardMode as D;
    match D::try_from(target) {
        Ok(D::DiscardAll) => ("DISCARD ALL".to_string(), reset_all("DISCARD ALL")),
        Ok(D::DiscardPlans) => ("DISCARD PLANS".to_string(), Effect::harmless()),
        Ok(D::DiscardSequences) => ("DISCARD SEQUENCES".to_string(), Effect::harmless()),
        Ok(D::DiscardTemp) => ("DISCARD TEMP".to_string(), Effect::harmless()),
        _ => (
            "DISCARD".to_string(),
            Effect {
                class: StatementClass::Unknown,
                reason: Some("unrecognized DISCARD".into()),
                toggles: false,
                refused: None,
            },
        ),
    }
}

/// Whether PostgreSQL's boolean parser reads the value as true: `on`, `true`,
/// `yes`, `1`, or a unique prefix of `true`/`yes`. Anything else, including
/// values it would reject, is treated as not-true so doubt fails closed.
fn is_true(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    !v.is_empty() && (v == "1" || v == "on" || "true".starts_with(&v) || "yes".starts_with(&v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use StatementClass as C;

    fn set(name: &str, value: &str) -> Effect {
        setting(name, Some(&[value.to_string()]))
    }

    #[test]
    fn truthiness() {
        for v in ["on", "ON", "true", "t", "tr", "yes", "y", "1", " on "] {
            assert!(is_true(v), "{v}");
        }
        for v in ["off", "false", "f", "no", "n", "0", "o", "", "maybe", "2"] {
            assert!(!is_true(v), "{v}");
        }
    }

    #[test]
    fn read_only_settings() {
        assert!(set("default_transaction_read_only", "off").toggles);
        assert!(set("transaction_read_only", "false").toggles);
        assert!(set("Default_Transaction_Read_Only", "0").toggles);
        assert!(setting("default_transaction_read_only", None).toggles);
        assert!(!set("default_transaction_read_only", "on").toggles);
        assert_eq!(set("default_transaction_read_only", "on").class, C::Session);
        assert_eq!(set("transaction_read_only", "off").class, C::Admin);
    }

    #[test]
    fn pinned_settings_keep_their_value() {
        for (name, value) in [
            ("standard_conforming_strings", "on"),
            ("standard_conforming_strings", "true"),
            ("client_encoding", "UTF8"),
            ("client_encoding", "utf-8"),
            ("client_encoding", "unicode"),
            ("backslash_quote", "safe_encoding"),
        ] {
            let e = set(name, value);
            assert_eq!((e.class, e.refused), (C::Session, None), "{name}={value}");
        }
        for (name, value) in [
            ("standard_conforming_strings", "off"),
            ("Standard_Conforming_Strings", "0"),
            ("client_encoding", "SJIS"),
            ("client_encoding", "BIG5"),
            ("backslash_quote", "on"),
        ] {
            let e = set(name, value);
            assert!(e.refused.is_some(), "{name}={value}");
            assert_eq!(e.class, C::Admin);
        }
        // A reset returns to the pinned start value.
        assert_eq!(setting("standard_conforming_strings", None).refused, None);
    }

    #[test]
    fn other_settings() {
        assert_eq!(set("search_path", "public").class, C::Session);
        assert_eq!(set("search_path", "pg_catalog, public").class, C::Session);
        assert!(set("search_path", "evil, pg_catalog").refused.is_some());
        assert_eq!(set("statement_timeout", "5s").class, C::Session);
        assert_eq!(set("DateStyle", "ISO").class, C::Session);
        assert_eq!(set("enable_seqscan", "off").class, C::Session);
        assert!(set("application_name", "agent").refused.is_some());
        assert_eq!(set("role", "admin").class, C::Admin);
        assert_eq!(set("session_replication_role", "replica").class, C::Admin);
        assert_eq!(set("log_statement", "none").class, C::Admin);
        assert_eq!(set("work_mem", "4GB").class, C::Admin);
        assert_eq!(set("temp_file_limit", "-1").class, C::Admin);
        assert_eq!(set("app.tenant", "7").class, C::Admin);
        assert_eq!(set("transform_null_equals", "on").class, C::Admin);
    }
}
