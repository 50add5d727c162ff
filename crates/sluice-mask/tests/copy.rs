//! COPY … TO STDOUT rows in text and CSV format.

mod common;

use std::borrow::Cow;

use common::*;
use sluice_mask::types::oid;
use sluice_mask::*;

/// COPY customers (id, name, ssn, notes) TO STDOUT.
fn plan() -> MaskPlan {
    let cols = [
        ColumnDesc::from_table("id", CUSTOMERS, 1, oid::INT4),
        ColumnDesc::from_table("name", CUSTOMERS, 2, oid::TEXT),
        ColumnDesc::from_table("ssn", CUSTOMERS, 4, oid::TEXT),
        ColumnDesc::from_table("notes", CUSTOMERS, 6, oid::TEXT),
    ];
    MaskPlan::build(&masker(), &["a"], &cols, &lookup)
}

fn text(row: &str) -> String {
    let m = masker();
    let mut st = m.new_stats();
    String::from_utf8(
        mask_copy_row(&plan(), &CopyFormat::text(), row.as_bytes(), &mut st).into_owned(),
    )
    .unwrap()
}

fn csv(row: &str) -> String {
    let m = masker();
    let mut st = m.new_stats();
    String::from_utf8(
        mask_copy_row(&plan(), &CopyFormat::csv(), row.as_bytes(), &mut st).into_owned(),
    )
    .unwrap()
}

#[test]
fn text_rows() {
    assert_eq!(
        text("1\tAlice\t123-45-6789\tcall 415-555-0100\n"),
        "1\tAlice\t[REDACTED]\tcall ***-***-0100\n"
    );
    // NULL stays NULL; escapes in kept fields are untouched.
    assert_eq!(
        text("2\tB\\tob\t\\N\tline1\\nline2\n"),
        "2\tB\\tob\t\\N\tline1\\nline2\n"
    );
    // Escapes inside a masked field are decoded before detection and the
    // replacement is re-escaped: the tab and newline around the e-mail survive.
    assert_eq!(
        text("3\tC\tx\tmail:\\ta@b.io\\n\n"),
        "3\tC\t[REDACTED]\tmail:\\t****@b.io\\n\n"
    );
    // An escaped delimiter does not split a field.
    assert_eq!(text("4\tD\\\tE\tx\ty\n"), "4\tD\\\tE\t[REDACTED]\ty\n");
    // Octal and hex escapes decode.
    assert_eq!(
        text("5\tE\tx\t\\141@b.io\n"),
        "5\tE\t[REDACTED]\t****@b.io\n"
    );
    // No trailing newline, and \r\n.
    assert_eq!(text("6\tF\tx\ty"), "6\tF\t[REDACTED]\ty");
    assert_eq!(text("6\tF\tx\ty\r\n"), "6\tF\t[REDACTED]\ty\r\n");
    // Extra fields are not trusted.
    assert_eq!(text("7\tG\tx\ty\tz\n"), "7\tG\t[REDACTED]\ty\t\\N\n");
}

#[test]
fn custom_text_options() {
    let m = masker();
    let mut st = m.new_stats();
    let f = CopyFormat::Text {
        delimiter: b'|',
        null: b"NULL".to_vec(),
    };
    let out = mask_copy_row(&plan(), &f, b"1|A|NULL|x\\|a@b.io\n", &mut st);
    assert_eq!(out.as_ref(), b"1|A|NULL|x\\|****@b.io\n");
    let cols = [ColumnDesc::from_table("ssn", CUSTOMERS, 4, oid::TEXT)];
    let c = config(r#"columns = [{ column = "*.*.ssn", style = "null" }]"#);
    let nuller = std::sync::Arc::new(Masker::new(&c, None).unwrap());
    let p = MaskPlan::build(&nuller, &["a"], &cols, &lookup);
    assert_eq!(
        mask_copy_row(&p, &f, b"123-45-6789\n", &mut st).as_ref(),
        b"NULL\n"
    );
}

#[test]
fn csv_rows() {
    assert_eq!(
        csv("1,Alice,123-45-6789,\"call 415-555-0100, please\"\n"),
        "1,Alice,[REDACTED],\"call ***-***-0100, please\"\n"
    );
    // Unquoted empty is NULL and stays; quoted empty is a value and is masked.
    assert_eq!(csv("2,B,,x\n"), "2,B,,x\n");
    assert_eq!(csv("2,B,\"\",x\n"), "2,B,[REDACTED],x\n");
    // Doubled quotes inside a masked field decode and re-encode.
    assert_eq!(
        csv("3,C,x,\"say \"\"a@b.io\"\"\"\n"),
        "3,C,[REDACTED],\"say \"\"****@b.io\"\"\"\n"
    );
    // A quoted field with a newline inside.
    assert_eq!(
        csv("4,D,x,\"line1\nmail a@b.io\"\n"),
        "4,D,[REDACTED],\"line1\nmail ****@b.io\"\n"
    );
    // A masked value that needs quoting gets quoted.
    assert_eq!(csv("5,\"E,F\",x,y\n"), "5,\"E,F\",[REDACTED],y\n");
}

#[test]
fn csv_with_a_separate_escape_and_null_marker() {
    let m = masker();
    let mut st = m.new_stats();
    let f = CopyFormat::Csv {
        delimiter: b';',
        quote: b'\'',
        escape: b'\\',
        null: b"NULL".to_vec(),
    };
    let out = mask_copy_row(&plan(), &f, b"1;A;'12\\'3';'it\\'s a@b.io'\n", &mut st);
    assert_eq!(out.as_ref(), b"1;A;[REDACTED];'it\\'s ****@b.io'\n");
    // A masked value equal to the NULL marker must be quoted.
    let c = config(r#"columns = [{ column = "*.*.ssn", style = "partial" }]"#);
    let pm = std::sync::Arc::new(Masker::new(&c, None).unwrap());
    let p = MaskPlan::build(
        &pm,
        &["a"],
        &[ColumnDesc::from_table("ssn", CUSTOMERS, 4, oid::TEXT)],
        &lookup,
    );
    let f = CopyFormat::Csv {
        delimiter: b',',
        quote: b'"',
        escape: b'"',
        null: b"****".to_vec(),
    };
    assert_eq!(
        mask_copy_row(&p, &f, b"abcd\n", &mut st).as_ref(),
        b"\"****\"\n"
    );
}

#[test]
fn unchanged_rows_are_borrowed() {
    let m = masker();
    let mut st = m.new_stats();
    let p = plan();
    for row in ["1\tAlice\t\\N\tnothing here\n", "2\tBob\t\\N\t\\N\n"] {
        assert!(matches!(
            mask_copy_row(&p, &CopyFormat::text(), row.as_bytes(), &mut st),
            Cow::Borrowed(_)
        ));
    }
    let pass = MaskPlan::build(
        &m,
        &["a"],
        &[ColumnDesc::from_table("id", CUSTOMERS, 1, oid::INT4)],
        &lookup,
    );
    assert!(pass.is_pass_through());
    assert!(matches!(
        mask_copy_row(&pass, &CopyFormat::csv(), b"1\n", &mut st),
        Cow::Borrowed(_)
    ));
}
