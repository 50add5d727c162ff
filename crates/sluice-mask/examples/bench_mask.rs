//! Rough masking throughput: values per second through a plan
//! (`apply_into` with a reused buffer, as the proxy calls it), for a few
//! typical value shapes. Not a test; run with
//! `cargo run --release -p sluice-mask --example bench_mask`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use sluice_mask::types::oid;
use sluice_mask::*;

fn main() {
    let config: MaskingConfig = toml::from_str(
        r#"columns = [
            { column = "public.customers.ssn", style = "redact" },
            { column = "public.customers.card_number", style = "partial" },
            { column = "public.customers.email", style = "partial" },
        ]"#,
    )
    .expect("config");
    let masker = Arc::new(Masker::new(&config, None).expect("masker"));
    let lookup = |_: u32, attnum: i16| {
        let column = match attnum {
            2 => "email",
            3 => "card_number",
            4 => "ssn",
            _ => "notes",
        };
        Some(SourceColumn::new("public", "customers", column))
    };
    let plan_of = |attnum: i16| {
        let desc = [ColumnDesc::from_table("c", 1, attnum, oid::TEXT)];
        MaskPlan::build(&masker, &["agents"], &desc, &lookup)
    };
    let plan = plan_of(6);
    let rule_plan = plan_of(4);
    let (card_plan, email_plan) = (plan_of(3), plan_of(2));

    let long_note = "Customer called about the delivery of order 1234 on 2024-05-01; \
                     asked to update the shipping address to 42 Main Street, Springfield. \
                     Agent confirmed the change and closed the ticket at 14:32."
        .repeat(2);
    let cases: [(&str, &MaskPlan, String); 12] = [
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
        // The rows of bench/mask/run.
        ("bench name (no match)", &plan, "Customer 123456".into()),
        (
            "bench note, 16 digits (no match)",
            &plan,
            "order 1000000000123456 shipped".into(),
        ),
        (
            "column rule partial card",
            &card_plan,
            "4111-1111-1111-1111".into(),
        ),
        (
            "column rule partial e-mail",
            &email_plan,
            "user123456@example.com".into(),
        ),
        (
            "column rule partial, not ASCII",
            &card_plan,
            "Zoë Ångström 12345678".into(),
        ),
    ];
    println!("{:<34} {:>14} {:>10}", "value", "values/s", "ns/value");
    for (name, plan, value) in &cases {
        let mut stats = masker.new_stats();
        let bytes = value.as_bytes();
        // As the proxy calls it: one output buffer, reused.
        let mut out = Vec::new();
        let mut once = |stats: &mut MaskStats| {
            out.clear();
            black_box(plan.apply_into(0, black_box(bytes), stats, &mut out));
        };
        // Warm up, then time enough iterations for a stable figure.
        for _ in 0..10_000 {
            once(&mut stats);
        }
        let n = 2_000_000u32;
        let start = Instant::now();
        for _ in 0..n {
            once(&mut stats);
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name:<34} {:>14.0} {:>10.1}",
            f64::from(n) / secs,
            secs * 1e9 / f64::from(n)
        );
    }
}
