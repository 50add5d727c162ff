//! Bypass analysis for masked columns: every known bypass is refused with a
//! message naming the column and the place; legitimate queries pass with
//! bindings for the masked outputs.

use sluice_core::config::ColumnPattern;
use sluice_sql::{Catalog, MaskedColumns, OutputBinding, masked_uses_with};

/// The playground's tables as a backend's catalog shows them: which of
/// their columns share a name with a one-argument function.
fn catalog() -> Catalog {
    Catalog::bundled().with_columns(&[
        ("public", "customers", "name"),
        ("public", "orders", "total"),
    ])
}

fn masked_uses(
    sql: &str,
    masked: &MaskedColumns,
) -> Result<Vec<OutputBinding>, sluice_sql::MaskViolation> {
    masked_uses_with(sql, masked, &catalog())
}

/// The playground's rules: customers.card_number, customers.ssn, customers.email.
fn masked() -> MaskedColumns {
    MaskedColumns::new(
        [
            "public.customers.card_number",
            "public.customers.ssn",
            "customers.email",
        ]
        .iter()
        .map(|p| ColumnPattern::parse(p).unwrap())
        .collect(),
    )
}

#[track_caller]
fn denied(sql: &str, column: &str, context: &str) {
    match masked_uses(sql, &masked()) {
        Ok(b) => panic!("{sql}\n  should be denied, got bindings {b:?}"),
        Err(v) => {
            assert_eq!(
                (v.column.as_str(), v.context.as_str()),
                (column, context),
                "{sql}\n  {}",
                v.message()
            );
        }
    }
}

#[track_caller]
fn allowed(sql: &str) -> Vec<OutputBinding> {
    masked_uses(sql, &masked()).unwrap_or_else(|v| panic!("{sql}\n  should pass: {}", v.message()))
}

/// (position, name, column) of each binding.
fn shape(b: &[OutputBinding]) -> Vec<(Option<usize>, String, Option<String>)> {
    b.iter()
        .map(|b| (b.position, b.name.clone(), b.column.clone()))
        .collect()
}

const SSN: &str = "public.customers.ssn";
const CARD: &str = "public.customers.card_number";

#[test]
fn legitimate_queries_pass_with_bindings() {
    let b = allowed("SELECT name, email FROM customers WHERE id = 5");
    assert_eq!(shape(&b), [(Some(1), "email".into(), Some("email".into()))]);
    assert_eq!(b[0].pattern, 2);
    assert_eq!(b[0].table, "customers");

    let b = allowed("SELECT ssn AS x, c.card_number FROM public.customers c ORDER BY c.name");
    assert_eq!(
        shape(&b),
        [
            (Some(0), "x".into(), Some("ssn".into())),
            (Some(1), "card_number".into(), Some("card_number".into()))
        ]
    );
    assert_eq!(b[1].schema.as_deref(), Some("public"));

    assert!(allowed("SELECT count(*) FROM customers").is_empty());
    assert!(allowed("SELECT o.id, o.total FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.name = 'x'").is_empty());
    assert!(allowed("SELECT id FROM customers WHERE EXISTS (SELECT * FROM customers c2 WHERE c2.id = customers.id)").is_empty());
    assert!(allowed("SELECT id FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE name LIKE 'A%')").is_empty());
    assert!(
        allowed("SELECT ssn FROM other.customers").is_empty(),
        "another schema's table is not masked"
    );
    assert!(allowed("WITH customers AS (SELECT 1 AS ssn) SELECT ssn FROM customers").is_empty());
    assert!(allowed("INSERT INTO customers (name, ssn) VALUES ('a', '123-45-6789')").is_empty());
    assert!(allowed("UPDATE customers SET ssn = '000-00-0000' WHERE id = 1").is_empty());
    assert!(allowed("DELETE FROM customers WHERE id = 1").is_empty());
    assert!(allowed("INSERT INTO customers (id, ssn) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET ssn = excluded.ssn").is_empty());
    assert!(allowed("SELECT 1").is_empty());
    assert!(allowed("COPY customers FROM STDIN").is_empty());
    assert!(allowed("EXPLAIN SELECT ssn FROM customers").is_empty());
    assert!(allowed("SELECT name FROM customers ORDER BY 1").is_empty());
}

