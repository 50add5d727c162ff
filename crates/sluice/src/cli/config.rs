//! `sluice config check`, and loading a configuration file.

use anyhow::{Context, bail};
use clap::Subcommand;
use sluice_core::config::Config;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Parse and validate a file; print every problem with its line.
    Check {
        #[arg(default_value = "sluice.toml")]
        file: PathBuf,
    },
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    let ConfigCommand::Check { file } = cmd;
    let text = read(&file)?;
    match Config::parse(&text, &file.display().to_string()) {
        Ok(c) => {
            let mut warnings = Vec::new();
            for conn in &c.connections {
                if let Err(e) = conn.password() {
                    warnings.push(format!("connection {:?}: {e}", conn.name));
                }
            }
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{}: ok ({} issuers, {} connections, {} rules)",
                file.display(),
                c.issuers.len(),
                c.connections.len(),
                c.rules.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for p in &errors.0 {
                eprintln!("{p}");
            }
            eprintln!("{} problem(s) found", errors.0.len());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn read(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

/// Loads and validates a configuration file, or fails listing every problem.
pub fn load(file: &Path) -> anyhow::Result<Arc<Config>> {
    let text = read(file)?;
    match Config::parse(&text, &file.display().to_string()) {
        Ok(c) => Ok(Arc::new(c)),
        Err(e) => bail!("invalid configuration:\n{e}"),
    }
}
