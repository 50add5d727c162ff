//! `sluice audit verify|export`: read straight from the store, so they work
//! with the gateway stopped and trust nothing but the chain itself.

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use sluice_store::Store;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; name the first event where it breaks.
    Verify {
        #[command(flatten)]
        src: StoreArgs,
    },
    /// Write events as JSON lines to stdout.
    Export {
        #[command(flatten)]
        src: StoreArgs,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: Format,
        /// Only events at or after this time (RFC 3339, e.g. 2026-11-26T00:00:00Z) or this long ago ("1h").
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Jsonl,
}

#[derive(clap::Args)]
pub struct StoreArgs {
    /// The gateway's configuration file (its store is used).
    #[arg(long, short, default_value = "sluice.toml", conflicts_with = "store")]
    config: PathBuf,
    /// A store URL instead ("sqlite:PATH" or "postgres://…").
    #[arg(long, env = "SLUICE_STORE")]
    store: Option<String>,
}

impl StoreArgs {
    async fn open(&self) -> Result<Store> {
        let url = match &self.store {
            Some(u) => u.clone(),
            None => super::config::load(&self.config)?.server.store_url(),
        };
        Ok(Store::open(&url).await?)
    }
}

pub async fn run(cmd: AuditCommand) -> Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { src } => {
            let store = src.open().await?;
            match sluice_audit::verify(&store).await? {
                Ok(r) => {
                    println!(
                        "audit chain ok: {} events, last sequence {}, head {}",
                        r.events, r.last_seq, r.last_hash
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(b) => {
                    eprintln!("{b}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::Export {
            src,
            format: Format::Jsonl,
            since,
        } => {
            let store = src.open().await?;
            let from = match since {
                None => 1,
                Some(s) => match store.audit_first_seq_since(since_ms(&s)?).await? {
                    Some(seq) => seq,
                    None => return Ok(ExitCode::SUCCESS),
                },
            };
            let mut out = std::io::BufWriter::new(std::io::stdout());
            sluice_audit::export_jsonl(&store, from, &mut out).await?;
            std::io::Write::flush(&mut out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn since_ms(s: &str) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let ago = humantime::parse_duration(s)
        .with_context(|| format!("--since {s:?}: use RFC 3339 or a duration like \"1h\""))?;
    Ok(chrono::Utc::now().timestamp_millis() - ago.as_millis() as i64)
}
