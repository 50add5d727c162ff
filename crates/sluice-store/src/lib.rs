//! Sluice's store: grants and the audit chain.
//!
//! One code path over sqlx's `Any` driver serves both backends: embedded
//! SQLite (the default, a file in the data dir) and PostgreSQL (several
//! gateways sharing grants and audit). The migrations use only SQL both
//! accept, so there is one set. Every status change is a conditional
//! update (`WHERE status IN …`), so two gateways racing on the same grant
//! change it once.

mod approvals;
mod audit;
mod error;
mod export;
mod fleet;
mod grants;
mod overview;
mod sessions;

pub use approvals::ApprovalFilter;
pub use audit::AuditRow;
pub use error::StoreError;
pub use export::CheckpointRow;
pub use fleet::{CHANGES_CHANNEL, ChangeFeed, Heard, LeaseRow, Member};
pub use overview::{HourCount, Overview};
pub use sessions::{SessionFilter, SessionRow};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// A PostgreSQL store's URL, for the change feed's own connection.
    url: Option<String>,
}

impl Store {
    /// Opens (creating if needed) the store at `url` and migrates it.
    /// `url` is `sqlite://PATH` / `sqlite:PATH` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let (backend, url) = normalise(url, true)?;
        let store = Self::connect(backend, &url).await?;
        MIGRATOR
            .run(&store.pool)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))?;
        Ok(store)
    }

    /// Opens the store at `url` as it is, for tools that only read it
    /// (`sluice audit verify`): it must exist, and nothing is created or
    /// migrated.
    pub async fn open_existing(url: &str) -> Result<Store, StoreError> {
        let (backend, url) = normalise(url, false)?;
        Self::connect(backend, &url).await
    }

    async fn connect(backend: Backend, url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let url = url.to_string();
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            // A SQLite connection is a file handle in this process: pinging
            // it before every query (sqlx's default, meant for network
            // connections that die) only adds a hand-off to its thread
            // and back to every store read, such as a login's grant lookup.
            .test_before_acquire(backend != Backend::Sqlite)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the single writer; the
                        // busy timeout makes writers queue instead of failing.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| StoreError::Open(redact(&e.to_string(), &url)))?;
        let url = (backend == Backend::Postgres).then_some(url);
        Ok(Store { pool, backend, url })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// True when the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The backend and connection URL for `url`; `create` makes a missing
/// SQLite file (and its directory), otherwise a missing one is an error.
fn normalise(url: &str, create: bool) -> Result<(Backend, String), StoreError> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or(path);
        if !create {
            if !std::path::Path::new(path).is_file() {
                return Err(StoreError::Open(format!(
                    "no store at {path} (is this the gateway's configuration? \
                     relative paths in it are read from the file's own directory)"
                )));
            }
            return Ok((Backend::Sqlite, format!("sqlite://{path}?mode=rw")));
        }
        if let Some(dir) = std::path::Path::new(path).parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            create_private_dir(dir)
                .map_err(|e| StoreError::Open(format!("cannot create {}: {e}", dir.display())))?;
        }
        private_files(path);
        return Ok((Backend::Sqlite, format!("sqlite://{path}?mode=rwc")));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_string()));
    }
    Err(StoreError::Open(
        "store must be \"sqlite:PATH\" or \"postgres://…\"".into(),
    ))
}

/// Creates a directory (and its parents) readable by this user only.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The store holds the audit chain, approvals with their bound values and
/// grant verifiers: its files are this user's alone, also when an older
/// version created them readable by others. The database file is made
/// here, private, before SQLite opens it: SQLite gives its WAL and
/// shared-memory files the database file's permissions.
fn private_files(path: &str) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = format!("{path}{suffix}");
        if let Ok(meta) = std::fs::metadata(&file)
            && meta.permissions().mode() & 0o077 != 0
        {
            let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
        }
    }
}

/// Keeps a store password out of error messages.
fn redact(msg: &str, url: &str) -> String {
    match url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
    {
        Some((userinfo, _)) => match userinfo.split_once(':') {
            Some((_, pw)) if !pw.is_empty() => msg.replace(pw, "***"),
            _ => msg.to_string(),
        },
        None => msg.to_string(),
    }
}

fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
