//! Wiring: store, audit, verifier, listeners, API, and the fleet's work
//! (heartbeat, change feed, the leased sweeper and export) — started
//! together and stopped together: on SIGTERM readiness turns false, the
//! listeners stop accepting and drain, then the rest stops.

use anyhow::{Context, Result, bail};
use serde_json::json;
use sluice_api::{AppState, Shared};
use sluice_audit::AuditLog;
use sluice_core::audit::{Actor, AuditEvent, EventKind};
use sluice_core::config::Config;
use sluice_identity::Verifier;
use sluice_identity::dev::DevIssuer;
use sluice_store::Store;

use crate::front::{Front, Sockets};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long the API gets to answer requests in flight when it stops.
const API_CLOSE: Duration = Duration::from_secs(5);

/// A running gateway.
pub struct Running {
    sockets: Sockets,
    /// The front serving the current configuration.
    front: Front,
    /// Fronts a reload retired, still serving their open sessions.
    retired: Vec<Front>,
    /// Turns true when every remaining session must end.
    ending: watch::Sender<bool>,
    /// The fleet's work (heartbeat, change feed, sweeper): stopped once
    /// sessions are gone.
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

/// Runs until Ctrl-C or SIGTERM, then drains and stops. With a
/// configuration file, SIGHUP reloads it (see [`Running::reload`]).
pub async fn run(config: Arc<Config>, file: Option<PathBuf>, dev: Option<DevIssuer>) -> Result<()> {
    let mut running = start(config, dev).await?;
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("install the SIGHUP handler")?;
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = hangups.recv() => {
                let Some(file) = &file else { continue };
                tracing::info!(config = %file.display(), "SIGHUP: reloading the configuration");
                let loaded = crate::cli::load_for_serving(file);
                match loaded.and_then(|c| running.check_reload(&c).map(|()| c)) {
                    Ok(c) => {
                        if let Err(e) = running.reload(c).await {
                            tracing::error!(error = %format!("{e:#}"), "reload failed; still serving the previous configuration");
                        }
                    }
                    Err(e) => tracing::error!(error = %format!("{e:#}"), "reload refused; still serving the previous configuration"),
                }
            }
        }
    }
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
    audit.append(config_loaded(&config, false)).await?;
    let metrics = Arc::new(sluice_core::metrics::Metrics::with_audit_commit(
        audit.commit_seconds(),
    ));
    let mut state =
        AppState::new(config.clone(), verifier.clone(), store, audit).with_metrics(metrics);
    if let Some(dev) = dev {
        state = state.with_dev_issuer(dev);
    }
    let sockets = Sockets::bind(&config)?;
    if sockets.serves_ssh() {
        // Command lines are analysed by this binary in a child process,
        // on a deadline (sluice_ssh::analyser).
        sluice_ssh::analyser::use_helper(
            std::env::current_exe().context("cannot find this program to run its analyser")?,
        );
        let path = config.ssh.host_key_path(&config.server.data_dir);
        let key = sluice_ssh::keys::host_key(&path)
            .map_err(|e| anyhow::anyhow!("[ssh] host key: {e}"))?;
        state = state.with_ssh_host_key(
            sluice_ssh::keys::public_line(key.public_key()),
            sluice_ssh::keys::fingerprint(key.public_key()),
        );
    }
    let state: Shared = Arc::new(state);
    let (ending, ending_rx) = watch::channel(false);
    let (stop, stopped) = watch::channel(false);
    let (stop_back, stopped_back) = watch::channel(false);
    let mut tasks = Vec::new();
    // The API (and so /readyz) serves once every listener is up.
    let front = Front::start(&state, &sockets, &ending_rx)?;
    let back = start_fleet_work(&config, &state, &stopped, &stopped_back, &mut tasks)?;
    // Fetch issuers' keys now so the first request does not wait for them.
    tokio::spawn(async move { verifier.warm().await });
    tracing::info!(api = %sockets.api_addr()?, "sluice is listening");
    Ok(Running {
        sockets,
        front,
        retired: Vec::new(),
        ending,
        stop,
        tasks,
        stop_back,
        back,
        audit: state.audit.clone(),
    })
}

