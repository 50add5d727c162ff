//! `sluice dev`: the local playground. One command starts the gateway with
//! an embedded store, a development token issuer (served as a real OIDC
//! discovery document and JWKS, so tokens take the normal verification
//! path), a throwaway PostgreSQL loaded with sample data, and a throwaway
//! OpenSSH server serving a scratch directory. Ctrl-C stops all of it.

mod mariadb;
mod sample;

use anyhow::{Context, Result};
use sluice_core::config::Config;
use sluice_identity::dev::DevIssuer;
use sluice_launch::pg::PgServer;
use sluice_launch::sshd::Sshd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The audience of playground tokens.
pub const DEV_AUDIENCE: &str = "sluice-dev";

#[derive(clap::Args)]
pub struct DevArgs {
    /// Where the playground keeps its store, database and generated config.
    #[arg(long, default_value = ".sluice-dev")]
    data_dir: PathBuf,
    /// API listener.
    #[arg(long, default_value = "127.0.0.1:8420")]
    api_listen: String,
    /// Postgres listener.
    #[arg(long, default_value = "127.0.0.1:15432")]
    postgres_listen: String,
    /// SSH listener.
    #[arg(long, default_value = "127.0.0.1:2222")]
    ssh_listen: String,
    /// MySQL listener.
    #[arg(long, default_value = "127.0.0.1:13306")]
    mysql_listen: String,
}

/// What the throwaway database gives the playground.
struct Playground {
    server: PgServer,
    app_password_file: PathBuf,
    reader_password_file: PathBuf,
}

pub async fn run(args: DevArgs) -> Result<()> {
    crate::serve::init_logging(false);
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let dir = std::fs::canonicalize(&args.data_dir)?;
    let playground = if sluice_launch::pg::bin("initdb").is_err() {
        tracing::warn!(
            "no PostgreSQL server binaries (initdb) on this machine: the gateway starts \
             without a playground database (install the postgresql package to get one)"
        );
        None
    } else {
        // The binaries are here, so a database that does not start is a
        // problem to fix, not to work around silently.
        Some(start_database(&dir).await.context(
            "the playground database did not start; fix the cause above, or run \
             `sluice dev --data-dir DIR` with a directory you own",
        )?)
    };
    let host = start_host(&dir).await;
    let maria = mariadb::start(&dir).await?;
    let (cert, key) = self_signed(&dir)?;
    let mut text = config_text(&dir, &args, playground.as_ref(), &cert, &key);
    if let Some(h) = &host {
        text.push_str(&ssh_config_text(&args, h));
    }
    if let Some(m) = &maria {
        text.push_str(&mariadb::config_text(&args.mysql_listen, m));
    }
    let config_path = dir.join("sluice.toml");
    std::fs::write(&config_path, &text)?;
    let config = Arc::new(
        Config::parse(&text, &config_path.display().to_string())
            .map_err(|e| anyhow::anyhow!("generated config is invalid (a bug): {e}"))?,
    );
    let issuer = DevIssuer::new(
        &format!("http://{}/dev-issuer", args.api_listen),
        DEV_AUDIENCE,
    );
    let running = crate::serve::start(config.clone(), Some(issuer)).await?;
    write_env(&dir, &args, playground.as_ref())?;
    // The gateway's SSH host key, made by `start` if it was not there.
    let ssh_fingerprint = host.as_ref().and_then(|_| {
        let path = config.ssh.host_key_path(&config.server.data_dir);
        let key = sluice_ssh::keys::host_key(&path).ok()?;
        Some(sluice_ssh::keys::fingerprint(key.public_key()))
    });
    print_banner(
        &dir,
        &args,
        playground.is_some(),
        ssh_fingerprint,
        maria.is_some(),
    );
    crate::serve::shutdown_signal().await;
    eprintln!("\nstopping the playground ...");
    running.stop().await;
    if let Some(mut m) = maria {
        tokio::task::spawn_blocking(move || m.server.stop()).await?;
    }
    if let Some(mut h) = host {
        tokio::task::spawn_blocking(move || h.stop()).await?;
    }
    if let Some(mut p) = playground {
        let root = p.server.root().to_path_buf();
        tokio::task::spawn_blocking(move || p.server.stop()).await?;
        if !root.starts_with(&dir) {
            // Kept in the temporary directory for the postgres user: ours to remove.
            let _ = std::fs::remove_dir_all(&root);
        }
    }
    Ok(())
}

