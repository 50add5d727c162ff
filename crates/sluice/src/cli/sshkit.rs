//! What `sluice exec` gives a command for an SSH connection: `ssh`, `scp`
//! and `sftp` first on `PATH` that reach the gateway as the grant, with
//! its host key pinned, so `sluice exec web -- ssh web 'uname -a'` (or a
//! script calling `scp`, `rsync -e ssh`, ansible…) works unchanged.
//!
//! Everything lives in a private temporary directory (0700) removed when
//! the command ends: an `ssh_config` naming the connection as a host
//! alias, a `known_hosts` with the gateway's key from the grant (and
//! `StrictHostKeyChecking yes`, so a different key is refused rather than
//! learned), the grant's secret in a 0600 file, an askpass script that
//! prints it (OpenSSH reads passwords only from a terminal or askpass),
//! and the three wrappers. The secret is never in the environment or on a
//! command line.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The directory and the environment to run the command with.
pub struct Kit {
    _dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

/// Prepares the kit for connection `name` from the grant's credentials.
pub fn prepare(name: &str, c: &Value) -> Result<Kit> {
    let s = |k: &str| c[k].as_str().unwrap_or_default();
    let (host, user, secret, key) = (s("host"), s("user"), s("password"), s("host_key"));
    if key.is_empty() {
        bail!("the gateway did not send its SSH host key with the grant; upgrade the gateway");
    }
    let port = c["port"].as_u64().unwrap_or(22);
    let ssh = real("ssh").context("`sluice exec` for SSH needs OpenSSH's ssh client on PATH")?;
    let dir = tempfile::Builder::new().prefix("sluice-ssh-").tempdir()?;
    let d = dir.path();
    if d.to_string_lossy().contains(['\'', '\n', ' ']) {
        bail!(
            "the temporary directory {} has characters the wrappers cannot quote",
            d.display()
        );
    }
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
    write(&d.join("secret"), &format!("{secret}\n"), 0o600)?;
    write(
        &d.join("askpass"),
        &format!("#!/bin/sh\nexec cat '{}/secret'\n", d.display()),
        0o700,
    )?;
    write(
        &d.join("known_hosts"),
        &format!("[{host}]:{port} {key}\n"),
        0o600,
    )?;
    write(&d.join("config"), &config(name, host, port, user, d), 0o600)?;
    std::fs::create_dir(d.join("bin"))?;
    for tool in ["ssh", "scp", "sftp"] {
        // scp and sftp run `ssh` from PATH, which is the wrapper.
        let Some(path) = (if tool == "ssh" {
            Some(ssh.clone())
        } else {
            real(tool)
        }) else {
            continue;
        };
        let wrapper = format!(
            "#!/bin/sh\nSSH_ASKPASS='{d}/askpass' SSH_ASKPASS_REQUIRE=force exec '{}' -F '{d}/config' \"$@\"\n",
            path.display(),
            d = d.display()
        );
        write(&d.join("bin").join(tool), &wrapper, 0o700)?;
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let env = vec![
        ("PATH".into(), format!("{}/bin:{path}", d.display())),
        ("SLUICE_SSH_HOST".into(), name.to_string()),
        (
            "SLUICE_SSH_CONFIG".into(),
            format!("{}/config", d.display()),
        ),
    ];
    Ok(Kit { _dir: dir, env })
}

/// The host alias: the connection's name. Other hosts the command may
/// reach (a git remote) keep OpenSSH's defaults.
fn config(name: &str, host: &str, port: u64, user: &str, d: &Path) -> String {
    format!(
        "Host {name}\n  HostName {host}\n  Port {port}\n  User {user}\n  \
         UserKnownHostsFile {d}/known_hosts\n  GlobalKnownHostsFile /dev/null\n  \
         StrictHostKeyChecking yes\n  PubkeyAuthentication no\n  IdentityAgent none\n  \
         KbdInteractiveAuthentication no\n  PreferredAuthentications password\n  \
         NumberOfPasswordPrompts 1\n  ControlMaster no\n  ControlPath none\n",
        d = d.display()
    )
}

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// `tool` as found on PATH (an executable file).
fn real(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p).map(|d| d.join(tool)).find(|f| {
            f.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}
