//! A real OpenSSH server (sshd on an ephemeral port), Sluice's SSH
//! listener in front of it with the shared fakes of the control plane and
//! the audit log, and the real OpenSSH client (`ssh`, `sftp`, `scp`) as the
//! agent, given its grant's secret by an askpass script.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use chrono::Duration;
use sluice_core::config::Config;
use sluice_core::secret::new_secret;
use sluice_core::{GrantStatus, Profile};
use sluice_ssh::SshProxy;
pub use sluice_testkit::fakes::{FakeControl, MemAudit, make_grant};
use sluice_testkit::sshd::Sshd;
use tokio::sync::oneshot;

pub const CONN: &str = "web";

pub struct Gateway {
    pub sshd: Sshd,
    pub addr: SocketAddr,
    pub control: Arc<FakeControl>,
    pub audit: Arc<MemAudit>,
    pub live: Arc<sluice_core::live::LiveSessions>,
    pub dir: tempfile::TempDir,
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

impl Gateway {
    /// Sluice in front of a fresh sshd; `extra` is appended to the
    /// connection (guardrails, `[connections.ssh]` settings after
    /// `host_key` and `private_key_file`).
    pub async fn start(extra: &str) -> Gateway {
        let sshd = tokio::task::spawn_blocking(Sshd::start)
            .await
            .unwrap()
            .expect("start sshd");
        Self::on(sshd, |host_key| host_key.to_string(), extra).await
    }

    /// Sluice in front of `sshd`, pinning `pin(host_key)` as its key.
    pub async fn on(sshd: Sshd, pin: impl Fn(&str) -> String, extra: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"
[server]
data_dir = "{data}"

[approvals]
statement_timeout = "3s"

[[connections]]
name = "{CONN}"
kind = "ssh"
host = "127.0.0.1"
port = {port}
user = "{user}"

[connections.ssh]
host_key = "{host_key}"
private_key_file = "{key}"
{extra}
"#,
            data = dir.path().display(),
            port = sshd.port(),
            user = sshd.user(),
            host_key = pin(&sshd.host_key()),
            key = sshd.client_key().display(),
        );
        let config = Arc::new(Config::parse(&text, "ssh-test.toml").expect("valid config"));
        let control = Arc::new(FakeControl::default());
        let audit = Arc::new(MemAudit::default());
        let live = Arc::new(sluice_core::live::LiveSessions::default());
        let proxy = SshProxy::new(config, control.clone(), audit.clone())
            .expect("proxy")
            .with_live_sessions(live.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(proxy.serve(listener, async move {
            let _ = stopped.await;
        }));
        Gateway {
            sshd,
            addr,
            control,
            audit,
            live,
            dir,
            stop: Some(stop),
        }
    }

    pub fn grant(&self, profile: Profile) -> TestGrant {
        let secret = new_secret();
        let id = sluice_core::grant::new_grant_id();
        self.control.insert(make_grant(
            &id,
            &secret,
            CONN,
            profile,
            GrantStatus::Active,
            Duration::minutes(10),
        ));
        TestGrant { id, secret }
    }

    /// A script that prints `secret`, for OpenSSH's askpass.
    fn askpass(&self, secret: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let tag: u64 = secret
            .bytes()
            .fold(7, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
        let p = self.dir.path().join(format!("askpass-{tag:x}"));
        std::fs::write(&p, format!("#!/bin/sh\nprintf '%s\\n' '{secret}'\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        p
    }

    /// The OpenSSH options every client here uses: no host key checks
    /// (the gateway's key is new each test), the secret by askpass.
    fn client(&self, program: &str, secret: &str) -> Command {
        let mut c = Command::new(program);
        c.args([
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            if std::env::var_os("SLUICE_SSH_VERBOSE").is_some() {
                "LogLevel=DEBUG1"
            } else {
                "LogLevel=ERROR"
            },
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=keyboard-interactive,password",
            "-o",
            "NumberOfPasswordPrompts=1",
            // `sftp -b` asks ssh for batch mode, which never prompts: the
            // first value given wins, so askpass is still asked.
            "-o",
            "BatchMode=no",
        ])
        .env("SSH_ASKPASS", self.askpass(secret))
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(Stdio::null());
        c
    }

    /// `ssh -p PORT USER@gateway COMMAND…` as the grant's holder.
    pub fn ssh(&self, g: &TestGrant, args: &[&str]) -> Output {
        self.ssh_as(&g.id, &g.secret, args)
    }

    pub fn ssh_as(&self, user: &str, secret: &str, args: &[&str]) -> Output {
        self.client("ssh", secret)
            .arg("-p")
            .arg(self.addr.port().to_string())
            .arg(format!("{user}@127.0.0.1"))
            .args(args)
            .output()
            .unwrap()
    }

    /// `ssh` as the grant's holder, left running (a forward's `-N`).
    pub fn ssh_spawn(&self, g: &TestGrant, args: &[&str]) -> std::process::Child {
        self.client("ssh", &g.secret)
            .arg("-p")
            .arg(self.addr.port().to_string())
            .arg(format!("{}@127.0.0.1", g.id))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `ssh` as the grant's holder, with `input` on its standard input.
    pub fn ssh_with_input(&self, g: &TestGrant, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .client("ssh", &g.secret)
            .arg("-p")
            .arg(self.addr.port().to_string())
            .arg(format!("{}@127.0.0.1", g.id))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_string();
        let feeder = std::thread::spawn(move || {
            // Typed slowly, as a person would: a shell reads line by line.
            for line in input.split_inclusive('\n') {
                std::thread::sleep(std::time::Duration::from_millis(300));
                if stdin.write_all(line.as_bytes()).is_err() {
                    return;
                }
            }
        });
        let out = child.wait_with_output().unwrap();
        let _ = feeder.join();
        out
    }

    /// `sftp -b BATCH` as the grant's holder.
    pub fn sftp(&self, g: &TestGrant, batch: &str) -> Output {
        let file = self.dir.path().join("batch");
        std::fs::write(&file, batch).unwrap();
        self.client("sftp", &g.secret)
            .arg("-P")
            .arg(self.addr.port().to_string())
            .arg("-b")
            .arg(&file)
            .arg(format!("{}@127.0.0.1", g.id))
            .output()
            .unwrap()
    }

    /// `scp` as the grant's holder (`from` and `to`, with `REMOTE:` for the
    /// gateway's side).
    pub fn scp(&self, g: &TestGrant, from: &str, to: &str) -> Output {
        let remote = format!("{}@127.0.0.1:", g.id);
        let fix = |s: &str| s.replace("REMOTE:", &remote);
        let mut c = self.client("scp", &g.secret);
        if std::env::var_os("SLUICE_SSH_VERBOSE").is_some() {
            c.arg("-v");
        }
        c.arg("-P")
            .arg(self.addr.port().to_string())
            .arg(fix(from))
            .arg(fix(to))
            .output()
            .unwrap()
    }

    /// A file in the host's home directory.
    pub fn host_file(&self, name: &str) -> PathBuf {
        self.sshd.home().join(name)
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
