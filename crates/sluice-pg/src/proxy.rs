//! The listener: accept under a connection limit, run each client's startup
//! under the auth timeout, hand logged-in clients to a session, and drain on
//! shutdown (closing the parked backend sessions last).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_core::Profile;
use sluice_core::audit::AuditSink;
use sluice_core::config::{Config, PoolConfig};
use sluice_core::guardrail::GuardrailRule;
use sluice_core::live::LiveSessions;
use sluice_core::metrics::Metrics;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::backend::Target;
use crate::backend_catalog::BackendCatalog;
use crate::cancel::CancelRegistry;
use crate::errors::{ClientError, PgError};
use crate::mask::ConnMasking;
use crate::pool::{self, Pool};
use crate::session;
use crate::startup::{self, Opening};
use sluice_gate::{Control, Seats};

/// Client connections served at once; more wait in the accept backlog.
/// An idle one costs about 48 KiB and two file descriptors (client and
/// backend), so the process's descriptor limit is usually met first.
const MAX_CLIENTS: usize = 16_384;

/// The Postgres listener's state, shared by every connection.
pub struct Shared {
    pub config: Arc<Config>,
    pub control: Arc<dyn Control>,
    pub audit: Arc<dyn AuditSink>,
    pub acceptor: Option<tokio_rustls::TlsAcceptor>,
    pub cancels: Arc<CancelRegistry>,
    /// Idle backend sessions waiting for their next client.
    pub pool: Pool,
    /// Sessions held per connection, grant and identity.
    pub seats: Arc<Seats>,
    /// Backend targets (with their TLS connectors), built once each.
    targets: Mutex<HashMap<(String, Profile), Arc<Target>>>,
    /// Each masked connection's compiled masking and catalog cache.
    maskings: Mutex<HashMap<String, Arc<ConnMasking>>>,
    /// Each connection's backend catalog, names are resolved against.
    catalogs: Mutex<HashMap<String, Arc<BackendCatalog>>>,
    /// Each live grant's slots for large analyses.
    analysis_slots: Mutex<HashMap<String, std::sync::Weak<Semaphore>>>,
    /// Statement analyses by shape and catalog generation, shared by every
    /// session.
    pub shapes: Arc<crate::policy::Shapes>,
    /// The gateway's metrics.
    pub metrics: Arc<Metrics>,
    /// The gateway's open sessions (the web page's live view).
    pub live: Arc<LiveSessions>,
}

impl Shared {
    /// The backend for a connection and profile.
    pub fn target(&self, connection: &str, profile: Profile) -> Result<Arc<Target>, PgError> {
        let mut targets = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        let key = (connection.to_string(), profile);
        if let Some(t) = targets.get(&key) {
            return Ok(t.clone());
        }
        let conn = self
            .config
            .connection(connection)
            .ok_or_else(|| PgError::Backend(format!("no connection {connection:?}")))?;
        let target = Arc::new(Target::resolve(conn, profile)?);
        targets.insert(key, target.clone());
        Ok(target)
    }

    /// The connection's masking (`[connections.masking]`), compiled once;
    /// `None` when the connection has no masking section.
    pub fn masking(&self, connection: &str) -> Result<Option<Arc<ConnMasking>>, PgError> {
        let Some(config) = self
            .config
            .connection(connection)
            .and_then(|c| c.masking.as_ref())
        else {
            return Ok(None);
        };
        let mut maskings = self.maskings.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = maskings.get(connection) {
            return Ok(Some(m.clone()));
        }
        let m = Arc::new(ConnMasking::new(config).map_err(PgError::Masking)?);
        maskings.insert(connection.to_string(), m.clone());
        Ok(Some(m))
    }

    /// The connection's pool bounds; reuse off for a connection not
    /// configured.
    /// A grant's slots for large analyses, shared by its sessions while any
    /// is open.
    pub fn analysis_slots(&self, grant: &str) -> Arc<Semaphore> {
        let mut slots = self
            .analysis_slots
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(s) = slots.get(grant).and_then(std::sync::Weak::upgrade) {
            return s;
        }
        slots.retain(|_, w| w.strong_count() > 0);
        let s = Arc::new(Semaphore::new(crate::frontend::ANALYSIS_SLOTS));
        slots.insert(grant.to_string(), Arc::downgrade(&s));
        s
    }

    /// The connection's backend catalog.
    pub fn catalog(&self, connection: &str) -> Arc<BackendCatalog> {
        let mut catalogs = self.catalogs.lock().unwrap_or_else(|e| e.into_inner());
        catalogs.entry(connection.to_string()).or_default().clone()
    }

    pub fn pool_limits(&self, connection: &str) -> PoolConfig {
        self.config.connection(connection).map_or(
            PoolConfig {
                max_idle: 0,
                ..PoolConfig::default()
            },
            |c| c.pool,
        )
    }

    /// The connection's guardrail rules, in order.
    pub fn rules(&self, connection: &str) -> Arc<[GuardrailRule]> {
        self.config
            .connection(connection)
            .map(|c| Arc::from(c.guardrails.as_slice()))
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }

    /// A configured connection's name as a metric label; anything else
    /// (a name a client typed) is `unknown`, so clients cannot add series.
    pub fn label<'a>(&'a self, connection: &'a str) -> &'a str {
        match self.config.connection(connection) {
            Some(c) => &c.name,
            None => "unknown",
        }
    }
}

