//! Sluice's SSH adapter. An agent connects with unchanged OpenSSH
//! (`ssh -p 2222 GRANT_ID@gateway`), proving its grant with the grant's
//! secret (password or keyboard-interactive), or naming the connection as
//! the user and giving its OIDC token as the password. Sluice logs in to
//! the backend host with the credential it holds, after checking the
//! host's key against the pinned one, and then judges what the session
//! asks for through the shared gate:
//!
//! - `exec` (`ssh host COMMAND`): the command line is parsed
//!   (`sluice-shell`) and judged as a whole; a denied line never reaches
//!   the host (stderr says why, exit status 126); an allowed one runs in
//!   the shell the analysis assumed ([`sluice_shell::pinned`]);
//! - an interactive shell: allowed by profile (`shell_profiles`), recorded
//!   as a terminal session, not judged command by command;
//! - the `sftp` subsystem (`sftp`, and `scp`, which speaks SFTP): every
//!   open, remove, rename, mkdir, setstat… is judged with its canonical
//!   path; legacy `scp -t/-f` is a command judged as a copy;
//! - port forwarding (local, dynamic, remote) for `forwarding_profiles`
//!   only, each forwarded connection judged by where it leads
//!   (`forward_to`, guardrails) and recorded (see `forward`);
//! - agent forwarding, X11 and environment variables are refused, each
//!   refusal recorded.
//!
//! Sessions end when their grant does, or an operator ends them; their
//! open and close are recorded as every protocol's are.

pub mod analyser;
mod backend;
mod conn;
mod cut;
mod exec;
mod forward;
pub mod keys;
mod maskread;
pub mod oneshot;
mod outmask;
mod session;
mod sftp;
mod shell;
mod subject;
mod terminal;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::audit::AuditSink;
use sluice_core::config::Config;
use sluice_core::live::LiveSessions;
use sluice_core::metrics::Metrics;
use sluice_gate::{Control, Seats};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

pub use backend::BackendError;
pub use exec::REFUSED;

/// `sluice config check --probe`: logs in to `conn`'s host with the held
/// credential after checking its key; what worked, or why not.
pub async fn probe(conn: &sluice_core::config::ConnectionConfig) -> Result<String, String> {
    let b = backend::connect(conn, None)
        .await
        .map_err(|e| e.to_string())?;
    let _ = b
        .handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    Ok(format!(
        "logged in as {}; host key matches the pin",
        conn.user
    ))
}

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
    pub server: Arc<russh::server::Config>,
    /// Turns true when the gateway stops.
    pub stopping: watch::Receiver<bool>,
}

/// The SSH listener.
pub struct SshProxy {
    config: Arc<Config>,
    control: Arc<dyn Control>,
    audit: Arc<dyn AuditSink>,
    metrics: Arc<Metrics>,
    live: Arc<LiveSessions>,
    seats: Arc<Seats>,
    host_key: russh::keys::PrivateKey,
}

impl SshProxy {
    /// Builds the listener; reads (or makes) the gateway's host key.
    pub fn new(
        config: Arc<Config>,
        control: Arc<dyn Control>,
        audit: Arc<dyn AuditSink>,
    ) -> Result<SshProxy, String> {
        let path = config.ssh.host_key_path(&config.server.data_dir);
        let host_key = keys::host_key(&path)?;
        Ok(SshProxy {
            config,
            control,
            audit,
            metrics: Arc::default(),
            live: Arc::default(),
            seats: Arc::default(),
            host_key,
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

    /// The gateway's host key fingerprint (`SHA256:…`), for agents to pin.
    pub fn fingerprint(&self) -> String {
        keys::fingerprint(self.host_key.public_key())
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
        let server = russh::server::Config {
            keys: vec![self.host_key.clone()],
            methods: russh::MethodSet::from(
                &[
                    russh::MethodKind::PublicKey,
                    russh::MethodKind::Password,
                    russh::MethodKind::KeyboardInteractive,
                ][..],
            ),
            auth_rejection_time: Duration::from_millis(500),
            auth_rejection_time_initial: Some(Duration::ZERO),
            max_auth_attempts: self.config.ssh.max_auth_attempts,
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(30)),
            nodelay: true,
            ..russh::server::Config::default()
        };
        let shared = Arc::new(Shared {
            config: self.config.clone(),
            control: self.control.clone(),
            audit: self.audit.clone(),
            metrics: self.metrics.clone(),
            live: self.live.clone(),
            seats: self.seats.clone(),
            server: Arc::new(server),
            stopping: stop_rx,
        });
        let limit = Arc::new(Semaphore::new(MAX_CLIENTS));
        // Closed without a word: before the version exchange there is no
        // SSH message to say it with.
        let pre_auth = sluice_gate::PreAuth::default();
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
                        tracing::warn!(error = %e, "ssh accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let Some((tcp, pending)) = pre_auth.enter(tcp, b"") else {
                continue;
            };
            let shared = shared.clone();
            sessions.spawn(async move {
                conn::serve(shared, tcp, addr, pending).await;
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
