//! The result path of a masked session, driven by the pump one whole frame
//! at a time: RowDescription → plan, DataRow → masked DataRow, COPY rows
//! masked in text and CSV, counts per rule and detector for audit.
//!
//! Every plan is built from the backend's RowDescription: a simple Query's
//! (text formats), or for an Execute the answer to Sluice's own Describe of
//! the portal (the Bind's actual formats, binary included). The client's
//! RowDescriptions are forwarded unchanged: masked values keep their
//! column's type (see [`sluice_mask::types`]). A DataRow without a plan is
//! not trusted and ends the session.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use sluice_core::config::MaskStyle;
use sluice_mask::{Applied, ColumnDesc, CopyFormat, Format, MaskPlan, MaskStats, mask_copy_row};

use super::catalog::Opener;
use super::copy_table::{self, CopyTable, TableColumn};
use super::queue::{Expect, MaskQueue};
use super::{ConnMasking, StatementMask};
use crate::codec::{take_cstr, take_i16, take_i32};
use crate::errors::ClientError;
use crate::messages::error_fields;

/// The `text` type: COPY fields whose type is unknown are planned as text.
const TEXT_OID: u32 = 25;

/// What the pump does with a frame it offered.
#[derive(Debug)]
pub enum Step {
    /// Forward it unchanged.
    Pass,
    /// Drop it: the answer to Sluice's own Describe.
    Swallow,
    /// Its masked form was written to the output.
    Written,
    /// Look this up, then offer the same frame again.
    Need(Need),
    /// End the session with this error.
    Fatal(ClientError),
}

/// A catalog lookup the next step waits for.
#[derive(Debug)]
pub enum Need {
    Tables(Vec<u32>),
    Copy {
        schema: Option<String>,
        table: String,
    },
}

struct CopyState {
    plan: MaskPlan,
    format: CopyFormat,
    /// A CSV header row is still to come.
    header: bool,
}

/// One session's result masking.
pub struct ResultMasker {
    conn: Arc<ConnMasking>,
    opener: Opener,
    queue: Arc<MaskQueue>,
    plan: Option<MaskPlan>,
    copy: Option<CopyState>,
    /// The statement of the current simple Query.
    stmt: usize,
    stats: MaskStats,
    /// The catalog was just consulted for the frame on offer.
    resolved: bool,
    /// The table of the COPY on offer, once looked up.
    copy_table: Option<CopyTable>,
    /// Where a masked value is written before it joins its row (reused:
    /// no allocation per value).
    scratch: Vec<u8>,
}

impl ResultMasker {
    pub fn new(conn: Arc<ConnMasking>, opener: Opener, queue: Arc<MaskQueue>) -> Self {
        let stats = conn.masker.new_stats();
        ResultMasker {
            conn,
            opener,
            queue,
            plan: None,
            copy: None,
            stmt: 0,
            stats,
            resolved: false,
            copy_table: None,
            scratch: Vec::new(),
        }
    }

    /// Whether a frame too big to hold may stream through unexamined.
    pub fn can_stream(&self, tag: u8) -> bool {
        match tag {
            b'D' => self.plan.as_ref().is_some_and(MaskPlan::is_pass_through),
            b'd' => self
                .copy
                .as_ref()
                .is_some_and(|c| !c.header && c.plan.is_pass_through()),
            b'T' | b'n' | b'H' | b'C' | b'E' | b'Z' | b's' | b'I' | b'G' => false,
            _ => true,
        }
    }

    /// The counts of the result just completed, if anything was masked.
    pub fn take_counts(&mut self) -> Option<Vec<(String, u64)>> {
        if self.stats.is_empty() {
            return None;
        }
        let counts = self.stats.iter().map(|(l, c)| (l.to_string(), c)).collect();
        self.stats.clear();
        Some(counts)
    }

    /// Does the lookup a [`Step::Need`] asked for.
    pub async fn resolve(&mut self, need: Need) {
        let catalog = &self.conn.catalog;
        match need {
            Need::Tables(oids) => catalog.load(&self.opener, &oids).await,
            Need::Copy { schema, table } => {
                let masker = &self.conn.masker;
                let found = copy_table::resolve(&self.opener, masker, schema.as_deref(), &table);
                self.copy_table = Some(found.await);
            }
        }
        self.resolved = true;
    }

