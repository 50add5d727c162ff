//! The real `sluice serve` binary for one test: a throwaway PostgreSQL
//! (initdb), the test OpenID provider, a SQLite store in a temp dir, and a
//! configuration with one connection, `shop`. The gateway can be killed
//! (SIGKILL, as a crash) and started again on the same store.
#![allow(dead_code)] // each suite uses its own subset

pub mod fleet;

use serde_json::{Value, json};
use sluice_testkit::oidc::{OidcClient, OidcOptions, OidcProvider};
use sluice_testkit::pg::PgServer;
use sluice_testkit::ports::free_port;
use sluice_testkit::relay::Relay;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_sluice");
/// In `agents`: a `write` grant on `shop`, active at once.
pub const AGENT: &str = "agent-1";
/// In `auditors`, an admin group: sees every session.
pub const AUDITOR: &str = "auditor-1";

/// What a test adds to the common configuration.
#[derive(Default)]
pub struct Options {
    /// SQL run on the backend's `postgres` database before the gateway starts.
    pub setup: String,
    /// TOML inside the `shop` connection (`record_results`, guardrails,
    /// masking); its tables must follow the plain keys.
    pub connection: String,
    /// TOML at the end of the file.
    pub extra: String,
    /// Signed checkpoints every this many events, with a key made by
    /// `sluice audit keygen` (its public half at [`Serve::public_key`]).
    pub checkpoint_every: Option<u64>,
    /// More clients of the OpenID provider, beside [`AGENT`] and [`AUDITOR`].
    pub clients: Vec<OidcClient>,
    /// People who may sign in at the provider by the device flow.
    pub users: Vec<(String, Vec<String>)>,
    /// A self-signed certificate on the Postgres listener (token logins
    /// need TLS).
    pub listener_tls: bool,
    /// With `listener_tls`: clients without TLS are refused.
    pub require_tls: bool,
    /// Environment of the `sluice serve` process (a fake clock, say).
    pub env: Vec<(String, String)>,
    /// The data directory (store, audit journal) on a tmpfs of this many
    /// MiB of its own, which a test can fill (see [`Serve::data`]).
    pub small_disk_mib: Option<u32>,
    /// The backend reached through a relay the test can make fail (see
    /// [`Serve::relay`]).
    pub relay: bool,
}

pub struct Serve {
    pub pg: PgServer,
    pub idp: OidcProvider,
    pub dir: tempfile::TempDir,
    /// The data directory: `dir`, or the tmpfs of `small_disk_mib`.
    pub data: PathBuf,
    /// With `relay`: between the gateway and the backend.
    pub relay: Option<Relay>,
    pub config: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub api: String,
    pub pg_port: u16,
    child: Option<Child>,
    starts: u32,
    http: reqwest::Client,
    env: Vec<(String, String)>,
}

fn config_text(
    dir: &Path,
    data: &Path,
    idp: &OidcProvider,
    pg: &PgServer,
    ports: (u16, u16),
    backend: u16,
    o: &Options,
) -> String {
    let pw = dir.join("pg.password");
    std::fs::write(&pw, pg.password()).unwrap();
    let checkpoints = match o.checkpoint_every {
        Some(n) => format!(
            "\n[audit.checkpoints]\nsigning_key_file = \"{}\"\nevery_events = {n}\ninterval = \"1s\"\n",
            dir.join("audit.key").display()
        ),
        None => String::new(),
    };
    let tls = match (o.listener_tls, o.require_tls) {
        (true, true) => format!("{}\nrequire_tls = true", listener_tls(dir)),
        (true, false) => listener_tls(dir),
        _ => String::new(),
    };
    format!(
        r#"
[server]
api_listen = "127.0.0.1:{api}"
data_dir = "{data}"
admin_groups = ["auditors"]

[postgres]
listen = "127.0.0.1:{listen}"
{tls}

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
{connection}

[[rules]]
name = "agents"
groups = ["agents"]
connection = "shop"
profile = "write"
max_ttl = "15m"
{extra}
{checkpoints}
"#,
        api = ports.0,
        listen = ports.1,
        data = data.display(),
        issuer = idp.issuer(),
        audience = idp.audience(),
        pw = pw.display(),
        connection = o.connection,
        extra = o.extra,
    )
}

/// Writes a self-signed certificate and key for the listener; their keys.
fn listener_tls(dir: &Path) -> String {
    let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.join("listener.pem"), dir.join("listener.key"));
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    std::fs::write(&key, pair.key_pair.serialize_pem()).unwrap();
    format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"",
        cert.display(),
        key.display()
    )
}

