//! Result masking for Sluice: value detectors, mask styles, per-result
//! column plans and COPY row rewriting. Pure: no I/O, no global state.
//!
//! - A [`Masker`] is a connection's `[connections.masking]` section,
//!   compiled once (rules, detectors, hash key, audit labels).
//! - A [`MaskPlan`] is built once per result set from the row description
//!   ([`ColumnDesc`] per field, names resolved by the caller's
//!   [`ColumnLookup`]) and says per column: pass, detect, mask or NULL.
//! - [`MaskPlan::apply`] masks one value, borrowing when nothing changes;
//!   [`mask_copy_row`] does the same for a `COPY … TO STDOUT` row.
//! - [`MaskStats`] counts masked values per rule and detector for audit.
//!
//! Masked output stays valid for the column's declared type in text and
//! binary formats (see [`types`]); detectors are described in [`detect`],
//! styles in [`style`].

pub mod copy;
pub mod detect;
mod hash;
mod masker;
pub mod plan;
mod stats;
pub mod style;
pub mod types;

pub use copy::{CopyFormat, mask_copy_row};
pub use detect::{Detectors, Finding, Kind};
pub use hash::HashKey;
pub use masker::{MaskError, Masker};
pub use plan::{Applied, ColumnAction, ColumnDesc, ColumnLookup, MaskPlan, SourceColumn};
pub use sluice_core::config::{MaskStyle, MaskingConfig};
pub use stats::MaskStats;
pub use style::REDACTED;
pub use types::{Format, TypeClass};
