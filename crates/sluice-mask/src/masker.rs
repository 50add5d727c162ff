//! A connection's masking configuration, compiled once: column and name
//! rules, the enabled detectors, the hash key and the audit labels.

use std::borrow::Cow;
use std::sync::Arc;

use sluice_core::config::{ColumnPattern, MaskStyle, MaskingConfig, masking::glob_match};

use crate::detect::{Detectors, Finding, Kind};
use crate::hash::HashKey;
use crate::plan::SourceColumn;
use crate::stats::MaskStats;
use crate::style;

/// Why a [`Masker`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    /// A column rule's pattern does not parse.
    #[error("masking column rule {index}: {message}")]
    BadPattern {
        /// Position of the rule in `columns`.
        index: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A rule uses `hash` but no key was given.
    #[error("the hash style needs a key: set hash_key_env or hash_key_file")]
    MissingHashKey,
    /// The key reference could not be read.
    #[error("masking hash key: {0}")]
    HashKey(String),
}

/// A compiled masking configuration. Build once per connection (or config
/// reload) and share with an `Arc`; plans borrow nothing else.
#[derive(Debug)]
pub struct Masker {
    columns: Vec<(ColumnPattern, MaskStyle)>,
    names: Vec<(String, MaskStyle)>,
    detectors: Detectors,
    detector_style: MaskStyle,
    exempt_groups: Vec<String>,
    key: Option<HashKey>,
    extra_text: Vec<u32>,
    labels: Arc<[String]>,
}

/// Outcome of running the detectors over one value.
pub(crate) enum Rewritten<'v> {
    /// Nothing found: the original bytes.
    Unchanged(&'v [u8]),
    /// Something found and replaced.
    Changed(Vec<u8>),
    /// Something found and the style is `null`, or the caller's guard refused.
    Null,
}

