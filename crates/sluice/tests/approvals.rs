//! Statement and grant approvals end to end: `sluice serve` with a real
//! OIDC provider and a real PostgreSQL, `psql` and `tokio-postgres` as the
//! agent, the HTTP API as the approver.

use serde_json::{Value, json};
use sluice_testkit::oidc::{OidcClient, OidcOptions, OidcProvider};
use sluice_testkit::pg::PgServer;
use sluice_testkit::ports::free_port;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WRITER: &str = "writer-1";
const WRITER_DBA: &str = "writer-dba";
const DBA1: &str = "dba-1";
const DBA2: &str = "dba-2";
const CONTRACTOR: &str = "contractor-1";

struct Gateway {
    pg: PgServer,
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
            "CREATE TABLE items (id int PRIMARY KEY, status text); \
             INSERT INTO items SELECT g, 'new' FROM generate_series(1, 10) g; \
             CREATE TABLE fast_items (id int PRIMARY KEY, status text); \
             INSERT INTO fast_items VALUES (1, 'new')",
        )
        .unwrap();
        let idp = OidcProvider::start(OidcOptions {
            clients: vec![
                OidcClient::new(WRITER, &["writers"]),
                OidcClient::new(WRITER_DBA, &["writers", "dba"]),
                OidcClient::new(DBA1, &["dba"]),
                OidcClient::new(DBA2, &["dba"]),
                OidcClient::new(CONTRACTOR, &["contractors"]),
            ],
            ..OidcOptions::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pg.password");
        std::fs::write(&pw, pg.password()).unwrap();
        let api_port = free_port();
        let pg_port = free_port();
        let config = format!(
            r#"
[server]
api_listen = "127.0.0.1:{api_port}"
data_dir = "{data}"
sweep_interval = "200ms"

[postgres]
listen = "127.0.0.1:{pg_port}"

[[issuers]]
name = "idp"
issuer = "{issuer}"
audiences = ["{audience}"]

[[connections]]
name = "shop"
kind = "postgres"
host = "127.0.0.1"
port = {backend}
database = "postgres"
user = "postgres"
password_file = "{pw}"
tls = "disable"

[[connections.guardrails]]
name = "fast-items-fail-fast"
action = "approve"
hold = "fail"
tables = ["fast_items"]
profiles = ["write"]

[[connections.guardrails]]
name = "writes-need-approval"
action = "approve"
classes = ["write"]
profiles = ["write"]

[[rules]]
name = "writers"
groups = ["writers"]
connection = "shop"
profile = "write"
max_ttl = "15m"

[[rules]]
name = "contractors"
groups = ["contractors"]
connection = "shop"
profile = "read"
max_ttl = "15m"
approval = "grant"

[approvals]
approver_groups = ["dba"]
statement_timeout = "3s"
"#,
            data = dir.path().display(),
            issuer = idp.issuer(),
            audience = idp.audience(),
            backend = pg.port(),
            pw = pw.display(),
        );
        let file = dir.path().join("sluice.toml");
        std::fs::write(&file, config).unwrap();
        // Its log goes to a file, as under a service manager: no terminal.
        let log = std::fs::File::create(dir.path().join("sluice.log")).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&file)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let gw = Gateway {
            pg,
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

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        who: &str,
        body: Value,
    ) -> (u16, Value) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(self.token(who).await)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A grant for `who`; its DSN when active.
    async fn grant(&self, who: &str) -> Value {
        let (status, g) = self
            .call(
                reqwest::Method::POST,
                "/v1/grants",
                who,
                json!({"connection": "shop", "reason": "e2e"}),
            )
            .await;
        assert_eq!(status, 201, "{g}");
        g
    }

    async fn dsn(&self, who: &str) -> String {
        let g = self.grant(who).await;
        let c = &g["credentials"];
        format!(
            "postgresql://{}:{}@127.0.0.1:{}/shop",
            c["user"].as_str().unwrap(),
            c["password"].as_str().unwrap(),
            self.pg_port
        )
    }

    /// Waits for a pending statement approval whose text contains `needle`.
    async fn held(&self, needle: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, list) = self
                .call(
                    reqwest::Method::GET,
                    "/v1/approvals?status=pending",
                    DBA1,
                    Value::Null,
                )
                .await;
            if let Some(a) = list["approvals"].as_array().and_then(|items| {
                items.iter().find(|a| {
                    a["kind"] == "statement"
                        && a["statement"].as_str().unwrap_or("").contains(needle)
                })
            }) {
                return a.clone();
            }
            assert!(Instant::now() < deadline, "no approval for {needle}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn decide(&self, id: &str, who: &str, verb: &str, body: Value) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/approvals/{id}/{verb}"),
            who,
            body,
        )
        .await
    }

    /// What `sluice serve` logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("sluice.log")).unwrap_or_default()
    }

    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.api))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    fn status_of(&self, id: i32) -> String {
        self.pg
            .psql(
                "postgres",
                &format!("SELECT status FROM items WHERE id = {id}"),
            )
            .unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn psql(dsn: &str, sql: &str) -> Child {
    Command::new("psql")
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn finish(child: Child) -> (bool, String) {
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("psql finished")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn a_held_update_runs_once_approved_by_another_identity() {
    let gw = Gateway::start().await;
    let dsn = gw.dsn(WRITER).await;
    let update = psql(&dsn, "UPDATE items SET status = 'paid' WHERE id = 1");
    let approval = gw.held("WHERE id = 1").await;
    assert_eq!(
        approval["statement"],
        "UPDATE items SET status = 'paid' WHERE id = 1"
    );
    assert_eq!(approval["analysis"]["statements"][0]["classes"][0], "write");
    assert_eq!(approval["requester"]["name"], WRITER);
    assert_eq!(gw.status_of(1), "new", "nothing ran while held");

    // Other sessions go on meanwhile.
    let (ok, out) = finish(psql(&dsn, "SELECT count(*) FROM items")).await;
    assert!(ok && out.contains("10"), "{out}");

    let id = approval["id"].as_str().unwrap();
    let (status, decided) = gw
        .decide(id, DBA1, "approve", json!({"reason": "ok"}))
        .await;
    assert_eq!(status, 200, "{decided}");
    let (ok, out) = finish(update).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("held for approval {id}")),
        "the client saw a NOTICE: {out}"
    );
    assert!(out.contains("UPDATE 1"), "{out}");
    assert_eq!(gw.status_of(1), "paid");
}

#[tokio::test]
async fn a_denied_or_unanswered_statement_fails_with_the_reason_and_changes_nothing() {
    let gw = Gateway::start().await;
    let dsn = gw.dsn(WRITER).await;
    let update = psql(&dsn, "UPDATE items SET status = 'void' WHERE id = 2");
    let approval = gw.held("WHERE id = 2").await;
    let (status, _) = gw
        .decide(
            approval["id"].as_str().unwrap(),
            DBA1,
            "deny",
            json!({"reason": "not during the freeze"}),
        )
        .await;
    assert_eq!(status, 200);
    let (ok, out) = finish(update).await;
    assert!(!ok);
    assert!(
        out.contains("denied by approver dba-1: not during the freeze"),
        "{out}"
    );
    assert_eq!(gw.status_of(2), "new");

    // Nobody answers within statement_timeout (3s).
    let started = Instant::now();
    let (ok, out) = finish(psql(&dsn, "UPDATE items SET status = 'void' WHERE id = 3")).await;
    assert!(!ok);
    assert!(out.contains("was not granted within 3s"), "{out}");
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(gw.status_of(3), "new");

    // Inside a transaction block the denial aborts it, as PostgreSQL would.
    let (ok, out) = finish(psql(
        &dsn,
        "BEGIN; SELECT 1; UPDATE items SET status = 'void' WHERE id = 4; COMMIT;",
    ))
    .await;
    assert!(!ok, "{out}");
    assert_eq!(gw.status_of(4), "new");
}

#[tokio::test]
async fn requesters_cannot_approve_their_own_statements() {
    let gw = Gateway::start().await;
    let dsn = gw.dsn(WRITER_DBA).await;
    let update = psql(&dsn, "UPDATE items SET status = 'mine' WHERE id = 5");
    let approval = gw.held("WHERE id = 5").await;
    let id = approval["id"].as_str().unwrap();
    let (status, body) = gw.decide(id, WRITER_DBA, "approve", Value::Null).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(gw.status_of(5), "new");
    let (status, _) = gw.decide(id, DBA2, "approve", Value::Null).await;
    assert_eq!(status, 200);
    let (ok, out) = finish(update).await;
    assert!(ok, "{out}");
    assert_eq!(gw.status_of(5), "mine");
}

#[tokio::test]
async fn a_shape_approval_lets_the_same_shape_through_and_nothing_else() {
    let gw = Gateway::start().await;
    let dsn = gw.dsn(WRITER).await;
    let first = psql(&dsn, "UPDATE items SET status = 'shipped' WHERE id = 6");
    let approval = gw.held("WHERE id = 6").await;
    let (status, _) = gw
        .decide(
            approval["id"].as_str().unwrap(),
            DBA1,
            "approve",
            json!({"scope": "shape"}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(finish(first).await.0);

    // Same shape, other literals: runs at once.
    let (ok, out) = finish(psql(
        &dsn,
        "UPDATE items SET status = 'returned' WHERE id = 7",
    ))
    .await;
    assert!(ok, "{out}");
    assert!(!out.contains("held for approval"), "{out}");
    assert_eq!(gw.status_of(7), "returned");

    // Another shape is held again.
    let other = psql(&dsn, "DELETE FROM items WHERE id = 8");
    let again = gw.held("DELETE FROM items").await;
    gw.decide(
        again["id"].as_str().unwrap(),
        DBA1,
        "deny",
        json!({"reason": "no deletes"}),
    )
    .await;
    let (ok, out) = finish(other).await;
    assert!(!ok && out.contains("no deletes"), "{out}");
    assert_eq!(gw.status_of(8), "new");
}

#[tokio::test]
async fn the_approver_sees_bound_parameters_of_the_extended_protocol() {
    let gw = Gateway::start().await;
    let dsn = gw.dsn(WRITER).await;
    let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let update = tokio::spawn(async move {
        client
            .execute(
                "UPDATE items SET status = $1 WHERE id = $2",
                &[&"refunded", &9i32],
            )
            .await
    });
    let approval = gw.held("SET status = $1").await;
    assert_eq!(approval["parameters"][0], "refunded");
    // Binary-format int4 9, as tokio-postgres sends it.
    assert_eq!(approval["parameters"][1], "\\x00000009");
    gw.decide(
        approval["id"].as_str().unwrap(),
        DBA1,
        "approve",
        Value::Null,
    )
    .await;
    assert_eq!(update.await.unwrap().unwrap(), 1);
    assert_eq!(gw.status_of(9), "refunded");
}

#[tokio::test]
async fn a_pending_grant_approved_by_a_dba_is_then_usable() {
    let gw = Gateway::start().await;
    let g = gw.grant(CONTRACTOR).await;
    assert_eq!(g["status"], "pending");
    let id = g["id"].as_str().unwrap();
    let (_, list) = gw
        .call(reqwest::Method::GET, "/v1/approvals", DBA1, Value::Null)
        .await;
    let approval = list["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["grant_id"] == id)
        .cloned()
        .unwrap();
    let (status, _) = gw
        .decide(
            approval["id"].as_str().unwrap(),
            DBA1,
            "approve",
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    let (status, active) = gw
        .call(
            reqwest::Method::GET,
            &format!("/v1/grants/{id}"),
            CONTRACTOR,
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(active["status"], "active");
    let c = &active["credentials"];
    let dsn = format!(
        "postgresql://{}:{}@127.0.0.1:{}/shop",
        c["user"].as_str().unwrap(),
        c["password"].as_str().unwrap(),
        gw.pg_port
    );
    let (ok, out) = finish(psql(&dsn, "SELECT count(*) FROM items")).await;
    assert!(ok && out.contains("10"), "{out}");
}

#[tokio::test]
async fn grant_request_wait_returns_credentials_once_approved_from_the_cli() {
    let gw = Gateway::start().await;
    let contractor = gw.token(CONTRACTOR).await;
    let dba = gw.token(DBA1).await;
    let waiting = Command::new(BIN)
        .args([
            "grant",
            "request",
            "shop",
            "--reason",
            "audit prep",
            "--wait",
            "--json",
        ])
        .env("SLUICE_URL", &gw.api)
        .env("SLUICE_TOKEN", &contractor)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The approver finds it with the CLI and approves it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let id = loop {
        let out = Command::new(BIN)
            .args(["approvals", "list", "--json"])
            .env("SLUICE_URL", &gw.api)
            .env("SLUICE_TOKEN", &dba)
            .output()
            .await
            .unwrap();
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if let Some(a) = list
            .as_array()
            .and_then(|l| l.iter().find(|a| a["kind"] == "grant"))
        {
            break a["id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no pending grant approval");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let out = Command::new(BIN)
        .args(["approvals", "approve", &id, "--reason", "ok"])
        .env("SLUICE_URL", &gw.api)
        .env("SLUICE_TOKEN", &dba)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("approved"));
    let out = tokio::time::timeout(Duration::from_secs(20), waiting.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("waiting for approval"));
    let grant: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(grant["status"], "active");
    assert!(
        grant["credentials"]["password"]
            .as_str()
            .unwrap()
            .starts_with("sls_")
    );
}

/// Issue 12, class 10: a shape approval is bound to what the approver
/// saw: list lengths, array elements and NULLs are part of the shape.
#[tokio::test]
async fn a_shape_approval_admits_no_longer_lists_and_no_nulls() {
    let gw = Gateway::start().await;
    let dsn = gw.dsn(WRITER).await;
    let first = psql(&dsn, "UPDATE items SET status = 'checked' WHERE id IN (1)");
    let approval = gw.held("WHERE id IN (1)").await;
    assert!(
        approval["analysis"]["shape"]["admits"]
            .as_str()
            .unwrap()
            .contains("lists and arrays of the same lengths"),
        "{approval}"
    );
    let (status, _) = gw
        .decide(
            approval["id"].as_str().unwrap(),
            DBA1,
            "approve",
            json!({"scope": "shape"}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(finish(first).await.0);
    // Same list length, other values: admitted.
    let (ok, out) = finish(psql(
        &dsn,
        "UPDATE items SET status = 'checked' WHERE id IN (2)",
    ))
    .await;
    assert!(ok && !out.contains("held"), "{out}");
    // A longer list, an array, a NULL: held again (and left unanswered).
    for (sql, needle) in [
        (
            "UPDATE items SET status = 'checked' WHERE id IN (3, 4, 5)",
            "IN (3, 4, 5)",
        ),
        (
            "UPDATE items SET status = NULL WHERE id IN (6)",
            "status = NULL",
        ),
    ] {
        let held = psql(&dsn, sql);
        let a = gw.held(needle).await;
        gw.decide(
            a["id"].as_str().unwrap(),
            DBA1,
            "deny",
            json!({"reason": "no"}),
        )
        .await;
        let (ok, out) = finish(held).await;
        assert!(!ok, "{sql}: {out}");
    }
    for id in [3, 4, 5, 6] {
        assert_eq!(gw.status_of(id), "new", "item {id}");
    }
}

/// Issue 12, class 11: parameters bound in an earlier batch (Bind, Flush;
/// later Execute, Sync) reached the approval as null.
#[tokio::test]
async fn the_approver_sees_parameters_bound_in_an_earlier_batch() {
    use bytes::BytesMut;
    use postgres_protocol::message::frontend;
    use tokio::io::AsyncWriteExt;
    let gw = Gateway::start().await;
    let g = gw.grant(WRITER).await;
    let c = &g["credentials"];
    let addr = format!("127.0.0.1:{}", gw.pg_port).parse().unwrap();
    let mut s = sluice_testkit::wire::raw_login(
        addr,
        c["user"].as_str().unwrap(),
        c["password"].as_str().unwrap(),
        "shop",
    )
    .await;
    let mut buf = BytesMut::new();
    frontend::parse(
        "",
        "UPDATE items SET status = $1 WHERE id = $2",
        [25u32, 23],
        &mut buf,
    )
    .unwrap();
    frontend::bind(
        "",
        "",
        [0i16],
        ["archived", "10"],
        |v, out: &mut BytesMut| {
            out.extend_from_slice(v.as_bytes());
            Ok::<_, Box<dyn std::error::Error + Sync + Send>>(postgres_protocol::IsNull::No)
        },
        [0i16],
        &mut buf,
    )
    .map_err(|_| "bind")
    .unwrap();
    frontend::flush(&mut buf);
    s.write_all(&buf).await.unwrap();
    // ParseComplete, BindComplete.
    for want in [b'1', b'2'] {
        assert_eq!(sluice_testkit::wire::read_message(&mut s).await.0, want);
    }
    buf.clear();
    frontend::execute("", 0, &mut buf).unwrap();
    frontend::sync(&mut buf);
    s.write_all(&buf).await.unwrap();
    let approval = gw.held("SET status = $1").await;
    assert_eq!(
        approval["parameters"],
        json!(["archived", "10"]),
        "{approval}"
    );
    gw.decide(
        approval["id"].as_str().unwrap(),
        DBA1,
        "approve",
        Value::Null,
    )
    .await;
    loop {
        let (tag, _) = sluice_testkit::wire::read_message(&mut s).await;
        if tag == b'Z' {
            break;
        }
    }
    assert_eq!(gw.status_of(10), "archived");
}

/// Issue 12, class 12: a held statement ran after its client had gone,
/// when approved later. Its approval is withdrawn when the session ends,
/// and approvers see why.
#[tokio::test]
async fn a_held_statement_whose_client_left_is_withdrawn_and_never_runs() {
    let gw = Gateway::start().await;
    let dsn = gw.dsn(WRITER).await;
    let mut update = psql(&dsn, "UPDATE items SET status = 'orphan' WHERE id = 7");
    let approval = gw.held("WHERE id = 7").await;
    let id = approval["id"].as_str().unwrap().to_string();
    update.start_kill().unwrap();
    let _ = update.wait().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let shown = loop {
        let (_, a) = gw
            .call(
                reqwest::Method::GET,
                &format!("/v1/approvals/{id}"),
                DBA1,
                Value::Null,
            )
            .await;
        if a["status"] != "pending" {
            break a;
        }
        assert!(Instant::now() < deadline, "still pending: {a}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(shown["status"], "withdrawn", "{shown}");
    assert!(shown.to_string().contains("session ended"), "{shown}");
    let (status, body) = gw.decide(&id, DBA1, "approve", Value::Null).await;
    assert_eq!(status, 409, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gw.status_of(7), "new");
}

/// A retry of the same statement while its approval is open waits on that
/// approval instead of opening another; approved once, it runs once.
#[tokio::test]
async fn a_retry_waits_on_the_open_approval_and_it_runs_once() {
    let gw = Gateway::start().await;
    let dsn = gw.dsn(WRITER).await;
    let sql = "UPDATE items SET status = status || '+' WHERE id = 8";
    let first = psql(&dsn, sql);
    let a = gw.held("WHERE id = 8").await;
    let second = psql(&dsn, sql);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, list) = gw
        .call(
            reqwest::Method::GET,
            "/v1/approvals?status=pending",
            DBA1,
            Value::Null,
        )
        .await;
    let open: Vec<&Value> = list["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["statement"] == sql)
        .collect();
    assert_eq!(open.len(), 1, "{list}");
    gw.decide(a["id"].as_str().unwrap(), DBA1, "approve", Value::Null)
        .await;
    let results = [finish(first).await, finish(second).await];
    assert_eq!(results.iter().filter(|r| r.0).count(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .any(|r| r.1.contains("another session used it")),
        "{results:?}"
    );
    assert_eq!(gw.status_of(8), "new+");
}

/// After a timeout the approval stays open for the session: approved
/// meanwhile, the same statement run again passes at once.
#[tokio::test]
async fn a_statement_approved_after_its_wait_timed_out_runs_when_retried() {
    let gw = Gateway::start().await;
    let dsn = gw.dsn(WRITER).await;
    let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let sql = "UPDATE items SET status = 'late' WHERE id = 9";
    let err = client.batch_execute(sql).await.unwrap_err();
    let message = err.as_db_error().unwrap().message().to_string();
    assert!(message.contains("stays open"), "{message}");
    let a = gw.held("WHERE id = 9").await;
    gw.decide(a["id"].as_str().unwrap(), DBA1, "approve", Value::Null)
        .await;
    client.batch_execute(sql).await.unwrap();
    assert_eq!(gw.status_of(9), "late");
    // Once: a third run asks again (and times out here).
    assert!(client.batch_execute(sql).await.is_err());
}

/// Issue 13: a rule with `hold = "fail"` refuses the held statement at once,
/// naming the approval and what to do; once approved, the same statement
/// run again (from a new session) passes, once.
#[tokio::test]
async fn a_fail_fast_hold_names_the_approval_and_the_retry_passes() {
    let gw = Gateway::start().await;
    let dsn = gw.dsn(WRITER).await;
    let sql = "UPDATE fast_items SET status = 'done' WHERE id = 1";
    let started = Instant::now();
    let (ok, out) = finish(psql(&dsn, sql)).await;
    assert!(!ok, "{out}");
    assert!(started.elapsed() < Duration::from_secs(3), "no wait");
    assert!(
        out.contains("it did not run") && out.contains("run the same statement again"),
        "{out}"
    );
    let a = gw.held("fast_items").await;
    let id = a["id"].as_str().unwrap();
    assert!(out.contains(id), "{out}");
    // The requester can wait for the decision with the CLI.
    let waiter = Command::new(BIN)
        .args(["approvals", "wait", id, "--timeout", "20s"])
        .env("SLUICE_URL", &gw.api)
        .env("SLUICE_TOKEN", gw.token(WRITER).await)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    gw.decide(id, DBA1, "approve", Value::Null).await;
    let waited = tokio::time::timeout(Duration::from_secs(20), waiter.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        waited.status.success(),
        "{}",
        String::from_utf8_lossy(&waited.stdout)
    );
    let (ok, out) = finish(psql(&dsn, sql)).await;
    assert!(ok, "the retry passes: {out}");
    assert_eq!(
        gw.pg
            .psql("postgres", "SELECT status FROM fast_items WHERE id = 1")
            .unwrap(),
        "done"
    );
    // Approved once: a third run asks again.
    let (ok, out) = finish(psql(&dsn, sql)).await;
    assert!(!ok && out.contains("it did not run"), "{out}");
}

/// Issue 13: a denied grant told its requester only `status denied`, and
/// a TTL above the rule's cap was cut silently. The requester now learns
/// who may approve, that `grant show` prints the credentials once after
/// approval, that the TTL was capped, and who denied it and why, in text
/// and in JSON, with and without `--wait`.
#[tokio::test]
async fn a_denied_grant_tells_the_requester_who_denied_it_and_why() {
    let gw = Gateway::start().await;
    let contractor = gw.token(CONTRACTOR).await;
    let cli = |token: &str, args: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("SLUICE_URL", &gw.api)
            .env("SLUICE_TOKEN", token)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    };
    let out = cli(
        &contractor,
        &[
            "grant",
            "request",
            "shop",
            "--reason",
            "audit prep",
            "--ttl",
            "2h",
        ],
    )
    .output()
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("waiting for approval a_"), "{text}");
    assert!(text.contains("by a member of dba"), "{text}");
    assert!(
        text.contains("prints the credentials, once, after approval"),
        "{text}"
    );
    assert!(
        text.contains("asked for 7200s; rule contractors allows at most 900s"),
        "{text}"
    );
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("grant       "))
        .unwrap()
        .trim()
        .to_string();
    let approval = gw
        .call(
            reqwest::Method::GET,
            &format!("/v1/grants/{id}"),
            CONTRACTOR,
            Value::Null,
        )
        .await
        .1["approval"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = gw
        .decide(
            &approval,
            DBA1,
            "deny",
            json!({"reason": "not during the freeze"}),
        )
        .await;
    assert_eq!(status, 200);
    let out = cli(&contractor, &["grant", "show", &id])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("status      denied"), "{text}");
    assert!(text.contains("denied by   dba-1"), "{text}");
    assert!(text.contains("not during the freeze"), "{text}");
    let out = cli(&contractor, &["grant", "show", &id, "--json"])
        .output()
        .await
        .unwrap();
    let g: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(g["approval"]["reason"], "not during the freeze");
    assert_eq!(g["approval"]["status"], "denied");
    assert_eq!(g["approval"]["approver_groups"], json!(["dba"]));

    // With --wait, the reason comes when the decision does.
    let waiting = cli(
        &contractor,
        &["grant", "request", "shop", "--reason", "again", "--wait"],
    )
    .spawn()
    .unwrap();
    let pending = loop {
        let (_, list) = gw
            .call(
                reqwest::Method::GET,
                "/v1/approvals?status=pending",
                DBA1,
                Value::Null,
            )
            .await;
        if let Some(a) = list["approvals"].as_array().and_then(|l| {
            l.iter()
                .find(|a| a["kind"] == "grant" && a["reason"] == "again")
                .cloned()
        }) {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    gw.decide(
        pending["id"].as_str().unwrap(),
        DBA2,
        "deny",
        json!({"reason": "use the read replica"}),
    )
    .await;
    let out = tokio::time::timeout(Duration::from_secs(20), waiting.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("denied by   dba-2: use the read replica"),
        "{text}"
    );
}

/// The value of the series `name{labels}` in a Prometheus text page.
fn series(page: &str, name_and_labels: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

/// Issue 13: `/metrics` follows sessions, logins, decisions, holds and the
/// audit log, labelled by connection and profile; the log says what was
/// refused, held and decided, with ids and without colour codes.
#[tokio::test]
async fn metrics_and_logs_follow_sessions_decisions_and_holds() {
    let gw = Gateway::start().await;
    let dsn = gw.dsn(WRITER).await;
    let (ok, out) = finish(psql(&dsn, "SELECT count(*) FROM items")).await;
    assert!(ok, "{out}");
    let (ok, out) = finish(psql(&dsn, "DROP TABLE items")).await;
    assert!(!ok, "{out}");
    let update = psql(&dsn, "UPDATE items SET status = 'paid' WHERE id = 2");
    let approval = gw.held("WHERE id = 2").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = approval["id"].as_str().unwrap();
    let (status, _) = gw
        .decide(id, DBA1, "approve", json!({"reason": "ok"}))
        .await;
    assert_eq!(status, 200);
    let (ok, out) = finish(update).await;
    assert!(ok, "{out}");
    // A login with a wrong secret.
    let wrong = dsn.replacen("sls_", "sls_x", 1);
    let (ok, _) = finish(psql(&wrong, "SELECT 1")).await;
    assert!(!ok);

    let at = "{connection=\"shop\",profile=\"write\"";
    let page = gw.metrics().await;
    let get = |s: &str| series(&page, s).unwrap_or_else(|| panic!("{s} missing:\n{page}"));
    assert!(
        get(&format!(
            "sluice_statements_total{at},decision=\"allowed\"}}"
        )) >= 1.0
    );
    assert_eq!(
        get(&format!(
            "sluice_statements_total{at},decision=\"denied\"}}"
        )),
        1.0
    );
    assert_eq!(
        get(&format!("sluice_statements_total{at},decision=\"held\"}}")),
        1.0
    );
    assert_eq!(
        get(&format!(
            "sluice_statements_total{at},decision=\"approved\"}}"
        )),
        1.0
    );
    assert_eq!(get(&format!("sluice_hold_wait_seconds_count{at}}}")), 1.0);
    assert!(get(&format!("sluice_hold_wait_seconds_sum{at}}}")) >= 0.3);
    assert!(get(&format!("sluice_gateway_added_seconds_count{at}}}")) >= 2.0);
    assert_eq!(
        get("sluice_logins_total{connection=\"shop\",result=\"ok\"}"),
        3.0
    );
    assert_eq!(
        get("sluice_logins_total{connection=\"shop\",result=\"refused\"}"),
        1.0
    );
    assert_eq!(get(&format!("sluice_sessions_live{at}}}")), 0.0);
    assert!(get(&format!("sluice_pool_sessions{at},state=\"idle\"}}")) >= 1.0);
    assert!(get("sluice_audit_commit_seconds_count") >= 1.0);
    assert_eq!(get("sluice_approvals_open"), 0.0);
    get("sluice_audit_queue_depth");
    get("sluice_audit_journal_bytes");
    assert!(get("sluice_token_verifications_total{result=\"ok\"}") >= 2.0);

    let log = gw.log();
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes in a log file:\n{log}"
    );
    let line = |words: &[&str]| log.lines().any(|l| words.iter().all(|w| l.contains(w)));
    assert!(
        line(&["statement denied", "grant.id=", "session.id=", "rule="]),
        "{log}"
    );
    assert!(
        line(&["statement held for approval", &format!("approval.id={id}")]),
        "{log}"
    );
    assert!(
        line(&[
            "approval decided",
            &format!("approval.id={id}"),
            "approved",
            "by=dba-1"
        ]),
        "{log}"
    );
    assert!(line(&["login refused", "conn.name=shop"]), "{log}");
    assert!(!log.contains("sls_"), "no grant secret in the log");
}
