//! COPY rows through the masking plan (text and CSV formats). Oracles: no
//! panic; in text format the rewritten row keeps its field count and its
//! line ending; a column the plan leaves alone is byte-for-byte the same.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use sluice_mask::types::oid;
use sluice_mask::*;

const CUSTOMERS: u32 = 16384;

fn plan() -> &'static (Arc<Masker>, MaskPlan) {
    static PLAN: OnceLock<(Arc<Masker>, MaskPlan)> = OnceLock::new();
    PLAN.get_or_init(|| {
        let config: MaskingConfig = toml::from_str(
            r#"
columns = [
  { column = "public.customers.ssn", style = "redact" },
  { column = "public.customers.email", style = "partial" },
]
"#,
        )
        .unwrap();
        let masker = Arc::new(Masker::new(&config, Some(b"fuzz key")).unwrap());
        let cols = [
            ColumnDesc::from_table("id", CUSTOMERS, 1, oid::INT4),
            ColumnDesc::from_table("email", CUSTOMERS, 2, oid::TEXT),
            ColumnDesc::from_table("ssn", CUSTOMERS, 3, oid::TEXT),
            ColumnDesc::from_table("notes", CUSTOMERS, 4, oid::TEXT),
        ];
        let lookup = |table: u32, attnum: i16| {
            let name = ["id", "email", "ssn", "notes"]
                .get(usize::try_from(attnum).ok()?.checked_sub(1)?)?;
            (table == CUSTOMERS).then(|| SourceColumn::new("public", "customers", *name))
        };
        let plan = MaskPlan::build(&masker, &["a"], &cols, &lookup);
        (masker, plan)
    })
}

/// Text-format fields: tabs not escaped by a backslash.
fn fields(row: &[u8]) -> usize {
    let (mut n, mut i) = (1, 0);
    while i < row.len() {
        match row[i] {
            b'\\' => i += 1,
            b'\t' => n += 1,
            _ => {}
        }
        i += 1;
    }
    n
}

fuzz_target!(|data: &[u8]| {
    let (masker, plan) = plan();
    let Some((&which, row)) = data.split_first() else {
        return;
    };
    let mut stats = masker.new_stats();
    if which % 2 == 0 {
        let out = mask_copy_row(plan, &CopyFormat::text(), row, &mut stats);
        assert_eq!(fields(&out), fields(row), "{row:?} -> {out:?}");
        assert_eq!(row.ends_with(b"\n"), out.ends_with(b"\n"));
        // The first column (id) is left alone.
        let first = |r: &[u8]| r.iter().position(|&b| b == b'\t').map(|p| r[..p].to_vec());
        if first(row).is_some_and(|f| !f.contains(&b'\\')) {
            assert_eq!(first(row), first(&out));
        }
    } else {
        let _ = mask_copy_row(plan, &CopyFormat::csv(), row, &mut stats);
    }
});
