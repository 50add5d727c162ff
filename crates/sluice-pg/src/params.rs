//! A backend session's reported parameters (ParameterStatus): what the
//! server told Sluice at startup, kept current with every later report, and
//! relayed to each client of that backend session at its startup, as a
//! fresh backend would send them.

use bytes::{BufMut, BytesMut};

use crate::codec::take_cstr;

/// Parameter names and values, in the order the server first reported them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parameters(Vec<(String, String)>);

impl Parameters {
    /// Records a ParameterStatus body (`name\0value\0`); false when it is
    /// malformed.
    pub fn report(&mut self, body: &[u8]) -> bool {
        let mut b = body;
        match (take_cstr(&mut b), take_cstr(&mut b)) {
            (Some(name), Some(value)) if b.is_empty() => {
                self.set(name, value);
                true
            }
            _ => false,
        }
    }

    /// Sets one parameter, keeping its place if it was reported before.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_string(),
            None => self.0.push((name.to_string(), value.to_string())),
        }
    }

    /// Takes every value `newer` holds.
    pub fn merge(&mut self, newer: &Parameters) {
        for (name, value) in &newer.0 {
            self.set(name, value);
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter as a ParameterStatus message, appended to `out`.
    pub fn write_to(&self, out: &mut BytesMut) {
        for (name, value) in &self.0 {
            out.put_u8(b'S');
            out.put_i32((4 + name.len() + 1 + value.len() + 1) as i32);
            out.put_slice(name.as_bytes());
            out.put_u8(0);
            out.put_slice(value.as_bytes());
            out.put_u8(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_update_in_place_and_round_trip() {
        let mut p = Parameters::default();
        assert!(p.report(b"TimeZone\0UTC\0"));
        assert!(p.report(b"DateStyle\0ISO, MDY\0"));
        assert!(p.report(b"TimeZone\0Asia/Tokyo\0"));
        assert!(!p.report(b"TimeZone\0"));
        assert!(!p.report(b"a\0b\0extra"));
        assert_eq!(p.get("TimeZone"), Some("Asia/Tokyo"));
        let mut out = BytesMut::new();
        p.write_to(&mut out);
        let mut again = Parameters::default();
        let mut buf = out;
        while let Ok(Some(f)) = crate::codec::decode_tagged(&mut buf, 1024) {
            assert_eq!(f.tag, b'S');
            assert!(again.report(f.body()));
        }
        assert_eq!(again, p);
        assert_eq!(again.0[0].0, "TimeZone", "first-reported order kept");
    }
}
