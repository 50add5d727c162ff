//! A command's response from the backend to the client, packet by packet:
//! OK, ERR, or result sets (columns, rows, a terminator; more sets while
//! the server says more exist). Rows go through the session's masking
//! plan, built from each set's column definitions: the backend names each
//! column's source (`org_table`, `org_name`) and type, so column rules
//! find their columns as the server resolved them and replacements keep
//! the type (text masked in place, other types NULL). Text rows (queries)
//! and binary rows (prepared statements) are both read.

use std::sync::Arc;

use mysql_common::constants::ColumnType as T;
use mysql_common::io::ParseBuf;
use mysql_common::packets::Column;
use sluice_mask::{Applied, ColumnDesc, MaskPlan, MaskStats, Masker, SourceColumn};

use crate::packet::{self, Packet};
use crate::wire::{self, STATUS_MORE_RESULTS};

/// Rows are sent in batches of about this many bytes.
const FLUSH_AT: usize = 64 * 1024;

/// How a response ended, for the record.
#[derive(Debug, Default)]
pub struct Outcome {
    pub rows: u64,
    pub affected: Option<u64>,
    /// The backend's error (code and message), if it failed.
    pub error: Option<(String, String)>,
    pub masked: std::collections::BTreeMap<String, u64>,
    /// The first rows, when the connection records them.
    pub kept: Option<crate::capture::Kept>,
}

/// Which row encoding the response uses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    Text,
    Binary,
}

/// What masks a session's results: the masker, the holder's groups, the
/// database that names unqualified sources.
pub struct Masking {
    pub masker: Arc<Masker>,
    pub groups: Vec<String>,
    pub database: String,
    /// The column rules, for the bypass analysis.
    pub rules: crate::bypass::Rules,
}

/// Relays one response. `deprecate_eof`: the terminator is an OK packet
/// (0xfe) and no EOF follows the column definitions.
pub struct Relay<'a, B, C> {
    pub backend: &'a mut B,
    pub client: &'a mut C,
    pub seq: u8,
    pub deprecate_eof: bool,
    pub masking: Option<&'a Masking>,
    pub max_packet: usize,
    /// Rows to keep for the recording (`record_results = "rows:N"`).
    pub keep_rows: Option<usize>,
}

/// A backend read failed: the session cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("backend: {0}")]
    Backend(String),
    #[error("client: {0}")]
    Client(#[from] std::io::Error),
}

