//! `sluice`: the gateway (`serve`, `dev`) and its command-line client.

mod cli;
mod dev;
mod exports;
mod front;
mod serve;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Errors in JSON when the command was asked for JSON.
    // (Only sluice's own arguments: `exec … -- tool --json` is the tool's.)
    let json = std::env::args()
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        // One clear line (causes joined, no backtrace), or one JSON object.
        Err(e) => cli::report(&e, json),
    }
}
