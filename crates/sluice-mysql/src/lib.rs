//! Sluice's MySQL and MariaDB adapter. An agent connects with an unchanged
//! client (`mariadb -h gateway -P 13306 -u GRANT_ID -p`, a driver) and
//! proves its grant with the grant's secret (`caching_sha2_password`, over
//! TLS or the plugin's RSA key exchange), or names the connection and
//! gives an OIDC token over TLS. Sluice logs in to the backend with the
//! credential it holds, pins the session (`sql_mode` without the modes
//! that change how text is read; read-only for `read` grants), and then
//! judges every command through the shared gate:
//!
//! - queries and prepared statements are analysed with `sqlparser`'s MySQL
//!   dialect ([`analyse`]) and decided before they reach the server; a
//!   prepared statement is judged at prepare and recorded at each execute;
//! - masked columns may only be selected plainly ([`bypass`]); results
//!   are masked by the source the server names for each column;
//! - changing user or database, replication, other connections, local
//!   files and multi-statements are refused.
//!
//! Sessions end when their grant does, or an operator ends them; every
//! decision, outcome, open and close is recorded as for every protocol.

pub mod analyse;
mod backend;
pub mod bypass;
mod capture;
mod functions;
mod login;
mod packet;
pub mod relay;
mod result;
mod rsakey;
mod session;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sluice_core::audit::detail::SessionRejected;
use sluice_core::audit::{AuditEvent, AuditSink, EventKind};
use sluice_core::config::Config;
use sluice_core::live::LiveSessions;
use sluice_core::metrics::Metrics;
use sluice_gate::{Control, Seats};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

pub use backend::BackendError;

/// Client connections served at once.
const MAX_CLIENTS: usize = 4096;

/// What every connection of the listener shares.
pub(crate) struct Shared {
    pub config: Arc<Config>,
    pub control: Arc<dyn Control>,
    pub audit: Arc<dyn AuditSink>,
    pub metrics: Arc<Metrics>,
    pub live: Arc<LiveSessions>,
    pub seats: Arc<Seats>,
    pub acceptor: Option<tokio_rustls::TlsAcceptor>,
    pub rsa: Arc<rsakey::RsaKey>,
    /// Turns true when the gateway stops.
    pub stopping: watch::Receiver<bool>,
}

/// `sluice config check --probe`: logs in to `conn`'s server with the held
/// credential; what worked, or why not.
pub async fn probe(conn: &sluice_core::config::ConnectionConfig) -> Result<String, String> {
    let caps = wire::offered(false);
    let b = backend::connect(conn, sluice_core::Profile::Write, caps)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "logged in as {} to {} ({})",
        conn.user, conn.database, b.version
    ))
}

/// The MySQL listener.
pub struct MysqlProxy {
    config: Arc<Config>,
    control: Arc<dyn Control>,
    audit: Arc<dyn AuditSink>,
    metrics: Arc<Metrics>,
    live: Arc<LiveSessions>,
    seats: Arc<Seats>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    rsa: Arc<rsakey::RsaKey>,
}

impl MysqlProxy {
    /// Builds the listener: its TLS certificate, if configured, and its RSA
    /// key (read, or made on first start).
    pub fn new(
        config: Arc<Config>,
        control: Arc<dyn Control>,
        audit: Arc<dyn AuditSink>,
    ) -> Result<MysqlProxy, String> {
        let m = &config.mysql;
        let acceptor = match (&m.tls_cert, &m.tls_key) {
            (Some(cert), Some(key)) => Some(sluice_tls::acceptor(cert, key).map_err(|e| e.0)?),
            (None, None) => None,
            _ => return Err("[mysql] needs both tls_cert and tls_key".into()),
        };
        let rsa = rsakey::RsaKey::load_or_create(&m.rsa_key_path(&config.server.data_dir))?;
        Ok(MysqlProxy {
            config,
            control,
            audit,
            metrics: Arc::default(),
            live: Arc::default(),
            seats: Arc::default(),
            acceptor,
            rsa: Arc::new(rsa),
        })
    }

    /// Reports into the gateway's metrics.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Lists sessions on the gateway's live list.
    pub fn with_live_sessions(mut self, live: Arc<LiveSessions>) -> Self {
        self.live = live;
        self
    }

    /// Counts sessions against limits shared with other listeners (the
    /// fronts a reload leaves serving count together).
    pub fn with_seats(mut self, seats: Arc<Seats>) -> Self {
        self.seats = seats;
        self
    }

