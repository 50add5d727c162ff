//! Masking exemptions end to end: `sluice serve` with a real OIDC provider
//! and a real PostgreSQL. Two agents with real tokens take grants to the
//! same masked connection, by the API and by the token login; the one whose
//! token carries the exempt group reads clear values, the other masked
//! ones.

mod common;

use common::{AGENT, Options, Serve};
use sluice_testkit::oidc::OidcClient;
use std::process::Output;
use tokio::process::Command;

/// In `agents` and the exempt `dba`: clear. ([`AGENT`] is in `agents`
/// only: masked.)
const DBA: &str = "dba-1";

const CARD: &str = "4111-1111-1111-1111";
const SSN: &str = "123-45-6789";
const QUERY: &str = "SELECT card_number, ssn FROM customers WHERE id = 1";

async fn gateway() -> Serve {
    Serve::start(Options {
        setup: format!(
            "CREATE TABLE customers (id int PRIMARY KEY, card_number text, ssn text); \
             INSERT INTO customers VALUES (1, '{CARD}', '{SSN}')"
        ),
        connection: r#"
[connections.masking]
columns = [
  { column = "public.customers.card_number", style = "partial" },
  { column = "public.customers.ssn", style = "redact" },
]
exempt_groups = ["dba"]
"#
        .into(),
        clients: vec![OidcClient::new(DBA, &["agents", "dba"]).ttl(3600)],
        listener_tls: true,
        ..Options::default()
    })
    .await
}

async fn psql(dsn: &str, password: Option<&str>) -> Output {
    let mut cmd = Command::new("psql");
    cmd.args([
        "-X",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        dsn,
        "-c",
        QUERY,
    ])
    .env_remove("PGPASSWORD");
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    cmd.output().await.unwrap()
}

/// `QUERY` with a grant from `POST /v1/grants`.
async fn by_api_grant(serve: &Serve, who: &str) -> Output {
    psql(&Serve::dsn(&serve.grant(who).await), None).await
}

/// `QUERY` through the token login: the OIDC token as the password.
async fn by_token_login(serve: &Serve, who: &str) -> Output {
    let dsn = format!(
        "host=127.0.0.1 port={} dbname=shop user={who} sslmode=require",
        serve.pg_port
    );
    psql(&dsn, Some(&serve.token(who).await)).await
}

/// The query's one row, or a panic naming psql's error.
fn row(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn assert_masked(row: &str) {
    assert!(!row.contains(CARD) && !row.contains(SSN), "{row}");
    // Partial keeps the card's last four; redact hides the SSN whole.
    assert!(row.contains("1111") && !row.contains("6789"), "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exempt_group_on_the_token_reads_clear_values_others_masked() {
    let serve = gateway().await;
    let clear = format!("{CARD}|{SSN}");

    assert_eq!(row(&by_api_grant(&serve, DBA).await), clear);
    assert_masked(&row(&by_api_grant(&serve, AGENT).await));

    // The token login issues its grant through the same path.
    assert_eq!(row(&by_token_login(&serve, DBA).await), clear);
    assert_masked(&row(&by_token_login(&serve, AGENT).await));
}
