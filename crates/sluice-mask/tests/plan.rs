//! Plans from row descriptions: rules, types, formats, exemption, stats.

mod common;

use std::borrow::Cow;

use common::*;
use sluice_mask::types::oid;
use sluice_mask::*;

fn customers_row(format: Format) -> Vec<ColumnDesc<'static>> {
    let t =
        |name, attnum, ty| ColumnDesc::from_table(name, CUSTOMERS, attnum, ty).with_format(format);
    vec![
        t("id", 1, oid::INT4),
        t("name", 2, oid::TEXT),
        t("email", 3, oid::VARCHAR),
        t("ssn", 4, oid::BPCHAR),
        t("card_number", 5, oid::TEXT),
        t("notes", 6, oid::TEXT),
        t("born", 7, 1082), // date
        t("api_token", 8, oid::TEXT),
        t("doc", 9, oid::JSONB),
        t("tags", 10, oid::TEXT_ARRAY),
    ]
}

#[test]
fn actions_follow_rules_and_types() {
    let m = masker();
    let plan = MaskPlan::build(&m, &["analysts"], &customers_row(Format::Text), &lookup);
    use ColumnAction::*;
    let actions: Vec<ColumnAction> = (0..plan.len()).map(|i| plan.action(i)).collect();
    assert_eq!(
        actions,
        [
            Pass,
            Detect,
            Mask(MaskStyle::Partial),
            Mask(MaskStyle::Redact),
            Mask(MaskStyle::Partial),
            Detect,
            Null, // a date under a rule cannot hold a mask
            Mask(MaskStyle::Hash),
            Detect,
            Detect,
        ]
    );
    assert!(!plan.is_pass_through());
}

#[test]
fn values_are_masked_by_style() {
    let m = masker();
    let plan = MaskPlan::build(&m, &["analysts"], &customers_row(Format::Text), &lookup);
    let mut st = m.new_stats();
    let mut apply = |col, v: &str| s(&plan.apply(col, v.as_bytes(), &mut st));
    assert_eq!(apply(0, "42").unwrap(), "42");
    assert_eq!(apply(1, "Alice Smith").unwrap(), "Alice Smith");
    assert_eq!(apply(2, "alice@example.com").unwrap(), "****@example.com");
    assert_eq!(apply(3, "123-45-6789").unwrap(), "[REDACTED]");
    assert_eq!(
        apply(4, "4111-1111-1111-1111").unwrap(),
        "****-****-****-1111"
    );
    assert_eq!(
        apply(
            5,
            "called from +1-415-555-0100 about card 4111 1111 1111 1111"
        )
        .unwrap(),
        "called from +*-***-***-0100 about card **** **** **** 1111"
    );
    assert_eq!(apply(6, "1990-01-01"), None);
    let h = apply(7, "tok_abc").unwrap();
    assert!(h.starts_with("hash:") && h.len() == 21);
    assert_eq!(apply(7, "tok_abc").unwrap(), h, "stable");
    let counts: Vec<(String, u64)> = st.iter().map(|(l, c)| (l.to_string(), c)).collect();
    assert!(counts.contains(&("column:*.*.ssn".into(), 1)), "{counts:?}");
    assert!(counts.contains(&("detector:card".into(), 1)), "{counts:?}");
    assert!(counts.contains(&("detector:phone".into(), 1)), "{counts:?}");
    assert!(
        counts.contains(&("column:customers.api_token".into(), 2)),
        "{counts:?}"
    );
    assert_eq!(st.total(), 8);
}