    /// An ErrorResponse, NoticeResponse or NotificationResponse as this
    /// session's client may see it (see [`super::errors`]); `None` when it
    /// passes unchanged.
    pub fn scrub(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
        match frame.first() {
            Some(b'A') => {
                super::errors::scrub_notification(frame, &self.conn.masker, &mut self.stats)
            }
            _ => super::errors::scrub(frame, &self.conn.masker, &mut self.stats),
        }
    }

    /// Handles one whole backend frame (header included).
    pub fn on_frame(&mut self, tag: u8, frame: &[u8], out: &mut BytesMut) -> Step {
        let body = &frame[5..];
        match tag {
            b'T' => self.row_description(body),
            b'n' => match self.queue.front() {
                Some(Expect::Describe { ours }) => {
                    self.queue.pop();
                    if ours {
                        self.plan = None;
                        Step::Swallow
                    } else {
                        Step::Pass
                    }
                }
                _ => Step::Pass,
            },
            b'D' => match &self.plan {
                Some(plan) if plan.is_pass_through() => Step::Pass,
                Some(plan) => {
                    if mask_row(plan, body, &mut self.stats, &mut self.scratch, out) {
                        Step::Written
                    } else {
                        Step::Fatal(ClientError::protocol_violation())
                    }
                }
                None => Step::Fatal(ClientError::internal()),
            },
            b'H' => self.copy_out(body),
            b'd' => self.copy_data(body, out),
            b'C' => {
                let tag = body.strip_suffix(&[0]).unwrap_or(body);
                if [&b"ALTER"[..], b"DROP", b"CREATE", b"COMMENT"]
                    .iter()
                    .any(|w| tag.starts_with(w))
                {
                    self.conn.catalog.clear();
                }
                match self.queue.front() {
                    Some(Expect::Query(_)) => self.stmt += 1,
                    Some(Expect::Execute(_)) => self.queue.pop(),
                    _ => {}
                }
                self.end_result();
                Step::Pass
            }
            b's' | b'I' => {
                if let Some(Expect::Execute(_)) = self.queue.front() {
                    self.queue.pop();
                }
                self.end_result();
                Step::Pass
            }
            b'E' => {
                if schema_changed(body) {
                    self.conn.catalog.clear();
                }
                if !matches!(self.queue.front(), Some(Expect::Query(_))) {
                    self.queue.skip_to_sync();
                }
                self.end_result();
                Step::Pass
            }
            b'Z' => {
                self.queue.ready();
                self.stmt = 0;
                self.end_result();
                Step::Pass
            }
            b'G' => {
                self.queue.copy_in();
                Step::Pass
            }
            _ => Step::Pass,
        }
    }

    fn end_result(&mut self) {
        self.plan = None;
        self.copy = None;
        self.queue.copy_over();
    }

    fn row_description(&mut self, body: &[u8]) -> Step {
        let (ctx, stmt, ours) = match self.queue.front() {
            Some(Expect::Describe { ours: false }) => {
                self.queue.pop();
                return Step::Pass;
            }
            Some(Expect::Describe { ours: true }) => match self.queue.second() {
                Some(Expect::Execute(ctx)) => (Some(ctx), 0, true),
                _ => (None, 0, true),
            },
            Some(Expect::Query(ctx)) => (Some(ctx), self.stmt, false),
            _ => (None, 0, false),
        };
        let Some(fields) = row_fields(body) else {
            return Step::Fatal(ClientError::protocol_violation());
        };
        // Sources matter only to column rules: detectors need no catalog.
        if !self.resolved && !self.conn.masked.is_empty() {
            let missing = self.conn.catalog.missing(
                fields
                    .iter()
                    .filter(|f| f.table_oid != 0 && f.attnum > 0)
                    .map(|f| f.table_oid),
            );
            if !missing.is_empty() {
                return Step::Need(Need::Tables(missing));
            }
        }
        self.resolved = false;
        let forced = forced_styles(&self.conn, ctx.as_deref(), stmt, &fields);
        let descs: Vec<ColumnDesc<'_>> = fields
            .iter()
            .zip(forced)
            .map(|(f, forced)| ColumnDesc {
                name: f.name,
                table_oid: f.table_oid,
                attnum: f.attnum,
                type_oid: f.type_oid,
                format: if f.format == 1 {
                    Format::Binary
                } else {
                    Format::Text
                },
                forced,
            })
            .collect();
        let masker = &self.conn.masker;
        let plan = self
            .conn
            .catalog
            .with_lookup(|l| MaskPlan::build(masker, &[] as &[&str], &descs, l));
        self.plan = Some(plan);
        if ours {
            self.queue.pop();
            Step::Swallow
        } else {
            Step::Pass
        }
    }

