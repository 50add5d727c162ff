//! Masking in the data path (DESIGN.md §1, issue 5).
//!
//! - Statement path: every SQL string of a masked session goes through the
//!   bypass analysis ([`StatementMask`]); a violation is a `42501` denial,
//!   and so is a `COPY name TO STDOUT` whose unqualified name could be one
//!   of several tables, some masked ([`copy_table`]).
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
pub mod copy_table;
mod errors;
mod queue;
mod recording;
mod result;
mod statement;

use std::sync::Arc;

use sluice_core::config::{MaskStyle, MaskingConfig};
use sluice_mask::Masker;
use sluice_sql::MaskedColumns;
use sluice_sql::cache::ShapeCache;
use sluice_sql::literals;

pub use catalog::{Catalog, Opener};
pub use queue::{Expect, MaskQueue};
pub use recording::RecordingMask;
pub use result::{Need, ResultMasker, Step};
pub use statement::StatementMask;

/// A connection's masking, compiled once and shared by its sessions.
pub struct ConnMasking {
    pub masker: Arc<Masker>,
    pub masked: MaskedColumns,
    /// The style of each column rule, by index (bindings point at rules).
    pub styles: Vec<MaskStyle>,
    pub catalog: Catalog,
    /// Statement analyses by shape, for strings whose analysis read no
    /// literal (see `sluice_sql::shape`).
    shapes: ShapeCache<StatementMask>,
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
            shapes: ShapeCache::default(),
        })
    }

    /// The statement path's analysis of one SQL string. `shape` is its
    /// shape key (with the catalog's generation) when its statement
    /// analysis may be shared by shape; the masking analysis is shared too
    /// unless it read a literal's value (`ORDER BY 2`).
    pub fn check(
        &self,
        sql: &str,
        shape: Option<&str>,
        catalog: &sluice_sql::Catalog,
    ) -> Arc<StatementMask> {
        if let Some(hit) = shape.and_then(|k| self.shapes.get(k)) {
            return hit;
        }
        let (mask, read) = literals::track(|| StatementMask::check(sql, &self.masked, catalog));
        let mask = Arc::new(mask);
        if let Some(key) = shape.filter(|_| !read) {
            self.shapes.insert(key.to_string(), mask.clone());
        }
        mask
    }
}
