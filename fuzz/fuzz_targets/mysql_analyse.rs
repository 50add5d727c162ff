//! The MySQL statement analyser (sqlparser, then our walk) on arbitrary
//! text. Oracles: no panic; deterministic; a statement it refuses or does
//! not understand is never classified as a read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::guardrail::StatementClass;

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let a = sluice_mysql::analyse::analyse(sql, "shop");
    let b = sluice_mysql::analyse::analyse(sql, "shop");
    assert_eq!(a, b);
    if a.refused.is_some() {
        assert_ne!(a.class, StatementClass::Read, "{a:?}");
    }
    let _ = sluice_mysql::analyse::fingerprint(sql);
});