impl Masker {
    /// Compiles `config`; `hash_key` is the resolved key, needed only when a
    /// rule or the detector style is `hash`.
    pub fn new(config: &MaskingConfig, hash_key: Option<&[u8]>) -> Result<Self, MaskError> {
        let columns = config
            .columns
            .iter()
            .enumerate()
            .map(|(index, r)| {
                ColumnPattern::parse(&r.column)
                    .map(|p| (p, r.style))
                    .map_err(|message| MaskError::BadPattern { index, message })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if config.uses_hash() && hash_key.is_none() {
            return Err(MaskError::MissingHashKey);
        }
        let names: Vec<(String, MaskStyle)> = config
            .names
            .iter()
            .map(|r| (r.name.clone(), r.style))
            .collect();
        let mut labels: Vec<String> = Kind::ALL
            .iter()
            .map(|k| format!("detector:{}", k.as_str()))
            .collect();
        labels.extend(
            config
                .columns
                .iter()
                .map(|r| format!("column:{}", r.column)),
        );
        labels.extend(names.iter().map(|(n, _)| format!("name:{n}")));
        labels.push("binding".into());
        labels.push("unresolved".into());
        Ok(Self {
            columns,
            names,
            detectors: Detectors::from_switches(&config.detectors),
            detector_style: config.detector_style,
            exempt_groups: config.exempt_groups.clone(),
            key: hash_key.map(HashKey::new),
            extra_text: Vec::new(),
            labels: labels.into(),
        })
    }

    /// Compiles `config`, reading the hash key by reference
    /// (`hash_key_env` / `hash_key_file`).
    pub fn from_config(config: &MaskingConfig) -> Result<Self, MaskError> {
        let key = config.hash_key().map_err(MaskError::HashKey)?;
        Self::new(config, key.as_ref().map(|k| k.expose().as_bytes()))
    }

    /// Declares more text-like type OIDs (extension types such as `citext`,
    /// or domains over text), resolved from the catalog by the caller.
    pub fn with_text_types(mut self, oids: &[u32]) -> Self {
        self.extra_text.extend_from_slice(oids);
        self
    }

    /// The enabled detectors.
    pub fn detectors(&self) -> Detectors {
        self.detectors
    }

    /// The style for detected values.
    pub fn detector_style(&self) -> MaskStyle {
        self.detector_style
    }

    /// Whether an identity with these groups sees values in clear.
    pub fn is_exempt<S: AsRef<str>>(&self, groups: &[S]) -> bool {
        groups
            .iter()
            .any(|g| self.exempt_groups.iter().any(|e| e == g.as_ref()))
    }

    /// The first column rule matching a source column: its audit reason
    /// index and style.
    pub(crate) fn column_rule(&self, src: &SourceColumn) -> Option<(usize, MaskStyle)> {
        self.columns
            .iter()
            .position(|(p, _)| p.matches(&src.schema, &src.table, &src.column))
            .map(|i| (Kind::ALL.len() + i, self.columns[i].1))
    }

    /// The first name rule matching an output column name.
    pub(crate) fn name_rule(&self, name: &str) -> Option<(usize, MaskStyle)> {
        self.names
            .iter()
            .position(|(p, _)| glob_match(p, name))
            .map(|i| (Kind::ALL.len() + self.columns.len() + i, self.names[i].1))
    }

    /// Whether a column rule or a name rule covers this table column (its
    /// values would be masked whole, not only scanned by the detectors).
    pub fn has_rule_for(&self, src: &SourceColumn) -> bool {
        self.column_rule(src).is_some() || self.name_rule(&src.column).is_some()
    }

    /// Whether any column rule exists (unresolvable sources then fail closed).
    pub(crate) fn has_column_rules(&self) -> bool {
        !self.columns.is_empty()
    }

    pub(crate) fn binding_reason(&self) -> usize {
        self.labels.len() - 2
    }

    pub(crate) fn unresolved_reason(&self) -> usize {
        self.labels.len() - 1
    }

    pub(crate) fn extra_text(&self) -> &[u32] {
        &self.extra_text
    }

    pub(crate) fn key(&self) -> Option<&HashKey> {
        self.key.as_ref()
    }

    /// Fresh counters labelled with this masker's rules and detectors.
    pub fn new_stats(&self) -> MaskStats {
        MaskStats::new(self.labels.clone())
    }

    /// Runs the detectors over free text: the replacement bytes, borrowed
    /// when nothing was found, or `None` when something was found and the
    /// detector style is `null`.
    pub fn mask_text<'v>(&self, text: &'v [u8], stats: &mut MaskStats) -> Option<Cow<'v, [u8]>> {
        match self.rewrite(text, stats, |_| true) {
            Rewritten::Unchanged(v) => Some(Cow::Borrowed(v)),
            Rewritten::Changed(v) => Some(Cow::Owned(v)),
            Rewritten::Null => None,
        }
    }

    /// Finds and replaces detected values. `accept` sees each finding's
    /// bytes and may refuse an in-place rewrite (the value becomes NULL).
    pub(crate) fn rewrite<'v>(
        &self,
        value: &'v [u8],
        stats: &mut MaskStats,
        accept: impl Fn(&[u8]) -> bool,
    ) -> Rewritten<'v> {
        let mut found: Vec<Finding> = Vec::new();
        self.detectors.find(value, &mut found);
        if found.is_empty() {
            return Rewritten::Unchanged(value);
        }
        for f in &found {
            stats.bump(f.kind.index());
        }
        if self.detector_style == MaskStyle::Null
            || found.iter().any(|f| !accept(&value[f.start..f.end]))
        {
            return Rewritten::Null;
        }
        let mut out = Vec::with_capacity(value.len() + 16);
        let mut last = 0;
        for f in &found {
            out.extend_from_slice(&value[last..f.start]);
            style::mask_finding(
                f.kind,
                &value[f.start..f.end],
                self.detector_style,
                self.key.as_ref(),
                &mut out,
            );
            last = f.end;
        }
        out.extend_from_slice(&value[last..]);
        Rewritten::Changed(out)
    }
}
