//! What a session recording keeps of a session exempt from masking.
//!
//! An exempt identity (`exempt_groups`) sees values in clear: the exemption
//! is for its live results. The recording (`record_results = "rows:N"`)
//! is an audit event that goes to every sink, so its rows are masked by
//! the connection's rules all the same: table columns by their rules (a
//! column whose source is not yet in the catalog cache is redacted, and the
//! cache is filled for later statements), every value by the detectors.

use std::sync::Arc;

use bytes::BytesMut;
use sluice_mask::{ColumnDesc, Format, MaskPlan, MaskStats};

use super::ConnMasking;
use super::result::{mask_row, row_fields};
use crate::side::Opener;

/// Masks the rows a recording keeps.
pub struct RecordingMask {
    conn: Arc<ConnMasking>,
    opener: Opener,
    plan: Option<MaskPlan>,
    stats: MaskStats,
    scratch: Vec<u8>,
}

impl RecordingMask {
    pub fn new(conn: Arc<ConnMasking>, opener: Opener) -> Self {
        let stats = conn.masker.new_stats();
        RecordingMask {
            conn,
            opener,
            plan: None,
            stats,
            scratch: Vec::new(),
        }
    }

    /// A RowDescription body: plans the rows that follow.
    pub fn describe(&mut self, body: &[u8]) {
        let Some(fields) = row_fields(body) else {
            self.plan = None;
            return;
        };
        let oids = fields
            .iter()
            .filter(|f| f.table_oid != 0 && f.attnum > 0)
            .map(|f| f.table_oid);
        let missing = self.conn.catalog.missing(oids);
        if !missing.is_empty() {
            // Redacted now (unresolved), known for the next statements.
            let (conn, opener) = (self.conn.clone(), self.opener.clone());
            tokio::spawn(async move { conn.catalog.load(&opener, &missing).await });
        }
        let descs: Vec<ColumnDesc<'_>> = fields
            .iter()
            .map(|f| ColumnDesc {
                name: f.name,
                table_oid: f.table_oid,
                attnum: f.attnum,
                type_oid: f.type_oid,
                format: if f.format == 1 {
                    Format::Binary
                } else {
                    Format::Text
                },
                forced: None,
            })
            .collect();
        let masker = &self.conn.masker;
        self.plan = Some(
            self.conn
                .catalog
                .with_lookup(|l| MaskPlan::build(masker, &[] as &[&str], &descs, l)),
        );
    }

    /// A DataRow body as the recording may keep it; `None` when it cannot
    /// be masked (no plan, or malformed): then it is not kept.
    pub fn row(&mut self, body: &[u8]) -> Option<Vec<u8>> {
        let plan = self.plan.as_ref()?;
        let mut out = BytesMut::new();
        mask_row(plan, body, &mut self.stats, &mut self.scratch, &mut out)
            .then(|| out[5..].to_vec())
    }
}
