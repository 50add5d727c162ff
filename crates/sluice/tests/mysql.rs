//! MySQL through `sluice serve` with every real part: the OIDC provider,
//! the control plane and its store, a MariaDB server as the backend and
//! the `mariadb` client and PyMySQL as the agent. A write held for
//! approval waits and runs once an approver says yes; an OIDC token is a
//! password over TLS only; revoking the grant ends the live session.

use serde_json::{Value, json};
use sluice_testkit::mariadb::MariaDb;
use sluice_testkit::oidc::{OidcClient, OidcOptions, OidcProvider};
use sluice_testkit::ports::free_port;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WRITER: &str = "writer-1";
const DBA: &str = "dba-1";

struct Gateway {
    db: MariaDb,
    idp: OidcProvider,
    child: std::process::Child,
    api: String,
    port: u16,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    async fn start() -> Gateway {
        let db = tokio::task::spawn_blocking(MariaDb::start)
            .await
            .unwrap()
            .unwrap();
        db.create_database("shop", "shop-password").unwrap();
        db.sql(
            "USE shop; CREATE TABLE orders (id INT PRIMARY KEY, total INT); \
             INSERT INTO orders VALUES (1, 10), (2, 20);",
        )
        .unwrap();
        let idp = OidcProvider::start(OidcOptions {
            clients: vec![
                OidcClient::new(WRITER, &["writers"]),
                OidcClient::new(DBA, &["dba"]),
            ],
            ..OidcOptions::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        std::fs::write(dir.path().join("cert.pem"), pair.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), pair.key_pair.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("db.password"), "shop-password").unwrap();
        let (api_port, port) = (free_port(), free_port());
        let config = format!(
            r#"
[server]
api_listen = "127.0.0.1:{api_port}"
data_dir = "data"

[postgres]
listen = "127.0.0.1:{pg}"

[mysql]
listen = "127.0.0.1:{port}"
tls_cert = "cert.pem"
tls_key = "key.pem"

[[issuers]]
name = "idp"
issuer = "{issuer}"
audiences = ["{audience}"]

[[connections]]
name = "shop"
kind = "mysql"
host = "127.0.0.1"
port = {db_port}
database = "shop"
user = "shop"
password_file = "db.password"
tls = "disable"

[[connections.guardrails]]
name = "writes-need-approval"
action = "approve"
classes = ["write"]

[[rules]]
name = "writers"
groups = ["writers"]
connection = "shop"
profile = "write"
max_ttl = "15m"

[approvals]
approver_groups = ["dba"]
statement_timeout = "60s"
"#,
            pg = free_port(),
            issuer = idp.issuer(),
            audience = idp.audience(),
            db_port = db.port(),
        );
        let file = dir.path().join("sluice.toml");
        std::fs::write(&file, config).unwrap();
        let log = std::fs::File::create(dir.path().join("sluice.log")).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let gw = Gateway {
            db,
            idp,
            child,
            api: format!("http://127.0.0.1:{api_port}"),
            port,
            http: reqwest::Client::new(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while gw
            .http
            .get(format!("{}/readyz", gw.api))
            .send()
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "sluice serve did not start: {}",
                gw.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        gw
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sluice.log")).unwrap_or_default()
    }

    async fn token(&self, client: &str) -> String {
        self.idp
            .client_credentials_token(client, &OidcClient::secret_for(client), self.idp.audience())
            .await
            .unwrap()
    }

    async fn call(&self, method: reqwest::Method, path: &str, who: &str, body: Value) -> Value {
        self.http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(self.token(who).await)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    /// The `mariadb` client, in its own thread (it may wait on a hold).
    async fn mariadb(&self, user: &str, password: &str, ssl: bool, sql: &str) -> Output {
        let mut c = Command::new("mariadb");
        c.args(["--no-defaults", "--batch", "--skip-column-names"])
            .args(["-h", "127.0.0.1", "-P", &self.port.to_string()])
            .args(["-u", user, "-D", "shop", "-e", sql])
            .arg(if ssl { "--ssl" } else { "--skip-ssl" })
            .env("MYSQL_PWD", password)
            .stdin(Stdio::null());
        tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap()
    }
}

impl Gateway {
    /// The `sluice` CLI against this gateway, as `who`.
    async fn cli(&self, who: &str, args: &[&str]) -> Output {
        let token = self.token(who).await;
        let api = self.api.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .args(&args)
                .env("SLUICE_URL", api)
                .env("SLUICE_TOKEN", token)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_waits_for_an_approver_and_then_runs() {
    let gw = Gateway::start().await;
    let grant = gw
        .call(
            reqwest::Method::POST,
            "/v1/grants",
            WRITER,
            json!({"connection": "shop", "reason": "fix a total"}),
        )
        .await;
    let c = &grant["credentials"];
    let (user, password) = (
        c["user"].as_str().unwrap().to_string(),
        c["password"].as_str().unwrap().to_string(),
    );
    assert_eq!(c["port"], gw.port, "{grant}");
    assert_eq!(c["database"], "shop", "{grant}");
    let out = gw
        .mariadb(
            &user,
            &password,
            false,
            "SELECT total FROM orders WHERE id = 1",
        )
        .await;
    assert_eq!(
        text(&out.stdout),
        "10\n",
        "{}\n{}",
        text(&out.stderr),
        gw.log()
    );

    // The write waits for a human: approve it while the client waits.
    let write = {
        let (user, password) = (user.clone(), password.clone());
        let port = gw.port;
        tokio::task::spawn_blocking(move || {
            Command::new("mariadb")
                .args(["--no-defaults", "--batch", "--skip-ssl"])
                .args(["-h", "127.0.0.1", "-P", &port.to_string()])
                .args(["-u", &user, "-D", "shop"])
                .args(["-e", "UPDATE orders SET total = 11 WHERE id = 1"])
                .env("MYSQL_PWD", &password)
                .output()
                .unwrap()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        let pending = gw
            .call(reqwest::Method::GET, "/v1/approvals", DBA, Value::Null)
            .await;
        if let Some(id) = pending["approvals"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|a| a["id"].as_str())
        {
            break id.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no approval opened: {}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        gw.db
            .sql("SELECT total FROM shop.orders WHERE id = 1")
            .unwrap(),
        "10\n",
        "nothing ran before the approval"
    );
    let decided = gw
        .call(
            reqwest::Method::POST,
            &format!("/v1/approvals/{id}/approve"),
            DBA,
            json!({"reason": "ok"}),
        )
        .await;
    assert_eq!(decided["status"], "approved", "{decided}");
    let out = write.await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        gw.db
            .sql("SELECT total FROM shop.orders WHERE id = 1")
            .unwrap(),
        "11\n"
    );

    // The session is listed, as any protocol's.
    let sessions = gw
        .call(
            reqwest::Method::GET,
            "/v1/sessions?connection=shop",
            DBA,
            Value::Null,
        )
        .await;
    assert!(
        sessions["sessions"]
            .as_array()
            .is_some_and(|s| s.len() >= 2),
        "{sessions}"
    );
    // And replays, as any protocol's: the approved write is in its session.
    let ids: Vec<String> = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    let mut replayed = String::new();
    for id in &ids {
        let out = gw
            .cli(DBA, &["sessions", "replay", id, "--speed", "max"])
            .await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        replayed.push_str(&text(&out.stdout));
    }
    assert!(
        replayed.contains("UPDATE orders SET total = 11 WHERE id = 1"),
        "{replayed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oidc_token_is_a_password_over_tls_only() {
    let gw = Gateway::start().await;
    let token = gw.token(WRITER).await;
    let out = gw
        .mariadb("shop", &token, true, "SELECT count(*) FROM orders")
        .await;
    assert_eq!(
        text(&out.stdout),
        "2\n",
        "{}\n{}",
        text(&out.stderr),
        gw.log()
    );
    let out = gw.mariadb("shop", &token, false, "SELECT 1").await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("over TLS only"),
        "{}",
        text(&out.stderr)
    );
    assert!(!gw.log().contains(&token), "no token in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoking_the_grant_ends_the_live_session() {
    let gw = Gateway::start().await;
    let grant = gw
        .call(
            reqwest::Method::POST,
            "/v1/grants",
            WRITER,
            json!({"connection": "shop", "reason": "look"}),
        )
        .await;
    let c = &grant["credentials"];
    let script = r#"
import sys, time, pymysql
conn = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user=sys.argv[2], password=sys.argv[3], database="shop")
with conn.cursor() as cur:
    cur.execute("SELECT 1")
print("connected", flush=True)
sys.stdin.readline()
try:
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
    print("still open")
except pymysql.err.MySQLError as e:
    print("ended", e.args[0], e.args[1] if len(e.args) > 1 else "")
"#;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script, &gw.port.to_string()])
        .args([c["user"].as_str().unwrap(), c["password"].as_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line.trim(), "connected", "{}", gw.log());
    let id = grant["id"].as_str().unwrap();
    let revoked = gw
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/grants/{id}"),
            WRITER,
            json!({}),
        )
        .await;
    assert_eq!(revoked["status"], "revoked", "{revoked}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let _ = child.wait();
    assert!(rest.starts_with("ended"), "{rest}");
}

/// `sluice connect` for MySQL: the unchanged `mariadb` client reaches the
/// connection through a local port with any user and no password; the
/// relay holds the grant; Ctrl-C revokes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connect_carries_the_unchanged_mariadb_client() {
    use tokio::io::AsyncBufReadExt;
    let gw = Gateway::start().await;
    let token = gw.token(WRITER).await;
    let mut relay = tokio::process::Command::new(BIN)
        .args(["connect", "shop"])
        .env("SLUICE_URL", &gw.api)
        .env("SLUICE_TOKEN", &token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(relay.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("connect says where it listens")
        .unwrap()
        .unwrap();
    let port = line.rsplit(':').next().unwrap().to_string();
    let mariadb = |sql: &str| {
        let mut c = Command::new("mariadb");
        c.args([
            "--no-defaults",
            "--batch",
            "--skip-column-names",
            "--skip-ssl",
        ])
        .args(["-h", "127.0.0.1", "-P", &port, "--protocol=tcp"])
        .args(["-u", "whoever", "-D", "shop", "-e", sql])
        .env_remove("MYSQL_PWD")
        .stdin(Stdio::null());
        c.output().unwrap()
    };
    let out = tokio::task::block_in_place(|| mariadb("SELECT total FROM orders WHERE id = 2"));
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), gw.log());
    assert_eq!(text(&out.stdout), "20\n");
    // Still the gate: a statement the parser cannot be sure of is refused
    // at the gateway, and the relay passes the error on as it is.
    let out = tokio::task::block_in_place(|| mariadb("SELECT 1; DROP TABLE orders"));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("sluice"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        gw.db
            .sql("SELECT COUNT(*) FROM shop.orders")
            .unwrap()
            .trim(),
        "2"
    );

    let grants = gw
        .call(reqwest::Method::GET, "/v1/grants", WRITER, Value::Null)
        .await;
    assert_eq!(grants["grants"][0]["status"], "active", "{grants}");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(relay.id().unwrap() as i32, libc::SIGINT) };
    let status = tokio::time::timeout(Duration::from_secs(20), relay.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let grants = gw
        .call(reqwest::Method::GET, "/v1/grants", WRITER, Value::Null)
        .await;
    assert_eq!(grants["grants"][0]["status"], "revoked", "{grants}");
}
