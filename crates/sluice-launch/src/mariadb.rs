//! Real MariaDB servers (Debian's `mariadb-server`) on an ephemeral
//! loopback port, each in a directory of its own: `mariadb-install-db`
//! then `mariadbd` with no option files read, so the machine's own server
//! (and its `/etc/mysql`) is never touched. As root the server runs as the
//! unprivileged `mysql` user the package makes. Used by the MySQL suites
//! and by `sluice dev`'s playground database.

use anyhow::{Context, Result, bail};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::free_port;

/// A running MariaDB server. Killed (and its files removed) on drop.
pub struct MariaDb {
    /// The watchdog's pipe, when the server is bound to this process.
    watchdog: Option<std::process::ChildStdin>,
    child: Option<Child>,
    port: u16,
    root: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl MariaDb {
    /// Starts a server in a fresh temporary directory.
    pub fn start() -> Result<MariaDb> {
        Self::start_temp(false)
    }

    /// Starts a server that dies with this process, for a server shared
    /// by a whole test binary (kept in a `static`, which is never
    /// dropped).
    pub fn start_bound_to_process() -> Result<MariaDb> {
        Self::start_temp(true)
    }

    fn start_temp(bound: bool) -> Result<MariaDb> {
        let temp = tempfile::Builder::new()
            .prefix("sluice-mariadb-")
            .tempdir()?;
        let mut m = Self::start_with(temp.path(), bound)?;
        m._temp = Some(temp);
        Ok(m)
    }

    /// Starts a server whose files live under `root` (`data/`, `sock`,
    /// `error.log`). Its `root@localhost` has no password and is reached
    /// only through the socket; make users with [`MariaDb::sql`].
    pub fn start_in(root: &Path) -> Result<MariaDb> {
        Self::start_with(root, false)
    }

    fn start_with(root: &Path, bound: bool) -> Result<MariaDb> {
        let install = bin("mariadb-install-db")?;
        let server = bin("mariadbd")?;
        let data = root.join("data");
        let as_root = unsafe { libc::geteuid() } == 0;
        let user = if as_root {
            "mysql".to_string()
        } else {
            whoami()?
        };
        fs::create_dir_all(&data)?;
        fs::create_dir_all(root.join("tmp"))?;
        if as_root {
            // The server drops to `mysql`, which must reach its files.
            fs::set_permissions(root, fs::Permissions::from_mode(0o755))?;
            chown(root, &user)?;
        }
        install_db(&install, &data, &user, as_root)?;
        // A self-signed certificate for 127.0.0.1 and localhost: clients
        // (and Sluice's backend connector) may ask for TLS and verify it
        // against `ca_file()`.
        let pair =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])?;
        fs::write(root.join("server.crt"), pair.cert.pem())?;
        fs::write(root.join("server.key"), pair.key_pair.serialize_pem())?;
        if as_root {
            chown(&root.join("server.key"), &user)?;
        }
        let mut last = anyhow::anyhow!("no attempt");
        for _ in 0..5 {
            let port = free_port();
            let mut command = if bound {
                // A watchdog shell holds the server: when this process
                // ends, its end of the pipe closes, `read` returns and the
                // server is killed. (A parent-death signal would not do:
                // the server changes user, which clears it.)
                let mut c = Command::new("sh");
                c.args([
                    "-c",
                    "\"$@\" </dev/null & p=$!; read -r _; kill -9 $p; wait $p",
                    "sh",
                ]);
                c.arg(&server);
                c.stdin(Stdio::piped());
                c
            } else {
                let mut c = Command::new(&server);
                c.stdin(Stdio::null());
                c
            };
            let mut child = command
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", root.join("sock").display()))
                .arg(format!("--tmpdir={}", root.join("tmp").display()))
                .arg(format!("--ssl-cert={}", root.join("server.crt").display()))
                .arg(format!("--ssl-key={}", root.join("server.key").display()))
                .arg(format!(
                    "--pid-file={}",
                    root.join("mariadbd.pid").display()
                ))
                .arg(format!("--log-error={}", root.join("error.log").display()))
                .arg(format!("--port={port}"))
                .arg(format!("--user={user}"))
                .args([
                    "--bind-address=127.0.0.1",
                    "--skip-name-resolve",
                    "--skip-log-bin",
                    "--innodb-buffer-pool-size=16M",
                    "--max-connections=200",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("spawn mariadbd")?;
            let watchdog = child.stdin.take();
            let mut m = MariaDb {
                watchdog,
                child: Some(child),
                port,
                root: root.to_path_buf(),
                _temp: None,
            };
            match m.wait_ready() {
                Ok(()) => return Ok(m),
                Err(e) => {
                    last = e;
                    m.stop();
                }
            }
        }
        Err(last.context("start mariadbd"))
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                let log = fs::read_to_string(self.root.join("error.log")).unwrap_or_default();
                bail!("mariadbd exited ({status}): {}", tail(&log));
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.sql("SELECT 1").is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("mariadbd did not answer within 30s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's certificate (self-signed), to verify its TLS against.
    pub fn ca_file(&self) -> PathBuf {
        self.root.join("server.crt")
    }

    /// The server's socket, where `root` logs in without a password.
    pub fn socket(&self) -> PathBuf {
        self.root.join("sock")
    }

    /// Runs `sql` as `root` through the socket with the `mariadb` client;
    /// its output, tab-separated, without column names.
    pub fn sql(&self, sql: &str) -> Result<String> {
        let out = Command::new(bin("mariadb")?)
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "--batch", "--skip-column-names", "-e", sql])
            .stdin(Stdio::null())
            .output()
            .context("run mariadb")?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Makes database `name` and a user of the same name with `password`
    /// and every privilege on it, reachable over TCP.
    pub fn create_database(&self, name: &str, password: &str) -> Result<()> {
        self.sql(&format!(
            "CREATE DATABASE `{name}`; \
             CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY '{password}'; \
             GRANT ALL ON `{name}`.* TO '{name}'@'127.0.0.1';"
        ))?;
        Ok(())
    }

    /// Stops the server at once, as a crash would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.watchdog.take().is_none() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `mariadb-install-db` into `data`, with a temporary directory of its
/// own: servers sharing `/tmp` remove each other's temporary tables (seen
/// as bootstraps failing when several run at once).
fn install_db(install: &Path, data: &Path, user: &str, as_root: bool) -> Result<()> {
    let tmp = data.with_file_name("tmp");
    let mut failure = String::new();
    for _ in 0..2 {
        let out = Command::new(install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .env("TMPDIR", &tmp)
            .arg(format!("--user={user}"))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .stdin(Stdio::null())
            .output()
            .context("run mariadb-install-db")?;
        if out.status.success() {
            return Ok(());
        }
        failure = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        fs::remove_dir_all(data)?;
        fs::create_dir_all(data)?;
        if as_root {
            chown(data, user)?;
        }
    }
    bail!("mariadb-install-db failed: {}", tail(&failure))
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

fn chown(path: &Path, user: &str) -> Result<()> {
    let out = Command::new("chown")
        .arg("-R")
        .arg(user)
        .arg(path)
        .output()
        .context("run chown")?;
    if !out.status.success() {
        bail!(
            "chown {user} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn whoami() -> Result<String> {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .context("run id -un")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A MariaDB program (`mariadbd`, `mariadb-install-db`, `mariadb`).
pub fn bin(name: &str) -> Result<PathBuf> {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!(
        "MariaDB's `{name}` was not found: install the Debian packages `mariadb-server` and \
         `mariadb-client` (or run `make test`, which installs them)"
    )
}