#[test]
fn stars_bind_whole_tables() {
    let b = allowed("SELECT * FROM customers");
    assert_eq!(shape(&b), [(None, "*".into(), None)]);
    let b = allowed("TABLE customers");
    assert_eq!(shape(&b), [(None, "*".into(), None)]);
    let b = allowed("SELECT c.*, o.id FROM customers c JOIN orders o ON o.customer_id = c.id");
    assert_eq!(b.len(), 1);
    // Positions after a star depend on the catalog.
    let b = allowed("SELECT *, ssn FROM customers");
    assert_eq!(
        shape(&b),
        [
            (None, "*".into(), None),
            (None, "ssn".into(), Some("ssn".into()))
        ]
    );
    assert!(allowed("SELECT * FROM orders").is_empty());
    let b = allowed("COPY customers TO STDOUT");
    assert_eq!(shape(&b), [(None, "*".into(), None)]);
    let b = allowed("COPY customers (id, ssn) TO STDOUT WITH (FORMAT csv)");
    assert_eq!(shape(&b), [(Some(1), "ssn".into(), Some("ssn".into()))]);
}

#[test]
fn returning_binds_or_denies() {
    let b = allowed("UPDATE customers SET name = 'x' WHERE id = 1 RETURNING id, ssn");
    assert_eq!(shape(&b), [(Some(1), "ssn".into(), Some("ssn".into()))]);
    let b = allowed("DELETE FROM customers WHERE id = 1 RETURNING *");
    assert_eq!(shape(&b), [(None, "*".into(), None)]);
    let b = allowed("INSERT INTO customers (name) VALUES ('x') RETURNING card_number");
    assert_eq!(b.len(), 1);
    denied(
        "UPDATE customers SET name = 'x' RETURNING ssn || ''",
        SSN,
        "operator ||",
    );
    denied(
        "DELETE FROM customers RETURNING upper(email)",
        "customers.email",
        "function upper",
    );
}

#[test]
fn expressions_over_masked_columns_are_denied() {
    denied(
        "SELECT encode(card_number::bytea, 'hex') FROM customers",
        CARD,
        "function encode",
    );
    denied(
        "SELECT substr(ssn, 1, 3) FROM customers",
        SSN,
        "function substr",
    );
    denied(
        "SELECT card_number || '' FROM customers",
        CARD,
        "operator ||",
    );
    denied("SELECT ssn::text FROM customers", SSN, "a cast");
    denied(
        "SELECT CASE WHEN ssn > '5' THEN 1 END FROM customers",
        SSN,
        "a CASE expression",
    );
    denied("SELECT min(ssn) FROM customers", SSN, "aggregate min");
    denied(
        "SELECT string_agg(ssn, ',') FROM customers",
        SSN,
        "aggregate string_agg",
    );
    denied(
        "SELECT count(DISTINCT ssn) FROM customers",
        SSN,
        "aggregate count",
    );
    denied(
        "SELECT rank() OVER (ORDER BY ssn) FROM customers",
        SSN,
        "window function rank",
    );
    denied(
        "SELECT lag(ssn) OVER () FROM customers",
        SSN,
        "window function lag",
    );
    denied(
        "SELECT ARRAY[ssn] FROM customers",
        SSN,
        "an array constructor",
    );
    denied("SELECT ROW(ssn) FROM customers", SSN, "a row constructor");
    denied(
        "SELECT ssn COLLATE \"C\" FROM customers",
        SSN,
        "a COLLATE expression",
    );
    denied(
        "SELECT (SELECT ssn FROM customers LIMIT 1)",
        SSN,
        "a subquery",
    );
    denied(
        "SELECT coalesce(email, '') FROM customers",
        "customers.email",
        "COALESCE",
    );
}

