//! Real OpenSSH servers (`sshd`) on an ephemeral loopback port, each with
//! its own configuration, host key and client key, serving a directory of
//! its own. The login user is whoever runs it (as root, `root`, with keys
//! only). Used by the SSH suites and by `sluice dev`'s playground host.

use anyhow::{Context, Result, bail};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::free_port;

/// A running sshd. Killed on drop.
pub struct Sshd {
    child: Option<Child>,
    port: u16,
    root: PathBuf,
    user: String,
    _temp: Option<tempfile::TempDir>,
}

impl Sshd {
    /// Starts a server in a fresh temporary directory, removed on drop.
    pub fn start() -> Result<Sshd> {
        let temp = tempfile::Builder::new().prefix("sluice-sshd-").tempdir()?;
        let mut s = Self::start_in(temp.path())?;
        s._temp = Some(temp);
        Ok(s)
    }

    /// Starts a server whose files live under `root`: `ssh_host_ed25519_key`
    /// (the host's key), `client_key` (the key it accepts), `home/` (the
    /// directory commands start in, for the test's files).
    pub fn start_in(root: &Path) -> Result<Sshd> {
        let sshd = bin("sshd")?;
        fs::create_dir_all(root.join("home"))?;
        keygen(&root.join("ssh_host_ed25519_key"))?;
        keygen(&root.join("client_key"))?;
        fs::copy(root.join("client_key.pub"), root.join("authorized_keys"))?;
        let user = whoami()?;
        if unsafe { libc::geteuid() } == 0 {
            // sshd's privilege separation needs this (systemd makes it).
            fs::create_dir_all("/run/sshd")?;
        }
        let mut last = anyhow::anyhow!("no attempt");
        for _ in 0..5 {
            let port = free_port();
            let config = root.join("sshd_config");
            fs::write(&config, config_text(root, port, &user))?;
            let log = fs::File::create(root.join("sshd.log"))?;
            let child = Command::new(&sshd)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("spawn sshd")?;
            let mut s = Sshd {
                child: Some(child),
                port,
                root: root.to_path_buf(),
                user: user.clone(),
                _temp: None,
            };
            match s.wait_ready() {
                Ok(()) => return Ok(s),
                Err(e) => {
                    last = e;
                    s.stop();
                }
            }
        }
        Err(last.context("start sshd"))
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                let log = fs::read_to_string(self.root.join("sshd.log")).unwrap_or_default();
                bail!("sshd exited ({status}): {}", log.trim());
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("sshd did not listen within 10s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user logins are accepted for.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The host's public key line (`ssh-ed25519 AAAA… comment`), to pin.
    pub fn host_key(&self) -> String {
        fs::read_to_string(self.root.join("ssh_host_ed25519_key.pub"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// The private key the server accepts (OpenSSH format).
    pub fn client_key(&self) -> PathBuf {
        self.root.join("client_key")
    }

    /// The directory commands and sftp start in.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    /// Stops the server and every session it serves (sshd gives each
    /// connection a session of its own, so they are found as its
    /// descendants), as a host going away would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            for pid in descendants(child.id()) {
                // SAFETY: signals processes our own child started.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every process below `pid`, by their parents in `/proc`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: comm may hold spaces, so read after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((p, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

fn config_text(root: &Path, port: u16, user: &str) -> String {
    format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {root}/ssh_host_ed25519_key\n\
         PidFile {root}/sshd.pid\n\
         AuthorizedKeysFile {root}/authorized_keys\n\
         AllowUsers {user}\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PubkeyAuthentication yes\n\
         PermitRootLogin prohibit-password\n\
         StrictModes no\n\
         UsePAM no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         AcceptEnv LANG\n\
         Subsystem sftp internal-sftp -d {root}/home\n\
         LogLevel {level}\n",
        root = root.display(),
        level = std::env::var("SLUICE_SSHD_LOG_LEVEL").unwrap_or_else(|_| "ERROR".into())
    )
}

/// An Ed25519 key pair at `path` and `path.pub`, private to its owner.
fn keygen(path: &Path) -> Result<()> {
    let out = Command::new(bin("ssh-keygen")?)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "sluice-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .context("run ssh-keygen")?;
    if !out.status.success() {
        bail!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

fn whoami() -> Result<String> {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .context("run id -un")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// An OpenSSH program (`sshd`, `ssh-keygen`, `ssh`, `sftp`, `scp`).
pub fn bin(name: &str) -> Result<PathBuf> {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!(
        "OpenSSH's `{name}` was not found: install the Debian packages `openssh-server` and \
         `openssh-client` (or run `make test`, which installs them)"
    )
}