/// The PostgreSQL wire proxy.
pub struct PgProxy {
    shared: Arc<Shared>,
}

impl PgProxy {
    /// Builds the proxy; loads the listener's TLS certificate and key when
    /// configured.
    pub fn new(
        config: Arc<Config>,
        control: Arc<dyn Control>,
        audit: Arc<dyn AuditSink>,
    ) -> Result<Self, PgError> {
        let acceptor = match (&config.postgres.tls_cert, &config.postgres.tls_key) {
            (Some(cert), Some(key)) => Some(sluice_tls::acceptor(cert, key)?),
            (None, None) => None,
            _ => {
                return Err(PgError::TlsConfig(
                    "[postgres] needs both tls_cert and tls_key".into(),
                ));
            }
        };
        if config.postgres.require_tls && acceptor.is_none() {
            return Err(PgError::TlsConfig(
                "[postgres] require_tls is set but no certificate is configured".into(),
            ));
        }
        Ok(PgProxy {
            shared: Arc::new(Shared {
                config,
                control,
                audit,
                acceptor,
                cancels: Arc::new(CancelRegistry::default()),
                pool: Pool::default(),
                seats: Arc::default(),
                targets: Mutex::new(HashMap::new()),
                maskings: Mutex::new(HashMap::new()),
                catalogs: Mutex::new(HashMap::new()),
                analysis_slots: Mutex::new(HashMap::new()),
                shapes: Arc::default(),
                metrics: Arc::default(),
                live: Arc::default(),
            }),
        })
    }

    /// Reports into the gateway's metrics (by default, its own).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        let shared = self.shared_mut();
        shared.pool = std::mem::take(&mut shared.pool).with_gauges(metrics.pool.clone());
        shared.metrics = metrics;
        self
    }

    /// Lists sessions on the gateway's live list (by default, its own).
    pub fn with_live_sessions(mut self, live: Arc<LiveSessions>) -> Self {
        self.shared_mut().live = live;
        self
    }

    /// Counts sessions against limits shared with other listeners (the
    /// fronts a reload leaves serving count together).
    pub fn with_seats(mut self, seats: Arc<Seats>) -> Self {
        self.shared_mut().seats = seats;
        self
    }

    fn shared_mut(&mut self) -> &mut Shared {
        Arc::get_mut(&mut self.shared).expect("configured before serving")
    }

    /// Serves clients from `listener` until `shutdown` resolves, then lets
    /// live sessions finish for `[server] drain_timeout` and ends the rest.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let grace = self.shared.config.server.drain_timeout.0;
        let (stop_accepting, end) = sluice_gate::on_shutdown(shutdown, grace);
        self.serve_until(listener, stop_accepting, end).await
    }

    /// Serves clients from `listener` until `stop_accepting` resolves, then
    /// lets live sessions go on until they end or `end` resolves (a
    /// configuration reload retires a listener this way: its sessions keep
    /// the policy they started with).
    pub async fn serve_until(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
        end: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let limit = Arc::new(Semaphore::new(MAX_CLIENTS));
        let pre_auth = sluice_gate::PreAuth::default();
        let busy = ClientError::too_many_sessions(
            "too many connections are logging in at once; try again",
        )
        .to_bytes();
        let (stop_tx, stop_rx) = watch::channel(false);
        let reaper = tokio::spawn(reap(self.shared.clone(), stop_rx.clone()));
        let mut sessions = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => p.expect("semaphore never closed"),
                _ = &mut shutdown => break,
            };
            let (tcp, addr) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let Some((tcp, pending)) = pre_auth.enter(tcp, &busy) else {
                continue;
            };
            let shared = self.shared.clone();
            let stop = stop_rx.clone();
            sessions.spawn(async move {
                handle(shared, tcp, addr, stop, pending).await;
                drop(permit);
            });
            while sessions.try_join_next().is_some() {}
        }
        // Closed now, so new clients are refused at once (and a load
        // balancer retries them elsewhere) rather than left in the backlog.
        drop(listener);
        sluice_gate::drain(&mut sessions, end, &stop_tx).await;
        let _ = reaper.await;
        self.shared.pool.close_all().await;
        Ok(())
    }
}

/// Closes parked backend sessions past their timeouts until shutdown.
async fn reap(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(pool::REAP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let config = &shared.config;
        shared
            .pool
            .reap(|name| config.connection(name).map(|c| c.pool))
            .await;
    }
}

/// One client connection, from its first byte to its close.
async fn handle(
    shared: Arc<Shared>,
    tcp: TcpStream,
    addr: SocketAddr,
    stop: watch::Receiver<bool>,
    pending: sluice_gate::Pending,
) {
    let timeout = shared.config.postgres.auth_timeout.0;
    let opening = tokio::time::timeout(timeout, startup::open(&shared, tcp, addr)).await;
    drop(pending);
    match opening {
        Err(_) => tracing::info!(client.addr = %addr, "startup timed out"),
        Ok(Err(e)) => tracing::info!(client.addr = %addr, error = %e, "startup failed"),
        Ok(Ok(Opening::Refused)) => {}
        Ok(Ok(Opening::Cancel { pid, secret })) => shared.cancels.cancel(pid, secret).await,
        Ok(Ok(Opening::Login(login))) => session::run(shared, *login, stop).await,
    }
}
