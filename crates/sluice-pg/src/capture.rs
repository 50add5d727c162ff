//! The first result rows of each statement, kept for the session recording
//! when the connection's `record_results` is `rows:N`.
//!
//! The pump offers whole RowDescription and DataRow frames *as the client
//! receives them* (after masking); the tracker ([`crate::outcome`]) takes
//! what was kept at each statement's completion and the audit writer turns
//! it into a `statement.results` event (shape in `sluice_audit::replay`).
//! Nothing here waits or grows: at most N rows of at most
//! [`MAX_VALUE`]-byte values per statement, and rows past N are only
//! counted as `truncated`.
//!
//! Values are rendered the way a person reads them: text that is UTF-8
//! without control characters as itself, anything else (binary-format
//! values, whose format a RowDescription may not tell) as `\x` hex.

use crate::codec::{take_cstr, take_i16, take_i32};

pub use sluice_gate::render::MAX_VALUE;
use sluice_gate::render::{cut_to, render};

/// Largest frame the pump holds whole for a capture; rows past it are
/// counted as truncated rather than held.
pub const MAX_FRAME: usize = 256 * 1024;

/// What one statement returned, as kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Results {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// More rows followed than were kept.
    pub truncated: bool,
    /// Some values were longer than [`MAX_VALUE`] and were cut.
    pub cut: bool,
}

/// The session's capture: the rows of the statement now answering.
pub struct Capture {
    limit: usize,
    current: Results,
    /// A RowDescription or a row arrived since the last completion.
    seen: bool,
    /// For a session exempt from masking: the masks the recording still
    /// goes through.
    mask: Option<crate::mask::RecordingMask>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("limit", &self.limit)
            .field("masked", &self.mask.is_some())
            .finish()
    }
}

impl Capture {
    /// Keeps up to `limit` rows per statement; `None` when `limit` is 0.
    pub fn new(limit: u32) -> Option<Capture> {
        (limit > 0).then(|| Capture {
            limit: limit as usize,
            current: Results::default(),
            seen: false,
            mask: None,
        })
    }

    /// Masks what is kept (a session exempt from masking).
    pub fn masked_by(mut self, mask: crate::mask::RecordingMask) -> Self {
        self.mask = Some(mask);
        self
    }

    /// Whether the pump should hold a frame with `tag` whole and offer it.
    pub fn wants(&self, tag: u8, total: usize) -> bool {
        match tag {
            b'T' => total <= MAX_FRAME,
            b'D' => total <= MAX_FRAME && self.current.rows.len() < self.limit,
            _ => false,
        }
    }

    /// A RowDescription's column names.
    pub fn describe(&mut self, body: &[u8]) {
        if let Some(m) = &mut self.mask {
            m.describe(body);
        }
        self.seen = true;
        self.current.columns = columns(body).unwrap_or_default();
        self.current.rows.clear();
    }

    /// A DataRow as the client receives it, when [`Capture::wants`] it.
    pub fn row(&mut self, body: &[u8]) {
        self.seen = true;
        if self.current.rows.len() >= self.limit {
            self.current.truncated = true;
            return;
        }
        let masked = match &mut self.mask {
            Some(m) => match m.row(body) {
                Some(row) => Some(row),
                None => {
                    self.current.truncated = true;
                    return;
                }
            },
            None => None,
        };
        match values(masked.as_deref().unwrap_or(body)) {
            Some((row, cut)) => {
                self.current.cut |= cut;
                self.current.rows.push(row);
            }
            None => self.current.truncated = true,
        }
    }

    /// A DataRow the pump streamed without offering it (past the limit or
    /// too large to hold).
    pub fn skipped_row(&mut self) {
        self.seen = true;
        self.current.truncated = true;
    }

    /// The statement completed: what was kept, if it returned rows or
    /// described any. After a PortalSuspended (`suspended`) the column
    /// names stay for the portal's next Execute, which gets no
    /// RowDescription of its own; otherwise they go, so a later statement
    /// is never shown under another's columns.
    pub fn take(&mut self, suspended: bool) -> Option<Results> {
        if !std::mem::take(&mut self.seen) {
            self.current = Results::default();
            return None;
        }
        let columns = suspended.then(|| self.current.columns.clone());
        let taken = std::mem::take(&mut self.current);
        self.current.columns = columns.unwrap_or_default();
        Some(taken)
    }
}

