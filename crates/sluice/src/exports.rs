//! Audit export beside the gateway: one runner per `[[audit.sinks]]`, the
//! checkpointer (`[audit.checkpoints]`) and retention (`[audit.retention]`).
//! A sink whose secret cannot be read or a signing key that cannot be
//! loaded stops the gateway from starting: configured evidence is never
//! silently missing. With several gateways on one store, they run on the
//! one holding the `audit-export` lease (see `sluice_control::fleet`).

use anyhow::{Context, Result, bail};
use sluice_audit::sinks::Sink;
use sluice_audit::{
    AuditLog, CheckpointPolicy, Checkpointer, Retention, RunnerOptions, SigningKey, SinkRunner,
};
use sluice_core::config::Config;
use sluice_store::Store;
use std::sync::Arc;
use tokio::sync::watch;

/// Everything export needs, checked once at start.
#[derive(Clone)]
pub struct Exports {
    config: Arc<Config>,
    store: Store,
    audit: AuditLog,
    key: Option<Arc<SigningKey>>,
}

impl Exports {
    /// Checks every sink and the signing key; `None` when nothing is
    /// configured to export.
    pub fn prepare(config: &Arc<Config>, store: &Store, audit: &AuditLog) -> Result<Option<Self>> {
        let a = &config.audit;
        for c in &a.sinks {
            Sink::from_config(c)?;
        }
        let key = match &a.checkpoints {
            Some(cp) => Some(Arc::new(
                sluice_audit::load_signing_key(&cp.signing_key_file)
                    .context("[audit.checkpoints] signing_key_file")?,
            )),
            None => None,
        };
        if a.retention.is_some() && key.is_none() {
            bail!("[audit.retention] needs [audit.checkpoints]: deletions are signed");
        }
        if a.sinks.is_empty() && key.is_none() {
            return Ok(None);
        }
        Ok(Some(Exports {
            config: config.clone(),
            store: store.clone(),
            audit: audit.clone(),
            key,
        }))
    }

    /// Runs every export task until `stopped` turns true.
    pub async fn run(self, stopped: watch::Receiver<bool>) {
        let a = &self.config.audit;
        let mut tasks = Vec::new();
        for c in &a.sinks {
            let sink = match Sink::from_config(c) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(sink = %c.name, error = %e, "audit sink cannot start");
                    continue;
                }
            };
            let runner = SinkRunner::new(
                &c.name,
                self.store.clone(),
                sink,
                RunnerOptions::from_config(c),
                self.audit.commits(),
            );
            tasks.push(tokio::spawn(runner.run(stopped.clone())));
        }
        if let (Some(cp), Some(key)) = (&a.checkpoints, &self.key) {
            tracing::info!(
                key_id = %sluice_audit::key_id(&key.verifying_key()),
                every_events = cp.every_events,
                "signing audit checkpoints"
            );
            let policy = CheckpointPolicy {
                every_events: cp.every_events,
                interval: cp.interval.0,
            };
            let checkpointer = Checkpointer::new(self.store.clone(), key.clone(), policy);
            tasks.push(tokio::spawn(
                checkpointer.run(self.audit.committed(), stopped.clone()),
            ));
        }
        if let (Some(r), Some(key)) = (&a.retention, &self.key) {
            let sinks = a.sinks.iter().map(|s| s.name.clone()).collect();
            let retention = Retention::new(self.store.clone(), key.clone(), r.max_age.0, sinks)
                .waking(self.audit.committed());
            tasks.push(tokio::spawn(retention.run(r.interval.0, stopped.clone())));
        }
        if !a.sinks.is_empty() {
            tracing::info!(sinks = a.sinks.len(), "audit export started");
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}
