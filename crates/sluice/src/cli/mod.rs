//! Command-line arguments and dispatch.

mod approvals;
mod audit;
mod cache;
mod check;
mod client;
mod config;
mod connect;
mod device;
mod exec;
mod failure;
pub use config::load_for_serving;
pub use failure::report;
mod fleet;
mod grant;
mod login;
mod sessions;
mod sshkit;
mod token;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Identity-aware access gateway for AI agents",
    after_help = "Environment:
  SLUICE_URL    the gateway's API (default http://127.0.0.1:8420)
  SLUICE_TOKEN  an OIDC access token for the API (`sluice token` gets one)

Exit status: 0 success, 1 failed, 2 usage, 3 unauthorized, 4 forbidden,
5 not found, 6 pending, 7 denied, 8 expired, 9 unavailable, 10 invalid.
With --json, an error is printed on stdout as {\"error\": CODE, \"message\": TEXT}.
`sluice exec` exits with its command's status."
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
    /// Get a token (as `sluice token` does: client credentials for agents,
    /// --device for people) and keep it for this gateway, so other
    /// commands need no SLUICE_TOKEN.
    Login {
        #[command(flatten)]
        token: token::TokenArgs,
        #[arg(long)]
        json: bool,
    },
    /// Forget this gateway's kept token.
    Logout {
        #[arg(long)]
        json: bool,
    },
    /// Who the gateway takes your token for: identity, groups, kind,
    /// issuer, token expiry.
    Whoami {
        #[arg(long)]
        json: bool,
    },
    /// The gateway's readiness, who you are to it, and your grants in force.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Get an access token (client credentials, or a playground token with --dev).
    Token(token::TokenArgs),
    /// Run one command through a fresh grant: its client environment set
    /// (PG*, MYSQL_*, or ssh/scp/sftp reaching the connection by its name),
    /// the grant revoked when it exits unless --keep.
    Exec(exec::ExecArgs),
    /// A local Postgres or MySQL port (127.0.0.1) carrying an unchanged client to
    /// the gateway through a grant this command holds and renews; the
    /// connection string holds no secret.
    Connect(connect::ConnectArgs),
    /// The connections you may use, with profile, longest grant and
    /// whether approval is needed.
    Connections {
        #[command(subcommand)]
        command: ConnectionsCommand,
    },
    /// Request, list, show and revoke grants.
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
    /// A shell completion script: `sluice completions bash > /etc/bash_completion.d/sluice`.
    Completions { shell: clap_complete::Shell },
    /// The gateways sharing this gateway's store, and who holds each lease.
    Fleet {
        #[command(subcommand)]
        command: fleet::FleetCommand,
    },
    /// Internal: the gateway's out-of-process SSH command-line analyser
    /// (one line on stdin, its facts as JSON on stdout).
    #[command(name = "__analyse-shell", hide = true)]
    AnalyseShell,
}

impl Args {
    /// Whether this is the gateway's own command-line analyser helper.
    pub fn is_analyser(&self) -> bool {
        matches!(self.command, Command::AnalyseShell)
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if uses_the_api(&args.command) {
        client::Client::fresh().await?;
    }
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
        Command::Exec(a) => exec::run(a).await,
        Command::Connect(a) => connect::run(a).await,
        Command::Login { token, json } => login::login(token, json).await,
        Command::Logout { json } => login::logout(json),
        Command::Whoami { json } => login::whoami(json).await,
        Command::Status { json } => login::status(json).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Args::command(),
                "sluice",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Connections { command } => connections(command).await,
        Command::AnalyseShell => analyse_shell(),
    }
}

/// `__analyse-shell`: limits its own CPU time and memory first (a line
/// that makes the parser run away is killed by the kernel, if not sooner
/// by the gateway's deadline), then analyses one line.
pub fn analyse_shell() -> anyhow::Result<ExitCode> {
    use std::io::Read;
    for (resource, limit) in [(libc::RLIMIT_CPU, 5), (libc::RLIMIT_AS, 1 << 30)] {
        let l = libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        };
        // SAFETY: setrlimit reads the struct; lowering our own limits.
        if unsafe { libc::setrlimit(resource, &l) } != 0 {
            anyhow::bail!(
                "cannot limit the analyser: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    let mut line = String::new();
    std::io::stdin().take(1 << 20).read_to_string(&mut line)?;
    let facts = sluice_shell::analyze(&line);
    println!("{}", serde_json::to_string(&facts)?);
    Ok(ExitCode::SUCCESS)
}

/// Commands that call the gateway's API with the cached token (and so
/// refresh it first when it is about to expire).
fn uses_the_api(c: &Command) -> bool {
    !matches!(
        c,
        Command::Serve { .. }
            | Command::Dev(_)
            | Command::Config { .. }
            | Command::Token(_)
            | Command::Login { .. }
            | Command::Logout { .. }
            | Command::Completions { .. }
            | Command::AnalyseShell
    )
}

#[derive(Subcommand)]
enum ConnectionsCommand {
    /// What this identity may use.
    List {
        #[arg(long)]
        json: bool,
    },
}

async fn connections(cmd: ConnectionsCommand) -> anyhow::Result<ExitCode> {
    let ConnectionsCommand::List { json } = cmd;
    let client = client::Client::from_env()?;
    let body = client.get("/v1/connections").await?;
    let items = body["connections"].as_array().cloned().unwrap_or_default();
    if json {
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if items.is_empty() {
        println!("no connection is open to you (no access rule matches your groups)");
    }
    for c in &items {
        let s = |k: &str| c[k].as_str().unwrap_or("-").to_string();
        println!(
            "{:<20} {:<9} {:<6} up to {:>5}s  {}",
            s("name"),
            s("kind"),
            s("profile"),
            c["max_ttl_secs"],
            match c["approval"].as_str() {
                Some("grant") => "needs approval",
                _ => "no approval needed",
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
