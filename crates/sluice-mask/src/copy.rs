//! Masking `COPY … TO STDOUT` rows in text and CSV format.
//!
//! The backend sends one row per `CopyData` message. Each row is split into
//! fields with the format's own quoting rules, fields whose column the plan
//! masks are decoded, masked and re-encoded, and every other byte is kept:
//! a row with nothing to mask comes back borrowed. Binary COPY cannot be
//! rewritten field by field without a full decoder and is denied by the
//! statement analysis instead.
//!
//! Columns are those of the COPY (the table's, or the listed ones), planned
//! in text format. A CSV `HEADER` row is column names, not data: the caller
//! forwards it untouched. Fields beyond the plan's columns become NULL: a row
//! that does not match its description is not trusted.

use std::borrow::Cow;

use crate::plan::{ColumnAction, MaskPlan};
use crate::stats::MaskStats;

/// The COPY format and its options, as the statement set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFormat {
    /// `FORMAT text` (the default).
    Text {
        /// `DELIMITER`, default tab.
        delimiter: u8,
        /// `NULL`, default `\N`.
        null: Vec<u8>,
    },
    /// `FORMAT csv`.
    Csv {
        /// `DELIMITER`, default comma.
        delimiter: u8,
        /// `QUOTE`, default `"`.
        quote: u8,
        /// `ESCAPE`, default the quote character.
        escape: u8,
        /// `NULL`, default the empty string (unquoted).
        null: Vec<u8>,
    },
}

impl CopyFormat {
    /// Text format with default options.
    pub fn text() -> Self {
        CopyFormat::Text {
            delimiter: b'\t',
            null: b"\\N".to_vec(),
        }
    }

    /// CSV format with default options.
    pub fn csv() -> Self {
        CopyFormat::Csv {
            delimiter: b',',
            quote: b'"',
            escape: b'"',
            null: Vec::new(),
        }
    }
}

/// One field of a row: its raw bytes' range and whether it is the NULL marker.
struct Field {
    start: usize,
    end: usize,
    null: bool,
}

/// Masks one COPY row (one `CopyData` payload, with its line ending).
pub fn mask_copy_row<'r>(
    plan: &MaskPlan,
    format: &CopyFormat,
    row: &'r [u8],
    stats: &mut MaskStats,
) -> Cow<'r, [u8]> {
    if plan.is_pass_through() {
        return Cow::Borrowed(row);
    }
    let fields = split(format, row);
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    for (i, f) in fields.iter().enumerate() {
        if f.null || (i < plan.len() && plan.action(i) == ColumnAction::Pass) {
            continue;
        }
        let raw = &row[f.start..f.end];
        let value = decode(format, raw);
        let masked = plan.apply(i, &value, stats);
        let replacement: Option<Vec<u8>> = match masked {
            Some(Cow::Borrowed(_)) => None,
            Some(Cow::Owned(v)) => Some(encode(format, &v)),
            None => Some(null_marker(format).to_vec()),
        };
        if let Some(rep) = replacement {
            let buf = out.get_or_insert_with(|| Vec::with_capacity(row.len() + 32));
            buf.extend_from_slice(&row[copied..f.start]);
            buf.extend_from_slice(&rep);
            copied = f.end;
        }
    }
    match out {
        None => Cow::Borrowed(row),
        Some(mut buf) => {
            buf.extend_from_slice(&row[copied..]);
            Cow::Owned(buf)
        }
    }
}

fn null_marker(format: &CopyFormat) -> &[u8] {
    match format {
        CopyFormat::Text { null, .. } | CopyFormat::Csv { null, .. } => null,
    }
}

/// Splits a row into fields, leaving out the line ending.
fn split(format: &CopyFormat, row: &[u8]) -> Vec<Field> {
    match format {
        CopyFormat::Text { delimiter, null } => split_text(row, *delimiter, null),
        CopyFormat::Csv {
            delimiter,
            quote,
            escape,
            null,
        } => split_csv(row, *delimiter, *quote, *escape, null),
    }
}

/// The end of a row's data: before a final `\n` (and a `\r` before it).
fn line_end(row: &[u8]) -> usize {
    let mut end = row.len();
    if end > 0 && row[end - 1] == b'\n' {
        end -= 1;
        if end > 0 && row[end - 1] == b'\r' {
            end -= 1;
        }
    }
    end
}

fn split_text(row: &[u8], delimiter: u8, null: &[u8]) -> Vec<Field> {
    let end = line_end(row);
    let mut fields = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < end {
        if row[i] == b'\\' {
            // An escaped byte (an escaped delimiter too) never splits.
            i += 2;
        } else if row[i] == delimiter {
            fields.push(Field {
                start,
                end: i,
                null: &row[start..i] == null,
            });
            start = i + 1;
            i += 1;
        } else {
            i += 1;
        }
    }
    fields.push(Field {
        start,
        end,
        null: &row[start..end] == null,
    });
    fields
}