impl<B, C> Relay<'_, B, C>
where
    B: tokio::io::AsyncRead + Unpin,
    C: tokio::io::AsyncWrite + Unpin,
{
    async fn read(&mut self) -> Result<Packet, RelayError> {
        packet::read(self.backend, self.max_packet, None)
            .await
            .map_err(|e| RelayError::Backend(e.to_string()))
    }

    /// Relays everything up to the response's end.
    pub async fn run(&mut self, rows: Rows) -> Result<Outcome, RelayError> {
        let mut out = Vec::with_capacity(FLUSH_AT);
        let mut outcome = Outcome::default();
        let mut capture = self.keep_rows.map(crate::capture::Capture::new);
        let mut sets = 0usize;
        loop {
            let first = self.read().await?;
            match first.first() {
                Some(0x00) => {
                    outcome.affected = affected(&first.payload);
                    let more = ok_status(&first.payload) & STATUS_MORE_RESULTS != 0;
                    self.seq = packet::frame(&mut out, self.seq, &first.payload);
                    if !more {
                        break;
                    }
                }
                Some(0xff) => {
                    let err = self.masked_error(&first.payload, &mut outcome);
                    outcome.error = Some(error_parts(&err));
                    self.seq = packet::frame(&mut out, self.seq, &err);
                    break;
                }
                Some(0xfb) => {
                    // LOCAL INFILE: never offered, so never answered.
                    return Err(RelayError::Backend(
                        "the server asked for a local file, which was not offered".into(),
                    ));
                }
                _ => {
                    sets += 1;
                    let more = self
                        .result_set(
                            first,
                            rows,
                            &mut out,
                            &mut outcome,
                            capture.as_mut(),
                            sets == 1,
                        )
                        .await?;
                    if !more {
                        break;
                    }
                }
            }
        }
        outcome.kept = capture.and_then(|c| c.kept);
        use tokio::io::AsyncWriteExt;
        self.client.write_all(&out).await?;
        self.client.flush().await?;
        Ok(outcome)
    }

    /// An ERR packet with its message through the value detectors: the
    /// server quotes values in errors (`Duplicate entry '…' for key`).
    fn masked_error(&self, payload: &[u8], outcome: &mut Outcome) -> Vec<u8> {
        let Some(m) = self.masking else {
            return payload.to_vec();
        };
        let head = if payload.get(3) == Some(&b'#') { 9 } else { 3 };
        let Some(message) = payload.get(head..) else {
            return payload.to_vec();
        };
        let mut stats = m.masker.new_stats();
        let masked = match m.masker.mask_text(message, &mut stats) {
            Some(std::borrow::Cow::Borrowed(_)) => return payload.to_vec(),
            Some(std::borrow::Cow::Owned(v)) => v,
            None => b"[withheld by sluice]".to_vec(),
        };
        for (label, k) in stats.iter() {
            *outcome.masked.entry(label.to_string()).or_insert(0) += k;
        }
        let mut out = payload[..head].to_vec();
        out.extend_from_slice(&masked);
        out
    }

    /// One result set after its column count; whether another follows.
    async fn result_set(
        &mut self,
        count: Packet,
        rows: Rows,
        out: &mut Vec<u8>,
        outcome: &mut Outcome,
        mut capture: Option<&mut crate::capture::Capture>,
        first_set: bool,
    ) -> Result<bool, RelayError> {
        let mut at = 0;
        let n = wire::lenenc_int(&count.payload, &mut at)
            .filter(|n| *n <= 4096)
            .ok_or_else(|| RelayError::Backend("a malformed column count".into()))?
            as usize;
        self.seq = packet::frame(out, self.seq, &count.payload);
        let mut columns = Vec::with_capacity(n);
        for _ in 0..n {
            let p = self.read().await?;
            let col = ParseBuf(&p.payload)
                .parse::<Column>(())
                .map_err(|e| RelayError::Backend(format!("a column definition: {e}")))?;
            columns.push(col);
            self.seq = packet::frame(out, self.seq, &p.payload);
        }
        if !self.deprecate_eof {
            let eof = self.read().await?;
            self.seq = packet::frame(out, self.seq, &eof.payload);
        }
        if let Some(c) = capture.as_deref_mut()
            && first_set
        {
            c.columns(&columns);
        }
        let plan = self.masking.map(|m| plan(m, &columns, rows));
        let mut stats = self.masking.map(|m| m.masker.new_stats());
        let mut buf = Vec::new();
        loop {
            let p = self.read().await?;
            if is_terminator(&p.payload) {
                let more = terminator_status(&p.payload) & STATUS_MORE_RESULTS != 0;
                self.seq = packet::frame(out, self.seq, &p.payload);
                if let (Some(m), Some(stats)) = (self.masking, &stats) {
                    let _ = m;
                    for (label, k) in stats.iter() {
                        *outcome.masked.entry(label.to_string()).or_insert(0) += k;
                    }
                }
                return Ok(more);
            }
            if p.first() == Some(0xff) {
                let err = self.masked_error(&p.payload, outcome);
                outcome.error = Some(error_parts(&err));
                self.seq = packet::frame(out, self.seq, &err);
                return Ok(false);
            }
            outcome.rows += 1;
            let row = match (&plan, &mut stats) {
                (Some(plan), Some(stats)) if !plan.is_pass_through() => {
                    let masked = match rows {
                        Rows::Text => mask_text_row(plan, &p.payload, stats, &mut buf),
                        Rows::Binary => {
                            mask_binary_row(plan, &columns, &p.payload, stats, &mut buf)
                        }
                    };
                    if masked.is_none() {
                        // A row that does not match its columns is not sent.
                        return Err(RelayError::Backend(
                            "a row that does not match its columns".into(),
                        ));
                    }
                    &buf[..]
                }
                _ => &p.payload[..],
            };
            if let Some(c) = capture.as_deref_mut() {
                c.row(first_set, row, &columns, rows == Rows::Binary);
            }
            self.seq = packet::frame(out, self.seq, row);
            if out.len() >= FLUSH_AT {
                use tokio::io::AsyncWriteExt;
                self.client.write_all(out).await?;
                out.clear();
            }
        }
    }
}

