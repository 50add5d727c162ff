//! Audit export beside the gateway: one runner per `[[audit.sinks]]`, the
//! checkpointer (`[audit.checkpoints]`) and retention (`[audit.retention]`),
//! started with the gateway and stopped with it. A sink whose secret cannot
//! be read or a signing key that cannot be loaded stops the gateway from
//! starting: configured evidence is never silently missing.

use anyhow::{Context, Result, bail};
use sluice_audit::sinks::Sink;
use sluice_audit::{
    AuditLog, CheckpointPolicy, Checkpointer, Retention, RunnerOptions, SinkRunner,
};
use sluice_core::config::Config;
use sluice_store::Store;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Starts every configured export task; each ends when `stopped` turns true.
pub fn start_audit_exports(
    config: &Config,
    store: &Store,
    audit: &AuditLog,
    stopped: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>> {
    let a = &config.audit;
    let mut tasks = Vec::new();
    // Build everything first, so a bad sink or key fails before any runs.
    let mut runners = Vec::new();
    for c in &a.sinks {
        let sink = Sink::from_config(c)?;
        runners.push(SinkRunner::new(
            &c.name,
            store.clone(),
            sink,
            RunnerOptions::from_config(c),
            audit.commits(),
        ));
    }
    let key = match &a.checkpoints {
        Some(cp) => Some(Arc::new(
            sluice_audit::load_signing_key(&cp.signing_key_file)
                .context("[audit.checkpoints] signing_key_file")?,
        )),
        None => None,
    };
    for r in runners {
        tasks.push(tokio::spawn(r.run(stopped.clone())));
    }
    if let (Some(cp), Some(key)) = (&a.checkpoints, &key) {
        tracing::info!(
            key_id = %sluice_audit::key_id(&key.verifying_key()),
            every_events = cp.every_events,
            "signing audit checkpoints"
        );
        let policy = CheckpointPolicy {
            every_events: cp.every_events,
            interval: cp.interval.0,
        };
        let checkpointer = Checkpointer::new(store.clone(), key.clone(), policy);
        tasks.push(tokio::spawn(
            checkpointer.run(audit.committed(), stopped.clone()),
        ));
    }
    if let Some(r) = &a.retention {
        let Some(key) = &key else {
            bail!("[audit.retention] needs [audit.checkpoints]: deletions are signed");
        };
        let sinks = a.sinks.iter().map(|s| s.name.clone()).collect();
        let retention = Retention::new(store.clone(), key.clone(), r.max_age.0, sinks)
            .waking(audit.committed());
        tasks.push(tokio::spawn(retention.run(r.interval.0, stopped.clone())));
    }
    if !a.sinks.is_empty() {
        tracing::info!(sinks = a.sinks.len(), "audit export started");
    }
    Ok(tasks)
}