fn split_csv(row: &[u8], delimiter: u8, quote: u8, escape: u8, null: &[u8]) -> Vec<Field> {
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let start = i;
        let mut quoted = false;
        if row.get(i) == Some(&quote) {
            quoted = true;
            i += 1;
            while i < row.len() {
                let b = row[i];
                let next = row.get(i + 1).copied();
                if b == escape && escape != quote && (next == Some(quote) || next == Some(escape)) {
                    i += 2;
                } else if b == quote {
                    if escape == quote && next == Some(quote) {
                        i += 2;
                    } else {
                        i += 1;
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        }
        // Unquoted data (or junk after a closing quote) runs to the delimiter
        // or the line ending.
        while i < row.len() && row[i] != delimiter && row[i] != b'\n' && row[i] != b'\r' {
            i += 1;
        }
        fields.push(Field {
            start,
            end: i,
            null: !quoted && &row[start..i] == null,
        });
        if i < row.len() && row[i] == delimiter {
            i += 1;
        } else {
            return fields;
        }
    }
}

/// A field's value from its raw bytes; borrowed when nothing is escaped.
fn decode<'a>(format: &CopyFormat, raw: &'a [u8]) -> Cow<'a, [u8]> {
    match format {
        CopyFormat::Text { .. } => decode_text(raw),
        CopyFormat::Csv { quote, escape, .. } => decode_csv(raw, *quote, *escape),
    }
}

fn decode_text(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.contains(&b'\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' || i + 1 == raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let c = raw[i + 1];
        i += 2;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut n = 1;
                while n < 3 && i < raw.len() && (b'0'..=b'7').contains(&raw[i]) {
                    v = v * 8 + u32::from(raw[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push((v & 0xff) as u8);
            }
            b'x' if i < raw.len() && raw[i].is_ascii_hexdigit() => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && i < raw.len() && raw[i].is_ascii_hexdigit() {
                    v = v * 16 + (raw[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    Cow::Owned(out)
}

fn decode_csv(raw: &[u8], quote: u8, escape: u8) -> Cow<'_, [u8]> {
    if raw.first() != Some(&quote) {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 1;
    while i < raw.len() {
        let b = raw[i];
        let next = raw.get(i + 1).copied();
        if escape != quote && b == escape && (next == Some(quote) || next == Some(escape)) {
            out.push(raw[i + 1]);
            i += 2;
        } else if b == quote && escape == quote && next == Some(quote) {
            out.push(quote);
            i += 2;
        } else if b == quote {
            // The closing quote; PostgreSQL reads data after it as part of
            // the value, unquoted.
            out.extend_from_slice(&raw[i + 1..]);
            break;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Cow::Owned(out)
}

/// A masked value in the format's field syntax.
fn encode(format: &CopyFormat, value: &[u8]) -> Vec<u8> {
    match format {
        CopyFormat::Text { delimiter, .. } => encode_text(value, *delimiter),
        CopyFormat::Csv {
            delimiter,
            quote,
            escape,
            null,
        } => encode_csv(value, *delimiter, *quote, *escape, null),
    }
}

/// As PostgreSQL's `CopyAttributeOutText`: backslash, the delimiter and
/// control characters are escaped.
fn encode_text(value: &[u8], delimiter: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 4);
    for &b in value {
        let esc = match b {
            8 => Some(b'b'),
            12 => Some(b'f'),
            b'\n' => Some(b'n'),
            b'\r' => Some(b'r'),
            b'\t' => Some(b't'),
            11 => Some(b'v'),
            b'\\' => Some(b'\\'),
            _ if b == delimiter => Some(b),
            _ => None,
        };
        match esc {
            Some(e) => out.extend_from_slice(&[b'\\', e]),
            None => out.push(b),
        }
    }
    out
}

/// As PostgreSQL's `CopyAttributeOutCSV`: quoted when it holds the
/// delimiter, quote, escape, a line break, or could be read as NULL.
fn encode_csv(value: &[u8], delimiter: u8, quote: u8, escape: u8, null: &[u8]) -> Vec<u8> {
    let needs_quotes = value == null
        || value.starts_with(b"\\.")
        || value
            .iter()
            .any(|&b| b == delimiter || b == quote || b == escape || b == b'\n' || b == b'\r');
    if !needs_quotes {
        return value.to_vec();
    }
    let mut out = Vec::with_capacity(value.len() + 4);
    out.push(quote);
    for &b in value {
        if b == quote || b == escape {
            out.push(escape);
        }
        out.push(b);
    }
    out.push(quote);
    out
}