/// Where the playground's database files live: beside the playground,
/// unless PostgreSQL must run as another user (Sluice runs as root, and
/// `initdb` refuses to) who cannot enter that directory (a `mktemp -d`, or a
/// checkout under `/root`): then in the system's temporary directory, which
/// everyone can enter.
fn database_root(dir: &Path) -> PathBuf {
    server_root(dir, "pg")
}

/// Where a playground server that runs as another user keeps its files:
/// `dir/name`, or a directory of the system's temporary directory when
/// that user could not enter `dir` (see [`database_root`]).
fn server_root(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join(name);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || enterable_by_others(dir) {
        return root;
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    std::env::temp_dir().join(format!("sluice-dev-{name}-{:016x}", h.finish()))
}

/// Whether every directory from `/` down to `dir` lets other users pass.
fn enterable_by_others(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    dir.ancestors()
        .all(|d| std::fs::metadata(d).is_ok_and(|m| m.mode() & 0o001 != 0))
}

async fn start_database(dir: &Path) -> Result<Playground> {
    let root = database_root(dir);
    if root != dir.join("pg") {
        tracing::info!(
            path = %root.display(),
            "the playground database lives in the temporary directory: PostgreSQL runs as \
             an unprivileged user who cannot enter the playground's directory"
        );
    }
    let server = tokio::task::spawn_blocking(move || PgServer::start_in(&root, Default::default()))
        .await??;
    let app = random_password();
    let reader = random_password();
    server
        .psql("postgres", "CREATE DATABASE playground")
        .context("create the playground database")?;
    let setup = format!(
        "CREATE ROLE playground_app LOGIN PASSWORD '{app}';\n\
         CREATE ROLE playground_reader LOGIN PASSWORD '{reader}';\n\
         GRANT CONNECT ON DATABASE playground TO playground_app, playground_reader;\n\
         GRANT CREATE, USAGE ON SCHEMA public TO playground_app;\n\
         SET ROLE playground_app;\n\
         {}\
         RESET ROLE;\n\
         GRANT USAGE ON SCHEMA public TO playground_reader;\n\
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO playground_reader;\n",
        sample::sql()
    );
    let s = &server;
    let setup_file = server.root().join("setup.sql");
    std::fs::write(&setup_file, setup)?;
    let out = std::process::Command::new(sluice_launch::pg::bin("psql")?)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(s.url("playground"))
        .arg("-f")
        .arg(&setup_file)
        .output()?;
    std::fs::remove_file(&setup_file)?;
    if !out.status.success() {
        anyhow::bail!(
            "loading sample data failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700))?;
    let app_password_file = secret_file(&secrets, "playground_app.password", &app)?;
    let reader_password_file = secret_file(&secrets, "playground_reader.password", &reader)?;
    Ok(Playground {
        server,
        app_password_file,
        reader_password_file,
    })
}

fn secret_file(dir: &Path, name: &str, value: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, value)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(path)
}

fn random_password() -> String {
    use rand::Rng;
    rand::rngs::OsRng
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// The playground's configuration, written to `DIR/sluice.toml` so the
/// user can read it and point `sluice audit verify --config` at it.
fn config_text(
    dir: &Path,
    args: &DevArgs,
    pg: Option<&Playground>,
    cert: &Path,
    key: &Path,
) -> String {
    let mut t = format!(
        r#"# Written by `sluice dev` for the local playground; rewritten on every start.

[server]
api_listen = "{api}"
data_dir = "{dir}"
admin_groups = ["sluice-admins"]

[postgres]
listen = "{pg_listen}"
# A self-signed pair made by `sluice dev`: psql's sslmode=require works, and
# the OIDC token can be used as the password (only ever over TLS).
tls_cert = "{cert}"
tls_key = "{key}"

# The playground's development issuer: an ephemeral key, served by the
# gateway itself at /dev-issuer as a real OIDC discovery document and JWKS.
[[issuers]]
name = "dev"
issuer = "http://{api}/dev-issuer"
audiences = ["{DEV_AUDIENCE}"]
# Playground tokens speak for agents unless they carry an approver's group.
kind = {{ human_groups = ["dba", "sluice-admins"], default = "agent" }}

[approvals]
approver_groups = ["dba"]

# The approvers' web page at http://{api}/ui. Sign-in goes through the dev
# issuer's own page (prefilled as dba-1 in group dba). Plain http on
# loopback, so the session cookie cannot be Secure here.
[ui]
issuer = "dev"
client_id = "sluice-ui"
cookie_secure = false
"#,
        api = args.api_listen,
        dir = dir.display(),
        pg_listen = args.postgres_listen,
        cert = cert.display(),
        key = key.display(),
    );
    if let Some(p) = pg {
        t.push_str(&format!(
            r#"
[[connections]]
name = "playground"
kind = "postgres"
host = "127.0.0.1"
port = {port}
database = "playground"
user = "playground_app"
password_file = "{app}"
tls = "disable"

[connections.read_credential]
user = "playground_reader"
password_file = "{reader}"

# Sensitive values never reach agents: these columns are masked by rule,
# and every value detector (cards, e-mails, SSNs, phones, IBANs, keys and
# tokens) scans every other text value.
[connections.masking]
columns = [
  {{ column = "public.customers.card_number", style = "partial" }},
  {{ column = "public.customers.ssn", style = "redact" }},
  {{ column = "public.customers.email", style = "partial" }},
]

[[rules]]
name = "analytics-read"
groups = ["analytics-agents"]
connection = "playground"
profile = "read"
max_ttl = "15m"

# Writers hold every write on the playground until a dba approves it.
[[connections.guardrails]]
name = "writes-need-approval"
action = "approve"
classes = ["write"]
profiles = ["write"]

[[rules]]
name = "writers"
groups = ["writers"]
connection = "playground"
profile = "write"
max_ttl = "15m"

# Contractors may read, once a dba has approved the grant.
[[rules]]
name = "contractors"
groups = ["contractors"]
connection = "playground"
profile = "read"
max_ttl = "15m"
approval = "grant"
"#,
            port = p.server.port(),
            app = p.app_password_file.display(),
            reader = p.reader_password_file.display(),
        ));
    }
    t
}

/// The playground's SSH host: an sshd serving a scratch directory with a
/// few files, or `None` (with a warning) where OpenSSH's server is not
/// installed.
async fn start_host(dir: &Path) -> Option<Sshd> {
    if sluice_launch::sshd::bin("sshd").is_err() {
        tracing::warn!(
            "no OpenSSH server (sshd) on this machine: the playground has no SSH host \
             (install the openssh-server package to get one)"
        );
        return None;
    }
    let root = dir.join("sshd");
    match tokio::task::spawn_blocking(move || Sshd::start_in(&root)).await {
        Ok(Ok(host)) => {
            let home = host.home();
            let _ = std::fs::create_dir_all(home.join("logs"));
            let _ = std::fs::write(
                home.join("README.txt"),
                "This is the playground's SSH host. Agents read here; writers change things here.\n",
            );
            let _ = std::fs::write(
                home.join("logs/app.log"),
                "2024-05-01T12:00:00Z INFO started\n2024-05-01T12:00:05Z WARN slow query\n",
            );
            Some(host)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the playground's SSH host did not start; continuing without it");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "the playground's SSH host did not start");
            None
        }
    }
}

fn ssh_config_text(args: &DevArgs, host: &Sshd) -> String {
    format!(
        r#"
# The playground's SSH host: a throwaway sshd serving {home}.
[ssh]
listen = "{listen}"

[[connections]]
name = "playground-ssh"
kind = "ssh"
host = "127.0.0.1"
port = {port}
user = "{user}"

# Writers' commands that act on the system wait for a dba's approval; they
# fail at once naming the approval, and pass when run again once approved.
[[connections.guardrails]]
name = "sudo-needs-approval"
action = "approve"
hold = "fail"
commands = ["sudo *"]
profiles = ["write", "admin"]

[connections.ssh]
host_key = "{host_key}"
private_key_file = "{key}"

# Agents run read-only commands; no shell.
[[rules]]
name = "analytics-ssh"
groups = ["analytics-agents"]
connection = "playground-ssh"
profile = "read"
max_ttl = "15m"

# Writers get a shell too (recorded), and commands that write.
[[rules]]
name = "writers-ssh"
groups = ["writers"]
connection = "playground-ssh"
profile = "write"
max_ttl = "15m"
"#,
        home = host.home().display(),
        listen = args.ssh_listen,
        port = host.port(),
        user = host.user(),
        host_key = host.host_key(),
        key = host.client_key().display(),
    )
}

/// A self-signed certificate for the Postgres listener, made once.
fn self_signed(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let tls = dir.join("tls");
    let (cert, key) = (tls.join("cert.pem"), tls.join("key.pem"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(&tls)?;
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])?;
    std::fs::write(&cert, pair.cert.pem())?;
    secret_file(&tls, "key.pem", &pair.key_pair.serialize_pem())?;
    Ok((cert, key))
}

fn write_env(dir: &Path, args: &DevArgs, pg: Option<&Playground>) -> Result<()> {
    let (host, port) = args
        .postgres_listen
        .rsplit_once(':')
        .unwrap_or(("127.0.0.1", "15432"));
    let mut env = format!(
        "# Written by `sluice dev`. Load with: set -a; . {}/playground.env; set +a\n\
         SLUICE_URL=http://{}\n\
         SLUICE_CONFIG={}/sluice.toml\n\
         SLUICE_PG_HOST={host}\n\
         SLUICE_PG_PORT={port}\n",
        dir.display(),
        args.api_listen,
        dir.display(),
    );
    if let Some(p) = pg {
        env.push_str(&format!(
            "PLAYGROUND_DIRECT_DSN={}\n",
            p.server.url("playground")
        ));
    }
    let path = dir.join("playground.env");
    std::fs::write(&path, env)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

fn print_banner(
    dir: &Path,
    args: &DevArgs,
    has_db: bool,
    ssh_fingerprint: Option<String>,
    has_mysql: bool,
) {
    let d = dir.display();
    let api = &args.api_listen;
    println!();
    println!("Sluice playground is running.");
    println!("  API and issuer   http://{api}  (issuer http://{api}/dev-issuer)");
    println!("  Postgres         {}", args.postgres_listen);
    if let Some(fp) = ssh_fingerprint {
        println!(
            "  SSH              {}  (connection playground-ssh; host key {fp})",
            args.ssh_listen
        );
    }
    if has_mysql {
        println!(
            "  MySQL            {}  (connection playground-mysql, database playground)",
            args.mysql_listen
        );
    }
    println!("  approvers        http://{api}/ui  (sign in as dba-1, group dba)");
    println!("  config           {d}/sluice.toml");
    println!("  addresses        {d}/playground.env");
    if !has_db {
        println!("  (no sample database: see the warning above)");
    }
    println!();
    println!("Try, in another terminal:");
    println!("  export SLUICE_URL=http://{api}");
    println!("  export SLUICE_TOKEN=$(sluice token --dev --sub agent-1 --groups analytics-agents)");
    println!("  sluice grant request playground --ttl 10m --reason \"look at orders\"");
    println!("  psql \"<the dsn it prints>\" -c 'select count(*) from orders'");
    println!("  sluice audit verify --config {d}/sluice.toml");
    println!();
    println!("Ctrl-C stops everything.");
}
