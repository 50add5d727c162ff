//! Rough masking throughput: values per second through a plan, for a few
//! typical value shapes. Not a test; run with
//! `cargo run --release -p sluice-mask --example bench_mask`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use sluice_mask::types::oid;
use sluice_mask::*;

fn main() {
    let config: MaskingConfig =
        toml::from_str(r#"columns = [{ column = "public.customers.ssn", style = "redact" }]"#)
            .expect("config");
    let masker = Arc::new(Masker::new(&config, None).expect("masker"));
    let lookup = |_: u32, attnum: i16| {
        Some(SourceColumn::new(
            "public",
            "customers",
            if attnum == 4 { "ssn" } else { "notes" },
        ))
    };
    let detect = [ColumnDesc::from_table("notes", 1, 6, oid::TEXT)];
    let plan = MaskPlan::build(&masker, &["agents"], &detect, &lookup);
    let rule = [ColumnDesc::from_table("ssn", 1, 4, oid::TEXT)];
    let rule_plan = MaskPlan::build(&masker, &["agents"], &rule, &lookup);

    let long_note = "Customer called about the delivery of order 1234 on 2024-05-01; \
                     asked to update the shipping address to 42 Main Street, Springfield. \
                     Agent confirmed the change and closed the ticket at 14:32."
        .repeat(2);
    let cases: [(&str, &MaskPlan, String); 7] = [
        ("short name (no match)", &plan, "Alice Smith".into()),
        (
            "short id with digits (no match)",
            &plan,
            "ORD-2024-000123".into(),
        ),
        (
            "uuid (no match)",
            &plan,
            "3f2504e0-4f89-11d3-9a0c-0305e82c3301".into(),
        ),
        ("400-byte note (no match)", &plan, long_note),
        ("e-mail (match)", &plan, "alice@example.com".into()),
        (
            "note with card (match)",
            &plan,
            "paid with 4111 1111 1111 1111, thanks".into(),
        ),
        ("column rule redact", &rule_plan, "123-45-6789".into()),
    ];
    println!("{:<34} {:>14} {:>10}", "value", "values/s", "ns/value");
    for (name, plan, value) in &cases {
        let mut stats = masker.new_stats();
        let bytes = value.as_bytes();
        // Warm up, then time enough iterations for a stable figure.
        for _ in 0..10_000 {
            black_box(plan.apply(0, black_box(bytes), &mut stats));
        }
        let n = 2_000_000u32;
        let start = Instant::now();
        for _ in 0..n {
            black_box(plan.apply(0, black_box(bytes), &mut stats));
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name:<34} {:>14.0} {:>10.1}",
            f64::from(n) / secs,
            secs * 1e9 / f64::from(n)
        );
    }
}
