//! What a statement is: its class and the facts the analysis found.

use serde::{Deserialize, Serialize};

/// What kind of act a statement is.
///
/// The variants are declared in order of severity, so `Ord` compares
/// severity and `max` picks the most severe class of several statements or of
/// a statement's parts:
///
/// `read < tcl < session < write < ddl < dcl < admin < unknown`
///
/// - `read`: reads data, changes nothing (`SELECT`, `SHOW`-free reads,
///   `EXPLAIN` without `ANALYZE`, `COPY … TO STDOUT`).
/// - `tcl`: transaction control (`BEGIN`, `COMMIT`, `SAVEPOINT`).
/// - `session`: changes only this session's harmless settings
///   (`SET search_path`, `SHOW`, `LISTEN`).
/// - `write`: changes rows or takes locks others can see (`INSERT`, `MERGE`,
///   `SELECT … FOR UPDATE`, `LOCK`, `nextval`, `NOTIFY`).
/// - `ddl`: changes the schema (`CREATE`, `ALTER`, `DROP`, `TRUNCATE`).
/// - `dcl`: changes who may do what (`GRANT`, `CREATE ROLE`, policies, owners).
/// - `admin`: acts on the server, its files or other sessions, or changes
///   identity (`COPY … PROGRAM`, `pg_terminate_backend`, `SET ROLE`, `DO`,
///   `VACUUM`, turning read-only off).
/// - `unknown`: could not be parsed or classified; fails closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatementClass {
    Read,
    Tcl,
    Session,
    Write,
    Ddl,
    Dcl,
    Admin,
    Unknown,
}

impl StatementClass {
    /// Every class, least severe first.
    pub const ALL: [StatementClass; 8] = [
        Self::Read,
        Self::Tcl,
        Self::Session,
        Self::Write,
        Self::Ddl,
        Self::Dcl,
        Self::Admin,
        Self::Unknown,
    ];

    /// The lowercase name used in configuration and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Tcl => "tcl",
            Self::Session => "session",
            Self::Write => "write",
            Self::Ddl => "ddl",
            Self::Dcl => "dcl",
            Self::Admin => "admin",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for StatementClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the analysis found out about one statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementFacts {
    /// The most severe class among everything the statement does.
    pub class: StatementClass,
    /// The command, as a client would name it: `"SELECT"`, `"DROP TABLE"`,
    /// `"COPY TO PROGRAM"`.
    pub command: String,
    /// Relations read, schema-qualified when the statement qualified them,
    /// with identifiers as PostgreSQL folds them (unquoted → lowercase).
    pub tables_read: Vec<String>,
    /// Relations written, created, altered, dropped or truncated.
    pub tables_written: Vec<String>,
    /// Functions and procedures called, `schema.name` when qualified by a
    /// schema other than `pg_catalog`.
    pub functions: Vec<String>,
    /// The statement's fingerprint (hex): equal for statements of the same
    /// shape, whatever their constants.
    pub fingerprint: String,
    /// Why the statement has its class, e.g. `"calls pg_terminate_backend (admin)"`.
    pub reasons: Vec<String>,
    /// The statement tries to turn the session's read-only mode off.
    pub disables_read_only: bool,
    /// When the class is `admin` only because the statement turns read-only
    /// off (`BEGIN READ WRITE`), the class it would otherwise have. Profiles
    /// whose sessions are not read-only judge the statement by this class,
    /// since for them the toggle changes nothing.
    #[serde(default)]
    pub base_class: Option<StatementClass>,
    /// Why Sluice refuses the statement whatever the profile and rules
    /// say: it would make the server read later statements differently
    /// from Sluice's analysis, or change what identifies the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Settings the statement changes (`SET`, `RESET`, `set_config`), with
    /// the constant value when there is one; the proxy checks timeouts
    /// against the profile's cap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<(String, Option<String>)>,
}

impl StatementFacts {
    /// Facts with a class and command and nothing else found yet.
    pub fn new(class: StatementClass, command: impl Into<String>) -> Self {
        Self {
            class,
            command: command.into(),
            tables_read: Vec::new(),
            tables_written: Vec::new(),
            functions: Vec::new(),
            fingerprint: String::new(),
            reasons: Vec::new(),
            disables_read_only: false,
            base_class: None,
            refused: None,
            settings: Vec::new(),
        }
    }

    /// Facts for a statement that could not be understood: fails closed.
    pub fn unknown(command: impl Into<String>, reason: impl Into<String>) -> Self {
        let mut facts = Self::new(StatementClass::Unknown, command);
        facts.reasons.push(reason.into());
        facts
    }

    /// Every table the statement touches, read or written.
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.tables_read
            .iter()
            .chain(&self.tables_written)
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_order_is_the_declared_order() {
        let mut sorted = StatementClass::ALL;
        sorted.sort();
        assert_eq!(sorted, StatementClass::ALL);
        assert!(StatementClass::Read < StatementClass::Write);
        assert!(StatementClass::Admin < StatementClass::Unknown);
    }

    #[test]
    fn classes_serialize_lowercase() {
        for class in StatementClass::ALL {
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{}\"", class.as_str()));
            let back: StatementClass = serde_json::from_str(&json).unwrap();
            assert_eq!(back, class);
        }
    }
}
