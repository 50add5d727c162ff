//! `sluice audit verify|export|keygen`: read straight from the store, so
//! they work with the gateway stopped and trust nothing but the chain (and,
//! given a public key, the signatures on it).

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
        /// Also check every signed checkpoint and truncation marker with this
        /// Ed25519 public key: a PEM file, a file holding base64, or base64.
        #[arg(long, value_name = "KEY")]
        public_key: Option<String>,
        /// The report as JSON: `{"ok": true, "events", "first_seq",
        /// "last_seq", "head", "checkpoints", "signatures_checked"}` or
        /// `{"ok": false, "broken_at", "why"}`.
        #[arg(long)]
        json: bool,
    },
    /// Make an Ed25519 key pair for signed checkpoints.
    Keygen {
        /// Where to write the private key (PKCS#8 PEM, mode 0600); the public
        /// key goes beside it as FILE.pub.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
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
    /// The store as it is: verify and export read it, and never create or
    /// migrate one (a verifier pointed at the wrong place must say so, not
    /// report an empty chain).
    async fn open(&self) -> Result<Store> {
        let url = match &self.store {
            Some(u) => u.clone(),
            None => super::config::load(&self.config)?.server.store_url(),
        };
        Ok(Store::open_existing(&url).await?)
    }
}

pub async fn run(cmd: AuditCommand) -> Result<ExitCode> {
    match cmd {
        AuditCommand::Verify {
            src,
            public_key,
            json,
        } => {
            let key = public_key
                .as_deref()
                .map(sluice_audit::parse_public_key)
                .transpose()?;
            let store = src.open().await?;
            match sluice_audit::verify_with(&store, key.as_ref()).await? {
                Ok(r) if json => {
                    println!(
                        "{}",
                        serde_json::json!({
                            "ok": true,
                            "events": r.events,
                            "first_seq": r.first_seq,
                            "last_seq": r.last_seq,
                            "head": r.last_hash,
                            "checkpoints": r.checkpoints,
                            "signatures_checked": r.signatures_checked,
                        })
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Ok(r) => {
                    print_report(&r);
                    Ok(ExitCode::SUCCESS)
                }
                Err(b) if json => {
                    println!(
                        "{}",
                        serde_json::json!({ "ok": false, "broken_at": b.seq, "why": b.why })
                    );
                    Ok(ExitCode::FAILURE)
                }
                Err(b) => {
                    eprintln!("{b}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::Keygen { out, force } => keygen(&out, force),
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

fn print_report(r: &sluice_audit::VerifyReport) {
    println!(
        "audit chain ok: {} events, last sequence {}, head {}",
        r.events, r.last_seq, r.last_hash
    );
    if let Some(t) = &r.truncated {
        println!(
            "  truncated by retention: events {}-{} deleted (marker at sequence {}); \
             verified from the recorded anchor {}",
            t.from_seq, t.through_seq, t.marker_seq, t.anchor_hash
        );
    }
    let signed = if r.signatures_checked {
        "signatures verified"
    } else {
        "signatures not checked (give --public-key)"
    };
    match r.last_checkpoint {
        Some(last) => println!(
            "  checkpoints: {} matched the chain, {} over deleted events, last at sequence {last}; {signed}",
            r.checkpoints, r.checkpoints_truncated
        ),
        None => println!("  checkpoints: none"),
    }
    if r.unsigned_tail > 0 {
        println!(
            "  {} events after the last checkpoint are covered by the hash chain only",
            r.unsigned_tail
        );
    }
}

fn keygen(out: &std::path::Path, force: bool) -> Result<ExitCode> {
    let public_path = {
        let mut p = out.as_os_str().to_owned();
        p.push(".pub");
        PathBuf::from(p)
    };
    for p in [out, public_path.as_path()] {
        if p.exists() && !force {
            anyhow::bail!("{} exists; use --force to replace it", p.display());
        }
    }
    let (private, public_pem, public_b64) = sluice_audit::generate()?;
    write_private(out, &private).with_context(|| format!("cannot write {}", out.display()))?;
    std::fs::write(&public_path, public_pem)
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    eprintln!(
        "wrote the signing key to {} and the public key to {}",
        out.display(),
        public_path.display()
    );
    // stdout carries only the public key, for scripts.
    println!("{public_b64}");
    Ok(ExitCode::SUCCESS)
}

/// Writes the private key readable by its owner only, from the first byte.
fn write_private(path: &std::path::Path, pem: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(0o600);
        let mut f = opts.open(path)?;
        // An existing file keeps its mode on open; tighten it.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(pem.as_bytes())?;
        f.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut f = opts.open(path)?;
        f.write_all(pem.as_bytes())?;
        f.sync_all()
    }
}

fn since_ms(s: &str) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let ago = humantime::parse_duration(s)
        .with_context(|| format!("--since {s:?}: use RFC 3339 or a duration like \"1h\""))?;
    Ok(sluice_core::clock::now().timestamp_millis() - ago.as_millis() as i64)
}
