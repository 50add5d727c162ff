//! The binary end to end: `sluice dev` with its real issuer and throwaway
//! PostgreSQL, driven by the CLI verbs a user types.

use serde_json::Value;
use sluice_testkit::ports::free_port;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

struct Dev {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Dev {
    fn start() -> Dev {
        // A directory only its owner may enter (mktemp -d): as root, the
        // database runs as the unprivileged postgres user, who cannot enter
        // it, and the playground must still come up (issue 13).
        let dir = tempfile::tempdir().unwrap();
        let api = format!("127.0.0.1:{}", free_port());
        let child = Command::new(BIN)
            .args(["dev", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--api-listen", &api])
            .args(["--postgres-listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--ssh-listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--mysql-listen", &format!("127.0.0.1:{}", free_port())])
            .stdout(std::fs::File::create(dir.path().join("banner")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let dev = Dev {
            child,
            url: format!("http://{api}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !dev.data().join("playground.env").exists() {
            assert!(Instant::now() < deadline, "sluice dev did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        dev
    }

    /// What `sluice dev` printed, once it has printed all of it.
    fn banner(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(self.dir.path().join("banner")).unwrap();
            if text.contains("Ctrl-C stops everything.") {
                return text;
            }
            assert!(Instant::now() < deadline, "no banner: {text}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn sluice(&self, token: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("SLUICE_URL", &self.url)
            .env_remove("SLUICE_TOKEN");
        if let Some(t) = token {
            cmd.env("SLUICE_TOKEN", t);
        }
        cmd.output().unwrap()
    }

    fn token(&self, sub: &str, groups: &str) -> String {
        let out = self.sluice(None, &["token", "--dev", "--sub", sub, "--groups", groups]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    fn env_value(&self, key: &str) -> String {
        let env = std::fs::read_to_string(self.data().join("playground.env")).unwrap();
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing from playground.env"))
            .to_string()
    }

    /// Ctrl-C, and wait for a clean exit.
    fn interrupt(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "sluice dev exited with {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sluice dev did not stop on Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Dev {
    /// Ctrl-C first, so the playground stops its database and sshd even
    /// when a test failed halfway; then kill.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn psql(dsn: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-d", dsn, "-c", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

#[test]
fn the_playground_walkthrough_works_and_ctrl_c_leaves_nothing_running() {
    let mut dev = Dev::start();

    // The throwaway database holds the sample data.
    let direct = dev.env_value("PLAYGROUND_DIRECT_DSN");
    assert_eq!(psql(&direct, "SELECT count(*) FROM customers"), "300");
    assert_eq!(psql(&direct, "SELECT count(*) FROM orders"), "1200");

    // token -> grant, capped by the rule's 15 minutes.
    let agent = dev.token("agent-1", "analytics-agents");
    let out = dev.sluice(
        Some(&agent),
        &[
            "grant",
            "request",
            "playground",
            "--ttl",
            "1h",
            "--reason",
            "e2e",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let grant: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(grant["status"], "active");
    assert_eq!(grant["profile"], "read");
    assert_eq!(grant["ttl_secs"], 900);
    assert_eq!(grant["identity"]["kind"], "agent");
    let id = grant["id"].as_str().unwrap().to_string();
    let password = grant["credentials"]["password"]
        .as_str()
        .unwrap()
        .to_string();

    // Someone else cannot see it; the error is one clear line.
    let other = dev.token("agent-2", "analytics-agents");
    let out = dev.sluice(Some(&other), &["grant", "show", &id]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        format!("sluice: no grant {id} that you may see")
    );

    // An ineligible identity is refused with the reason.
    let intern = dev.token("intern", "marketing");
    let out = dev.sluice(Some(&intern), &["grant", "request", "playground"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no access rule"), "{}", stderr(&out));

    // psql through Sluice: reads work on the read-only backend session, DDL
    // is refused with the rule, and the database is unchanged.
    let dsn = grant["credentials"]["dsn"].as_str().unwrap().to_string();
    assert_eq!(psql(&dsn, "SELECT count(*) FROM orders"), "1200");
    assert_eq!(psql(&dsn, "SHOW default_transaction_read_only"), "on");
    // Masking: card numbers reach the agent as their last four digits.
    let card = psql(
        &dsn,
        "SELECT card_number FROM customers ORDER BY id LIMIT 1",
    );
    let (stars, last) = card.split_at(card.len() - 4);
    assert_eq!(stars, "****-****-****-", "{card}");
    assert!(last.bytes().all(|b| b.is_ascii_digit()), "{card}");
    let out = Command::new("psql")
        .args(["-X", "-d", &dsn, "-c", "DROP TABLE orders"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("sluice: statement denied by profile \"read\": DROP TABLE is ddl"),
        "{}",
        stderr(&out)
    );
    assert_eq!(psql(&direct, "SELECT count(*) FROM orders"), "1200");

    // The playground's SSH host: read-only commands for agents.
    let out = dev.sluice(
        Some(&agent),
        &[
            "grant",
            "request",
            "playground-ssh",
            "--reason",
            "host check",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let ssh_grant: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let c = &ssh_grant["credentials"];
    // The host key to pin is printed at start, as in the grant.
    let fingerprint = c["host_key_fingerprint"].as_str().unwrap();
    assert!(fingerprint.starts_with("SHA256:"), "{ssh_grant}");
    assert!(
        dev.banner().contains(&format!("host key {fingerprint}")),
        "{}",
        dev.banner()
    );
    let askpass = dev.dir.path().join("askpass");
    std::fs::write(
        &askpass,
        format!(
            "#!/bin/sh\nprintf '%s\\n' '{}'\n",
            c["password"].as_str().unwrap()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let ssh = |command: &str| {
        Command::new("ssh")
            .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
            .args(["-p", &c["port"].to_string()])
            .arg(format!("{}@127.0.0.1", c["user"].as_str().unwrap()))
            .arg(command)
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let home = dev.data().join("sshd/home");
    let out = ssh(&format!("cat {}/README.txt", home.display()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("playground's SSH host"),
        "{}",
        stdout(&out)
    );
    let out = ssh(&format!("rm {}/README.txt", home.display()));
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    assert!(home.join("README.txt").exists());

    // The playground's MariaDB: the same tables, masked the same way.
    let out = dev.sluice(
        Some(&agent),
        &[
            "grant",
            "request",
            "playground-mysql",
            "--reason",
            "orders in mysql",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let my: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let c = &my["credentials"];
    let mariadb = |sql: &str| {
        Command::new("mariadb")
            .args([
                "--no-defaults",
                "--batch",
                "--skip-column-names",
                "--skip-ssl",
            ])
            .args([
                "-h",
                c["host"].as_str().unwrap(),
                "-P",
                &c["port"].to_string(),
            ])
            .args([
                "-u",
                c["user"].as_str().unwrap(),
                "-D",
                c["database"].as_str().unwrap(),
            ])
            .args(["-e", sql])
            .env("MYSQL_PWD", c["password"].as_str().unwrap())
            .output()
            .unwrap()
    };
    let out = mariadb("SELECT count(*) FROM orders");
    assert_eq!(stdout(&out).trim(), "1200", "{}", stderr(&out));
    let out = mariadb("SELECT card_number FROM customers ORDER BY id LIMIT 1");
    let card = stdout(&out).trim().to_string();
    assert!(
        card.starts_with("****-****-****-"),
        "{card} {}",
        stderr(&out)
    );
    let out = mariadb("DELETE FROM orders");
    assert!(stderr(&out).contains("1142"), "{}", stderr(&out));

    // Revoke; the owner sees the new status.
    let out = dev.sluice(Some(&agent), &["grant", "revoke", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("revoked"));
    let out = Command::new("psql")
        .args(["-X", "-d", &dsn, "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a revoked grant still logs in");

    // The audit chain verifies and exports; the secret appears nowhere.
    let config = dev.data().join("sluice.toml");
    let config = config.to_str().unwrap();
    let out = dev.sluice(None, &["audit", "verify", "--config", config]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("audit chain ok"),
        "{}",
        stdout(&out)
    );
    let out = dev.sluice(
        None,
        &["audit", "export", "--config", config, "--format", "jsonl"],
    );
    let export = stdout(&out);
    let kinds: Vec<String> = export
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for k in [
        "config.loaded",
        "grant.requested",
        "grant.activated",
        "grant.denied",
        "grant.revoked",
        "session.opened",
        "statement.allowed",
        "statement.denied",
        "session.closed",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
    assert!(!export.contains(&password));
    assert!(!contains_bytes(
        &dev.data().join("sluice.db"),
        password.as_bytes()
    ));

    // Ctrl-C stops the gateway and the database.
    let pg_port: u16 = direct
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let sshd_config = std::fs::read_to_string(dev.data().join("sshd/sshd_config")).unwrap();
    let sshd_port: u16 = sshd_config
        .lines()
        .find_map(|l| l.strip_prefix("Port "))
        .unwrap()
        .parse()
        .unwrap();
    let config_text = std::fs::read_to_string(dev.data().join("sluice.toml")).unwrap();
    let mariadb_port: u16 = config_text
        .split("name = \"playground-mysql\"")
        .nth(1)
        .and_then(|rest| rest.lines().find_map(|l| l.strip_prefix("port = ")))
        .unwrap()
        .parse()
        .unwrap();
    dev.interrupt();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", pg_port)).is_err(),
        "postgres still running"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", mariadb_port)).is_err(),
        "the playground's MariaDB still running"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", sshd_port)).is_err(),
        "the playground's sshd still running"
    );
    let api = dev.url.trim_start_matches("http://");
    assert!(
        std::net::TcpStream::connect(api).is_err(),
        "API still answering"
    );

    // Tampering with the stored chain is caught by `audit verify`, naming the event.
    tamper(
        &dev.data().join("sluice.db"),
        "UPDATE audit_events SET body = replace(body, '\"e2e\"', '\"xyz\"') \
         WHERE kind = 'grant.requested' AND body LIKE '%\"reason\":\"e2e\"%'",
    );
    let out = dev.sluice(None, &["audit", "verify", "--config", config]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("audit chain broken at sequence"),
        "{}",
        stderr(&out)
    );
}

fn contains_bytes(path: &Path, needle: &[u8]) -> bool {
    let mut hay = std::fs::read(path).unwrap();
    for ext in ["-wal", "-shm"] {
        if let Ok(more) = std::fs::read(format!("{}{ext}", path.display())) {
            hay.extend(more);
        }
    }
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Edits the SQLite file behind Sluice's back, as an intruder would.
fn tamper(db: &Path, sql: &str) {
    use sqlx::Connection;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let done = sqlx::query(sql).execute(&mut c).await.unwrap();
        assert_eq!(done.rows_affected(), 1);
    });
}

#[test]
fn config_check_points_at_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[[issuers]]\nname = \"okta\"\nissuer = \"https://example.okta.com/oauth2/default\"\naudiences = [\"api://sluice\"]\n\n\
         [[connections]]\nname = \"db\"\nkind = \"postgres\"\nhost = \"db.internal\"\ndatabase = \"db\"\nuser = \"sluice\"\n\n\
         [[rules]]\nname = \"r\"\ngroups = [\"g\"]\nconnection = \"db\"\nprofile = \"read\"\nmax_ttl = \"5m\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("ok (1 issuers"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\napi_listen = \"nowhere\"\n\n[[rules]]\nname = \"r\"\ngroups = []\nconnection = \"x\"\nprofile = \"read\"\nmax_ttl = \"5m\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    let file = bad.display().to_string();
    assert!(
        err.contains(&format!("{file}:2: server.api_listen")),
        "{err}"
    );
    assert!(err.contains(&format!("{file}:6: rules[0].groups")), "{err}");
    assert!(
        err.contains(&format!("{file}:7: rules[0].connection")),
        "{err}"
    );
    assert!(err.contains("3 problem(s) found"), "{err}");

    let unknown = dir.path().join("unknown.toml");
    std::fs::write(
        &unknown,
        "[server]\napi_listen = \"127.0.0.1:1\"\nlisten_everywhere = true\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&unknown)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains(":3:"), "{}", stderr(&out));
}

#[test]
fn client_verbs_explain_what_is_missing() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["grant", "show", "g_x"])
        .env_remove("SLUICE_TOKEN")
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not logged in: run `sluice login`"),
        "{}",
        stderr(&out)
    );
    let out = Command::new(BIN)
        .args(["grant", "show", "g_x"])
        .env("SLUICE_TOKEN", "t")
        .env("SLUICE_URL", format!("http://127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot reach Sluice"),
        "{}",
        stderr(&out)
    );
}
