//! A real MariaDB server (one per test binary, a database and user of its
//! own per test), Sluice's MySQL listener in front of it with the shared
//! fakes of the control plane and the audit log, and real clients (the
//! `mariadb` command-line client, PyMySQL) as the agent.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};

use chrono::Duration;
use sluice_core::config::Config;
use sluice_core::secret::new_secret;
use sluice_core::{Grant, GrantStatus, Profile};
use sluice_mysql::MysqlProxy;
pub use sluice_testkit::fakes::{FakeControl, MemAudit, make_grant};
use sluice_testkit::mariadb::MariaDb;
use tokio::sync::oneshot;

pub const CONN: &str = "shop";

/// The binary's server, started once; it dies with the process.
pub fn server() -> &'static MariaDb {
    static SERVER: OnceLock<MariaDb> = OnceLock::new();
    SERVER.get_or_init(|| MariaDb::start_bound_to_process().expect("start mariadb"))
}

pub struct Gateway {
    pub addr: SocketAddr,
    pub control: Arc<FakeControl>,
    pub audit: Arc<MemAudit>,
    pub live: Arc<sluice_core::live::LiveSessions>,
    pub dir: tempfile::TempDir,
    /// The test's own database (and its backend user's name).
    pub db: String,
    pub password: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A grant and its secret.
pub struct TestGrant {
    pub id: String,
    pub secret: String,
}

/// The sample tables every test starts with.
const SEED: &str = "
CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50), email VARCHAR(100), card VARCHAR(30), balance INT);
INSERT INTO customers VALUES
  (1, 'Ada', 'ada@example.com', '4111 1111 1111 1111', 100),
  (2, 'Grace', 'grace@example.com', '5500 0000 0000 0004', 200);
CREATE TABLE orders (id INT PRIMARY KEY, cid INT, total INT, note TEXT);
INSERT INTO orders VALUES (1, 1, 30, 'first'), (2, 2, 45, NULL);
";

impl Gateway {
    /// Sluice in front of a fresh database of the binary's server; `extra`
    /// is appended to the connection (guardrails, masking).
    pub async fn start(extra: &str) -> Gateway {
        Self::start_with("", extra).await
    }

    /// As [`Gateway::start`], with `top` added before the connection
    /// (a `[mysql]` section).
    pub async fn start_with(top: &str, extra: &str) -> Gateway {
        Self::start_full(top, "tls = \"disable\"", extra).await
    }

    /// As [`Gateway::start`], with the connection's `tls` and `ca_file`
    /// lines given.
    pub async fn start_backend_tls(tls: &str, extra: &str) -> Gateway {
        Self::start_full("", tls, extra).await
    }

    async fn start_full(top: &str, tls: &str, extra: &str) -> Gateway {
        let m = server();
        let db = format!(
            "t_{}",
            &new_secret()[..12]
                .to_ascii_lowercase()
                .replace(['-', '_'], "x")
        );
        let password = new_secret();
        m.create_database(&db, &password).expect("create database");
        m.sql(&format!("USE `{db}`; {SEED}")).expect("seed");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("password"), &password).unwrap();
        let text = format!(
            r#"
[server]
data_dir = "{data}"

[approvals]
statement_timeout = "3s"
{top}

[[connections]]
name = "{CONN}"
kind = "mysql"
host = "127.0.0.1"
port = {port}
database = "{db}"
user = "{db}"
password_file = "{data}/../password"
{tls}
{extra}
"#,
            data = dir.path().join("data").display(),
            port = m.port(),
        );
        let config = Arc::new(Config::parse(&text, "mysql-test.toml").expect("valid config"));
        let control = Arc::new(FakeControl::default());
        let audit = Arc::new(MemAudit::default());
        let live = Arc::new(sluice_core::live::LiveSessions::default());
        let proxy = MysqlProxy::new(config, control.clone(), audit.clone())
            .expect("proxy")
            .with_live_sessions(live.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(proxy.serve(listener, async move {
            let _ = stopped.await;
        }));
        Gateway {
            addr,
            control,
            audit,
            live,
            dir,
            db,
            password,
            stop: Some(stop),
        }
    }

    pub fn grant(&self, profile: Profile) -> TestGrant {
        self.grant_for(profile, &[])
    }

    pub fn grant_for(&self, profile: Profile, groups: &[&str]) -> TestGrant {
        self.grant_with(profile, |g| {
            g.identity_groups = groups.iter().map(|s| s.to_string()).collect()
        })
    }

