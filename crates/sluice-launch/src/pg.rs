//! Real PostgreSQL servers from `initdb`, one per caller, on an ephemeral
//! port. Used by every suite that needs a database and by `sluice dev`.
//!
//! `initdb` and `postgres` refuse to run as root, and CI runs as root: then
//! the server runs as the unprivileged `postgres` system user (or `nobody`)
//! and its directory is handed to that user. `initdb` runs once per process
//! into a template that each server copies, so a new server costs a copy and
//! a start, not a fresh cluster.

use anyhow::{Context, Result, anyhow, bail};
use std::ffi::CString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::ports::free_port;

/// The superuser every server is created with.
pub const SUPERUSER: &str = "postgres";

/// How a server is started.
#[derive(Debug, Clone, Default)]
pub struct PgOptions {
    /// Serve TLS with a self-signed certificate (written as `server.crt`).
    pub tls: bool,
    /// Extra `-c name=value` settings.
    pub settings: Vec<(String, String)>,
}

/// A running PostgreSQL server. Stopped (fast shutdown) on drop.
pub struct PgServer {
    child: Option<Child>,
    port: u16,
    password: String,
    root: PathBuf,
    opts: PgOptions,
    _temp: Option<tempfile::TempDir>,
}

/// The unprivileged account a server runs as when we are root.
struct RunAs {
    uid: u32,
    gid: u32,
}

impl PgServer {
    /// Starts a server in a fresh temporary directory, removed on drop.
    pub fn start() -> Result<Self> {
        Self::start_with(PgOptions::default())
    }

    /// Starts a server in a fresh temporary directory with `opts`.
    pub fn start_with(opts: PgOptions) -> Result<Self> {
        let temp = tempfile::Builder::new().prefix("sluice-pg-").tempdir()?;
        let mut server = Self::start_in(temp.path(), opts)?;
        server._temp = Some(temp);
        Ok(server)
    }

    /// From async code: starts a server off the runtime's threads (initdb
    /// and the start block) and creates `database` in it, for a store of
    /// the test's own. Returns the server and the database's URL.
    pub async fn start_with_database(database: &str) -> Result<(Self, String)> {
        let pg = tokio::task::spawn_blocking(Self::start).await??;
        pg.create_database(database)?;
        let url = pg.url(database);
        Ok((pg, url))
    }