#[test]
fn clauses_are_oracles() {
    denied(
        "SELECT id FROM customers WHERE ssn LIKE '123%'",
        SSN,
        "WHERE",
    );
    denied(
        "SELECT id FROM customers WHERE ssn BETWEEN '100' AND '200'",
        SSN,
        "WHERE",
    );
    denied(
        "SELECT id FROM customers c WHERE c.card_number = '4111'",
        CARD,
        "WHERE",
    );
    denied(
        "SELECT o.id FROM orders o JOIN customers c ON c.ssn = o.ref",
        SSN,
        "JOIN",
    );
    denied(
        "SELECT 1 FROM customers JOIN orders USING (ssn)",
        SSN,
        "JOIN",
    );
    denied(
        "SELECT 1 FROM customers NATURAL JOIN orders",
        "public.customers.*",
        "a NATURAL JOIN",
    );
    denied("SELECT id FROM customers ORDER BY ssn", SSN, "ORDER BY");
    denied("SELECT ssn FROM customers ORDER BY 1", SSN, "ORDER BY");
    denied("SELECT ssn AS s FROM customers ORDER BY s", SSN, "ORDER BY");
    denied(
        "SELECT ssn, count(*) FROM customers GROUP BY 1",
        SSN,
        "GROUP BY",
    );
    denied(
        "SELECT count(*) FROM customers GROUP BY ssn",
        SSN,
        "GROUP BY",
    );
    denied(
        "SELECT count(*) FROM customers GROUP BY name HAVING max(ssn) > '5'",
        SSN,
        "HAVING",
    );
    denied(
        "SELECT DISTINCT ON (ssn) id FROM customers",
        SSN,
        "DISTINCT ON",
    );
    denied(
        "SELECT id, sum(1) OVER w FROM customers WINDOW w AS (PARTITION BY ssn)",
        SSN,
        "WINDOW",
    );
    denied(
        "UPDATE customers SET name = 'x' WHERE ssn = '123-45-6789'",
        SSN,
        "WHERE",
    );
    denied(
        "DELETE FROM customers WHERE email LIKE '%@corp.com'",
        "customers.email",
        "WHERE",
    );
    denied(
        "SELECT id FROM customers WHERE EXISTS (SELECT 1 FROM orders o WHERE o.ref = customers.ssn)",
        SSN,
        "WHERE",
    );
    denied(
        "EXPLAIN ANALYZE SELECT id FROM customers WHERE ssn = '1'",
        SSN,
        "WHERE",
    );
}

#[test]
fn copying_elsewhere_is_denied() {
    denied(
        "CREATE TABLE leak AS SELECT ssn FROM customers",
        SSN,
        "CREATE TABLE AS",
    );
    denied(
        "CREATE TABLE leak AS SELECT * FROM customers",
        "public.customers.*",
        "CREATE TABLE AS",
    );
    denied(
        "CREATE MATERIALIZED VIEW leak AS SELECT ssn FROM customers",
        SSN,
        "CREATE MATERIALIZED VIEW",
    );
    denied("SELECT ssn INTO leak FROM customers", SSN, "SELECT INTO");
    denied(
        "SELECT * INTO leak FROM customers",
        "public.customers.*",
        "SELECT INTO",
    );
    denied(
        "INSERT INTO leak SELECT ssn FROM customers",
        SSN,
        "INSERT … SELECT",
    );
    denied(
        "INSERT INTO leak SELECT * FROM customers",
        "public.customers.*",
        "INSERT … SELECT",
    );
    denied("UPDATE customers SET name = ssn", SSN, "UPDATE … SET");
    denied(
        "UPDATE orders o SET ref = c.ssn FROM customers c WHERE c.id = o.customer_id",
        SSN,
        "UPDATE … SET",
    );
    denied(
        "INSERT INTO customers (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET name = customers.ssn",
        SSN,
        "ON CONFLICT",
    );
    denied(
        "CREATE VIEW v AS SELECT ssn FROM customers",
        SSN,
        "CREATE VIEW",
    );
    denied(
        "COPY (SELECT ssn FROM customers) TO STDOUT",
        SSN,
        "COPY (query)",
    );
    denied(
        "COPY (SELECT * FROM customers) TO STDOUT",
        "public.customers.*",
        "COPY (query)",
    );
    denied(
        "COPY customers TO STDOUT (FORMAT binary)",
        "public.customers.*",
        "binary COPY",
    );
    denied(
        "COPY customers TO '/tmp/x'",
        "public.customers.*",
        "COPY to a file or program",
    );
    denied(
        "COPY customers TO PROGRAM 'cat'",
        "public.customers.*",
        "COPY to a file or program",
    );
    denied(
        "MERGE INTO leak l USING customers c ON l.id = c.id WHEN NOT MATCHED THEN INSERT VALUES (c.id, c.ssn)",
        SSN,
        "MERGE",
    );
}

