//! Which columns a connection masks, as the analysis asks about them.

use sluice_core::config::{ColumnPattern, MaskingConfig};

/// The masked columns of a connection, as patterns (`schema.table.column`
/// globs, see [`ColumnPattern`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaskedColumns {
    patterns: Vec<ColumnPattern>,
}

impl MaskedColumns {
    /// From patterns; a binding's `pattern` is an index into this list.
    pub fn new(patterns: Vec<ColumnPattern>) -> Self {
        Self { patterns }
    }

    /// From a masking section's column rules, in order (so `pattern`
    /// indexes `config.columns`).
    pub fn from_config(config: &MaskingConfig) -> Result<Self, String> {
        config.column_patterns().map(Self::new)
    }

    /// Whether no column is masked (then nothing needs checking).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns, in order.
    pub fn patterns(&self) -> &[ColumnPattern] {
        &self.patterns
    }

    /// The first pattern that may match `column` of `table` (any schema
    /// when the statement named none).
    pub(super) fn column(&self, schema: Option<&str>, table: &str, column: &str) -> Option<usize> {
        self.patterns
            .iter()
            .position(|p| p.matches_partial(schema, table, Some(column)))
    }

    /// The first pattern that may match some column of `table`.
    pub(super) fn table(&self, schema: Option<&str>, table: &str) -> Option<usize> {
        self.patterns
            .iter()
            .position(|p| p.matches_partial(schema, table, None))
    }
}
