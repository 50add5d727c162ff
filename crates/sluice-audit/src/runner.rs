//! One runner per sink: reads the chain after the sink's stored cursor,
//! delivers a batch, and only then moves the cursor. A restart resumes after
//! the last delivered sequence number, so nothing is skipped; a batch
//! delivered but not yet recorded is sent again (at-least-once).
//!
//! Runners read what was committed, never the writer's queue: a slow or
//! failing receiver backs up only its own cursor, never the audit writer.
//! Rows right after the cursor come from memory when the writer of this
//! gateway has just stored them ([`crate::recent`]), from the store
//! otherwise.
//!
//! A runner that has caught up waits for a commit and then lingers
//! [`LINGER`] before reading, so a busy gateway's many small group commits
//! reach the receiver as a few large deliveries: the store is read, the
//! receiver called (a file sink syncs to disk) and the cursor written once
//! per linger instead of once per commit, which would otherwise compete
//! with the audit writer that statements wait on.

use sluice_core::config::audit::SinkConfig;
use sluice_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

use crate::error::ExportError;
use crate::export::ExportEvent;
use crate::recent::Commits;
use crate::sinks::Sink;

/// How long a caught-up runner gathers commits before delivering them.
pub const LINGER: Duration = Duration::from_millis(100);

/// How a runner batches, waits and retries.
#[derive(Debug, Clone, Copy)]
pub struct RunnerOptions {
    /// Most events per delivery.
    pub batch_size: usize,
    /// First wait after a failure; doubles up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Store poll when no commit wakes the runner (another gateway writing).
    pub poll_interval: Duration,
}

impl RunnerOptions {
    pub fn from_config(c: &SinkConfig) -> Self {
        RunnerOptions {
            batch_size: c.batch_size.clamp(1, 10_000),
            retry_initial: c.retry_initial.0,
            retry_max: c.retry_max.0.max(c.retry_initial.0),
            poll_interval: c.poll_interval.0,
        }
    }
}

/// A sink and what it needs to run.
pub struct SinkRunner {
    name: String,
    store: Store,
    sink: Sink,
    opts: RunnerOptions,
    commits: Commits,
    /// The last delivered sequence number, once read from the store.
    cursor: Option<i64>,
}

impl SinkRunner {
    /// `commits` comes from the audit log ([`crate::AuditLog::commits`]).
    pub fn new(
        name: &str,
        store: Store,
        sink: Sink,
        opts: RunnerOptions,
        commits: Commits,
    ) -> Self {
        SinkRunner {
            name: name.to_string(),
            store,
            sink,
            opts,
            commits,
            cursor: None,
        }
    }

    /// Delivers until `stop`. A delivery cut short by stop is not recorded
    /// and is sent again by the next run.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut backoff = self.opts.retry_initial;
        let wake: Arc<Notify> = self.commits.notify.clone();
        loop {
            if *stop.borrow() {
                return;
            }
            // Registered before reading the store, so a commit between the
            // read and the wait still wakes us.
            let woken = wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let step = tokio::select! {
                r = self.step() => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            let wait = match step {
                // A full batch: more are waiting, deliver at once.
                Ok(n) if n >= self.opts.batch_size => {
                    backoff = self.opts.retry_initial;
                    continue;
                }
                Ok(_) => {
                    backoff = self.opts.retry_initial;
                    self.opts.poll_interval
                }
                Err(e) => {
                    tracing::warn!(
                        sink = %self.name,
                        error = %e,
                        retry_in = ?backoff,
                        "audit export failed; retrying"
                    );
                    let wait = backoff;
                    backoff = (backoff * 2).min(self.opts.retry_max);
                    // A failure waits out its backoff; a commit must not
                    // cut it short or a dead receiver would be hammered.
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                    continue;
                }
            };
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(LINGER) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// Delivers the next batch; how many events it held (0: nothing to send).
    async fn step(&mut self) -> Result<usize, ExportError> {
        let after = match self.cursor {
            Some(c) => c,
            None => {
                let c = self.store.sink_cursor(&self.name).await?.unwrap_or(0);
                self.cursor = Some(c);
                c
            }
        };
        let rows = match self.commits.recent.after(after, self.opts.batch_size) {
            Some(rows) => rows,
            None => {
                self.store
                    .audit_after(after, self.opts.batch_size as i64)
                    .await?
            }
        };
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(0);
        };
        if after > 0 && first.seq != after + 1 {
            // Retention respects every configured sink's cursor, so this
            // means events were removed some other way; say so loudly.
            tracing::error!(
                sink = %self.name,
                expected = after + 1,
                next = first.seq,
                "audit events missing before export"
            );
        }
        let last_seq = last.seq;
        let events = rows
            .iter()
            .map(ExportEvent::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.sink.deliver(&events).await?;
        // Delivered: never resend in this process, even if recording fails.
        self.cursor = Some(last_seq);
        self.store.advance_sink_cursor(&self.name, last_seq).await?;
        tracing::debug!(sink = %self.name, through = last_seq, "audit events exported");
        Ok(events.len())
    }
}
