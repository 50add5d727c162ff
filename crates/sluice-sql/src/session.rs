//! Session settings: which `SET`s are harmless, which change identity or the
//! server, and which turn the session's read-only mode off.
//!
//! The `read` profile opens its backend session read-only. Any way of
//! undoing that, whether `SET`, `RESET`, `SET … TO DEFAULT`, `RESET ALL`,
//! `DISCARD ALL` (which runs `RESET ALL`), `SET SESSION CHARACTERISTICS`,
//! `SET TRANSACTION` or `BEGIN READ WRITE`, or `set_config(...)` in a query,
//! is flagged `disables_read_only` and classed `admin`, and the guardrail
//! refuses it under the read profile whatever the rules say. Resetting counts
//! because the reset value may be the server default (off) rather than the
//! value Sluice set.

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;
use sluice_core::guardrail::StatementClass;

use crate::names;

/// What a setting change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Effect {
    pub class: StatementClass,
    pub reason: Option<String>,
    /// Turns read-only off (then `class` is `admin`).
    pub toggles: bool,
}

impl Effect {
    fn harmless() -> Self {
        Self {
            class: StatementClass::Session,
            reason: None,
            toggles: false,
        }
    }

    fn admin(reason: String) -> Self {
        Self {
            class: StatementClass::Admin,
            reason: Some(reason),
            toggles: false,
        }
    }

    fn read_only_off(reason: String) -> Self {
        Self {
            class: StatementClass::Admin,
            reason: Some(reason),
            toggles: true,
        }
    }
}

/// Settings that keep the session read-only.
const READ_ONLY_SETTINGS: &[&str] = &["default_transaction_read_only", "transaction_read_only"];

/// Settings only a superuser may change, or that hide what the session does
/// from the server's own logs: changing them is an act on the server.
const SERVER_SETTINGS: &[&str] = &[
    "allow_in_place_tablespaces",
    "allow_system_table_mods",
    "dynamic_library_path",
    "ignore_checksum_failure",
    "ignore_invalid_pages",
    "ignore_system_indexes",
    "jit_debugging_support",
    "jit_dump_bitcode",
    "jit_profiling_support",
    "lo_compat_privileges",
    "local_preload_libraries",
    "session_preload_libraries",
    "session_replication_role",
    "temp_file_limit",
    "zero_damaged_pages",
];

/// The effect of setting `name` to `values` (`None`: reset to its default,
/// or a value that is not a constant).
pub(crate) fn setting(name: &str, values: Option<&[String]>) -> Effect {
    let name = name.to_ascii_lowercase();
    if READ_ONLY_SETTINGS.contains(&name.as_str()) {
        let stays_on = matches!(values, Some([v]) if is_true(v));
        return if stays_on {
            Effect::harmless()
        } else {
            Effect::read_only_off(format!("turns read-only off ({name})"))
        };
    }
    match name.as_str() {
        "role" | "session_authorization" => {
            return Effect::admin("changes the role the session acts as".to_string());
        }
        "client_encoding" => {
            // Sluice reads every statement as UTF-8. Under another client
            // encoding (SJIS, BIG5, GBK, …) a multibyte character can swallow
            // a backslash, so the server would see a statement that differs
            // from the one analysed. Only UTF-8 keeps the two the same.
            let utf8 = matches!(values, Some([v]) if is_utf8(v));
            if !utf8 {
                return Effect::admin(
                    "changes client_encoding away from UTF8 (statements would no longer read as analysed)"
                        .to_string(),
                );
            }
            return Effect::harmless();
        }
        "search_path" => {
            // pg_catalog is searched first unless the path names it later; a
            // schema before it could then shadow built-ins with user functions.
            let after_others = values.is_none_or(|vs| {
                let schemas: Vec<String> = vs
                    .iter()
                    .flat_map(|v| v.split(','))
                    .map(|s| s.trim().trim_matches('"').to_ascii_lowercase())
                    .collect();
                schemas
                    .iter()
                    .position(|s| s == "pg_catalog")
                    .is_some_and(|i| i > 0)
            });
            if after_others && values.is_some() {
                return Effect::admin("puts schemas before pg_catalog in search_path".to_string());
            }
            return Effect::harmless();
        }
        _ => {}
    }
    if SERVER_SETTINGS.contains(&name.as_str())
        || name.starts_with("log_")
        || name.starts_with("debug_")
    {
        return Effect::admin(format!("changes server setting {name}"));
    }
    Effect::harmless()
}

fn is_utf8(v: &str) -> bool {
    let norm: String = v
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    norm == "utf8" || norm == "unicode"
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
        K::VarResetAll => Effect::read_only_off("RESET ALL may turn read-only off".to_string()),
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
        },
    };
    (command, effect)
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
pub(crate) fn set_config(args: &[pb::Node]) -> Effect {
    let Some(name) = args.first().and_then(names::const_str) else {
        return Effect::admin("set_config with a computed setting name".to_string());
    };
    let value = args.get(1).and_then(names::const_setting);
    let mut effect = setting(name, value.as_ref().map(std::slice::from_ref));
    if effect.reason.is_none() {
        effect.reason = Some(format!("set_config changes {}", name.to_ascii_lowercase()));
    }
    effect
}

/// `DISCARD ALL` resets every setting (as `RESET ALL`) and the role; the
/// other forms only drop caches and temporary objects.
pub(crate) fn discard(target: i32) -> (String, Effect) {
    use pb::DiscardMode as D;
    match D::try_from(target) {
        Ok(D::DiscardAll) => (
            "DISCARD ALL".to_string(),
            Effect::read_only_off(
                "DISCARD ALL runs RESET ALL, which may turn read-only off".to_string(),
            ),
        ),
        Ok(D::DiscardPlans) => ("DISCARD PLANS".to_string(), Effect::harmless()),
        Ok(D::DiscardSequences) => ("DISCARD SEQUENCES".to_string(), Effect::harmless()),
        Ok(D::DiscardTemp) => ("DISCARD TEMP".to_string(), Effect::harmless()),
        _ => (
            "DISCARD".to_string(),
            Effect {
                class: StatementClass::Unknown,
                reason: Some("unrecognized DISCARD".into()),
                toggles: false,
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
    fn other_settings() {
        assert_eq!(set("search_path", "public").class, C::Session);
        assert_eq!(set("client_encoding", "UTF8").class, C::Session);
        assert_eq!(set("client_encoding", "utf-8").class, C::Session);
        assert_eq!(set("client_encoding", "SJIS").class, C::Admin);
        assert_eq!(set("client_encoding", "BIG5").class, C::Admin);
        assert_eq!(set("search_path", "pg_catalog, public").class, C::Session);
        assert_eq!(set("search_path", "evil, pg_catalog").class, C::Admin);
        assert_eq!(set("statement_timeout", "5s").class, C::Session);
        assert_eq!(set("application_name", "agent").class, C::Session);
        assert_eq!(set("role", "admin").class, C::Admin);
        assert_eq!(set("session_replication_role", "replica").class, C::Admin);
        assert_eq!(set("log_statement", "none").class, C::Admin);
        assert_eq!(set("app.tenant", "7").class, C::Session);
    }
}