/// The `config.loaded` event: what the configuration names, never a secret.
fn config_loaded(config: &Config, reload: bool) -> AuditEvent {
    AuditEvent::new(EventKind::ConfigLoaded)
        .actor(Actor::system("gateway"))
        .detail(json!({
            "issuers": config.issuers.iter().map(|i| &i.name).collect::<Vec<_>>(),
            "connections": config.connections.iter().map(|c| &c.name).collect::<Vec<_>>(),
            "rules": config.rules.iter().map(|r| &r.name).collect::<Vec<_>>(),
            "version": env!("CARGO_PKG_VERSION"),
            "policy_hash": sluice_control::fleet::policy_hash(config),
            "reload": reload,
        }))
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
            // Gone before the last word: a heartbeat in flight must not
            // land after "stopped".
            let _ = work.await;
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
            policy_hash: state.fleet.policy_hash(),
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

impl Running {
    /// Why `config` cannot be reloaded into this gateway, if it cannot:
    /// what is bound or started once per process (listener addresses, the
    /// store, the data directory, the sweeper's interval, audit export)
    /// needs a restart.
    pub fn check_reload(&self, config: &Config) -> Result<()> {
        let old = &self.front.state.config;
        let fixed: [(&str, bool); 9] = [
            (
                "[server] api_listen",
                old.server.api_listen == config.server.api_listen,
            ),
            (
                "[server] data_dir",
                old.server.data_dir == config.server.data_dir,
            ),
            (
                "[server] store",
                old.server.store_url() == config.server.store_url(),
            ),
            (
                "[server] sweep_interval",
                old.server.sweep_interval == config.server.sweep_interval,
            ),
            (
                "[postgres] listen",
                old.postgres.listen == config.postgres.listen,
            ),
            ("[ssh] listen", old.ssh.listen == config.ssh.listen),
            ("[mysql] listen", old.mysql.listen == config.mysql.listen),
            (
                "[ssh] host_key_file",
                old.ssh.host_key_path(&old.server.data_dir)
                    == config.ssh.host_key_path(&config.server.data_dir),
            ),
            (
                "[audit]",
                serde_json::to_value(&old.audit).ok() == serde_json::to_value(&config.audit).ok(),
            ),
        ];
        let changed: Vec<&str> = fixed
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(k, _)| *k)
            .collect();
        if !changed.is_empty() {
            bail!("{} changed: these take a restart", changed.join(", "));
        }
        self.sockets.fits(config).map_err(|e| anyhow::anyhow!(e))
    }

    /// Serves new sessions and requests with `config` (checked with
    /// [`Running::check_reload`]); sessions already open keep the policy
    /// they started with until they end.
    pub async fn reload(&mut self, config: Arc<Config>) -> Result<()> {
        let verifier = Verifier::new(config.issuers.clone())
            .map_err(|e| anyhow::anyhow!("invalid issuer configuration: {e}"))?;
        let old = &self.front.state;
        let state: Shared = Arc::new(old.reloaded(config.clone(), verifier.clone()));
        // Started (TLS files read, listeners built) but not yet recorded:
        // a front that cannot start, or a reload that cannot be recorded,
        // changes nothing.
        let front = Front::start(&state, &self.sockets, &self.ending.subscribe())?;
        if let Err(e) = old.audit.append(config_loaded(&config, true)).await {
            front.stop_accepting();
            front.stop_api();
            return Err(e.into());
        }
        state.fleet.set_policy(&config);
        self.retired.retain(|f| !f.finished());
        let retired = std::mem::replace(&mut self.front, front);
        retired.stop_accepting();
        retired.stop_api();
        self.retired.push(retired);
        sluice_control::fleet::bus::publish(
            &state,
            sluice_control::fleet::bus::Change::Config {
                policy_hash: state.fleet.policy_hash(),
            },
        );
        tokio::spawn(async move { verifier.warm().await });
        tracing::info!(policy = %state.fleet.policy_hash(), "configuration reloaded: new sessions use it");
        Ok(())
    }

    /// Stops accepting, lets sessions finish for the drain timeout, stores
    /// everything the audit log holds, and only then stops export and
    /// signs the final checkpoint: that checkpoint and the sinks cover
    /// every event of the run.
    pub async fn stop(mut self) {
        let state = self.front.state.clone();
        // Readiness first, so a load balancer sends new clients elsewhere.
        state.fleet.start_draining();
        self.front.stop_accepting();
        // Said at once, but a store that does not answer must not hold
        // the drain up.
        let _ =
            tokio::time::timeout(Duration::from_secs(2), sluice_control::fleet::beat(&state)).await;
        // The last handles on the listening sockets: closed, new clients
        // are refused at once (a load balancer retries them elsewhere)
        // instead of waiting in the backlog.
        drop(self.sockets);
        let grace = state.config.server.drain_timeout.0;
        let ending = self.ending.clone();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = ending.send(true);
        });
        for f in self
            .retired
            .iter_mut()
            .chain(std::iter::once(&mut self.front))
        {
            f.sessions_done().await;
        }
        timer.abort();
        // Requests in flight get a moment; open event streams of the web
        // page would otherwise hold the stop up for good.
        for f in self.retired.into_iter().chain(std::iter::once(self.front)) {
            f.stop_api();
            let _ = tokio::time::timeout(API_CLOSE, f.api_done()).await;
        }
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        sluice_control::fleet::stopped(&state).await;
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
