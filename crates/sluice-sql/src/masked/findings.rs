//! What the analysis reports: plain outputs carrying masked columns, which
//! the proxy masks, and the first use it cannot protect.

/// An output column that carries a masked column in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputBinding {
    /// Which statement of the query string (0-based).
    pub statement: usize,
    /// The output column's position, when known: `None` after a `*` (whose
    /// width needs the catalog) and for a `*` itself.
    pub position: Option<usize>,
    /// The output column's name (its alias, or the column's name); `*` for a star.
    pub name: String,
    /// The schema, when the statement named it.
    pub schema: Option<String>,
    /// The table, as the statement named it.
    pub table: String,
    /// The masked column; `None` for a `*` over a table with masked columns.
    pub column: Option<String>,
    /// Index of the first matching pattern in [`MaskedColumns`].
    pub pattern: usize,
}

/// A masked column used where masking cannot protect it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskViolation {
    /// The column (`public.customers.ssn`, or `customers.*` for a whole row).
    pub column: String,
    /// Where it was used: `WHERE`, `function substr`, `CREATE TABLE AS`, …
    pub context: String,
}

impl MaskViolation {
    /// The client message (sent with SQLSTATE `42501`).
    pub fn message(&self) -> String {
        format!(
            "sluice: column {} is masked and cannot be used in {}",
            self.column, self.context
        )
    }
}

impl std::fmt::Display for MaskViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for MaskViolation {}
