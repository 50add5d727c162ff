//! Masking configuration (`[connections.masking]`): which columns are masked
//! and how, which value detectors run, and who is exempt.
//!
//! The types live here, not in `sluice-mask`, so that the configuration file
//! can be parsed and checked without the masking engine; `sluice-mask`
//! compiles them into plans and `sluice-sql` uses the column patterns for its
//! bypass analysis.
//!
//! ```toml
//! [connections.masking]
//! columns = [
//!   { column = "public.customers.card_number", style = "partial" },
//!   { column = "*.*.ssn", style = "redact" },
//! ]
//! names = [{ name = "*_token", style = "redact" }]
//! detectors = { phone = false }
//! detector_style = "partial"
//! exempt_groups = ["dba"]
//! hash_key_env = "SLUICE_MASK_KEY"
//! ```

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use super::connection::{Password, resolve_password};

/// A connection's masking section. Its presence turns masking on: every
/// detector runs unless switched off, and the column rules apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingConfig {
    /// Column rules by source column (`schema.table.column`, globs), resolved
    /// from the result's table OID and column number. The first rule that
    /// matches a column decides its style.
    #[serde(default)]
    pub columns: Vec<ColumnRule>,
    /// Rules by output column name (globs), for computed columns and other
    /// outputs without a source table. Column rules take precedence.
    #[serde(default)]
    pub names: Vec<NameRule>,
    /// Which value detectors scan text values. Each defaults to on.
    #[serde(default)]
    pub detectors: DetectorSwitches,
    /// The style for values found by a detector. Default `partial`: the
    /// value is hidden but keeps the part people use to recognise it (the
    /// last four digits of a card, the domain of an e-mail); kinds with no
    /// safe part (keys, tokens, secrets) are always fully redacted.
    #[serde(default = "default_detector_style")]
    pub detector_style: MaskStyle,
    /// Identity groups whose members see values in clear (no column rules,
    /// no detectors). Judged from the groups a grant recorded at issuance
    /// (`Grant::identity_groups`).
    #[serde(default)]
    pub exempt_groups: Vec<String>,
    /// Name of the environment variable holding the key for the `hash`
    /// style (any bytes; at least 16 recommended).
    #[serde(default)]
    pub hash_key_env: Option<String>,
    /// A file holding the key for the `hash` style (trailing newline ignored).
    #[serde(default)]
    pub hash_key_file: Option<PathBuf>,
}

fn default_detector_style() -> MaskStyle {
    MaskStyle::Partial
}

/// The same as an empty `[connections.masking]` section: every detector on.
impl Default for MaskingConfig {
    fn default() -> Self {
        Self {
            columns: Vec::new(),
            names: Vec::new(),
            detectors: DetectorSwitches::default(),
            detector_style: default_detector_style(),
            exempt_groups: Vec::new(),
            hash_key_env: None,
            hash_key_file: None,
        }
    }
}

/// A rule for a source column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRule {
    /// `schema.table.column`, `table.column` (any schema) or `column` (any
    /// table); each part may use `*` and `?` globs. Matched ASCII
    /// case-insensitively, so a quoted mixed-case name is masked too.
    pub column: String,
    /// How the column's values are masked.
    pub style: MaskStyle,
}

/// A rule for an output column name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameRule {
    /// The output column name (alias), with `*` and `?` globs.
    pub name: String,
    /// How the column's values are masked.
    pub style: MaskStyle,
}

/// How a value is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskStyle {
    /// A fixed mask (`[REDACTED]`) in place of the value.
    Redact,
    /// Keep a recognisable part: the last 4 of a card, SSN, phone or IBAN,
    /// the domain of an e-mail; everything else is starred.
    Partial,
    /// A keyed HMAC-SHA256 of the value (`hash:` + 16 hex digits): stable,
    /// so joins, grouping and counting still work on the masked values.
    Hash,
    /// SQL NULL.
    Null,
}

impl MaskStyle {
    /// The name used in configuration and audit.
    pub fn as_str(self) -> &'static str {
        match self {
            MaskStyle::Redact => "redact",
            MaskStyle::Partial => "partial",
            MaskStyle::Hash => "hash",
            MaskStyle::Null => "null",
        }
    }
}