#[test]
fn subqueries_ctes_and_set_operations_are_denied() {
    denied(
        "SELECT * FROM (SELECT ssn FROM customers) s",
        SSN,
        "a subquery in FROM",
    );
    denied(
        "SELECT x FROM (SELECT * FROM customers) s",
        "public.customers.*",
        "a subquery in FROM",
    );
    denied(
        "WITH c AS (SELECT ssn FROM customers) SELECT * FROM c",
        SSN,
        "a WITH query",
    );
    denied(
        "WITH c AS (SELECT * FROM customers) SELECT ssn FROM c",
        "public.customers.*",
        "a WITH query",
    );
    denied(
        "SELECT ssn FROM customers UNION SELECT '123-45-6789'",
        SSN,
        "UNION",
    );
    denied(
        "SELECT ssn FROM customers EXCEPT SELECT '123-45-6789'",
        SSN,
        "EXCEPT",
    );
    denied(
        "SELECT id FROM customers WHERE id IN (SELECT id FROM customers WHERE ssn = 'x')",
        SSN,
        "WHERE",
    );
    denied(
        "SELECT ssn FROM customers, LATERAL (SELECT customers.ssn) l",
        SSN,
        "a subquery in FROM",
    );
}

#[test]
fn whole_row_references_are_denied() {
    denied(
        "SELECT c FROM customers c",
        "public.customers.*",
        "a whole-row reference",
    );
    denied(
        "SELECT customers FROM customers",
        "public.customers.*",
        "a whole-row reference",
    );
    denied(
        "SELECT row_to_json(c) FROM customers c",
        "public.customers.*",
        "function row_to_json",
    );
    denied(
        "SELECT to_jsonb(c.*) FROM customers c",
        "public.customers.*",
        "function to_jsonb",
    );
    denied(
        "SELECT (c).ssn FROM customers c",
        "public.customers.*",
        "a field or subscript access",
    );
    denied(
        "SELECT id FROM customers c, jsonb_each(to_jsonb(c)) j",
        "public.customers.*",
        "a function in FROM",
    );
    // Through a join alias.
    denied(
        "SELECT j.ssn || '' FROM (customers c JOIN orders o ON o.customer_id = c.id) AS j",
        SSN,
        "operator ||",
    );
    let b = allowed("SELECT j.ssn FROM (customers c JOIN orders o ON o.customer_id = c.id) AS j");
    assert_eq!(b.len(), 1);
}

#[test]
fn unqualified_and_ambiguous_names_fail_closed() {
    // orders may have its own email column; without the catalog, treat it as masked.
    denied(
        "SELECT o.id FROM orders o, customers c WHERE email = 'x'",
        "customers.email",
        "WHERE",
    );
    // A correlated reference from a subquery resolves outward.
    denied(
        "SELECT (SELECT count(*) FROM orders WHERE ref = ssn) FROM customers",
        SSN,
        "a subquery",
    );
    // Unqualified table name: any schema.
    denied("SELECT id FROM customers WHERE ssn = 'x'", SSN, "WHERE");
    let star_rule = MaskedColumns::new(vec![ColumnPattern::parse("*.*.ssn").unwrap()]);
    assert!(masked_uses("SELECT ssn FROM anything", &star_rule).is_ok());
    assert!(masked_uses("SELECT lower(ssn) FROM anything", &star_rule).is_err());
}

#[test]
fn multi_statement_strings_and_prepare() {
    let b = allowed("SELECT 1; SELECT ssn FROM customers");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].statement, 1);
    denied(
        "SELECT 1; SELECT ssn FROM customers WHERE ssn = 'x'",
        SSN,
        "WHERE",
    );
    denied(
        "PREPARE p AS SELECT id FROM customers WHERE ssn = $1",
        SSN,
        "WHERE",
    );
    let b = allowed("PREPARE p AS SELECT ssn FROM customers");
    assert_eq!(b.len(), 1);
    denied(
        "DECLARE c CURSOR FOR SELECT upper(ssn) FROM customers",
        SSN,
        "function upper",
    );
    denied(
        "CREATE RULE r AS ON INSERT TO t DO ALSO SELECT ssn FROM customers",
        SSN,
        "CREATE RULE",
    );
}

#[test]
fn messages_and_failures() {
    let v = masked_uses("SELECT id FROM customers WHERE ssn LIKE '123%'", &masked()).unwrap_err();
    assert_eq!(
        v.message(),
        "sluice: column public.customers.ssn is masked and cannot be used in WHERE"
    );
    assert!(masked_uses("SELEC oops", &masked()).is_err());
    assert!(
        masked_uses("SELEC oops", &MaskedColumns::default()).is_ok(),
        "nothing masked, nothing to check"
    );
}

