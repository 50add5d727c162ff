//! The first rows of a statement's first result set, kept for the session
//! recording when the connection's `record_results` is `rows:N`: the
//! values exactly as the client received them (after masking), rendered
//! as text (binary-protocol values decoded by their column type).

use mysql_common::constants::{ColumnFlags, ColumnType as T};
use mysql_common::packets::Column;
use sluice_gate::render::{MAX_VALUE, cut_to, render};

use crate::wire;

/// What one statement returned, as kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// More rows followed than were kept.
    pub truncated: bool,
    /// Some values were longer than [`MAX_VALUE`] and were cut.
    pub cut: bool,
}

/// The capture of one response.
pub struct Capture {
    limit: usize,
    pub kept: Option<Kept>,
}

impl Capture {
    pub fn new(limit: usize) -> Capture {
        Capture { limit, kept: None }
    }

    /// A result set begins: only the first one's rows are kept.
    pub fn columns(&mut self, columns: &[Column]) {
        if self.kept.is_none() {
            self.kept = Some(Kept {
                columns: columns
                    .iter()
                    .map(|c| cut_to(&c.name_str(), MAX_VALUE).0)
                    .collect(),
                ..Kept::default()
            });
        }
    }

    /// A row as sent to the client, of the first result set (`first`).
    pub fn row(&mut self, first: bool, row: &[u8], columns: &[Column], binary: bool) {
        let Some(kept) = self.kept.as_mut().filter(|_| first) else {
            return;
        };
        if kept.rows.len() >= self.limit {
            kept.truncated = true;
            return;
        }
        let values = if binary {
            binary_values(row, columns)
        } else {
            text_values(row)
        };
        if let Some(values) = values {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                out.push(v.map(|v| {
                    let (text, cut) = render(&v);
                    kept.cut |= cut;
                    text
                }));
            }
            kept.rows.push(out);
        }
    }
}

fn text_values(row: &[u8]) -> Option<Vec<Option<Vec<u8>>>> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < row.len() {
        if row[at] == 0xfb {
            at += 1;
            out.push(None);
        } else {
            out.push(Some(wire::lenenc_bytes(row, &mut at)?.to_vec()));
        }
    }
    Some(out)
}

fn binary_values(row: &[u8], columns: &[Column]) -> Option<Vec<Option<Vec<u8>>>> {
    let n = columns.len();
    let bitmap_len = (n + 7 + 2) / 8;
    let bitmap = row.get(1..1 + bitmap_len)?;
    let mut at = 1 + bitmap_len;
    let mut out = Vec::with_capacity(n);
    for (i, c) in columns.iter().enumerate() {
        if bitmap[(i + 2) / 8] & (1 << ((i + 2) % 8)) != 0 {
            out.push(None);
            continue;
        }
        let raw = crate::result::binary_value(c.column_type(), row, &mut at)?;
        out.push(Some(as_text(c, raw)));
    }
    Some(out)
}

/// A binary-protocol value as the text protocol would show it.
fn as_text(c: &Column, v: &[u8]) -> Vec<u8> {
    let unsigned = c.flags().contains(ColumnFlags::UNSIGNED_FLAG);
    let int = |v: &[u8]| -> String {
        let mut b = [0u8; 8];
        b[..v.len()].copy_from_slice(v);
        if unsigned {
            u64::from_le_bytes(b).to_string()
        } else {
            // Sign-extend from the value's width.
            let shift = 64 - 8 * v.len() as u32;
            ((i64::from_le_bytes(b) << shift) >> shift).to_string()
        }
    };
    let text = match c.column_type() {
        T::MYSQL_TYPE_TINY
        | T::MYSQL_TYPE_SHORT
        | T::MYSQL_TYPE_YEAR
        | T::MYSQL_TYPE_LONG
        | T::MYSQL_TYPE_INT24
        | T::MYSQL_TYPE_LONGLONG => int(v),
        T::MYSQL_TYPE_FLOAT if v.len() == 4 => {
            f32::from_le_bytes(v.try_into().expect("4 bytes")).to_string()
        }
        T::MYSQL_TYPE_DOUBLE if v.len() == 8 => {
            f64::from_le_bytes(v.try_into().expect("8 bytes")).to_string()
        }
        T::MYSQL_TYPE_DATE
        | T::MYSQL_TYPE_DATETIME
        | T::MYSQL_TYPE_TIMESTAMP
        | T::MYSQL_TYPE_DATETIME2
        | T::MYSQL_TYPE_TIMESTAMP2 => datetime(c.column_type() == T::MYSQL_TYPE_DATE, v),
        T::MYSQL_TYPE_TIME | T::MYSQL_TYPE_TIME2 => time(v),
        _ => return v.to_vec(),
    };
    text.into_bytes()
}

fn datetime(date_only: bool, v: &[u8]) -> String {
    let g = |i: usize| v.get(i).copied().unwrap_or(0) as u32;
    let year = u16::from_le_bytes([g(0) as u8, g(1) as u8]);
    let date = format!("{year:04}-{:02}-{:02}", g(2), g(3));
    if date_only {
        return date;
    }
    let mut s = format!("{date} {:02}:{:02}:{:02}", g(4), g(5), g(6));
    if v.len() >= 11 {
        let micros = u32::from_le_bytes([v[7], v[8], v[9], v[10]]);
        s.push_str(&format!(".{micros:06}"));
    }
    s
}

fn time(v: &[u8]) -> String {
    let g = |i: usize| v.get(i).copied().unwrap_or(0) as u32;
    let days = u32::from_le_bytes([g(1) as u8, g(2) as u8, g(3) as u8, g(4) as u8]);
    let sign = if g(0) == 1 { "-" } else { "" };
    let mut s = format!("{sign}{:02}:{:02}:{:02}", days * 24 + g(5), g(6), g(7));
    if v.len() >= 12 {
        let micros = u32::from_le_bytes([v[8], v[9], v[10], v[11]]);
        s.push_str(&format!(".{micros:06}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_values_read_as_text() {
        let int = Column::new(T::MYSQL_TYPE_LONG);
        assert_eq!(as_text(&int, &(-5i32).to_le_bytes()), b"-5");
        let dt = Column::new(T::MYSQL_TYPE_DATETIME);
        assert_eq!(
            as_text(&dt, &[0xe8, 0x07, 5, 1, 12, 30, 0]),
            b"2024-05-01 12:30:00"
        );
        let text = Column::new(T::MYSQL_TYPE_VAR_STRING);
        assert_eq!(as_text(&text, b"abc"), b"abc");
    }

    #[test]
    fn rows_past_the_limit_are_counted_not_kept() {
        let mut c = Capture::new(1);
        c.columns(&[Column::new(T::MYSQL_TYPE_VAR_STRING).with_name(b"n")]);
        c.row(true, b"\x01a", &[], false);
        c.row(true, b"\x01b", &[], false);
        let k = c.kept.unwrap();
        assert_eq!(k.rows, vec![vec![Some("a".to_string())]]);
        assert!(k.truncated);
        assert_eq!(k.columns, ["n"]);
    }
}
