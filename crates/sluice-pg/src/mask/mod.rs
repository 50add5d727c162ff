//! Masking in the data path (DESIGN.md §1, issue 5).
//!
//! - Statement path: every SQL string of a masked session goes through the
//!   bypass analysis ([`StatementMask`]); a violation is a `42501` denial.
//! - Result path ([`ResultMasker`], run by the pump): each result set's
//!   RowDescription becomes a [`sluice_mask::MaskPlan`] (sources resolved by
//!   the per-connection [`Catalog`]); DataRows are rewritten one at a time,
//!   or forwarded untouched when the plan passes everything;
//!   `COPY … TO STDOUT` rows are masked in text and CSV.
//! - Extended protocol: before each Execute of a masked session Sluice
//!   sends its own Describe of the portal, whose RowDescription carries the
//!   actual result formats of the Bind; that answer is swallowed.
//!
//! A session whose identity is in an exempt group gets none of this: no
//! analysis, no plans, the plain pump.

mod catalog;
mod queue;
mod result;
mod statement;

use std::sync::Arc;

use sluice_core::config::{MaskStyle, MaskingConfig};
use sluice_mask::Masker;
use sluice_sql::MaskedColumns;

pub use catalog::{Catalog, Opener};
pub use queue::{Expect, MaskQueue};
pub use result::{Need, ResultMasker, Step};
pub use statement::StatementMask;

/// A connection's masking, compiled once and shared by its sessions.
pub struct ConnMasking {
    pub masker: Arc<Masker>,
    pub masked: MaskedColumns,
    /// The style of each column rule, by index (bindings point at rules).
    pub styles: Vec<MaskStyle>,
    pub catalog: Catalog,
}

impl ConnMasking {
    pub fn new(config: &MaskingConfig) -> Result<Self, String> {
        let masker = Masker::from_config(config).map_err(|e| e.to_string())?;
        let masked = MaskedColumns::from_config(config)?;
        Ok(ConnMasking {
            masker: Arc::new(masker),
            masked,
            styles: config.columns.iter().map(|r| r.style).collect(),
            catalog: Catalog::default(),
        })
    }

    /// The statement path's analysis of one SQL string.
    pub fn check(&self, sql: &str) -> Arc<StatementMask> {
        Arc::new(StatementMask::check(sql, &self.masked))
    }
}
