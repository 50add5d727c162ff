//! The playground's MariaDB: a throwaway server with the same sample
//! tables, masking rules and access rules as the Postgres playground, as
//! connection `playground-mysql`. Missing server binaries leave it out
//! with a warning, as for the other playground servers.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sluice_launch::mariadb::MariaDb;

use super::sample::{Dialect, sql_in};
use super::{random_password, secret_file, server_root};

/// The running server and the credentials Sluice holds for it.
pub struct Playground {
    pub server: MariaDb,
    app_password_file: PathBuf,
    reader_password_file: PathBuf,
}

/// Starts the server and loads the sample, or `None` where MariaDB is
/// not installed.
pub async fn start(dir: &Path) -> Result<Option<Playground>> {
    if sluice_launch::mariadb::bin("mariadbd").is_err() {
        tracing::warn!(
            "no MariaDB server (mariadbd) on this machine: the playground has no MySQL \
             database (install the mariadb-server package to get one)"
        );
        return Ok(None);
    }
    let root = server_root(dir, "mariadb");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let server = tokio::task::spawn_blocking(move || MariaDb::start_in(&root))
        .await?
        .context("the playground's MariaDB did not start")?;
    let app = random_password();
    let reader = random_password();
    server
        .sql(&format!(
            "CREATE DATABASE playground;\n\
             CREATE USER 'playground_app'@'127.0.0.1' IDENTIFIED BY '{app}';\n\
             CREATE USER 'playground_reader'@'127.0.0.1' IDENTIFIED BY '{reader}';\n\
             GRANT ALL ON playground.* TO 'playground_app'@'127.0.0.1';\n\
             GRANT SELECT, SHOW VIEW ON playground.* TO 'playground_reader'@'127.0.0.1';\n\
             USE playground;\n{}",
            sql_in(Dialect::Mysql)
        ))
        .context("load the MySQL sample data")?;
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;
    Ok(Some(Playground {
        server,
        app_password_file: secret_file(&secrets, "playground_mysql_app.password", &app)?,
        reader_password_file: secret_file(&secrets, "playground_mysql_reader.password", &reader)?,
    }))
}

/// The `[mysql]` listener and the `playground-mysql` connection.
pub fn config_text(listen: &str, p: &Playground) -> String {
    format!(
        r#"
# The playground's MariaDB, through Sluice's MySQL listener.
[mysql]
listen = "{listen}"

[[connections]]
name = "playground-mysql"
kind = "mysql"
host = "127.0.0.1"
port = {port}
database = "playground"
user = "playground_app"
password_file = "{app}"
tls = "disable"

[connections.read_credential]
user = "playground_reader"
password_file = "{reader}"

[connections.masking]
columns = [
  {{ column = "playground.customers.card_number", style = "partial" }},
  {{ column = "playground.customers.ssn", style = "redact" }},
  {{ column = "playground.customers.email", style = "partial" }},
]

[[connections.guardrails]]
name = "writes-need-approval"
action = "approve"
classes = ["write"]
profiles = ["write"]

[[rules]]
name = "analytics-read-mysql"
groups = ["analytics-agents"]
connection = "playground-mysql"
profile = "read"
max_ttl = "15m"

[[rules]]
name = "writers-mysql"
groups = ["writers"]
connection = "playground-mysql"
profile = "write"
max_ttl = "15m"
"#,
        port = p.server.port(),
        app = p.app_password_file.display(),
        reader = p.reader_password_file.display(),
    )
}
