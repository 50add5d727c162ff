//! `sluice config check`, and loading a configuration file.

use anyhow::{Context, bail};
use clap::Subcommand;
use sluice_core::config::Config;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate a file and what it names; print every problem with its line.
    Check {
        #[arg(default_value = "sluice.toml")]
        file: PathBuf,
        /// Also reach each issuer and log in to each backend.
        #[arg(long)]
        probe: bool,
    },
}

pub async fn run(cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    let ConfigCommand::Check { file, probe } = cmd;
    let text = read(&file)?;
    let name = file.display().to_string();
    let mut c = match Config::parse(&text, &name) {
        Ok(c) => c,
        Err(errors) => {
            for p in &errors.0 {
                eprintln!("{p}");
            }
            eprintln!("{} problem(s) found", errors.0.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    c.resolve_paths(&base_dir(&file)?);
    let found = super::check::environment(&c, &text, &name, false);
    for w in &found.warnings {
        eprintln!("warning: {w}");
    }
    for e in &found.errors {
        eprintln!("{e}");
    }
    if !found.errors.is_empty() {
        eprintln!("{} problem(s) found", found.errors.len());
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "{name}: ok ({} issuers, {} connections, {} rules)",
        c.issuers.len(),
        c.connections.len(),
        c.rules.len()
    );
    if !probe {
        return Ok(ExitCode::SUCCESS);
    }
    let (lines, ok) = super::check::probe(&c).await;
    for l in &lines {
        println!("{l}");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn read(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

/// Loads and validates a configuration file, or fails listing every
/// problem. Relative paths in it are read from the file's own directory.
pub fn load(file: &Path) -> anyhow::Result<Arc<Config>> {
    let text = read(file)?;
    match Config::parse(&text, &file.display().to_string()) {
        Ok(mut c) => {
            c.resolve_paths(&base_dir(file)?);
            Ok(Arc::new(c))
        }
        Err(e) => bail!("invalid configuration:\n{e}"),
    }
}

/// [`load`] for `sluice serve`: what the file names must be there too, and
/// every password variable set, or the gateway does not start.
pub fn load_for_serving(file: &Path) -> anyhow::Result<Arc<Config>> {
    let c = load(file)?;
    let text = read(file)?;
    let found = super::check::environment(&c, &text, &file.display().to_string(), true);
    for w in &found.warnings {
        tracing::warn!("{w}");
    }
    if !found.errors.is_empty() {
        let all: Vec<String> = found.errors.iter().map(|p| p.to_string()).collect();
        bail!("cannot serve this configuration:\n{}", all.join("\n"));
    }
    Ok(c)
}

/// The directory a configuration file's relative paths are read from.
pub fn base_dir(file: &Path) -> anyhow::Result<PathBuf> {
    let absolute =
        std::path::absolute(file).with_context(|| format!("cannot resolve {}", file.display()))?;
    Ok(absolute
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/")))
}
