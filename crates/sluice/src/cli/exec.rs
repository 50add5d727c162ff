//! `sluice exec CONN -- COMMAND ...`: one command through a fresh grant.
//! The grant is requested (waiting for approval when the rule asks for
//! one), the command runs with the connection's client environment set
//! (`PG*` for Postgres, `MYSQL_*` and `USER` for MySQL, `ssh`/`scp`/`sftp`
//! wrappers for SSH: see `sshkit`), and the grant is revoked when the
//! command exits unless `--keep`. The command's exit status is
//! `sluice exec`'s.

use anyhow::{Result, bail};
use clap::Args;
use serde_json::{Value, json};
use std::process::ExitCode;

use super::client::Client;
use super::failure::{Code, fail};

#[derive(Args)]
pub struct ExecArgs {
    /// The connection's name (`sluice connections list` shows yours).
    pub connection: String,
    /// A specific profile (read, write, admin) when several rules apply.
    #[arg(long)]
    pub profile: Option<String>,
    /// How long the grant may live, e.g. "10m" (capped by the access rule).
    #[arg(long)]
    pub ttl: Option<String>,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "sluice exec")]
    pub reason: String,
    /// Keep the grant when the command exits (it is revoked by default).
    #[arg(long)]
    pub keep: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub async fn run(a: ExecArgs) -> Result<ExitCode> {
    let client = Client::from_env()?;
    let kind = kind_of(&client, &a.connection).await?;
    let mut body = json!({ "connection": a.connection, "reason": a.reason });
    if let Some(t) = &a.ttl {
        body["ttl"] = t.as_str().into();
    }
    if let Some(p) = &a.profile {
        body["profile"] = p.as_str().into();
    }
    let mut grant = client.post("/v1/grants", &body).await?;
    if grant["status"] == "pending" {
        grant = super::grant::wait_for_decision(&client, &grant).await?;
    }
    let id = grant["id"].as_str().unwrap_or_default().to_string();
    if grant["status"] != "active" {
        let status = grant["status"].as_str().unwrap_or("?");
        return Err(fail(
            Code::of_outcome(status),
            format!(
                "grant {id} is {status}: {}",
                grant["approval"]["reason"]
                    .as_str()
                    .unwrap_or("the command was not run")
            ),
        ));
    }
    // For SSH, wrappers in a private directory that lives as long as the
    // command does.
    let kit;
    let env = if kind == "ssh" {
        kit = super::sshkit::prepare(&a.connection, &grant["credentials"])?;
        kit.env.clone()
    } else {
        environment(&kind, &grant["credentials"])?
    };
    let status = run_child(&a.command, env).await;
    if !a.keep
        && let Err(e) = revoke(&client, &id).await
    {
        eprintln!("sluice: could not revoke grant {id}: {e:#}");
    }
    let status = status.map_err(|e| anyhow::anyhow!("cannot run {}: {e}", a.command[0]))?;
    Ok(exit_code(status))
}

/// Runs the command to its end. Signals meant to stop it do not stop us
/// first (the grant must be revoked after): Ctrl-C reaches the child from
/// the terminal as it is; SIGTERM and SIGHUP sent to us are passed on.
async fn run_child(
    command: &[String],
    env: Vec<(String, String)>,
) -> std::io::Result<std::process::ExitStatus> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut child = tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .envs(env)
        .spawn()?;
    let pass_on = |child: &tokio::process::Child, sig| {
        if let Some(pid) = child.id() {
            // SAFETY: signalling our own child, not yet reaped.
            unsafe { libc::kill(pid as i32, sig) };
        }
    };
    loop {
        tokio::select! {
            status = child.wait() => return status,
            _ = interrupt.recv() => {}
            _ = terminate.recv() => pass_on(&child, libc::SIGTERM),
            _ = hangup.recv() => pass_on(&child, libc::SIGHUP),
        }
    }
}

/// The connection's kind, from the connections this identity may use.
async fn kind_of(client: &Client, connection: &str) -> Result<String> {
    let list = client.get("/v1/connections").await?;
    let kind = list["connections"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == connection)
        .and_then(|c| c["kind"].as_str())
        .map(str::to_string);
    match kind {
        Some(k) => Ok(k),
        None => Err(fail(
            Code::NotFound,
            format!(
                "no connection {connection:?} is open to you: `sluice connections list` shows the ones that are"
            ),
        )),
    }
}

/// The client environment for a grant's credentials.
fn environment(kind: &str, c: &Value) -> Result<Vec<(String, String)>> {
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    let port = c["port"].to_string();
    Ok(match kind {
        "postgres" => vec![
            ("PGHOST".into(), s("host")),
            ("PGPORT".into(), port),
            ("PGUSER".into(), s("user")),
            ("PGPASSWORD".into(), s("password")),
            ("PGDATABASE".into(), s("database")),
            // TLS when the listener offers it, the clear otherwise; and
            // whatever the transport, only SCRAM: libpq (16 and later)
            // then refuses to send the secret to anyone asking for it in
            // the clear, as a man in the middle would.
            ("PGSSLMODE".into(), "prefer".into()),
            ("PGREQUIREAUTH".into(), "scram-sha-256".into()),
        ],
        // The `mariadb`/`mysql` clients read host, port and password from
        // these, and the user from `USER`; the database is the client's
        // `-D "$MYSQL_DATABASE"`.
        "mysql" => vec![
            ("MYSQL_HOST".into(), s("host")),
            ("MYSQL_TCP_PORT".into(), port),
            ("MYSQL_PWD".into(), s("password")),
            ("MYSQL_USER".into(), s("user")),
            ("USER".into(), s("user")),
            ("MYSQL_DATABASE".into(), s("database")),
        ],
        other => bail!(
            "`sluice exec` sets up Postgres, MySQL and SSH clients; for a {other} connection, use `sluice grant request` and its credentials"
        ),
    })
}

/// The child's exit status as ours (128 + signal when it was killed).
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => ExitCode::from(c.clamp(0, 255) as u8),
        (None, Some(sig)) => ExitCode::from((128 + sig).clamp(0, 255) as u8),
        _ => ExitCode::FAILURE,
    }
}

/// Revokes grant `id` with a token fresh enough: the command may have run
/// longer than the token it started with.
async fn revoke(started_with: &Client, id: &str) -> Result<Value> {
    let path = format!("/v1/grants/{id}");
    match Client::fresh().await {
        Ok(c) if c.bearer().is_some() => c.delete(&path).await,
        _ => started_with.delete(&path).await,
    }
}
