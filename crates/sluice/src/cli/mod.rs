//! Command-line arguments and dispatch.

mod approvals;
mod audit;
mod check;
mod client;
mod config;
pub use config::load_for_serving;
mod fleet;
mod grant;
mod sessions;
mod token;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Identity-aware access gateway for AI agents"
)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway from a configuration file.
    Serve {
        #[arg(long, short, default_value = "sluice.toml")]
        config: PathBuf,
        /// Log as JSON lines instead of text.
        #[arg(long)]
        log_json: bool,
    },
    /// Start the local playground: gateway, development issuer, sample database.
    Dev(crate::dev::DevArgs),
    /// Check a configuration file and report every problem.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
    /// Get an access token (client credentials, or a playground token with --dev).
    Token(token::TokenArgs),
    /// Request, show and revoke grants.
    Grant {
        #[command(subcommand)]
        command: grant::GrantCommand,
    },
    /// List, approve and deny pending requests.
    Approvals {
        #[command(subcommand)]
        command: approvals::ApprovalsCommand,
    },
    /// List recorded sessions, show and replay them.
    Sessions {
        #[command(subcommand)]
        command: sessions::SessionsCommand,
    },
    /// Verify and export the audit log.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// The gateways sharing this gateway's store, and who holds each lease.
    Fleet {
        #[command(subcommand)]
        command: fleet::FleetCommand,
    },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Serve { config, log_json } => {
            crate::serve::init_logging(log_json);
            let loaded = config::load_for_serving(&config)?;
            crate::serve::run(loaded, Some(config), None).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Dev(a) => crate::dev::run(a).await.map(|_| ExitCode::SUCCESS),
        Command::Config { command } => config::run(command).await,
        Command::Token(a) => token::run(a).await.map(|_| ExitCode::SUCCESS),
        Command::Grant { command } => grant::run(command).await,
        Command::Approvals { command } => approvals::run(command).await,
        Command::Sessions { command } => sessions::run(command).await,
        Command::Audit { command } => audit::run(command).await,
        Command::Fleet { command } => fleet::run(command).await,
    }
}