    /// Serves clients from `listener` until `shutdown` resolves, then lets
    /// live sessions finish for `[server] drain_timeout` and ends the rest.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let grace = self.config.server.drain_timeout.0;
        let (stop_accepting, end) = sluice_gate::on_shutdown(shutdown, grace);
        self.serve_until(listener, stop_accepting, end).await
    }

    /// Serves clients from `listener` until `stop_accepting` resolves, then
    /// lets live sessions go on until they end or `end` resolves (a
    /// configuration reload retires a listener this way: its sessions keep
    /// the policy they started with).
    pub async fn serve_until(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
        end: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            config: self.config,
            control: self.control,
            audit: self.audit,
            metrics: self.metrics,
            live: self.live,
            seats: self.seats,
            acceptor: self.acceptor,
            rsa: self.rsa,
            stopping: stop_rx,
        });
        let ids = Arc::new(AtomicU32::new(1));
        let limit = Arc::new(Semaphore::new(MAX_CLIENTS));
        let pre_auth = sluice_gate::PreAuth::default();
        // In place of the greeting, as a server with too many connections.
        let mut busy = Vec::new();
        let message = "sluice: too many connections are logging in at once; try again";
        packet::frame(&mut busy, 0, &wire::err(wire::er::TOO_MANY, message));
        let mut sessions = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => p.expect("semaphore never closed"),
                _ = &mut shutdown => break,
            };
            let (tcp, addr): (_, SocketAddr) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "mysql accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let Some((tcp, pending)) = pre_auth.enter(tcp, &busy) else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let shared = shared.clone();
            let id = ids.fetch_add(1, Ordering::Relaxed);
            sessions.spawn(async move {
                serve_one(shared, tcp, addr, id, pending).await;
                drop(permit);
            });
            while sessions.try_join_next().is_some() {}
        }
        // Closed now, so new clients are refused at once (and a load
        // balancer retries them elsewhere) rather than left in the backlog.
        drop(listener);
        sluice_gate::drain(&mut sessions, end, &stop_tx).await;
        Ok(())
    }
}

/// One client connection, from greeting to close.
async fn serve_one(
    shared: Arc<Shared>,
    tcp: tokio::net::TcpStream,
    addr: SocketAddr,
    id: u32,
    pending: sluice_gate::Pending,
) {
    let logged_in = login::login(&shared, tcp, addr, id).await;
    drop(pending);
    let li = match logged_in {
        Ok(li) => li,
        Err((_, refused)) => {
            record_refusal(&shared, addr, refused.reason, refused.grant.as_deref()).await;
            return;
        }
    };
    let login::LoggedIn {
        mut io,
        caps,
        seq,
        grant,
        conn,
        seat,
        ..
    } = li;
    let backend = match backend::connect(&conn, grant.profile, caps).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(conn.name = %conn.name, error = %e, "mysql backend login failed");
            shared
                .metrics
                .backend_connect_errors
                .get_or_create(&sluice_core::metrics::Conn {
                    connection: conn.name.clone(),
                })
                .inc();
            let message = format!(
                "sluice: the database behind connection {:?} is unavailable",
                conn.name
            );
            let _ = packet::write(&mut io, seq, &wire::err(wire::er::UNAVAILABLE, &message)).await;
            let record = sluice_gate::SessionRecord::new(shared.audit.clone(), &grant, "");
            record
                .rejected("backend unavailable", Some(&e.to_string()))
                .await;
            return;
        }
    };
    let deprecate_eof =
        caps.contains(mysql_common::constants::CapabilityFlags::CLIENT_DEPRECATE_EOF);
    let (session, end) = session::Session::open(
        shared.clone(),
        grant,
        conn,
        seat,
        addr.to_string(),
        deprecate_eof,
    )
    .await;
    if packet::write(&mut io, seq, &wire::ok(wire::STATUS_AUTOCOMMIT))
        .await
        .is_err()
    {
        return;
    }
    session.run(io, backend, end).await;
}

/// Records a refused login.
async fn record_refusal(shared: &Shared, addr: SocketAddr, reason: &str, grant: Option<&str>) {
    let mut event = AuditEvent::new(EventKind::SessionRejected).with(&SessionRejected {
        reason: reason.to_string(),
        cause: None,
        client_addr: Some(addr.to_string()),
        sqlstate: None,
    });
    if let Some(g) = grant {
        event = event.grant(g);
    }
    if let Err(e) = shared.audit.record(event).await {
        tracing::error!(error = %e, "could not audit a refused mysql login");
    }
    shared.metrics.login("unknown", "refused");
    tracing::info!(client.addr = %addr, reason, "mysql login refused");
}

/// Entry points for the fuzz targets (`fuzz/`): the packet reader the
/// listener runs on every client byte. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    /// Reads packets of at most `cap` bytes from `input` as the listener
    /// would, until it runs out or refuses; each packet's payload.
    pub fn packets(mut input: &[u8], cap: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let read = crate::packet::read(&mut input, cap, None);
            let mut read = std::pin::pin!(read);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            // Reading from a slice never waits.
            match read.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(Ok(p)) => out.push(p.payload),
                _ => return out,
            }
        }
    }

    /// One packet framed as the gateway writes it (header and payload,
    /// split at 16 MiB - 1 as the protocol says).
    pub fn frame(seq: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        crate::packet::frame(&mut out, seq, payload);
        out
    }
}
