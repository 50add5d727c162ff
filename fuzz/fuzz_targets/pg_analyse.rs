//! The statement analyser (pg_query's parse tree walked by our code) on
//! arbitrary text. Oracles: it never panics; it is deterministic (the
//! verdict cache keys on the text); a string the parser refuses is
//! `unknown` (fail closed); the shape cache never serves a verdict whose
//! analysis read a literal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_sql::{StatementClass, analyze};

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let a = analyze(sql);
    let b = analyze(sql);
    assert_eq!(a, b, "the analysis is a function of the text");
    if a.error.is_some() {
        assert!(
            a.statements
                .iter()
                .all(|s| s.class == StatementClass::Unknown),
            "a string that does not parse is unknown: {a:?}"
        );
    }
    let _ = sluice_sql::shape::shape_key(sql);
});