#[test]
fn pass_through_values_are_borrowed() {
    let m = masker();
    let plan = MaskPlan::build(&m, &["analysts"], &customers_row(Format::Text), &lookup);
    let mut st = m.new_stats();
    for (col, v) in [
        (0, "42"),
        (1, "Alice Smith"),
        (5, "nothing to see, order 1234"),
        (8, r#"{"a": 1}"#),
        (9, "{a,b}"),
    ] {
        assert!(
            matches!(
                plan.apply(col, v.as_bytes(), &mut st),
                Some(Cow::Borrowed(_))
            ),
            "{v}"
        );
    }
    assert!(st.is_empty());
}

#[test]
fn exempt_groups_see_everything() {
    let c = config(
        r#"
columns = [{ column = "*.*.ssn", style = "redact" }]
exempt_groups = ["dba"]
"#,
    );
    let m = std::sync::Arc::new(Masker::new(&c, None).unwrap());
    let plan = MaskPlan::build(&m, &["dev", "dba"], &customers_row(Format::Text), &lookup);
    assert!(plan.is_pass_through());
    let plan = MaskPlan::build(&m, &["dev"], &customers_row(Format::Text), &lookup);
    assert_eq!(plan.action(3), ColumnAction::Mask(MaskStyle::Redact));
}

#[test]
fn computed_columns_use_name_rules_and_bindings() {
    let m = masker();
    let cols = [
        ColumnDesc::computed("client_secret", oid::TEXT),
        ColumnDesc::computed("x", oid::TEXT).with_forced(MaskStyle::Redact),
        ColumnDesc::computed("n", oid::INT8).with_forced(MaskStyle::Partial),
        ColumnDesc::computed("other", oid::TEXT),
        ColumnDesc::computed("count", oid::INT8),
    ];
    let plan = MaskPlan::build(&m, &[] as &[&str], &cols, &lookup);
    use ColumnAction::*;
    assert_eq!(plan.action(0), Null);
    assert_eq!(plan.action(1), Mask(MaskStyle::Redact));
    assert_eq!(plan.action(2), Null);
    assert_eq!(plan.action(3), Detect);
    assert_eq!(plan.action(4), Pass);
}

#[test]
fn unresolved_table_columns_fail_closed() {
    let m = masker();
    let cols = [
        ColumnDesc::from_table("mystery", 99999, 3, oid::TEXT),
        ColumnDesc::from_table("n", 99999, 4, oid::INT4),
    ];
    let plan = MaskPlan::build(&m, &[] as &[&str], &cols, &lookup);
    assert_eq!(plan.action(0), ColumnAction::Mask(MaskStyle::Redact));
    assert_eq!(plan.action(1), ColumnAction::Null);
    // Without column rules there is nothing to fail closed for.
    let m = std::sync::Arc::new(Masker::new(&config(""), None).unwrap());
    let plan = MaskPlan::build(&m, &[] as &[&str], &cols, &lookup);
    assert_eq!(plan.action(0), ColumnAction::Detect);
    assert_eq!(plan.action(1), ColumnAction::Pass);
}

#[test]
fn binary_format_stays_type_correct() {
    let m = masker();
    let plan = MaskPlan::build(&m, &["a"], &customers_row(Format::Binary), &lookup);
    let mut st = m.new_stats();
    // Text types are the same bytes in binary.
    assert_eq!(
        s(&plan.apply(3, b"123-45-6789", &mut st)).unwrap(),
        "[REDACTED]"
    );
    // A date under a rule: NULL, whatever its 4 binary bytes.
    assert_eq!(plan.apply(6, &[0, 0, 1, 2], &mut st), None);
    // jsonb binary: version byte kept, result valid JSON.
    let mut doc = vec![1u8];
    doc.extend_from_slice(br#"{"note": "mail bob@example.com", "card": 4111111111111111}"#);
    let out = plan.apply(8, &doc, &mut st).unwrap();
    assert_eq!(out[0], 1);
    let v: serde_json::Value = serde_json::from_slice(&out[1..]).unwrap();
    // The bare number could not be replaced in place: the document is redacted.
    assert_eq!(v, serde_json::json!("[REDACTED]"));
    let mut doc = vec![1u8];
    doc.extend_from_slice(br#"{"note": "mail bob@example.com"}"#);
    let out = plan.apply(8, &doc, &mut st).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out[1..]).unwrap();
    assert_eq!(v, serde_json::json!({"note": "mail ****@example.com"}));
    // Unknown jsonb version with a finding: NULL.
    let mut doc = vec![9u8];
    doc.extend_from_slice(b"\"bob@example.com\"");
    assert_eq!(plan.apply(8, &doc, &mut st), None);
    // A binary text[] with a finding cannot be rewritten in place: NULL.
    let mut arr = vec![
        0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 15,
    ];
    arr.extend_from_slice(b"bob@example.com");
    assert_eq!(plan.apply(9, &arr, &mut st), None);
}

#[test]
fn json_and_arrays_in_text_format() {
    let m = masker();
    let plan = MaskPlan::build(&m, &["a"], &customers_row(Format::Text), &lookup);
    let mut st = m.new_stats();
    let out = s(&plan.apply(8, br#"{"ssn": "123-45-6789", "n": [1, 2]}"#, &mut st)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, serde_json::json!({"ssn": "***-**-6789", "n": [1, 2]}));
    assert_eq!(
        s(&plan.apply(9, br#"{"call 415-555-0100",ok}"#, &mut st)).unwrap(),
        r#"{"call ***-***-0100",ok}"#
    );
    // A PEM block spanning elements cannot be cut out of the literal: NULL.
    let arr = b"{\"-----BEGIN PRIVATE KEY-----\",\"MIIE\",\"-----END PRIVATE KEY-----\"}";
    assert_eq!(plan.apply(9, arr, &mut st), None);
    // A JSON column under a rule becomes a JSON string.
    let c = config(r#"columns = [{ column = "customers.doc", style = "partial" }]"#);
    let m = std::sync::Arc::new(Masker::new(&c, None).unwrap());
    let plan = MaskPlan::build(&m, &["a"], &customers_row(Format::Binary), &lookup);
    assert_eq!(
        plan.apply(8, b"\x01{}", &mut st).unwrap().as_ref(),
        b"\x01\"[REDACTED]\""
    );
}

#[test]
fn detector_style_null_and_hash() {
    let c = config("detector_style = \"null\"");
    let m = std::sync::Arc::new(Masker::new(&c, None).unwrap());
    let plan = MaskPlan::build(&m, &["a"], &[ColumnDesc::computed("n", oid::TEXT)], &lookup);
    let mut st = m.new_stats();
    assert_eq!(plan.apply(0, b"mail a@b.io", &mut st), None);
    assert!(plan.apply(0, b"nothing", &mut st).is_some());

    let c = config("detector_style = \"hash\"");
    assert!(matches!(
        Masker::new(&c, None),
        Err(MaskError::MissingHashKey)
    ));
    let m1 = Masker::new(&c, Some(b"k1")).unwrap();
    let m2 = Masker::new(&c, Some(b"k2")).unwrap();
    let mut st = m1.new_stats();
    let a = m1
        .mask_text(b"card 4111 1111 1111 1111", &mut st)
        .unwrap()
        .into_owned();
    let b = m1
        .mask_text(b"card 4111-1111-1111-1111", &mut st)
        .unwrap()
        .into_owned();
    let c2 = m2
        .mask_text(b"card 4111 1111 1111 1111", &mut st)
        .unwrap()
        .into_owned();
    assert_eq!(a, b);
    assert_ne!(a, c2);
    assert!(String::from_utf8(a).unwrap().starts_with("card hash:"));
}

#[test]
fn switched_off_detectors_do_not_run() {
    let c = config("detectors = { email = false, phone = false }");
    let m = Masker::new(&c, None).unwrap();
    let mut st = m.new_stats();
    let out = m
        .mask_text(b"a@b.io 415-555-0100 123-45-6789", &mut st)
        .unwrap();
    assert_eq!(out.as_ref(), b"a@b.io 415-555-0100 ***-**-6789");
}

#[test]
fn bad_configs_are_refused() {
    let c = config(r#"columns = [{ column = "a.b.c.d", style = "redact" }]"#);
    assert!(matches!(
        Masker::new(&c, None),
        Err(MaskError::BadPattern { index: 0, .. })
    ));
}

#[test]
fn stats_merge() {
    let m = masker();
    let mut a = m.new_stats();
    let mut b = m.new_stats();
    m.mask_text(b"a@b.io", &mut a);
    m.mask_text(b"a@b.io c@d.io", &mut b);
    a.merge(&b);
    assert_eq!(a.iter().collect::<Vec<_>>(), [("detector:email", 3)]);
    a.clear();
    assert!(a.is_empty());
}

#[test]
fn rows_longer_than_the_plan_are_nulled() {
    let m = masker();
    let plan = MaskPlan::build(&m, &["a"], &[ColumnDesc::computed("a", oid::TEXT)], &lookup);
    let mut st = m.new_stats();
    assert_eq!(plan.apply(1, b"x", &mut st), None);
}