    /// CopyOutResponse: plans the COPY's columns (text format).
    fn copy_out(&mut self, body: &[u8]) -> Step {
        let (ctx, stmt) = match self.queue.front() {
            Some(Expect::Query(ctx)) => (Some(ctx), self.stmt),
            Some(Expect::Execute(ctx)) => (Some(ctx), 0),
            _ => (None, 0),
        };
        let mut b = body;
        let (Some(&format), Some(ncols)) = (b.first(), {
            b = b.get(1..).unwrap_or_default();
            take_i16(&mut b)
        }) else {
            return Step::Fatal(ClientError::protocol_violation());
        };
        if format != 0 {
            // The statement path refuses binary COPY; never pass one.
            return Step::Fatal(ClientError::permission_denied(
                "sluice: binary COPY cannot be masked",
            ));
        }
        let ncols = ncols.max(0) as usize;
        let spec = ctx.as_deref().and_then(|c| c.copy(stmt)).cloned();
        let table = match spec.as_ref().and_then(|s| s.table.as_ref()) {
            Some((schema, table)) => match self.copy_table.take() {
                Some(found) => Some(found),
                None => {
                    return Step::Need(Need::Copy {
                        schema: schema.clone(),
                        table: table.clone(),
                    });
                }
            },
            None => None,
        };
        self.resolved = false;
        let plan = match table {
            // The statement path refuses these before they run: a table of
            // the same name appeared since. Which one is copied is unknown.
            Some(CopyTable::Ambiguous { schemas }) => {
                let (_, name) = spec.and_then(|s| s.table).unwrap_or_default();
                let refusal = copy_table::ambiguous(&name, &schemas).message();
                return Step::Fatal(ClientError::permission_denied(refusal));
            }
            Some(CopyTable::One(cols)) => {
                let listed = spec.as_ref().map_or(&[][..], |s| &s.columns[..]);
                match pick_columns(cols, listed).filter(|c| c.len() == ncols) {
                    Some(cols) => self.table_plan(&cols),
                    None => self.blind_plan(ncols, true),
                }
            }
            Some(CopyTable::Unruled) | None if spec.is_some() => self.blind_plan(ncols, false),
            // Unknown table, or a COPY the statement path did not see.
            _ => self.blind_plan(ncols, true),
        };
        let (format, header) = match spec {
            Some(s) => (s.format, s.header),
            None => (CopyFormat::text(), false),
        };
        self.copy = Some(CopyState {
            plan,
            format,
            header,
        });
        Step::Pass
    }

    /// A COPY plan from the table's columns, by their sources.
    fn table_plan(&self, cols: &[TableColumn]) -> MaskPlan {
        let descs: Vec<ColumnDesc<'_>> = cols
            .iter()
            .map(|c| ColumnDesc::from_table(&c.name, c.table_oid, c.attnum, c.type_oid))
            .collect();
        let lookup = |oid: u32, attnum: i16| {
            cols.iter()
                .find(|c| c.table_oid == oid && c.attnum == attnum)
                .map(|c| c.source.clone())
        };
        MaskPlan::build(&self.conn.masker, &[] as &[&str], &descs, &lookup)
    }

    /// A COPY plan without the columns' sources: every field is text for
    /// the detectors, and with `redact` (a table that could not be
    /// resolved, when column rules exist) redacted whole: fail closed.
    fn blind_plan(&self, ncols: usize, redact: bool) -> MaskPlan {
        let redact = redact && !self.conn.masked.is_empty();
        let descs: Vec<ColumnDesc<'_>> = (0..ncols)
            .map(|_| {
                let d = ColumnDesc::computed("?column?", TEXT_OID);
                if redact {
                    d.with_forced(MaskStyle::Redact)
                } else {
                    d
                }
            })
            .collect();
        MaskPlan::build(&self.conn.masker, &[] as &[&str], &descs, &|_, _| None)
    }

