//! Three real `sluice serve` processes on one PostgreSQL store, behind
//! Debian's haproxy (TCP for the Postgres listener, HTTP for the API, each
//! gateway health-checked on `/readyz`), with the test OpenID provider
//! and a PostgreSQL backend of their own.

use serde_json::{Value, json};
use sluice_testkit::oidc::{OidcClient, OidcOptions, OidcProvider};
use sluice_testkit::pg::PgServer;
use sluice_testkit::ports::free_port;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

use super::{AGENT, AUDITOR, BIN, text};

/// An approver (group `dba`).
pub const DBA: &str = "dba-1";

/// One gateway of the fleet.
pub struct Member {
    pub name: &'static str,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub api: String,
    pub api_port: u16,
    pub pg_port: u16,
    child: Option<Child>,
    starts: u32,
}

pub struct Fleet {
    pub backend: PgServer,
    pub store: PgServer,
    pub idp: OidcProvider,
    pub dir: tempfile::TempDir,
    pub members: Vec<Member>,
    /// haproxy's API frontend, `http://127.0.0.1:PORT`.
    pub lb_api: String,
    /// haproxy's Postgres frontend port.
    pub lb_pg: u16,
    haproxy: Child,
    pub http: reqwest::Client,
}

const SETUP: &str = "CREATE TABLE items (id int PRIMARY KEY, status text);
INSERT INTO items VALUES (1, 'new');
CREATE TABLE load (k text PRIMARY KEY);";

impl Fleet {
    pub async fn start() -> Fleet {
        let (backend, store) = tokio::join!(
            tokio::task::spawn_blocking(PgServer::start),
            PgServer::start_with_database("sluice"),
        );
        let backend = backend.unwrap().expect("start the backend");
        let (store, store_url) = store.expect("start the store");
        backend.psql("postgres", SETUP).expect("set up the backend");
        let idp = OidcProvider::start(OidcOptions {
            clients: vec![
                OidcClient::new(AGENT, &["agents"]).ttl(3600),
                OidcClient::new(AUDITOR, &["auditors"]).ttl(3600),
                OidcClient::new(DBA, &["dba"]).ttl(3600),
            ],
            ..OidcOptions::default()
        })
        .await
        .expect("start the OpenID provider");
        let dir = tempfile::tempdir().unwrap();
        let (lb_api_port, lb_pg) = (free_port(), free_port());
        let lb_api = format!("http://127.0.0.1:{lb_api_port}");
        let pw = dir.path().join("backend.password");
        std::fs::write(&pw, backend.password()).unwrap();
        let mut members = Vec::new();
        for name in ["a", "b", "c"] {
            let mdir = dir.path().join(name);
            std::fs::create_dir_all(&mdir).unwrap();
            let (api_port, pg_port) = (free_port(), free_port());
            let config = mdir.join("sluice.toml");
            let text = config_text(&Ports {
                dir: &mdir,
                api: api_port,
                pg: pg_port,
                lb_api: &lb_api,
                store: &store_url,
                idp: &idp,
                backend: backend.port(),
                pw: &pw,
            });
            std::fs::write(&config, text).unwrap();
            members.push(Member {
                name,
                dir: mdir,
                config,
                api: format!("http://127.0.0.1:{api_port}"),
                api_port,
                pg_port,
                child: None,
                starts: 0,
            });
        }
        let http = reqwest::Client::new();
        // One at a time: the first runs the store's migrations.
        for m in &mut members {
            m.spawn(&http).await;
        }
        let haproxy = start_haproxy(dir.path(), lb_api_port, lb_pg, &members);
        let fleet = Fleet {
            backend,
            store,
            idp,
            dir,
            members,
            lb_api,
            lb_pg,
            haproxy,
            http,
        };
        fleet.wait_for_lb().await;
        fleet
    }

    /// Waits until haproxy answers and sees every gateway up.
    async fn wait_for_lb(&self) {
        // Generous: the whole suite shares two cores (a full run once took
        // more than 30 s here).
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let ok = self
                .http
                .get(format!("{}/readyz", self.lb_api))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                // rise 2 at 200 ms: give every server its two checks.
                tokio::time::sleep(Duration::from_millis(700)).await;
                return;
            }
            assert!(Instant::now() < deadline, "haproxy did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn token(&self, client: &str) -> String {
        self.idp
            .client_credentials_token(client, &OidcClient::secret_for(client), self.idp.audience())
            .await
            .unwrap()
    }