/// EOF (old) or the OK that ends a result set: 0xfe and short. A text
/// row whose first value is 2^24 bytes or more also starts with 0xfe, but
/// is itself longer than that.
fn is_terminator(p: &[u8]) -> bool {
    p.first() == Some(&0xfe) && p.len() < 0xff_ffff
}

fn terminator_status(p: &[u8]) -> u16 {
    if p.len() < 9 && p.len() >= 5 {
        // EOF: 0xfe, warnings (2), status (2).
        u16::from_le_bytes([p[3], p[4]])
    } else {
        ok_status(p)
    }
}

/// An OK packet's status flags (after affected rows and last insert id).
fn ok_status(p: &[u8]) -> u16 {
    let mut at = 1;
    let _ = wire::lenenc_int(p, &mut at);
    let _ = wire::lenenc_int(p, &mut at);
    p.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .unwrap_or(0)
}

fn affected(p: &[u8]) -> Option<u64> {
    let mut at = 1;
    wire::lenenc_int(p, &mut at)
}

/// An ERR packet's SQLSTATE-ish code and message.
pub fn error_parts(p: &[u8]) -> (String, String) {
    let code = p
        .get(1..3)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .unwrap_or(0);
    let (state, msg) = if p.get(3) == Some(&b'#') {
        (
            String::from_utf8_lossy(p.get(4..9).unwrap_or(&[])).into_owned(),
            p.get(9..).unwrap_or(&[]),
        )
    } else {
        (String::new(), p.get(3..).unwrap_or(&[]))
    };
    (
        format!("{code} {state}"),
        String::from_utf8_lossy(msg).into_owned(),
    )
}

/// The masking plan of one result set.
fn plan(m: &Masking, columns: &[Column], rows: Rows) -> MaskPlan {
    let names: Vec<String> = columns.iter().map(|c| c.name_str().into_owned()).collect();
    let descs: Vec<ColumnDesc<'_>> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let oid = type_oid(c, rows);
            if c.org_table_ref().is_empty() || c.org_name_ref().is_empty() {
                ColumnDesc::computed(&names[i], oid)
            } else {
                ColumnDesc::from_table(&names[i], i as u32 + 1, 1, oid)
            }
        })
        .collect();
    let lookup = |table: u32, _attnum: i16| -> Option<SourceColumn> {
        let c = columns.get(table.checked_sub(1)? as usize)?;
        let schema = if c.schema_ref().is_empty() {
            m.database.clone()
        } else {
            c.schema_str().into_owned()
        };
        // As the server stores them; rules match without ASCII case.
        Some(SourceColumn::new(
            schema,
            c.org_table_str().into_owned(),
            c.org_name_str().into_owned(),
        ))
    };
    MaskPlan::build(&m.masker, &m.groups, &descs, &lookup)
}

/// The binary charset: such columns hold bytes, not text.
const BINARY: u16 = 63;

/// A PostgreSQL type OID of the same masking class as the column: text
/// types are text (their bytes are text in both row formats); everything
/// else can only be NULLed.
fn type_oid(c: &Column, _rows: Rows) -> u32 {
    use sluice_mask::types::oid;
    match c.column_type() {
        T::MYSQL_TYPE_JSON => oid::JSON,
        T::MYSQL_TYPE_VARCHAR
        | T::MYSQL_TYPE_VAR_STRING
        | T::MYSQL_TYPE_STRING
        | T::MYSQL_TYPE_ENUM
        | T::MYSQL_TYPE_SET
        | T::MYSQL_TYPE_TINY_BLOB
        | T::MYSQL_TYPE_MEDIUM_BLOB
        | T::MYSQL_TYPE_LONG_BLOB
        | T::MYSQL_TYPE_BLOB
            if c.character_set() != BINARY =>
        {
            oid::TEXT
        }
        _ => oid::BYTEA,
    }
}

/// Masks a text row into `buf`; `None` when the row does not parse.
fn mask_text_row(
    plan: &MaskPlan,
    row: &[u8],
    stats: &mut MaskStats,
    buf: &mut Vec<u8>,
) -> Option<()> {
    buf.clear();
    let mut at = 0;
    let mut col = 0;
    let mut scratch = Vec::new();
    while at < row.len() {
        if row[at] == 0xfb {
            buf.push(0xfb);
            at += 1;
        } else {
            let value = wire::lenenc_bytes(row, &mut at)?;
            scratch.clear();
            match plan.apply_into(col, value, stats, &mut scratch) {
                Applied::Unchanged => wire::put_lenenc_bytes(buf, value),
                Applied::Written => wire::put_lenenc_bytes(buf, &scratch),
                Applied::Null => buf.push(0xfb),
            }
        }
        col += 1;
    }
    (col == plan.len()).then_some(())
}

