//! Which PostgreSQL types can be rewritten in place, and how.
//!
//! Masked output must stay valid for the column's declared type in both
//! text and binary formats, since clients decode it by that type:
//! - text-like types (`text`, `varchar`, `bpchar`, `name`, plus extension
//!   types the caller declares, such as `citext`) have the same bytes in
//!   both formats, so any replacement is valid;
//! - `json` and `jsonb` are rewritten and must stay JSON: a column rule
//!   replaces the document with a JSON string (`"[REDACTED]"`), and detector
//!   replacements are checked by parsing, falling back to that string;
//!   binary `jsonb` keeps its version byte;
//! - arrays of text-like types are scanned by detectors: in text format the
//!   replacement is written in place (it never contains array syntax); in
//!   binary format a value with a finding becomes NULL, since its element
//!   lengths would change;
//! - every other type becomes NULL under a column rule and is not scanned.

/// How a column's values can be masked, by type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeClass {
    /// Plain text in both formats.
    Text,
    /// `json`: JSON text in both formats.
    Json,
    /// `jsonb`: JSON text; binary format adds a version byte.
    Jsonb,
    /// An array of a text-like type.
    TextArray,
    /// Anything else: only NULL is a safe replacement.
    Other,
}

/// OIDs of the built-in types (`pg_type.oid`, fixed across versions).
pub mod oid {
    pub const NAME: u32 = 19;
    pub const TEXT: u32 = 25;
    pub const JSON: u32 = 114;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const JSONB: u32 = 3802;
    pub const NAME_ARRAY: u32 = 1003;
    pub const TEXT_ARRAY: u32 = 1009;
    pub const BPCHAR_ARRAY: u32 = 1014;
    pub const VARCHAR_ARRAY: u32 = 1015;
    pub const INT4: u32 = 23;
    pub const INT8: u32 = 20;
    pub const BYTEA: u32 = 17;
}

/// The class of a built-in type; `extra_text` lists further text-like OIDs.
pub fn classify(type_oid: u32, extra_text: &[u32]) -> TypeClass {
    match type_oid {
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME => TypeClass::Text,
        oid::JSON => TypeClass::Json,
        oid::JSONB => TypeClass::Jsonb,
        oid::TEXT_ARRAY | oid::VARCHAR_ARRAY | oid::BPCHAR_ARRAY | oid::NAME_ARRAY => {
            TypeClass::TextArray
        }
        other if extra_text.contains(&other) => TypeClass::Text,
        _ => TypeClass::Other,
    }
}

/// A result column's wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Text format (format code 0).
    #[default]
    Text,
    /// Binary format (format code 1).
    Binary,
}

impl Format {
    /// From a protocol format code; anything but 0 is treated as binary,
    /// the format that allows fewer rewrites.
    pub fn from_code(code: i16) -> Self {
        if code == 0 {
            Format::Text
        } else {
            Format::Binary
        }
    }
}