    /// An API call as `who` to `base` (a gateway or the load balancer).
    pub async fn call(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        who: &str,
        body: Value,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(self.token(who).await);
        if !body.is_null() {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A fresh active grant of `who` on `shop`, asked of gateway `base`.
    pub async fn grant(&self, base: &str, who: &str) -> Value {
        let body = json!({"connection": "shop", "reason": "fleet test", "ttl": "10m"});
        let (status, g) = self
            .call(base, reqwest::Method::POST, "/v1/grants", who, body)
            .await;
        assert_eq!(status, 201, "{g}");
        assert_eq!(g["status"], "active", "{g}");
        g
    }

    /// `/v1/fleet` through the load balancer, as an admin.
    pub async fn status(&self) -> Value {
        let (status, body) = self
            .call(
                &self.lb_api,
                reqwest::Method::GET,
                "/v1/fleet",
                AUDITOR,
                Value::Null,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The member whose gateway id is `id`.
    pub async fn member_with_id(&self, id: &str) -> usize {
        for (i, m) in self.members.iter().enumerate() {
            let (_, me) = self
                .call(
                    &m.api,
                    reqwest::Method::GET,
                    "/v1/fleet",
                    AUDITOR,
                    Value::Null,
                )
                .await;
            if me["this"] == id {
                return i;
            }
        }
        panic!("no running member is {id}")
    }

    /// Runs the CLI with `args` (store commands read member A's config).
    pub fn sluice(&self, token: Option<&str>, args: &[&str]) -> std::process::Output {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(args)
            .env("SLUICE_URL", &self.lb_api)
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env_remove("SLUICE_TOKEN");
        if let Some(t) = token {
            cmd.env("SLUICE_TOKEN", t);
        }
        cmd.output().unwrap()
    }

    /// `sluice audit verify` on the shared store: passes.
    pub fn verify(&self) -> String {
        let config = self.members[0].config.to_str().unwrap().to_string();
        let out = self.sluice(None, &["audit", "verify", "--config", &config]);
        let report = text(&out.stdout);
        assert!(
            out.status.success(),
            "verify failed: {report}{}",
            text(&out.stderr)
        );
        report
    }

    /// Every event in the shared store, in order.
    pub fn audit_events(&self) -> Vec<Value> {
        let config = self.members[0].config.to_str().unwrap().to_string();
        let out = self.sluice(None, &["audit", "export", "--config", &config]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON event a line"))
            .collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.haproxy.start_kill();
    }
}

/// A libpq connection string for `grant` on `port`.
pub fn dsn(grant: &Value, port: u16) -> String {
    let c = &grant["credentials"];
    format!(
        "host=127.0.0.1 port={port} user={} password={} dbname={} sslmode=disable connect_timeout=5",
        c["user"].as_str().unwrap(),
        c["password"].as_str().unwrap(),
        c["database"].as_str().unwrap(),
    )
}

impl Member {
    /// Starts `sluice serve` and waits for `/readyz`.
    pub async fn spawn(&mut self, http: &reqwest::Client) {
        assert!(self.child.is_none(), "already running");
        self.starts += 1;
        let log = std::fs::File::create(self.log_path()).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = http
                .get(format!("{}/readyz", self.api))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none(),
                "gateway {} exited: {}",
                self.name,
                self.log()
            );
            assert!(
                Instant::now() < deadline,
                "gateway {} did not start: {}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(format!("serve-{}.log", self.starts))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL: a crash.
    pub async fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        let pid = child.id().expect("not yet reaped") as i32;
        // SAFETY: signalling our own child, which has not been reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        child.wait().await.unwrap();
    }

    /// SIGHUP: reload the configuration file.
    pub fn hangup(&self) {
        let child = self.child.as_ref().expect("running");
        let pid = child.id().expect("not yet reaped") as i32;
        // SAFETY: signalling our own child, which has not been reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    }

    /// SIGTERM; returns once the process has exited successfully.
    pub async fn terminate(&mut self) -> Child {
        let child = self.child.take().expect("running");
        let pid = child.id().expect("not yet reaped") as i32;
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        child
    }
}

struct Ports<'a> {
    dir: &'a Path,
    api: u16,
    pg: u16,
    lb_api: &'a str,
    store: &'a str,
    idp: &'a OidcProvider,
    backend: u16,
    pw: &'a Path,
}

/// One gateway's configuration: the same policy on every member, its own
/// listeners and data directory.
fn config_text(p: &Ports) -> String {
    format!(
        r#"
[server]
api_listen = "127.0.0.1:{api}"
public_url = "{lb_api}"
data_dir = "{data}"
store = "{store}"
admin_groups = ["auditors"]
drain_timeout = "3s"

[postgres]
listen = "127.0.0.1:{pg}"

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
name = "item-writes-need-approval"
action = "approve"
tables = ["items"]
classes = ["write"]

[[rules]]
name = "agents"
groups = ["agents"]
connection = "shop"
profile = "write"
max_ttl = "15m"

[approvals]
approver_groups = ["dba"]
statement_timeout = "20s"
"#,
        api = p.api,
        lb_api = p.lb_api,
        data = p.dir.display(),
        store = p.store,
        pg = p.pg,
        issuer = p.idp.issuer(),
        audience = p.idp.audience(),
        backend = p.backend,
        pw = p.pw.display(),
    )
}

/// haproxy in the foreground: round robin over the gateways, each checked
/// on its `/readyz` every 200 ms (down after one failure, up after two
/// passes); a connection refused is retried on another gateway.
fn start_haproxy(dir: &Path, api: u16, pg: u16, members: &[Member]) -> Child {
    let servers = |tcp: bool| {
        members
            .iter()
            .map(|m| {
                let port = if tcp { m.pg_port } else { m.api_port };
                format!(
                    "  server gw_{} 127.0.0.1:{port} check port {} inter 200ms fall 1 rise 2\n",
                    m.name, m.api_port
                )
            })
            .collect::<String>()
    };
    let cfg = format!(
        "global\n  maxconn 2000\n\
         defaults\n  timeout connect 2s\n  timeout client 120s\n  timeout server 120s\n  retries 3\n  option redispatch\n\
         frontend pg\n  mode tcp\n  bind 127.0.0.1:{pg}\n  default_backend gateways_pg\n\
         backend gateways_pg\n  mode tcp\n  balance roundrobin\n  option httpchk GET /readyz\n{}\
         frontend api\n  mode http\n  bind 127.0.0.1:{api}\n  default_backend gateways_api\n\
         backend gateways_api\n  mode http\n  balance roundrobin\n  option httpchk GET /readyz\n{}",
        servers(true),
        servers(false),
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let log = std::fs::File::create(dir.join("haproxy.log")).unwrap();
    Command::new("/usr/sbin/haproxy")
        .args(["-db", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start haproxy (make test installs it)")
}