    fn copy_data(&mut self, body: &[u8], out: &mut BytesMut) -> Step {
        let Some(c) = &mut self.copy else {
            return Step::Fatal(ClientError::internal());
        };
        if c.header {
            c.header = false;
            return Step::Pass;
        }
        match mask_copy_row(&c.plan, &c.format, body, &mut self.stats) {
            Cow::Borrowed(_) => Step::Pass,
            Cow::Owned(row) => {
                out.put_u8(b'd');
                out.put_i32(row.len() as i32 + 4);
                out.extend_from_slice(&row);
                Step::Written
            }
        }
    }
}

/// The table's columns for a COPY: all, or the listed ones in list order.
fn pick_columns(cols: Vec<TableColumn>, listed: &[String]) -> Option<Vec<TableColumn>> {
    if listed.is_empty() {
        return Some(cols);
    }
    listed
        .iter()
        .map(|name| {
            cols.iter()
                .find(|c| &c.name == name)
                .or_else(|| cols.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
                .cloned()
        })
        .collect()
}

/// Styles the statement analysis forces on outputs of statement `stmt`:
/// by position when known, else by output name.
fn forced_styles(
    conn: &ConnMasking,
    ctx: Option<&StatementMask>,
    stmt: usize,
    fields: &[Field<'_>],
) -> Vec<Option<MaskStyle>> {
    let mut forced = vec![None; fields.len()];
    let Some(ctx) = ctx else { return forced };
    for b in ctx.bindings.iter().filter(|b| b.statement == stmt) {
        if b.column.is_none() {
            continue;
        }
        let Some(style) = conn.styles.get(b.pattern).copied() else {
            continue;
        };
        match b.position {
            Some(p) if p < forced.len() => forced[p] = Some(style),
            Some(_) => {}
            None => {
                for (i, f) in fields.iter().enumerate() {
                    if f.name == b.name {
                        forced[i] = Some(style);
                    }
                }
            }
        }
    }
    forced
}

/// Whether an error says the schema changed under the cache.
fn schema_changed(body: &[u8]) -> bool {
    error_fields(body).iter().any(|(code, v)| {
        (*code == b'C' && matches!(*v, "42P01" | "42703"))
            || (*code == b'M' && v.contains("cached plan must not change result type"))
    })
}

pub(super) struct Field<'a> {
    pub(super) name: &'a str,
    pub(super) table_oid: u32,
    pub(super) attnum: i16,
    pub(super) type_oid: u32,
    pub(super) format: i16,
}

pub(super) fn row_fields(mut body: &[u8]) -> Option<Vec<Field<'_>>> {
    let b = &mut body;
    let n = take_i16(b)?.max(0) as usize;
    let mut out = Vec::with_capacity(n.min(1600));
    for _ in 0..n {
        let name = take_cstr(b)?;
        let table_oid = take_i32(b)? as u32;
        let attnum = take_i16(b)?;
        let type_oid = take_i32(b)? as u32;
        take_i16(b)?;
        take_i32(b)?;
        let format = take_i16(b)?;
        out.push(Field {
            name,
            table_oid,
            attnum,
            type_oid,
            format,
        });
    }
    Some(out)
}

/// Writes `body`'s DataRow to `out` with every value through the plan:
/// NULL stays NULL, lengths are recomputed. False when malformed.
pub(super) fn mask_row(
    plan: &MaskPlan,
    mut body: &[u8],
    stats: &mut MaskStats,
    scratch: &mut Vec<u8>,
    out: &mut BytesMut,
) -> bool {
    let start = out.len();
    let ok = (|| {
        let b = &mut body;
        let n = take_i16(b)?;
        out.reserve(b.len() + 16);
        out.put_u8(b'D');
        out.put_i32(0);
        out.put_i16(n);
        for i in 0..n.max(0) as usize {
            let len = take_i32(b)?;
            if len < 0 {
                out.put_i32(-1);
                continue;
            }
            let len = len as usize;
            if b.len() < len {
                return None;
            }
            let (value, rest) = b.split_at(len);
            *b = rest;
            scratch.clear();
            match plan.apply_into(i, value, stats, scratch) {
                Applied::Unchanged => {
                    out.put_i32(len as i32);
                    out.extend_from_slice(value);
                }
                Applied::Written => {
                    out.put_i32(scratch.len() as i32);
                    out.extend_from_slice(scratch);
                }
                Applied::Null => out.put_i32(-1),
            }
        }
        Some(())
    })();
    if ok.is_none() {
        out.truncate(start);
        return false;
    }
    let len = (out.len() - start - 1) as i32;
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
    true
}