#[test]
fn more_shapes() {
    let b = allowed("SELECT public.customers.ssn FROM public.customers");
    assert_eq!(b.len(), 1);
    assert!(allowed("SELECT ssn FROM customers ORDER BY name LIMIT 10").len() == 1);
    denied(
        "SELECT count(*) FROM customers GROUP BY ROLLUP (ssn)",
        SSN,
        "GROUP BY",
    );
    denied("SELECT * FROM customers WHERE ssn = 'x'", SSN, "WHERE");
    denied(
        "SELECT id FROM customers TABLESAMPLE BERNOULLI (length(ssn))",
        SSN,
        "TABLESAMPLE",
    );
    denied(
        "SELECT id FROM customers LIMIT length((SELECT min(ssn) FROM customers))",
        SSN,
        "LIMIT",
    );
    denied(
        "SELECT id FROM customers WHERE (ssn, id) = ('1', 2)",
        SSN,
        "WHERE",
    );
    denied("SELECT id FROM customers WHERE ssn IS NULL", SSN, "WHERE");
    denied(
        "SELECT greatest(ssn, 'a') FROM customers",
        SSN,
        "GREATEST/LEAST",
    );
    denied(
        "SELECT json_build_object('s', ssn) FROM customers",
        SSN,
        "function json_build_object",
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

    /// Arbitrary strings built from SQL fragments never panic the analysis.
    #[test]
    fn never_panics(parts in proptest::collection::vec(proptest::sample::select(vec![
        "SELECT", "ssn", "*", "FROM", "customers", "c", ",", "(", ")", "WHERE", "=", "'x'",
        "JOIN", "ON", "c.ssn", "c.*", "UNION", "ORDER BY", "1", "WITH", "AS", "INSERT INTO",
        "RETURNING", "COPY", "TO STDOUT", "||", "::text", "LATERAL", "EXISTS", ";",
    ]), 0..24)) {
        let sql = parts.join(" ");
        let _ = masked_uses(&sql, &masked());
    }
}

/// Issue 12, class 2: `c.row_to_json` is `row_to_json(c)` when customers
/// has no column row_to_json: the whole row, masked columns in clear.
#[test]
fn attribute_notation_on_a_masked_table_is_a_whole_row_use() {
    let m = masked();
    for sql in [
        "SELECT c.row_to_json FROM customers c",
        "SELECT c.to_jsonb FROM customers c",
        "SELECT c.concat FROM customers c",
        "SELECT customers.row_to_json FROM customers",
        "SELECT public.customers.row_to_json FROM public.customers",
        "SELECT id FROM customers c WHERE c.num_nulls = 0",
        "SELECT j.row_to_json FROM (customers JOIN orders ON true) AS j",
    ] {
        let v = masked_uses(sql, &m).expect_err(sql);
        assert!(v.column.contains("customers"), "{sql}: {}", v.message());
    }
    // A real column answers first; a name no function has is a column.
    assert!(masked_uses("SELECT c.name, c.email FROM customers c", &m).is_ok());
    assert!(
        masked_uses("SELECT o.row_to_json FROM orders o", &m).is_ok(),
        "orders masks nothing"
    );
}

/// Issue 12, class 5: a column alias list renames columns by position, so
/// `e` below is the e-mail column under another name.
#[test]
fn column_alias_lists_cannot_rename_a_masked_column_out_of_sight() {
    let m = masked();
    for sql in [
        "SELECT i FROM customers AS c(i, n, e) WHERE e LIKE 'a%'",
        "SELECT upper(e) FROM customers AS c(i, n, e)",
        "SELECT i FROM customers c(i, n, e) ORDER BY e",
        "SELECT count(*) FROM customers c(i, n, e) GROUP BY c.e",
        "SELECT e::int FROM customers c(i, n, e)",
        "SELECT i FROM customers c(i, n, e) JOIN orders o ON o.ref = c.e",
    ] {
        let v = masked_uses(sql, &m).expect_err(sql);
        assert!(v.column.contains("renamed"), "{sql}: {}", v.message());
    }
    // As a plain output the result path masks it by its source.
    assert!(masked_uses("SELECT e FROM customers AS c(i, n, e)", &m).is_ok());
}

/// Issue 12, class 7: statistics hold about a hundred real values of each
/// masked column (`most_common_vals`, `histogram_bounds`).
#[test]
fn statistics_views_are_refused_in_a_masked_session() {
    let m = masked();
    for sql in [
        "SELECT most_common_vals FROM pg_stats WHERE attname = 'ssn'",
        "SELECT * FROM pg_catalog.pg_statistic",
        "SELECT 1 WHERE EXISTS (SELECT histogram_bounds FROM pg_stats)",
    ] {
        let v = masked_uses(sql, &m).expect_err(sql);
        assert!(v.column.contains("sample values"), "{sql}: {}", v.message());
    }
}
