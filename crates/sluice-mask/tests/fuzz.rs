//! Property tests: no input panics the detectors, the plan or the COPY
//! rewriting; findings are in bounds and ordered; masking is idempotent on
//! clean text; COPY rewriting keeps the field count.

mod common;

use common::*;
use proptest::prelude::*;
use sluice_mask::types::oid;
use sluice_mask::*;

/// Bytes biased toward the characters the scanners care about.
fn texty() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        any::<u8>(),
        Just(b'@'),
        Just(b'-'),
        Just(b' '),
        Just(b'='),
        Just(b':'),
        Just(b'.'),
        Just(b'\\'),
        Just(b'\t'),
        Just(b'"'),
        (b'0'..=b'9'),
        (b'A'..=b'Z'),
        (b'a'..=b'z'),
    ];
    let words = prop_oneof![
        Just(b"4111 1111 1111 1111".to_vec()),
        Just(b"a@example.com".to_vec()),
        Just(b"123-45-6789".to_vec()),
        Just(b"+1-415-555-0100".to_vec()),
        Just(b"DE89 3704 0044 0532 0130 00".to_vec()),
        Just(b"AKIAIOSFODNN7EXAMPLE".to_vec()),
        Just(b"-----BEGIN PRIVATE KEY-----".to_vec()),
        Just(b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_vec()),
        Just(b"password=".to_vec()),
        prop::collection::vec(piece, 0..8),
    ];
    prop::collection::vec(words, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn detectors_never_panic_and_stay_in_bounds(text in texty()) {
        let found = Detectors::ALL.find_all(&text);
        let mut last = 0;
        for f in &found {
            prop_assert!(f.start < f.end && f.end <= text.len());
            prop_assert!(f.start >= last);
            last = f.end;
        }
    }

    #[test]
    fn masking_never_panics_and_keeps_utf8(text in ".{0,80}") {
        let m = masker();
        let mut st = m.new_stats();
        if let Some(out) = m.mask_text(text.as_bytes(), &mut st) {
            prop_assert!(std::str::from_utf8(&out).is_ok());
        }
    }

    #[test]
    fn plan_apply_never_panics(value in texty(), ty in prop::sample::select(vec![oid::TEXT, oid::JSON, oid::JSONB, oid::TEXT_ARRAY, oid::INT4]), binary in any::<bool>(), col in 0usize..3) {
        let m = masker();
        let f = if binary { Format::Binary } else { Format::Text };
        let cols = [
            ColumnDesc::computed("a", ty).with_format(f),
            ColumnDesc::from_table("ssn", CUSTOMERS, 4, ty).with_format(f),
        ];
        let plan = MaskPlan::build(&m, &["x"], &cols, &lookup);
        let mut st = m.new_stats();
        let out = plan.apply(col, &value, &mut st);
        if ty == oid::JSON
            && !binary
            && serde_json::from_slice::<serde_json::Value>(&value).is_ok()
            && let Some(out) = out
        {
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
        }
    }

    #[test]
    fn copy_rows_never_panic_and_keep_their_shape(fields in prop::collection::vec(texty(), 1..5), csv in any::<bool>()) {
        let m = masker();
        let cols: Vec<ColumnDesc> = (0..4).map(|i| ColumnDesc::from_table("c", CUSTOMERS, i + 3, oid::TEXT)).collect();
        let plan = MaskPlan::build(&m, &["x"], &cols, &lookup);
        let mut st = m.new_stats();
        let format = if csv { CopyFormat::csv() } else { CopyFormat::text() };
        // Arbitrary bytes as a row: must not panic.
        let raw = fields.join(&b'\t');
        let _ = mask_copy_row(&plan, &format, &raw, &mut st);
        // Well-formed rows: the field count survives masking.
        if !csv {
            let row: Vec<u8> = fields.iter().map(|f| escape_text(f)).collect::<Vec<_>>().join(&b'\t');
            let out = mask_copy_row(&plan, &format, &row, &mut st);
            prop_assert_eq!(count_text_fields(&out), fields.len());
        }
    }
}

fn escape_text(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in v {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    out
}

fn count_text_fields(row: &[u8]) -> usize {
    let mut n = 1;
    let mut i = 0;
    while i < row.len() {
        match row[i] {
            b'\\' => i += 2,
            b'\t' => {
                n += 1;
                i += 1
            }
            _ => i += 1,
        }
    }
    n
}
