//! The shape cache's soundness: an analysis marked cacheable must be the
//! analysis of every string with the same shape key, whatever its literals.
//! Each template below is filled with every combination of scary literal
//! values; where two fillings share a key, their analyses (and their
//! masking analyses) must be identical.

use sluice_core::config::ColumnPattern;
use sluice_sql::shape::shape_key;
use sluice_sql::{MaskedColumns, analyze, literals, masked_uses};

/// `{n}` is a numeric literal, `{s}` a string literal.
const TEMPLATES: &[&str] = &[
    "SELECT abalance FROM pgbench_accounts WHERE aid = {n};",
    "SELECT * FROM t WHERE a = {s} AND b > {n} ORDER BY c LIMIT {n}",
    "SELECT a, ssn FROM customers ORDER BY {n}",
    "SELECT a, ssn FROM customers GROUP BY {n}, a",
    "SELECT set_config({s}, {s}, false)",
    "SELECT current_setting({s})",
    "SELECT {s}::regclass",
    "SELECT nextval({s})",
    "SELECT pg_read_file({s})",
    "SELECT pg_terminate_backend({n})",
    "SELECT * FROM customers WHERE ssn LIKE {s}",
    "SELECT email FROM customers WHERE id = {n} FOR UPDATE",
    "INSERT INTO t (a, b) VALUES ({n}, {s}) RETURNING a",
    "UPDATE t SET a = {s} WHERE id = {n}",
    "DELETE FROM t WHERE id = {n}",
    "WITH d AS (DELETE FROM t WHERE id = {n} RETURNING *) SELECT * FROM d",
    "SELECT {n} INTO newtable",
    "SELECT * FROM customers ORDER BY {n} DESC, {s}",
    "SELECT date_trunc({s}, now()) + interval {s}",
    "SELECT jsonb_path_query(j, {s}) FROM docs WHERE id = {n}",
    "SET client_encoding = {s}",
    "SET search_path = {s}",
    "SET ROLE {s}",
    "COPY customers TO {s}",
    "COPY customers TO STDOUT (FORMAT {s})",
    "EXPLAIN (ANALYZE {n}) DELETE FROM t",
    "DO {s}",
    "NOTIFY chan, {s}",
    "SELECT {n}; DELETE FROM t WHERE id = {n}",
    "VALUES ({n}, {s})",
    "MERGE INTO t USING s ON t.id = s.id AND s.k = {n} WHEN MATCHED THEN DELETE",
];

const NUMBERS: &[&str] = &["0", "1", "2", "7", "99999", "1.5"];
const STRINGS: &[&str] = &[
    "''",
    "'x'",
    "'role'",
    "'search_path'",
    "'transaction_read_only'",
    "'LATIN1'",
    "'UTF8'",
    "'off'",
    "'binary'",
    "'csv'",
    "'/etc/passwd'",
    "'ssn'",
    "'customers'",
    "'postgres'",
    "'BEGIN DELETE FROM t; END'",
    "'1 day'",
];

/// Every filling of `template`, cycling through the values so each
/// placeholder sees each value with a bounded number of strings.
fn fillings(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    for round in 0..STRINGS.len().max(NUMBERS.len()) {
        for shift in 0..3 {
            let (mut n, mut s) = (round, round + shift);
            let mut text = String::new();
            let mut rest = template;
            while let Some(pos) = rest.find('{') {
                text.push_str(&rest[..pos]);
                let (value, skip) = if rest[pos..].starts_with("{n}") {
                    n += shift + 1;
                    (NUMBERS[n % NUMBERS.len()], 3)
                } else {
                    s += 1;
                    (STRINGS[s % STRINGS.len()], 3)
                };
                text.push_str(value);
                rest = &rest[pos + skip..];
            }
            text.push_str(rest);
            out.push(text);
        }
    }
    out
}

fn masked() -> MaskedColumns {
    MaskedColumns::new(
        ["public.customers.ssn", "customers.email"]
            .iter()
            .map(|p| ColumnPattern::parse(p).unwrap())
            .collect(),
    )
}

#[test]
fn a_cacheable_analysis_holds_for_every_string_of_its_shape() {
    let masked = masked();
    let mut cacheable = 0;
    for template in TEMPLATES {
        let mut groups: std::collections::HashMap<String, Vec<String>> = Default::default();
        for text in fillings(template) {
            if let Some(key) = shape_key(&text) {
                groups.entry(key).or_default().push(text);
            }
        }
        for texts in groups.values() {
            // (analysis, masking analysis, may it be cached) per string.
            let judged: Vec<_> = texts
                .iter()
                .map(|t| {
                    let analysis = analyze(t);
                    let (mask, read) = literals::track(|| masked_uses(t, &masked));
                    let shareable = analysis.cacheable && !read;
                    (analysis, mask, shareable)
                })
                .collect();
            let shared = judged.iter().filter(|j| j.2).count();
            if shared == 0 {
                continue;
            }
            cacheable += shared;
            // Any member may be the one cached, and any other then uses it.
            let (first, first_mask, _) = &judged[0];
            for (t, (other, other_mask, _)) in texts.iter().zip(&judged) {
                assert_eq!(first.statements, other.statements, "{} / {t}", texts[0]);
                assert_eq!(first.fingerprint, other.fingerprint, "{} / {t}", texts[0]);
                assert_eq!(first_mask, other_mask, "{} / {t}", texts[0]);
            }
        }
    }
    assert!(
        cacheable > 100,
        "the cache would hardly ever apply: {cacheable}"
    );
}

#[test]
fn statements_judged_by_their_literals_are_not_cacheable() {
    for sql in [
        "SET client_encoding = 'LATIN1'",
        "SELECT set_config('role', 'postgres', false)",
        "COPY customers TO '/tmp/x'",
        "COPY customers TO STDOUT (FORMAT 'binary')",
        "EXPLAIN (ANALYZE 1) DELETE FROM t",
        "DO 'BEGIN NULL; END'",
    ] {
        assert!(!analyze(sql).cacheable, "{sql}");
    }
    let (_, read) =
        literals::track(|| masked_uses("SELECT a, ssn FROM customers ORDER BY 2", &masked()));
    assert!(read, "ORDER BY 2 is judged by its literal");
    assert!(analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 1").cacheable);
}