/// Masks a binary row into `buf` (0x00, the NULL bitmap offset by 2, the
/// values by type); `None` when the row does not parse.
fn mask_binary_row(
    plan: &MaskPlan,
    columns: &[Column],
    row: &[u8],
    stats: &mut MaskStats,
    buf: &mut Vec<u8>,
) -> Option<()> {
    let n = columns.len();
    let bitmap_len = (n + 7 + 2) / 8;
    if row.first() != Some(&0x00) || row.len() < 1 + bitmap_len {
        return None;
    }
    let mut bitmap = row[1..1 + bitmap_len].to_vec();
    let is_null = |bm: &[u8], i: usize| bm[(i + 2) / 8] & (1 << ((i + 2) % 8)) != 0;
    let mut values = Vec::new();
    let mut at = 1 + bitmap_len;
    let mut scratch = Vec::new();
    for (i, c) in columns.iter().enumerate() {
        if is_null(&bitmap, i) {
            continue;
        }
        let start = at;
        let value = binary_value(c.column_type(), row, &mut at)?;
        let text_like = type_oid(c, Rows::Binary) == sluice_mask::types::oid::TEXT
            || c.column_type() == T::MYSQL_TYPE_JSON;
        scratch.clear();
        let applied = plan.apply_into(i, value, stats, &mut scratch);
        match applied {
            Applied::Unchanged => values.extend_from_slice(&row[start..at]),
            Applied::Written if text_like => wire::put_lenenc_bytes(&mut values, &scratch),
            // A non-text value cannot hold a mask: NULL.
            Applied::Written | Applied::Null => bitmap[(i + 2) / 8] |= 1 << ((i + 2) % 8),
        }
    }
    if at != row.len() {
        return None;
    }
    buf.clear();
    buf.push(0x00);
    buf.extend_from_slice(&bitmap);
    buf.extend_from_slice(&values);
    Some(())
}

/// One binary-protocol value of type `t` at `*at`: its bytes (without a
/// length prefix), moving past it.
pub fn binary_value<'a>(t: T, row: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let fixed = match t {
        T::MYSQL_TYPE_LONGLONG | T::MYSQL_TYPE_DOUBLE => Some(8),
        T::MYSQL_TYPE_LONG | T::MYSQL_TYPE_INT24 | T::MYSQL_TYPE_FLOAT => Some(4),
        T::MYSQL_TYPE_SHORT | T::MYSQL_TYPE_YEAR => Some(2),
        T::MYSQL_TYPE_TINY => Some(1),
        T::MYSQL_TYPE_NULL => Some(0),
        T::MYSQL_TYPE_DATE
        | T::MYSQL_TYPE_DATETIME
        | T::MYSQL_TYPE_TIMESTAMP
        | T::MYSQL_TYPE_TIME
        | T::MYSQL_TYPE_DATETIME2
        | T::MYSQL_TYPE_TIMESTAMP2
        | T::MYSQL_TYPE_TIME2 => {
            let len = *row.get(*at)? as usize;
            let v = row.get(*at + 1..*at + 1 + len)?;
            *at += 1 + len;
            return Some(v);
        }
        _ => None,
    };
    match fixed {
        Some(len) => {
            let v = row.get(*at..*at + len)?;
            *at += len;
            Some(v)
        }
        None => wire::lenenc_bytes(row, at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminators_are_told_from_rows() {
        assert!(is_terminator(&[0xfe, 0, 0, 2, 0]));
        assert!(is_terminator(&[0xfe, 0, 0, 2, 0, 0, 0]));
        assert!(!is_terminator(&[0x03, b'a', b'b', b'c']));
        assert_eq!(terminator_status(&[0xfe, 0, 0, 0x0a, 0]), 0x0a);
        assert_eq!(terminator_status(&[0xfe, 0, 0, 0x08, 0, 0, 0]), 0x08);
    }
}