/// Column names of a RowDescription body.
fn columns(mut body: &[u8]) -> Option<Vec<String>> {
    let n = take_i16(&mut body)?;
    let mut out = Vec::with_capacity(n.clamp(0, 1600) as usize);
    for _ in 0..n {
        let name = take_cstr(&mut body)?;
        // Table OID, column number, type OID, size, modifier, format.
        if body.len() < 18 {
            return None;
        }
        body = &body[18..];
        out.push(cut_to(name, MAX_VALUE).0);
    }
    Some(out)
}

/// A DataRow body's values, rendered; and whether any was cut.
fn values(mut body: &[u8]) -> Option<(Vec<Option<String>>, bool)> {
    let n = take_i16(&mut body)?;
    let mut out = Vec::with_capacity(n.clamp(0, 1600) as usize);
    let mut cut = false;
    for _ in 0..n {
        let len = take_i32(&mut body)?;
        if len < 0 {
            out.push(None);
            continue;
        }
        let len = len as usize;
        if body.len() < len {
            return None;
        }
        let (value, was_cut) = render(&body[..len]);
        cut |= was_cut;
        out.push(Some(value));
        body = &body[len..];
    }
    Some((out, cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row_description(names: &[&str]) -> Vec<u8> {
        let mut b = (names.len() as i16).to_be_bytes().to_vec();
        for n in names {
            b.extend_from_slice(n.as_bytes());
            b.push(0);
            b.extend_from_slice(&[0; 18]);
        }
        b
    }

    fn data_row(values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut b = (values.len() as i16).to_be_bytes().to_vec();
        for v in values {
            match v {
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    b.extend_from_slice(v);
                }
            }
        }
        b
    }

    #[test]
    fn keeps_the_first_rows_and_marks_the_rest_truncated() {
        let mut c = Capture::new(2).unwrap();
        c.describe(&row_description(&["id", "email"]));
        assert!(c.wants(b'D', 100));
        c.row(&data_row(&[Some(b"1"), Some(b"a***@example.com")]));
        c.row(&data_row(&[Some(b"2"), None]));
        assert!(!c.wants(b'D', 100), "the limit is reached");
        c.skipped_row();
        let r = c.take(false).unwrap();
        assert_eq!(r.columns, ["id", "email"]);
        assert_eq!(
            r.rows,
            vec![
                vec![Some("1".to_string()), Some("a***@example.com".to_string())],
                vec![Some("2".to_string()), None],
            ]
        );
        assert!(r.truncated);
        assert_eq!(c.take(false), None, "nothing since the last completion");
    }

    #[test]
    fn binary_values_are_hex_and_long_values_cut() {
        let mut c = Capture::new(5).unwrap();
        let long = vec![b'x'; MAX_VALUE + 10];
        c.row(&data_row(&[Some(&[0, 0, 0, 42]), Some(&long)]));
        let r = c.take(false).unwrap();
        assert_eq!(r.rows[0][0].as_deref(), Some("\\x0000002a"));
        assert_eq!(r.rows[0][1].as_ref().unwrap().len(), MAX_VALUE);
        assert!(r.cut && !r.truncated);
        assert!(r.columns.is_empty(), "no RowDescription was seen");
    }

    #[test]
    fn columns_stay_only_for_the_next_execute_of_a_suspended_portal() {
        let mut c = Capture::new(1).unwrap();
        c.describe(&row_description(&["n"]));
        c.row(&data_row(&[Some(b"1")]));
        assert_eq!(c.take(true).unwrap().rows.len(), 1);
        c.row(&data_row(&[Some(b"2")]));
        let r = c.take(false).unwrap();
        assert_eq!(r.columns, ["n"]);
        assert_eq!(r.rows, vec![vec![Some("2".to_string())]]);
        c.row(&data_row(&[Some(b"3")]));
        assert!(c.take(false).unwrap().columns.is_empty());
        assert_eq!(c.take(false), None);
    }

    #[test]
    fn a_malformed_row_is_not_kept() {
        let mut c = Capture::new(3).unwrap();
        c.row(&[0, 1, 0, 0, 0, 9, b'a']);
        let r = c.take(false).unwrap();
        assert!(r.rows.is_empty() && r.truncated);
        assert!(Capture::new(0).is_none());
    }
}
