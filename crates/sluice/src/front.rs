//! One configuration's front: the protocol listeners and the API, serving
//! on sockets bound once for the process. A reload (SIGHUP) starts a new
//! front on the same sockets and retires the old one: it stops accepting,
//! its API finishes the requests in flight, and its sessions go on with the
//! policy they started with until they end, or until the gateway shuts down
//! (then they get the drain timeout like every other session). No client is
//! refused during the hand-over: both fronts hold the listening sockets
//! until the old one lets go.

use anyhow::{Context, Result};
use sluice_api::Shared;
use sluice_core::config::{Config, ConnectionKind};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The listening sockets, bound at start, and the session counts every
/// front shares (so a reload does not hand out a second quota).
pub struct Sockets {
    seats: Arc<sluice_gate::Seats>,
    api: std::net::TcpListener,
    postgres: std::net::TcpListener,
    ssh: Option<std::net::TcpListener>,
    mysql: Option<std::net::TcpListener>,
}

impl Sockets {
    /// Binds what `config` serves: the API and the Postgres listener, and
    /// the SSH and MySQL listeners when a connection of that kind exists.
    pub fn bind(config: &Config) -> Result<Sockets> {
        let bind = |addr: &str, key: &str| -> Result<std::net::TcpListener> {
            let l = std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on {addr} ({key})"))?;
            l.set_nonblocking(true)?;
            Ok(l)
        };
        let serves = |kind| config.connections.iter().any(|c| c.kind == kind);
        Ok(Sockets {
            seats: Arc::default(),
            api: bind(&config.server.api_listen, "api_listen")?,
            postgres: bind(&config.postgres.listen, "postgres.listen")?,
            ssh: serves(ConnectionKind::Ssh)
                .then(|| bind(&config.ssh.listen, "ssh.listen"))
                .transpose()?,
            mysql: serves(ConnectionKind::Mysql)
                .then(|| bind(&config.mysql.listen, "mysql.listen"))
                .transpose()?,
        })
    }

    pub fn serves_ssh(&self) -> bool {
        self.ssh.is_some()
    }

    pub fn api_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.api.local_addr()
    }

    /// What a new configuration cannot change without a restart, in the
    /// listeners: which of them run.
    pub fn fits(&self, config: &Config) -> Result<(), String> {
        let serves = |kind| config.connections.iter().any(|c| c.kind == kind);
        if serves(ConnectionKind::Ssh) != self.ssh.is_some() {
            return Err("SSH connections were added or all removed: the SSH listener starts or stops with a restart".into());
        }
        if serves(ConnectionKind::Mysql) != self.mysql.is_some() {
            return Err("MySQL connections were added or all removed: the MySQL listener starts or stops with a restart".into());
        }
        Ok(())
    }
}

/// A second handle on a bound socket, for one front's accept loop.
fn handle(l: &std::net::TcpListener) -> Result<tokio::net::TcpListener> {
    Ok(tokio::net::TcpListener::from_std(l.try_clone()?)?)
}

/// One configuration's listeners and API.
pub struct Front {
    pub state: Shared,
    stop_accepting: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
    stop_api: watch::Sender<bool>,
    api: JoinHandle<()>,
}

impl Front {
    /// Starts serving `state`'s configuration on `sockets`; sessions are
    /// ended once `ending` turns true.
    pub fn start(
        state: &Shared,
        sockets: &Sockets,
        ending: &watch::Receiver<bool>,
    ) -> Result<Front> {
        let config = state.config.clone();
        let (stop_accepting, accepting) = watch::channel(false);
        let signals = Signals {
            accepting,
            ending: ending.clone(),
        };
        let seats = &sockets.seats;
        let pg = handle(&sockets.postgres)?;
        let mut listeners = vec![postgres(&config, state, pg, &signals, seats)?];
        if let Some(s) = &sockets.ssh {
            listeners.push(ssh(&config, state, handle(s)?, &signals, seats)?);
        }
        if let Some(s) = &sockets.mysql {
            listeners.push(mysql(&config, state, handle(s)?, &signals, seats)?);
        }
        let (stop_api, api_stopped) = watch::channel(false);
        let app = sluice_api::router(state.clone());
        let listener = handle(&sockets.api)?;
        let api = tokio::spawn(crate::http::serve(listener, app, turns_true(api_stopped)));
        Ok(Front {
            state: state.clone(),
            stop_accepting,
            listeners,
            stop_api,
            api,
        })
    }