    /// Starts a server whose files live under `root` (created or replaced).
    pub fn start_in(root: &Path, opts: PgOptions) -> Result<Self> {
        let template = template()?;
        let data = root.join("data");
        if data.exists() {
            fs::remove_dir_all(&data)?;
        }
        fs::create_dir_all(root)?;
        copy_dir(&template.dir, &data)?;
        let run_as = run_as()?;
        let sock = root.join("sock");
        fs::create_dir_all(&sock)?;
        if opts.tls {
            write_self_signed(&data)?;
        }
        if let Some(u) = &run_as {
            chown_tree(root, u)?;
        }
        let mut last_err = anyhow!("no attempt");
        for _ in 0..5 {
            let port = free_port();
            match launch(&data, &sock, port, &opts, run_as.as_ref()) {
                Ok(child) => {
                    return Ok(PgServer {
                        child: Some(child),
                        port,
                        password: template.password.clone(),
                        root: root.to_path_buf(),
                        opts: opts.clone(),
                        _temp: None,
                    });
                }
                Err(e) => last_err = e,
            }
        }
        Err(last_err.context("start postgres"))
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's password (host connections use SCRAM-SHA-256).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The server's root directory (data dir is `root/data`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The self-signed certificate when started with `tls`.
    pub fn ca_file(&self) -> PathBuf {
        self.root.join("data").join("server.crt")
    }

    /// A libpq URL for `database` as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// Runs `sql` with `psql` as the superuser, failing on the first error;
    /// returns unaligned, tuples-only output.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let out = Command::new(bin("psql")?)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url(database))
            .arg("-c")
            .arg(sql)
            .env_remove("PGPASSWORD")
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "psql failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    /// Creates a database (and returns its name) so tests can share a server.
    pub fn create_database(&self, name: &str) -> Result<String> {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(name.to_string())
    }

    /// Stops the server and starts it again on the same files and port, as
    /// a database restart looks to its clients.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.resume()
    }

    /// Starts a stopped server again on the same files and port.
    pub fn resume(&mut self) -> Result<()> {
        let data = self.root.join("data");
        let sock = self.root.join("sock");
        let run_as = run_as()?;
        let mut last_err = anyhow!("no attempt");
        for _ in 0..50 {
            match launch(&data, &sock, self.port, &self.opts, run_as.as_ref()) {
                Ok(child) => {
                    self.child = Some(child);
                    return Ok(());
                }
                Err(e) => last_err = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(last_err.context("restart postgres"))
    }

    /// Stops the server now (fast shutdown), waiting for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            // SIGINT is PostgreSQL's "fast shutdown": no new sessions, abort
            // open ones, checkpoint, exit.
            unsafe { libc::kill(pid, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Finds a PostgreSQL server binary (`initdb`, `postgres`, `pg_isready`,
/// `psql`, `pgbench`) in the newest `/usr/lib/postgresql/N/bin`, else PATH.
pub fn bin(name: &str) -> Result<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    dirs.sort();
    for (_, dir) in dirs.iter().rev() {
        let p = dir.join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.exists() {
                return Ok(p);
            }
        }
    }
    bail!(
        "PostgreSQL's `{name}` was not found: install the Debian package `postgresql` \
         (or run `make test`, which installs it)"
    )
}

struct Template {
    dir: PathBuf,
    password: String,
}

/// Where this process's template lives. A static is never dropped, so a
/// `TempDir` kept in one would leave every test binary's initdb (about
/// 40 MB) in the temp directory for good; the directory is removed when
/// the process exits instead.
static TEMPLATE_ROOT: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_template() {
    if let Some(root) = TEMPLATE_ROOT.get() {
        let _ = fs::remove_dir_all(root);
    }
}

/// One initdb per process; errors are kept as text so every caller sees them.
fn template() -> Result<&'static Template> {
    static T: OnceLock<std::result::Result<Template, String>> = OnceLock::new();
    T.get_or_init(|| make_template().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

fn make_template() -> Result<Template> {
    let temp = tempfile::Builder::new()
        .prefix("sluice-pg-template-")
        .tempdir()?;
    let password = random_password();
    let pwfile = temp.path().join("pw");
    fs::write(&pwfile, &password)?;
    let dir = temp.path().join("data");
    let run_as = run_as()?;
    if let Some(u) = &run_as {
        chown_tree(temp.path(), u)?;
    }
    let mut cmd = Command::new(bin("initdb")?);
    cmd.arg("-D")
        .arg(&dir)
        .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C", "-N"])
        .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .stdin(Stdio::null());
    drop_privileges(&mut cmd, run_as.as_ref());
    let out = cmd.output().context("run initdb")?;
    if !out.status.success() {
        bail!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    fs::remove_file(&pwfile)?;
    let root = temp.keep();
    if TEMPLATE_ROOT.set(root).is_ok() {
        // SAFETY: registers a plain function with no arguments, run by
        // `exit` (which the test harness calls) after main returns.
        unsafe { libc::atexit(remove_template) };
    }
    Ok(Template { dir, password })
}

fn launch(
    data: &Path,
    sock: &Path,
    port: u16,
    opts: &PgOptions,
    run_as: Option<&RunAs>,
) -> Result<Child> {
    let mut cmd = Command::new(bin("postgres")?);
    cmd.arg("-D").arg(data).arg("-p").arg(port.to_string());
    cmd.arg("-k").arg(sock);
    let mut settings: Vec<(String, String)> = vec![
        ("listen_addresses".into(), "127.0.0.1".into()),
        // Throwaway servers: durability is not worth the disk time here.
        ("fsync".into(), "off".into()),
        ("synchronous_commit".into(), "off".into()),
        ("full_page_writes".into(), "off".into()),
        ("max_connections".into(), "300".into()),
        ("logging_collector".into(), "off".into()),
    ];
    if opts.tls {
        settings.push(("ssl".into(), "on".into()));
    }
    settings.extend(opts.settings.iter().cloned());
    for (k, v) in &settings {
        cmd.arg("-c").arg(format!("{k}={v}"));
    }
    let log = fs::File::create(data.join("server.log"))?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    drop_privileges(&mut cmd, run_as);
    let mut child = cmd.spawn().context("spawn postgres")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait()? {
            let log = fs::read_to_string(data.join("server.log")).unwrap_or_default();
            bail!("postgres exited ({status}) during startup: {}", log.trim());
        }
        let ready = Command::new(bin("pg_isready")?)
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()?;
        if ready.success() {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("postgres did not become ready within 30s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_as() -> Result<Option<RunAs>> {
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        let c = CString::new(name)?;
        let pw = unsafe { libc::getpwnam(c.as_ptr()) };
        if !pw.is_null() {
            let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
            return Ok(Some(RunAs { uid, gid }));
        }
    }
    bail!(
        "running as root and no unprivileged `postgres` or `nobody` user exists to run PostgreSQL"
    )
}

fn drop_privileges(cmd: &mut Command, run_as: Option<&RunAs>) {
    if let Some(u) = run_as {
        cmd.uid(u.uid).gid(u.gid);
        // A root HOME is unreadable for the server's user.
        cmd.env("HOME", "/tmp");
    }
}

fn chown_tree(path: &Path, u: &RunAs) -> Result<()> {
    std::os::unix::fs::chown(path, Some(u.uid), Some(u.gid))
        .with_context(|| format!("chown {}", path.display()))?;
    if path.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), u)?;
        }
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o700))?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Writes `server.crt`/`server.key` for 127.0.0.1 and localhost.
fn write_self_signed(data: &Path) -> Result<()> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])?;
    fs::write(data.join("server.crt"), cert.cert.pem())?;
    let key = data.join("server.key");
    fs::write(&key, cert.key_pair.serialize_pem())?;
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

fn random_password() -> String {
    use std::io::Read;
    let mut buf = [0u8; 18];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
