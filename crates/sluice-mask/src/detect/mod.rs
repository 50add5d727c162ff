//! Value detectors: hand-written scanners that find sensitive values inside
//! larger text (a card number in a note, a token in a log line).
//!
//! Each scanner is a small function over bytes. [`Detectors::find`] first
//! takes one cheap pass over the value to learn which characters it holds
//! (digits, `@`, `=`, …) and runs only the scanners that could match, so the
//! common case, a short value with nothing in it, costs a few nanoseconds
//! and never allocates.
//!
//! All scanners work on ASCII structure and split only at ASCII bytes (or
//! the value's end: a PEM block without its END line runs to it), so in
//! UTF-8 text every span starts and ends on a character boundary and
//! replacing it keeps the text valid.

mod aws;
mod card;
mod email;
mod iban;
mod jwt;
mod pem;
mod phone;
mod secret;
mod ssn;
mod util;

use sluice_core::config::DetectorSwitches;

/// What a detector found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A payment card number (Luhn-checked).
    Card,
    /// An e-mail address.
    Email,
    /// A US social security number.
    Ssn,
    /// A phone number.
    Phone,
    /// An IBAN (mod-97 checked).
    Iban,
    /// An AWS access key id.
    AwsKey,
    /// A JSON Web Token.
    Jwt,
    /// A PEM private key block.
    Pem,
    /// The value of a `password=`/`token=`/`api_key:`-style assignment.
    Secret,
}

impl Kind {
    /// Every kind, in a fixed order (also the order of [`Kind::index`]).
    pub const ALL: [Kind; 9] = [
        Kind::Card,
        Kind::Email,
        Kind::Ssn,
        Kind::Phone,
        Kind::Iban,
        Kind::AwsKey,
        Kind::Jwt,
        Kind::Pem,
        Kind::Secret,
    ];

    /// The name used in configuration and audit (`card`, `aws_key`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Card => "card",
            Kind::Email => "email",
            Kind::Ssn => "ssn",
            Kind::Phone => "phone",
            Kind::Iban => "iban",
            Kind::AwsKey => "aws_key",
            Kind::Jwt => "jwt",
            Kind::Pem => "pem",
            Kind::Secret => "secret",
        }
    }

    /// Position in [`Kind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// One detected value: `text[start..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// What was found.
    pub kind: Kind,
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

/// A set of enabled detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detectors(u16);

impl Detectors {
    /// No detector.
    pub const NONE: Detectors = Detectors(0);
    /// Every detector.
    pub const ALL: Detectors = Detectors((1 << 9) - 1);

    /// The detectors a configuration switches on.
    pub fn from_switches(s: &DetectorSwitches) -> Self {
        let mut d = Detectors::NONE;
        for (on, kind) in [
            (s.card, Kind::Card),
            (s.email, Kind::Email),
            (s.ssn, Kind::Ssn),
            (s.phone, Kind::Phone),
            (s.iban, Kind::Iban),
            (s.aws_key, Kind::AwsKey),
            (s.jwt, Kind::Jwt),
            (s.pem, Kind::Pem),
            (s.secret, Kind::Secret),
        ] {
            if on {
                d = d.with(kind);
            }
        }
        d
    }

    /// Only this kind.
    pub fn only(kind: Kind) -> Self {
        Detectors(kind.bit())
    }

    /// This set plus `kind`.
    pub fn with(self, kind: Kind) -> Self {
        Detectors(self.0 | kind.bit())
    }

    /// Whether `kind` is enabled.
    pub fn contains(self, kind: Kind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Whether no detector is enabled.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Appends the non-overlapping findings in `text` to `out`, in order.
    /// `out` is only grown (so only allocates) when something is found.
    pub fn find(self, text: &[u8], out: &mut Vec<Finding>) {
        if self.is_empty() || text.len() < 5 {
            return;
        }
        let shape = util::Shape::of(text);
        let first = out.len();
        let len = text.len();
        let run = |kind: Kind, gate: bool| self.contains(kind) && gate;
        if run(Kind::Pem, shape.has(util::DASH) && len >= 40) {
            pem::find(text, out);
        }
        if run(Kind::Jwt, shape.has(util::DOT) && len >= 20) {
            jwt::find(text, out);
        }
        if run(Kind::Secret, shape.has(util::ASSIGN)) {
            secret::find(text, out);
        }
        if run(Kind::AwsKey, shape.has(util::UPPER) && len >= 20) {
            aws::find(text, out);
        }
        if run(
            Kind::Iban,
            shape.has(util::UPPER) && shape.digits >= 2 && len >= 15,
        ) {
            iban::find(text, out);
        }
        if run(Kind::Email, shape.has(util::AT)) {
            email::find(text, out);
        }
        let numbers = [Kind::Card, Kind::Ssn, Kind::Phone].map(|k| self.contains(k));
        if shape.digits >= 8 && numbers.contains(&true) {
            // Number scanners only look inside clusters of digits and
            // separators holding enough digits: prose costs one pass.
            for (range, digits) in util::digit_clusters(text) {
                if numbers[0] && digits >= 13 {
                    card::find(text, range.clone(), out);
                }
                if numbers[1] && digits >= 9 {
                    ssn::find(text, range.clone(), out);
                }
                if numbers[2] && digits >= 8 {
                    phone::find(text, range, out);
                }
            }
        }
        if out.len() - first > 1 {
            resolve_overlaps(out, first);
        }
    }

    /// The findings in `text`, as a new vector (convenience for tests and tools).
    pub fn find_all(self, text: &[u8]) -> Vec<Finding> {
        let mut out = Vec::new();
        self.find(text, &mut out);
        out
    }
}

/// Sorts `out[first..]` by start (longest first on ties) and keeps a greedy
/// non-overlapping subset: scanners run in order of specificity, but their
/// findings may overlap (`token=eyJ…` is a secret and a JWT).
fn resolve_overlaps(out: &mut Vec<Finding>, first: usize) {
    let mut found = out.split_off(first);
    found.sort_by_key(|f| (f.start, std::cmp::Reverse(f.end)));
    let mut end = 0;
    for f in found {
        if out.len() == first || f.start >= end {
            out.push(f);
            end = f.end;
        }
    }
}

#[cfg(test)]
mod tests;
