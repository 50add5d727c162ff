//! Test harness: a real PostgreSQL (testkit), the proxy on an ephemeral
//! port, an in-memory grant store standing in for the real one, and an
//! audit sink that collects events.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use chrono::Duration;
use sluice_core::config::{Config, ConnectionConfig, Dur, TlsMode};
use sluice_core::guardrail::GuardrailRule;
use sluice_core::secret::new_secret;
use sluice_core::{Grant, GrantStatus, Profile};
use sluice_pg::PgProxy;
pub use sluice_testkit::fakes::{FakeControl, MemAudit, make_grant};
use sluice_testkit::pg::{PgOptions, PgServer};
use tokio::sync::oneshot;

/// The connection name every test uses.
pub const CONN: &str = "app";

/// How a harness is built.
#[derive(Default)]
pub struct Options {
    /// Backend serves TLS and Sluice connects with verify-full.
    pub backend_tls: bool,
    /// The listener offers TLS (testkit's self-signed pair is reused).
    pub listener_tls: bool,
    /// `[postgres] require_tls` (needs `listener_tls`).
    pub require_tls: bool,
    pub guardrails: Vec<GuardrailRule>,
    pub max_message_bytes: Option<usize>,
    /// `[postgres] max_statement_bytes`.
    pub max_statement_bytes: Option<usize>,
    /// Extra backend settings (`-c name=value`).
    pub pg_settings: Vec<(String, String)>,
}

pub struct Harness {
    pub pg: PgServer,
    pub addr: SocketAddr,
    pub control: Arc<FakeControl>,
    pub audit: Arc<MemAudit>,
    /// The listener's open sessions (the web page's live view).
    pub live: Arc<sluice_core::live::LiveSessions>,
    /// The listener's metrics.
    pub metrics: Arc<sluice_core::metrics::Metrics>,
    pub cert_dir: Option<tempfile::TempDir>,
    _pwfile: tempfile::NamedTempFile,
    stop: Option<oneshot::Sender<()>>,
}

/// A grant and its one-time secret.
pub struct TestGrant {
    pub id: String,
    pub secret: String,
}

impl Harness {
    pub async fn start(opts: Options) -> Harness {
        let pg = start_pg(&opts).await;
        Self::on(pg, opts, |_| {}).await
    }

