//! `analyze` must never panic, whatever it is given: random text, random
//! bytes made into text, and mutations of real statements (which reach far
//! deeper into the parser than random text does).

use proptest::prelude::*;
use sluice_sql::{PreparedTracker, StatementClass, analyze};

const SEEDS: &[&str] = &[
    "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
    "EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = nextval('s') WHERE b IN (SELECT c FROM u FOR UPDATE)",
    "COPY (SELECT pg_read_file('/etc/passwd')) TO PROGRAM 'cat'",
    "PREPARE p (int) AS SELECT * FROM t WHERE id = $1; EXECUTE p(1); DEALLOCATE p",
    "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; BEGIN READ WRITE; RESET ALL",
    "SELECT set_config('default_transaction_read_only', 'off', false), a->>'b' FROM t",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC DELETE FROM t; SELECT 1; END",
    "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = 1 WHEN NOT MATCHED THEN INSERT VALUES (1)",
    "DO $$ BEGIN EXECUTE 'DROP TABLE x'; END $$",
    "SELECT * FROM JSON_TABLE('[]', '$[*]' COLUMNS (a int PATH '$.a')) jt, LATERAL generate_series(1, 3)",
    "CREATE SCHEMA s CREATE TABLE x (a int DEFAULT 1) GRANT SELECT ON x TO bob",
    "ALTER ROLE bob SET default_transaction_read_only = off",
];

/// Checks the invariants every analysis must keep.
fn check(sql: &str) {
    let a = analyze(sql);
    if a.error.is_some() {
        assert_eq!(a.class(), StatementClass::Unknown, "{sql:?}");
        assert_eq!(a.statements.len(), 1);
    } else if a.statements.is_empty() {
        assert_eq!(a.class(), StatementClass::Read);
    }
    let max = a
        .statements
        .iter()
        .map(|s| s.class)
        .max()
        .unwrap_or(StatementClass::Read);
    assert_eq!(a.class(), max);
    for s in &a.statements {
        assert!(!s.command.is_empty(), "{sql:?}");
        if s.disables_read_only {
            assert!(s.class >= StatementClass::Admin, "{sql:?}");
        }
        if s.class > StatementClass::Ddl {
            // Every admin/unknown class has a reason or a command that names it.
            assert!(!s.reasons.is_empty() || !s.command.is_empty());
        }
    }
    // The tracker copes with anything too.
    let mut tracker = PreparedTracker::new();
    let resolved = tracker.resolve(a.clone());
    assert_eq!(resolved.statements.len(), a.statements.len());
    tracker.observe(&resolved);
}

/// Deletes, duplicates or replaces a character of a seed, several times.
fn mutate(seed: &str, edits: &[(usize, u8, char)]) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for &(pos, op, c) in edits {
        if chars.is_empty() {
            chars.push(c);
            continue;
        }
        let i = pos % chars.len();
        match op % 4 {
            0 => {
                chars.remove(i);
            }
            1 => chars.insert(i, c),
            2 => chars[i] = c,
            _ => {
                let tail: Vec<char> = chars[i..].to_vec();
                chars.extend(tail);
            }
        }
    }
    chars.into_iter().collect()
}

#[test]
fn seeds_and_every_prefix() {
    for seed in SEEDS {
        check(seed);
        for (i, _) in seed.char_indices() {
            check(&seed[..i]);
            check(&seed[i..]);
        }
    }
}

#[test]
fn hostile_shapes() {
    check(&format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000)));
    check(&format!("SELECT {}", vec!["1"; 20000].join(" + ")));
    check(&format!(
        "SELECT {}1{}",
        "ARRAY[".repeat(3000),
        "]".repeat(3000)
    ));
    check(&"SELECT 1;".repeat(2000));
    check("SELECT '\u{0}'");
    check("SELECT 'ünïcödé', \"列\" FROM \"表\"");
    check(&format!("SELECT '{}'", "x".repeat(1 << 20)));
    check("/*");
    check("$$");
    check("E'\\");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(sql in ".{0,200}") {
        check(&sql);
    }

    #[test]
    fn sql_alphabet_never_panics(sql in "[a-zA-Z0-9_ ,;:.()'\"$*+=<>|!@#%^&~?\\[\\]{}\\-/\\\\\n]{0,120}") {
        check(&sql);
    }

    #[test]
    fn mutated_statements_never_panic(
        seed in 0..SEEDS.len(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<char>()), 1..8),
    ) {
        check(&mutate(SEEDS[seed], &edits));
    }
}