/// Which value detectors run. Every field defaults to on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSwitches {
    /// Payment card numbers (13–19 digits, Luhn-checked).
    #[serde(default = "on")]
    pub card: bool,
    /// E-mail addresses.
    #[serde(default = "on")]
    pub email: bool,
    /// US social security numbers (`123-45-6789`).
    #[serde(default = "on")]
    pub ssn: bool,
    /// Phone numbers (E.164 and North American formats).
    #[serde(default = "on")]
    pub phone: bool,
    /// IBANs (mod-97 checked).
    #[serde(default = "on")]
    pub iban: bool,
    /// AWS access key ids (`AKIA…`, `ASIA…`).
    #[serde(default = "on")]
    pub aws_key: bool,
    /// JSON Web Tokens.
    #[serde(default = "on")]
    pub jwt: bool,
    /// PEM private key blocks.
    #[serde(default = "on")]
    pub pem: bool,
    /// Values of `password=`, `token=`, `api_key:` and similar assignments.
    #[serde(default = "on")]
    pub secret: bool,
}

fn on() -> bool {
    true
}

impl Default for DetectorSwitches {
    fn default() -> Self {
        Self {
            card: true,
            email: true,
            ssn: true,
            phone: true,
            iban: true,
            aws_key: true,
            jwt: true,
            pem: true,
            secret: true,
        }
    }
}

impl MaskingConfig {
    /// Whether any rule or the detector style uses `hash` (and so needs a key).
    pub fn uses_hash(&self) -> bool {
        self.detector_style == MaskStyle::Hash
            || self.columns.iter().any(|r| r.style == MaskStyle::Hash)
            || self.names.iter().any(|r| r.style == MaskStyle::Hash)
    }

    /// Whether an identity with these groups sees values in clear.
    pub fn is_exempt<S: AsRef<str>>(&self, groups: &[S]) -> bool {
        groups
            .iter()
            .any(|g| self.exempt_groups.iter().any(|e| e == g.as_ref()))
    }

    /// Reads the hash key by reference. `None` when no source is set.
    pub fn hash_key(&self) -> Result<Option<Password>, String> {
        resolve_password(self.hash_key_env.as_deref(), self.hash_key_file.as_deref())
    }

    /// The column rules' patterns, in order.
    pub fn column_patterns(&self) -> Result<Vec<ColumnPattern>, String> {
        self.columns
            .iter()
            .map(|r| ColumnPattern::parse(&r.column))
            .collect()
    }
}

/// A parsed column pattern: up to three dot-separated globs, aligned to the
/// right (`table.column` means any schema, `column` any table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnPattern {
    /// The schema glob; `None` when the pattern does not name one.
    pub schema: Option<String>,
    /// The table glob; `None` when the pattern names only a column.
    pub table: Option<String>,
    /// The column glob.
    pub column: String,
}

impl ColumnPattern {
    /// Parses `schema.table.column`, `table.column` or `column`. Parts must
    /// be non-empty and free of quotes and whitespace.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('.').collect();
        if parts.len() > 3 {
            return Err(format!(
                "{text:?} has more than three parts: use schema.table.column"
            ));
        }
        for p in &parts {
            if p.is_empty() {
                return Err(format!("{text:?} has an empty part"));
            }
            if p.chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '\'')
            {
                return Err(format!(
                    "{text:?}: write names without quotes or spaces (matching ignores ASCII case)"
                ));
            }
        }
        let own = |s: &str| s.to_string();
        Ok(match parts.as_slice() {
            [c] => Self {
                schema: None,
                table: None,
                column: own(c),
            },
            [t, c] => Self {
                schema: None,
                table: Some(own(t)),
                column: own(c),
            },
            [s, t, c] => Self {
                schema: Some(own(s)),
                table: Some(own(t)),
                column: own(c),
            },
            _ => unreachable!("split yields at least one part"),
        })
    }

    /// Whether a fully known column matches.
    pub fn matches(&self, schema: &str, table: &str, column: &str) -> bool {
        self.matches_partial(Some(schema), table, Some(column))
    }

    /// Whether a column may match when parts are unknown: an unknown schema
    /// (`None`, an unqualified table name in a statement) may be any schema,
    /// and an unknown column (`None`) asks whether the table has any masked
    /// column at all. Unknowns match: callers use this to fail closed.
    pub fn matches_partial(&self, schema: Option<&str>, table: &str, column: Option<&str>) -> bool {
        let part = |pat: &Option<String>, value: Option<&str>| match (pat, value) {
            (None, _) | (_, None) => true,
            (Some(p), Some(v)) => glob_match(p, v),
        };
        part(&self.schema, schema)
            && part(&self.table, Some(table))
            && column.is_none_or(|c| glob_match(&self.column, c))
    }

    /// The pattern as `schema.table.column` when it names one exact column,
    /// with the known parts filled in from the arguments; used in messages.
    pub fn display_with(&self, schema: Option<&str>, table: &str, column: &str) -> String {
        let literal = |p: &Option<String>| {
            p.as_deref()
                .filter(|p| !p.contains(['*', '?']))
                .map(str::to_string)
        };
        match schema.map(str::to_string).or_else(|| literal(&self.schema)) {
            Some(s) => format!("{s}.{table}.{column}"),
            None => format!("{table}.{column}"),
        }
    }
}