impl Serve {
    /// Starts the database, the provider and the gateway.
    pub async fn start(o: Options) -> Serve {
        let pg = tokio::task::spawn_blocking(PgServer::start)
            .await
            .unwrap()
            .expect("start PostgreSQL");
        if !o.setup.is_empty() {
            pg.psql("postgres", &o.setup).expect("set up the backend");
        }
        let mut clients = vec![
            OidcClient::new(AGENT, &["agents"]).ttl(3600),
            OidcClient::new(AUDITOR, &["auditors"]).ttl(3600),
        ];
        clients.extend(o.clients.iter().cloned());
        let idp = OidcProvider::start(OidcOptions {
            clients,
            users: o.users.clone(),
            ..OidcOptions::default()
        })
        .await
        .expect("start the OpenID provider");
        let dir = tempfile::tempdir().unwrap();
        if o.checkpoint_every.is_some() {
            let key = dir.path().join("audit.key");
            let out = std::process::Command::new(BIN)
                .args(["audit", "keygen", "--out"])
                .arg(&key)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
        let data = match o.small_disk_mib {
            Some(mib) => mount_tmpfs(&dir.path().join("data"), mib),
            None => dir.path().to_path_buf(),
        };
        let (api_port, pg_port) = (free_port(), free_port());
        let config = dir.path().join("sluice.toml");
        let relay = match o.relay {
            true => Some(Relay::start(([127, 0, 0, 1], pg.port()).into()).await),
            false => None,
        };
        let backend = relay.as_ref().map_or(pg.port(), Relay::port);
        let ports = (api_port, pg_port);
        let text = config_text(dir.path(), &data, &idp, &pg, ports, backend, &o);
        std::fs::write(&config, text).unwrap();
        let mut serve = Serve {
            pg,
            idp,
            dir,
            data,
            relay,
            config,
            api: format!("http://127.0.0.1:{api_port}"),
            pg_port,
            child: None,
            starts: 0,
            http: reqwest::Client::new(),
            env: o.env,
        };
        serve.spawn().await;
        serve
    }

    /// Starts `sluice serve` on the configuration (and so the store) and
    /// returns once it answers `/readyz`. Its log goes to `serve-N.log`.
    pub async fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.starts += 1;
        let log = std::fs::File::create(self.dir.path().join(format!("serve-{}.log", self.starts)))
            .unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = self
                .http
                .get(format!("{}/readyz", self.api))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(exited.is_none(), "sluice serve exited: {}", self.log());
            assert!(
                Instant::now() < deadline,
                "sluice serve did not start: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The running gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(Child::id).expect("running")
    }

    /// The checkpoint key's public half (PEM), for `audit verify --public-key`.
    pub fn public_key(&self) -> PathBuf {
        self.dir.path().join("audit.key.pub")
    }

    /// The gateway's store, opened beside it (SQLite allows readers while
    /// the gateway writes).
    pub async fn store(&self) -> sluice_store::Store {
        let url = format!("sqlite:{}", self.data.join("sluice.db").display());
        sluice_store::Store::open(&url).await.unwrap()
    }

    /// The log of the latest start.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("serve-{}.log", self.starts)))
            .unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no flush, no last checkpoint — a crash.
    pub async fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        let pid = child.id().expect("not yet reaped") as i32;
        // SAFETY: signalling our own child, which has not been reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        let status = child.wait().await.unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }

    /// SIGHUP: the gateway reloads its configuration file.
    pub fn hangup(&self) {
        let child = self.child.as_ref().expect("running");
        let pid = child.id().expect("not yet reaped") as i32;
        // SAFETY: signalling our own child, which has not been reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    }

    /// Waits until the log of the latest start holds `needle` `n` times.
    pub async fn wait_for_log(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.log().matches(needle).count() < n {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM: the gateway drains and stops as on a deploy.
    pub async fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        let pid = child.id().expect("not yet reaped") as i32;
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let status = child.wait().await.unwrap();
        assert!(status.success(), "{status}: {}", self.log());
    }

    pub async fn token(&self, client: &str) -> String {
        self.idp
            .client_credentials_token(client, &OidcClient::secret_for(client), self.idp.audience())
            .await
            .unwrap()
    }

    /// A fresh active grant of `client` on `shop`; its JSON.
    pub async fn grant(&self, client: &str) -> Value {
        self.grant_for(client, "10m").await
    }

    /// A fresh active grant of `client` on `shop` for `ttl`; its JSON.
    pub async fn grant_for(&self, client: &str, ttl: &str) -> Value {
        let resp = self
            .http
            .post(format!("{}/v1/grants", self.api))
            .bearer_auth(self.token(client).await)
            .json(&json!({"connection": "shop", "reason": "e2e", "ttl": ttl}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        let g: Value = resp.json().await.unwrap();
        assert_eq!(g["status"], "active", "{g}");
        g
    }

    /// The grant's DSN for clients of the Postgres listener.
    pub fn dsn(grant: &Value) -> String {
        grant["credentials"]["dsn"].as_str().unwrap().to_string()
    }

    /// Runs the CLI against this gateway (API calls with `token`, store
    /// commands with `--config` given in `args`).
    pub fn sluice(&self, token: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(args)
            .env("SLUICE_URL", &self.api)
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env_remove("SLUICE_TOKEN")
            .env_remove("SLUICE_STORE");
        if let Some(t) = token {
            cmd.env("SLUICE_TOKEN", t);
        }
        cmd.output().unwrap()
    }

    /// The CLI's stdout, asserting it succeeded.
    pub fn ok(&self, token: Option<&str>, args: &[&str]) -> String {
        let out = self.sluice(token, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    /// `sluice audit export` of the whole store: every event, in order.
    pub fn audit_events(&self) -> Vec<Value> {
        let config = self.config.to_str().unwrap();
        self.ok(None, &["audit", "export", "--config", config])
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON event a line"))
            .collect()
    }
}

/// Mounts a tmpfs of `mib` MiB at `at` (made here); unmounted by
/// [`Serve`]'s drop. The suite runs as root on its CI machine.
fn mount_tmpfs(at: &Path, mib: u32) -> PathBuf {
    std::fs::create_dir_all(at).unwrap();
    let out = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={mib}m,mode=0700"),
            "tmpfs",
        ])
        .arg(at)
        .output()
        .expect("run mount");
    assert!(
        out.status.success(),
        "mounting a tmpfs for the data directory needs root: {}",
        text(&out.stderr)
    );
    at.to_path_buf()
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.data != self.dir.path() {
            // Lazy: the gateway may still hold files there as it is killed.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.data)
                .status();
        }
    }
}

/// The statement texts of the `statement.allowed` events among `events`,
/// in order.
pub fn allowed_texts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["kind"] == "statement.allowed")
        .flat_map(|e| {
            e["detail"]["statements"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|s| s["text"].as_str().map(str::to_string))
        .collect()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
