//! Masking exemptions end to end: `sluice serve` with a real OIDC provider
//! and a real PostgreSQL. Two agents with real tokens take grants to the
//! same masked connection, by the API and by the token login; the one whose
//! token carries the exempt group reads clear values, the other masked
//! ones.

use serde_json::{Value, json};
use sluice_testkit::oidc::{OidcClient, OidcOptions, OidcProvider};
use sluice_testkit::pg::PgServer;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
/// In `analysts` only: masked.
const ANALYST: &str = "analyst-1";
/// In `analysts` and the exempt `dba`: clear.
const DBA: &str = "dba-1";

const CARD: &str = "4111-1111-1111-1111";
const SSN: &str = "123-45-6789";
const QUERY: &str = "SELECT card_number, ssn FROM customers WHERE id = 1";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Gateway {
    _pg: PgServer,
    idp: OidcProvider,
    child: Child,
    api: String,
    pg_port: u16,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Gateway {
    async fn start() -> Gateway {
        let pg = tokio::task::spawn_blocking(PgServer::start)
            .await
            .unwrap()
            .unwrap();
        pg.psql(
            "postgres",
            &format!(
                "CREATE TABLE customers (id int PRIMARY KEY, card_number text, ssn text); \
                 INSERT INTO customers VALUES (1, '{CARD}', '{SSN}')"
            ),
        )
        .unwrap();
        let idp = OidcProvider::start(OidcOptions {
            clients: vec![
                OidcClient::new(ANALYST, &["analysts"]),
                OidcClient::new(DBA, &["analysts", "dba"]),
            ],
            ..OidcOptions::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pg.password");
        std::fs::write(&pw, pg.password()).unwrap();
        let tls = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, tls.cert.pem()).unwrap();
        std::fs::write(&key, tls.key_pair.serialize_pem()).unwrap();
        let api_port = free_port();
        let pg_port = free_port();
        let config = format!(
            r#"
[server]
api_listen = "127.0.0.1:{api_port}"
data_dir = "{data}"

[postgres]
listen = "127.0.0.1:{pg_port}"
tls_cert = "{cert}"
tls_key = "{key}"

[[issuers]]
name = "idp"
issuer = "{issuer}"
audiences = ["{audience}"]

[[connections]]
name = "crm"
kind = "postgres"
host = "127.0.0.1"
port = {backend}
database = "postgres"
user = "postgres"
password_file = "{pw}"
tls = "disable"

[connections.masking]
columns = [
  {{ column = "public.customers.card_number", style = "partial" }},
  {{ column = "public.customers.ssn", style = "redact" }},
]
exempt_groups = ["dba"]

[[rules]]
name = "analysts"
groups = ["analysts"]
connection = "crm"
profile = "read"
max_ttl = "15m"
"#,
            data = dir.path().display(),
            cert = cert.display(),
            key = key.display(),
            issuer = idp.issuer(),
            audience = idp.audience(),
            backend = pg.port(),
            pw = pw.display(),
        );
        let file = dir.path().join("sluice.toml");
        std::fs::write(&file, config).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let gw = Gateway {
            _pg: pg,
            idp,
            child,
            api: format!("http://127.0.0.1:{api_port}"),
            pg_port,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while gw
            .http
            .get(format!("{}/readyz", gw.api))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "sluice serve did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        gw
    }

    async fn token(&self, client: &str) -> String {
        self.idp
            .client_credentials_token(client, &OidcClient::secret_for(client), self.idp.audience())
            .await
            .unwrap()
    }

    /// A grant by `POST /v1/grants`, as its DSN.
    async fn api_dsn(&self, who: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/v1/grants", self.api))
            .bearer_auth(self.token(who).await)
            .json(&json!({"connection": "crm", "reason": "masking e2e"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        let g: Value = resp.json().await.unwrap();
        let c = &g["credentials"];
        format!(
            "postgresql://{}:{}@127.0.0.1:{}/crm?sslmode=require",
            c["user"].as_str().unwrap(),
            c["password"].as_str().unwrap(),
            self.pg_port
        )
    }

    /// `QUERY` through the token login: the OIDC token as the password.
    async fn token_login(&self, who: &str) -> Output {
        let dsn = format!(
            "host=127.0.0.1 port={} dbname=crm user={who} sslmode=require",
            self.pg_port
        );
        psql(&dsn, Some(&self.token(who).await)).await
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
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
    let gw = Gateway::start().await;

    let clear = row(&psql(&gw.api_dsn(DBA).await, None).await);
    assert_eq!(clear, format!("{CARD}|{SSN}"));
    assert_masked(&row(&psql(&gw.api_dsn(ANALYST).await, None).await));

    // The token login issues its grant through the same path.
    assert_eq!(row(&gw.token_login(DBA).await), format!("{CARD}|{SSN}"));
    assert_masked(&row(&gw.token_login(ANALYST).await));
}