impl std::fmt::Display for ColumnPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(s) = &self.schema {
            write!(f, "{s}.")?;
        }
        if let Some(t) = &self.table {
            write!(f, "{t}.")?;
        }
        f.write_str(&self.column)
    }
}

/// Glob match with `*` (any run, including empty) and `?` (one character),
/// ignoring ASCII case. Linear-time backtracking over the last `*`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi].eq_ignore_ascii_case(&t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("card_*", "card_number"));
        assert!(glob_match("*_NUMBER", "card_number"));
        assert!(glob_match("s?n", "ssn"));
        assert!(!glob_match("s?n", "sn"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("Customers", "customers"));
    }

    #[test]
    fn patterns_align_right() {
        let p = ColumnPattern::parse("*.*.ssn").unwrap();
        assert!(p.matches("public", "customers", "ssn"));
        assert!(!p.matches("public", "customers", "email"));
        let p = ColumnPattern::parse("customers.*").unwrap();
        assert!(p.matches("crm", "customers", "email"));
        assert!(!p.matches("crm", "orders", "email"));
        let p = ColumnPattern::parse("ssn").unwrap();
        assert!(p.matches("a", "b", "ssn"));
        let p = ColumnPattern::parse("public.customers.card_number").unwrap();
        assert!(!p.matches("crm", "customers", "card_number"));
        assert!(p.matches_partial(None, "customers", Some("card_number")));
        assert!(p.matches_partial(None, "customers", None));
        assert!(!p.matches_partial(Some("crm"), "customers", None));
        assert_eq!(
            p.display_with(None, "customers", "card_number"),
            "public.customers.card_number"
        );
        assert_eq!(
            ColumnPattern::parse("*.customers.ssn")
                .unwrap()
                .display_with(None, "customers", "ssn"),
            "customers.ssn"
        );
    }

    #[test]
    fn bad_patterns() {
        assert!(ColumnPattern::parse("a.b.c.d").is_err());
        assert!(ColumnPattern::parse("a..c").is_err());
        assert!(ColumnPattern::parse("").is_err());
        assert!(ColumnPattern::parse("\"A\".b").is_err());
    }

    #[test]
    fn toml_section_with_defaults() {
        let c: MaskingConfig = toml::from_str(
            r#"
columns = [{ column = "public.customers.card_number", style = "partial" }]
detectors = { phone = false }
"#,
        )
        .unwrap();
        assert_eq!(c.detector_style, MaskStyle::Partial);
        assert!(c.detectors.card && !c.detectors.phone);
        assert!(!c.uses_hash());
        assert!(toml::from_str::<MaskingConfig>("detectors = { fax = true }").is_err());
        assert!(
            toml::from_str::<MaskingConfig>("columns = [{ column = \"a\", style = \"blur\" }]")
                .is_err()
        );
        assert!(!c.is_exempt::<&str>(&[]));
    }

    #[test]
    fn config_check_points_at_masking_problems() {
        let text = r#"
[[connections]]
name = "crm"
kind = "postgres"
host = "db"
database = "crm"
user = "sluice"

[connections.masking]
columns = [
  { column = "public.customers.ssn", style = "hash" },
  { column = "a..b", style = "redact" },
]
"#;
        let err = crate::config::Config::parse(text, "sluice.toml").unwrap_err();
        let messages: Vec<String> = err.0.iter().map(|p| p.to_string()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages.iter().any(|m| m.contains("empty part")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("needs a key")),
            "{messages:?}"
        );
        assert!(
            messages.iter().all(|m| m.starts_with("sluice.toml:")),
            "{messages:?}"
        );
        let good = text.replace("a..b", "a.b").replace(
            "[connections.masking]",
            "[connections.masking]\nhash_key_env = \"K\"",
        );
        let c = crate::config::Config::parse(&good, "sluice.toml").unwrap();
        assert_eq!(c.connections[0].masking.as_ref().unwrap().columns.len(), 2);
    }
}