    /// A grant `edit` changed before it is stored.
    pub fn grant_with(&self, profile: Profile, edit: impl FnOnce(&mut Grant)) -> TestGrant {
        let secret = new_secret();
        let id = sluice_core::grant::new_grant_id();
        let mut g = make_grant(
            &id,
            &secret,
            CONN,
            profile,
            GrantStatus::Active,
            Duration::minutes(10),
        );
        edit(&mut g);
        self.control.insert(g);
        TestGrant { id, secret }
    }

    /// The `mariadb` client's run of `sql` through Sluice (batch mode,
    /// tab-separated, no column names).
    pub fn mariadb(&self, g: &TestGrant, sql: &str) -> Output {
        self.mariadb_args(g, &["-e", sql])
    }

    /// The `mariadb` client reading `script` from its standard input, as
    /// a session of several statements.
    pub fn mariadb_script(&self, g: &TestGrant, script: &str, args: &[&str]) -> Output {
        use std::io::Write;
        let mut child = self
            .mariadb_command(g, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run mariadb");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn mariadb_args(&self, g: &TestGrant, args: &[&str]) -> Output {
        self.mariadb_command(g, args)
            .stdin(Stdio::null())
            .output()
            .expect("run mariadb")
    }

    fn mariadb_command(&self, g: &TestGrant, args: &[&str]) -> Command {
        let mut c = Command::new("mariadb");
        c.arg("--no-defaults")
            .args(["-h", "127.0.0.1", "-P", &self.addr.port().to_string()])
            .args(["-u", &g.id, "-D", &self.db])
            .args(["--batch", "--skip-column-names"])
            .args(if args.contains(&"--ssl") {
                &[][..]
            } else {
                &["--skip-ssl"][..]
            })
            .args(args)
            .env("MYSQL_PWD", &g.secret);
        c
    }

    /// Runs `sql` on the test's database directly, as root.
    pub fn direct(&self, sql: &str) -> String {
        server()
            .sql(&format!("USE `{}`; {sql}", self.db))
            .expect("direct sql")
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

impl Gateway {
    /// Runs statements with Node's mysql2 driver through Sluice: `mode`
    /// "query" (text protocol) or "execute" (server-side prepared), each
    /// statement with its JSON array of parameters. One JSON value per
    /// statement: `{"rows": …}` or `{"error": {code, state, message}}`.
    pub fn mysql2(
        &self,
        g: &TestGrant,
        mode: &str,
        statements: &[(&str, &str)],
    ) -> Vec<serde_json::Value> {
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/mysql2");
        let mut c = Command::new("node");
        c.arg(format!("{fixture}/client.mjs"))
            .arg(self.addr.port().to_string())
            .args([&g.id, &g.secret, &self.db, mode]);
        for (sql, params) in statements {
            c.args([sql, params]);
        }
        let out = c.output().expect("run node (make test installs it)");
        assert!(out.status.success(), "mysql2: {}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON line per statement"))
            .collect()
    }

    /// Runs statements with PyMySQL (Debian's python3-pymysql) through
    /// Sluice, in one session; as [`Gateway::mysql2`]. `BIG:N` stands for a
    /// `SELECT` of an N-byte string (too long for a command line).
    pub fn pymysql(&self, g: &TestGrant, statements: &[&str]) -> Vec<serde_json::Value> {
        let script = r#"
import json, sys, pymysql
port, user, password, db = sys.argv[1:5]
conn = pymysql.connect(host="127.0.0.1", port=int(port), user=user, password=password, database=db)
for sql in sys.argv[5:]:
    if sql.startswith("BIG:"):
        sql = "SELECT '" + "x" * int(sql[4:]) + "'"
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            rows = [list(r) for r in cur.fetchall()]
        conn.commit()
        print(json.dumps({"rows": rows}, default=str))
    except pymysql.err.MySQLError as e:
        print(json.dumps({"error": {"code": e.args[0], "message": str(e.args[1]) if len(e.args) > 1 else ""}}))
conn.close()
"#;
        let out = Command::new("/usr/bin/python3")
            .args(["-c", script])
            .arg(self.addr.port().to_string())
            .args([&g.id, &g.secret, &self.db])
            .args(statements)
            .output()
            .expect("run python3 (make test installs python3-pymysql)");
        assert!(out.status.success(), "pymysql: {}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON line per statement"))
            .collect()
    }
}