    /// The proxy in front of `pg`, whose connection `edit` may change
    /// (credentials, TLS) before the proxy starts.
    pub async fn on(
        pg: PgServer,
        opts: Options,
        edit: impl FnOnce(&mut ConnectionConfig),
    ) -> Harness {
        let pwfile = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(pwfile.path(), pg.password()).unwrap();
        let mut config = Config::default();
        config.postgres.listen = "127.0.0.1:0".into();
        config.postgres.auth_timeout = Dur::secs(5);
        config.postgres.require_tls = opts.require_tls;
        if let Some(max) = opts.max_message_bytes {
            config.postgres.max_message_bytes = max;
        }
        if let Some(max) = opts.max_statement_bytes {
            config.postgres.max_statement_bytes = max;
        }
        let cert_dir = opts.listener_tls.then(self_signed_pair);
        if let Some(dir) = &cert_dir {
            config.postgres.tls_cert = Some(dir.path().join("cert.pem"));
            config.postgres.tls_key = Some(dir.path().join("key.pem"));
        }
        let mut conn = connection(&pg, pwfile.path().into(), opts.backend_tls, opts.guardrails);
        edit(&mut conn);
        config.connections.push(conn);
        let control = Arc::new(FakeControl::default());
        let audit = Arc::new(MemAudit::default());
        let live = Arc::new(sluice_core::live::LiveSessions::default());
        let metrics = Arc::new(sluice_core::metrics::Metrics::new());
        let proxy = Arc::new(
            PgProxy::new(Arc::new(config), control.clone(), audit.clone())
                .expect("proxy")
                .with_live_sessions(live.clone())
                .with_metrics(metrics.clone()),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(proxy.serve(listener, async move {
            let _ = stopped.await;
        }));
        Harness {
            pg,
            addr,
            live,
            metrics,
            control,
            audit,
            cert_dir,
            _pwfile: pwfile,
            stop: Some(stop),
        }
    }

    /// Adds a grant for `connection` with `profile` and `status`, living
    /// `ttl` from now.
    pub fn grant_for(
        &self,
        connection: &str,
        profile: Profile,
        status: GrantStatus,
        ttl: Duration,
    ) -> TestGrant {
        let secret = new_secret();
        let id = sluice_core::grant::new_grant_id();
        self.control
            .insert(make_grant(&id, &secret, connection, profile, status, ttl));
        TestGrant { id, secret }
    }

    pub fn grant(&self, profile: Profile) -> TestGrant {
        self.grant_for(CONN, profile, GrantStatus::Active, Duration::minutes(10))
    }

    /// An active grant of another identity (`subject`).
    pub fn grant_for_subject(&self, profile: Profile, subject: &str) -> TestGrant {
        self.grant_edited(profile, |g| g.subject = subject.to_string())
    }

    /// An active grant whose holder was in `groups` when it was issued.
    pub fn grant_in_groups(&self, profile: Profile, groups: &[&str]) -> TestGrant {
        self.grant_edited(profile, |g| {
            g.identity_groups = groups.iter().map(|s| s.to_string()).collect()
        })
    }

    /// An active grant for the test connection, changed by `edit`.
    fn grant_edited(&self, profile: Profile, edit: impl FnOnce(&mut Grant)) -> TestGrant {
        let secret = new_secret();
        let id = sluice_core::grant::new_grant_id();
        let ttl = Duration::minutes(10);
        let mut g = make_grant(&id, &secret, CONN, profile, GrantStatus::Active, ttl);
        edit(&mut g);
        self.control.insert(g);
        TestGrant { id, secret }
    }

    /// A libpq URL through the proxy.
    pub fn url(&self, g: &TestGrant) -> String {
        format!(
            "postgresql://{}:{}@127.0.0.1:{}/{CONN}?sslmode=disable",
            g.id,
            g.secret,
            self.addr.port()
        )
    }

    /// tokio-postgres config string through the proxy.
    pub fn tp_config(&self, g: &TestGrant) -> String {
        format!(
            "host=127.0.0.1 port={} user={} password={} dbname={CONN} sslmode=disable",
            self.addr.port(),
            g.id,
            g.secret
        )
    }

    pub async fn connect(&self, g: &TestGrant) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.tp_config(g), tokio_postgres::NoTls)
            .await
            .expect("connect through sluice");
        tokio::spawn(conn);
        client
    }

    /// Runs `psql` through the proxy with `args`, stdin from `input`.
    pub fn psql(&self, url: &str, args: &[&str], input: Option<&str>) -> Output {
        let mut cmd = Command::new(sluice_testkit::pg::bin("psql").unwrap());
        cmd.args(["-X", "-q", "-A", "-t", "-d", url])
            .args(args)
            .env_remove("PGPASSWORD")
            .env_remove("PGSSLMODE")
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = input {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs SQL on the backend directly, as the superuser.
    pub fn backend(&self, sql: &str) -> String {
        self.pg.psql("postgres", sql).expect("backend psql")
    }

    /// Backend sessions whose application_name carries `grant`.
    pub fn backend_sessions(&self, grant: &str) -> usize {
        self.backend(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '%{grant}%'"
        ))
        .parse()
        .unwrap()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A PostgreSQL server for `opts`.
pub async fn start_pg(opts: &Options) -> PgServer {
    let pg_opts = PgOptions {
        tls: opts.backend_tls,
        settings: opts.pg_settings.clone(),
    };
    tokio::task::spawn_blocking(move || PgServer::start_with(pg_opts))
        .await
        .unwrap()
        .expect("start postgres")
}

/// The connection as its TOML would give it (built through serde, so
/// fields added with defaults need no change here).
fn connection(
    pg: &PgServer,
    password_file: PathBuf,
    tls: bool,
    guardrails: Vec<GuardrailRule>,
) -> ConnectionConfig {
    let mut conn: ConnectionConfig = serde_json::from_value(serde_json::json!({
        "name": CONN,
        "kind": "postgres",
        "host": "127.0.0.1",
        "port": pg.port(),
        "database": "postgres",
        "user": "postgres",
        "password_file": password_file,
        "tls": "disable",
    }))
    .expect("connection config");
    if tls {
        conn.tls = TlsMode::VerifyFull;
        conn.ca_file = Some(pg.ca_file());
    }
    conn.guardrails = guardrails;
    conn
}

/// A backend credential for `user` whose password is in `password_file`.
pub fn credential(user: &str, password_file: &std::path::Path) -> sluice_core::config::Credential {
    serde_json::from_value(serde_json::json!({
        "user": user,
        "password_file": password_file,
    }))
    .expect("credential")
}

/// A file holding `text`, removed when dropped.
pub fn secret_file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

/// A certificate and key for the listener, made with openssl.
pub fn self_signed_pair() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
    dir
}

/// The SQLSTATE of a tokio-postgres error.
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no code: {e}"))
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[allow(unused_imports)]
pub use sluice_testkit::wire::{
    Greeting, raw_greeting, raw_login, raw_startup, read_message, simple, try_raw_greeting,
    try_read_message,
};
