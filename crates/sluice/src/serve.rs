//! Wiring: store, audit, verifier, listeners, API, and the fleet's work
//! (heartbeat, change feed, the leased sweeper and export) — started
//! together and stopped together: on SIGTERM readiness turns false, the
//! listeners stop accepting and drain, then the rest stops.

use anyhow::{Context, Result};
use serde_json::json;
use sluice_api::{AppState, Shared};
use sluice_audit::AuditLog;
use sluice_core::audit::{Actor, AuditEvent, EventKind};
use sluice_core::config::Config;
use sluice_identity::Verifier;
use sluice_identity::dev::DevIssuer;
use sluice_store::Store;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running gateway.
pub struct Running {
    state: Shared,
    /// The listeners: stopped first, and drained.
    stop_listeners: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
    /// The API and the fleet's work: stopped once sessions are gone.
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The back, stopped after the front: export, checkpoints, retention.
    stop_back: watch::Sender<bool>,
    back: Vec<JoinHandle<()>>,
    audit: AuditLog,
}

pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    // Colour only for a person at a terminal: escape codes in a log file
    // or a collector are noise that breaks searches.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs until Ctrl-C or SIGTERM, then drains and stops.
pub async fn run(config: Arc<Config>, dev: Option<DevIssuer>) -> Result<()> {
    let running = start(config, dev).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}

/// Starts every part of the gateway and returns once it is listening.
pub async fn start(config: Arc<Config>, dev: Option<DevIssuer>) -> Result<Running> {
    let store = Store::open(&config.server.store_url()).await?;
    // Statement decisions are journaled locally before they are stored
    // (sluice-audit's journal); a crashed run's journal is stored first.
    let journal = config.server.data_dir.join("audit-journal");
    let audit = AuditLog::start_with_journal(store.clone(), &journal)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let verifier = Verifier::new(config.issuers.clone())
        .map_err(|e| anyhow::anyhow!("invalid issuer configuration: {e}"))?;
    audit
        .append(
            AuditEvent::new(EventKind::ConfigLoaded)
                .actor(Actor::system("gateway"))
                .detail(json!({
                    "issuers": config.issuers.iter().map(|i| &i.name).collect::<Vec<_>>(),
                    "connections": config.connections.iter().map(|c| &c.name).collect::<Vec<_>>(),
                    "rules": config.rules.iter().map(|r| &r.name).collect::<Vec<_>>(),
                    "version": env!("CARGO_PKG_VERSION"),
                })),
        )
        .await?;
    let metrics = Arc::new(sluice_core::metrics::Metrics::with_audit_commit(
        audit.commit_seconds(),
    ));
    let mut state =
        AppState::new(config.clone(), verifier.clone(), store, audit).with_metrics(metrics);
    if let Some(dev) = dev {
        state = state.with_dev_issuer(dev);
    }
    let serves_ssh = config
        .connections
        .iter()
        .any(|c| c.kind == sluice_core::config::ConnectionKind::Ssh);
    if serves_ssh {
        let path = config.ssh.host_key_path(&config.server.data_dir);
        let key = sluice_ssh::keys::host_key(&path)
            .map_err(|e| anyhow::anyhow!("[ssh] host key: {e}"))?;
        state = state.with_ssh_fingerprint(sluice_ssh::keys::fingerprint(key.public_key()));
    }
    let serves_mysql = config
        .connections
        .iter()
        .any(|c| c.kind == sluice_core::config::ConnectionKind::Mysql);
    let state: Shared = Arc::new(state);

    let listener = tokio::net::TcpListener::bind(&config.server.api_listen)
        .await
        .with_context(|| format!("cannot listen on {} (api_listen)", config.server.api_listen))?;
    let api_addr = listener.local_addr()?;
    let (stop_listeners, listening) = watch::channel(false);
    let (stop, stopped) = watch::channel(false);
    let (stop_back, stopped_back) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut listeners = vec![start_postgres(&config, &state, &listening).await?];
    if serves_ssh {
        listeners.push(start_ssh(&config, &state, &listening).await?);
    }
    if serves_mysql {
        listeners.push(start_mysql(&config, &state, &listening).await?);
    }
    // The API (and so /readyz) serves once every listener is up.
    let app = sluice_api::router(state.clone());
    let mut rx = stopped.clone();
    tasks.push(tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "API server stopped");
        }
    }));
    let back = start_fleet_work(&config, &state, &stopped, &stopped_back, &mut tasks)?;
    // Fetch issuers' keys now so the first request does not wait for them.
    tokio::spawn(async move { verifier.warm().await });
    tracing::info!(api = %api_addr, "sluice is listening");
    Ok(Running {
        state: state.clone(),
        stop_listeners,
        listeners,
        stop,
        tasks,
        stop_back,
        back,
        audit: state.audit.clone(),
    })
}

