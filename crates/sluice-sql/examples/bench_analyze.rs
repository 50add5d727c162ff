//! A rough throughput harness for `analyze` (not a test: timings vary by
//! machine). Run with `cargo run --release -p sluice-sql --example bench_analyze`.

use std::time::Instant;

const QUERIES: &[&str] = &[
    "SELECT 1",
    "SELECT id, name FROM customers WHERE id = $1",
    "SELECT c.id, count(o.id), sum(o.total) FROM public.customers c JOIN orders o ON o.customer_id = c.id \
     WHERE o.created_at > now() - interval '30 days' GROUP BY c.id ORDER BY 3 DESC LIMIT 10",
    "WITH x AS (DELETE FROM t WHERE a < 10 RETURNING *) INSERT INTO archive SELECT * FROM x",
    "UPDATE accounts SET balance = balance - 10 WHERE id = 42 RETURNING balance",
    "BEGIN; SET LOCAL statement_timeout = '5s'; SELECT * FROM t FOR UPDATE; COMMIT",
];

fn main() {
    let rounds = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000usize);
    for sql in QUERIES {
        let start = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(sluice_sql::analyze(std::hint::black_box(sql)));
        }
        let per = start.elapsed() / rounds as u32;
        println!("{per:>10.2?} per analyze  {}", &sql[..sql.len().min(60)]);
    }
}