    /// Stops accepting clients; open sessions go on.
    pub fn stop_accepting(&self) {
        let _ = self.stop_accepting.send(true);
    }

    /// Stops the API once its requests in flight are answered.
    pub fn stop_api(&self) {
        let _ = self.stop_api.send(true);
    }

    /// True once its listeners and API have all finished (a retired front
    /// whose sessions are over).
    pub fn finished(&self) -> bool {
        self.api.is_finished() && self.listeners.iter().all(JoinHandle::is_finished)
    }

    /// Waits until every session of this front has ended.
    pub async fn sessions_done(&mut self) {
        for t in self.listeners.drain(..) {
            let _ = t.await;
        }
    }

    /// Waits for the API server to finish.
    pub async fn api_done(self) {
        let _ = self.api.await;
    }
}

/// What every listener of a front watches.
struct Signals {
    accepting: watch::Receiver<bool>,
    ending: watch::Receiver<bool>,
}

impl Signals {
    fn stop_accepting(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        turns_true(self.accepting.clone())
    }

    fn end(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        turns_true(self.ending.clone())
    }
}

/// Resolves once `rx` holds true (or its sender is gone).
async fn turns_true(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// A listener's serving, spawned; its failure logged under `name`.
fn run(
    name: &'static str,
    serving: impl std::future::Future<Output = std::io::Result<()>> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = serving.await {
            tracing::error!(error = %e, listener = name, "listener stopped");
        }
    })
}

fn control(state: &Shared) -> Arc<sluice_control::GateControl> {
    Arc::new(sluice_control::GateControl {
        state: state.clone(),
    })
}

fn postgres(
    config: &Arc<Config>,
    state: &Shared,
    listener: tokio::net::TcpListener,
    s: &Signals,
    seats: &Arc<sluice_gate::Seats>,
) -> Result<JoinHandle<()>> {
    let proxy = Arc::new(
        sluice_pg::PgProxy::new(
            config.clone(),
            control(state),
            Arc::new(state.audit.clone()),
        )
        .context("cannot start the Postgres listener")?
        .with_metrics(state.metrics.clone())
        .with_live_sessions(state.live.clone())
        .with_seats(seats.clone()),
    );
    tracing::info!(postgres = %listener.local_addr()?, "Postgres listener ready");
    Ok(run(
        "Postgres",
        proxy.serve_until(listener, s.stop_accepting(), s.end()),
    ))
}

fn ssh(
    config: &Arc<Config>,
    state: &Shared,
    listener: tokio::net::TcpListener,
    s: &Signals,
    seats: &Arc<sluice_gate::Seats>,
) -> Result<JoinHandle<()>> {
    let proxy = sluice_ssh::SshProxy::new(
        config.clone(),
        control(state),
        Arc::new(state.audit.clone()),
    )
    .map_err(|e| anyhow::anyhow!("cannot start the SSH listener: {e}"))?
    .with_metrics(state.metrics.clone())
    .with_live_sessions(state.live.clone())
    .with_seats(seats.clone());
    tracing::info!(ssh = %listener.local_addr()?, host_key = %proxy.fingerprint(), "SSH listener ready");
    Ok(run(
        "SSH",
        proxy.serve_until(listener, s.stop_accepting(), s.end()),
    ))
}

fn mysql(
    config: &Arc<Config>,
    state: &Shared,
    listener: tokio::net::TcpListener,
    s: &Signals,
    seats: &Arc<sluice_gate::Seats>,
) -> Result<JoinHandle<()>> {
    let proxy = sluice_mysql::MysqlProxy::new(
        config.clone(),
        control(state),
        Arc::new(state.audit.clone()),
    )
    .map_err(|e| anyhow::anyhow!("cannot start the MySQL listener: {e}"))?
    .with_metrics(state.metrics.clone())
    .with_live_sessions(state.live.clone())
    .with_seats(seats.clone());
    tracing::info!(mysql = %listener.local_addr()?, "MySQL listener ready");
    Ok(run(
        "MySQL",
        proxy.serve_until(listener, s.stop_accepting(), s.end()),
    ))
}