/// What every gateway runs beside its listeners (heartbeat, change feed),
/// and what one gateway of a fleet runs for all under a lease (sweeper;
/// audit export, returned as the back tasks, stopped last).
fn start_fleet_work(
    config: &Arc<Config>,
    state: &Shared,
    stopped: &watch::Receiver<bool>,
    stopped_back: &watch::Receiver<bool>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Result<Vec<JoinHandle<()>>> {
    use sluice_control::fleet::{self, bus, lease};
    let exports = crate::exports::Exports::prepare(config, &state.store, &state.audit)?;
    let until_stopped = |rx: &watch::Receiver<bool>, work: JoinHandle<()>| {
        let mut rx = rx.clone();
        tokio::spawn(async move {
            let _ = rx.wait_for(|s| *s).await;
            work.abort();
        })
    };
    tasks.push(until_stopped(
        stopped,
        tokio::spawn(fleet::heartbeat(state.clone())),
    ));
    tasks.push(until_stopped(
        stopped,
        tokio::spawn(bus::listen(state.clone())),
    ));
    bus::publish(
        state,
        bus::Change::Config {
            policy_hash: state.fleet.policy_hash.clone(),
        },
    );
    let sweeper_state = state.clone();
    tasks.push(tokio::spawn(lease::run(
        state.store.clone(),
        "sweeper",
        state.fleet.id.clone(),
        stopped.clone(),
        move |stop| sluice_control::sweeper::run(sweeper_state.clone(), stop),
    )));
    let mut back = Vec::new();
    if let Some(exports) = exports {
        back.push(tokio::spawn(lease::run(
            state.store.clone(),
            "audit-export",
            state.fleet.id.clone(),
            stopped_back.clone(),
            move |stop| exports.clone().run(stop),
        )));
    }
    Ok(back)
}

/// The SSH listener, wired like the Postgres one.
async fn start_ssh(
    config: &Arc<Config>,
    state: &Shared,
    stopped: &watch::Receiver<bool>,
) -> Result<JoinHandle<()>> {
    let control = Arc::new(sluice_control::GateControl {
        state: state.clone(),
    });
    let proxy = sluice_ssh::SshProxy::new(config.clone(), control, Arc::new(state.audit.clone()))
        .map_err(|e| anyhow::anyhow!("cannot start the SSH listener: {e}"))?
        .with_metrics(state.metrics.clone())
        .with_live_sessions(state.live.clone());
    let listener = tokio::net::TcpListener::bind(&config.ssh.listen)
        .await
        .with_context(|| format!("cannot listen on {} (ssh.listen)", config.ssh.listen))?;
    tracing::info!(ssh = %listener.local_addr()?, host_key = %proxy.fingerprint(), "SSH listener ready");
    let mut rx = stopped.clone();
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        if let Err(e) = proxy.serve(listener, shutdown).await {
            tracing::error!(error = %e, "SSH listener stopped");
        }
    }))
}

/// The MySQL listener, wired like the others.
async fn start_mysql(
    config: &Arc<Config>,
    state: &Shared,
    stopped: &watch::Receiver<bool>,
) -> Result<JoinHandle<()>> {
    let control = Arc::new(sluice_control::GateControl {
        state: state.clone(),
    });
    let proxy =
        sluice_mysql::MysqlProxy::new(config.clone(), control, Arc::new(state.audit.clone()))
            .map_err(|e| anyhow::anyhow!("cannot start the MySQL listener: {e}"))?
            .with_metrics(state.metrics.clone())
            .with_live_sessions(state.live.clone());
    let listener = tokio::net::TcpListener::bind(&config.mysql.listen)
        .await
        .with_context(|| format!("cannot listen on {} (mysql.listen)", config.mysql.listen))?;
    tracing::info!(mysql = %listener.local_addr()?, "MySQL listener ready");
    let mut rx = stopped.clone();
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        if let Err(e) = proxy.serve(listener, shutdown).await {
            tracing::error!(error = %e, "MySQL listener stopped");
        }
    }))
}

/// The Postgres listener, wired to the store, the verifier and the audit log.
async fn start_postgres(
    config: &Arc<Config>,
    state: &Shared,
    stopped: &watch::Receiver<bool>,
) -> Result<JoinHandle<()>> {
    let control = Arc::new(sluice_control::GateControl {
        state: state.clone(),
    });
    let proxy = Arc::new(
        sluice_pg::PgProxy::new(config.clone(), control, Arc::new(state.audit.clone()))
            .context("cannot start the Postgres listener")?
            .with_metrics(state.metrics.clone())
            .with_live_sessions(state.live.clone()),
    );
    let listener = tokio::net::TcpListener::bind(&config.postgres.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (postgres.listen)",
                config.postgres.listen
            )
        })?;
    tracing::info!(postgres = %listener.local_addr()?, "Postgres listener ready");
    let mut rx = stopped.clone();
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        if let Err(e) = proxy.serve(listener, shutdown).await {
            tracing::error!(error = %e, "Postgres listener stopped");
        }
    }))
}

impl Running {
    /// Stops accepting, lets in-flight requests and sessions finish,
    /// stores everything the audit log holds, and only then stops export
    /// and signs the final checkpoint: that checkpoint and the sinks cover
    /// every event of the run.
    pub async fn stop(self) {
        // Readiness first, so a load balancer sends new clients elsewhere.
        self.state.fleet.start_draining();
        let _ = sluice_control::fleet::beat(&self.state).await;
        let _ = self.stop_listeners.send(true);
        for t in self.listeners {
            let _ = t.await;
        }
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        sluice_control::fleet::stopped(&self.state).await;
        if let Err(e) = self.audit.flush().await {
            tracing::error!(error = %e, "the audit log could not store its last events; they stay in its journal for the next start");
        }
        let _ = self.stop_back.send(true);
        for t in self.back {
            let _ = t.await;
        }
    }
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
