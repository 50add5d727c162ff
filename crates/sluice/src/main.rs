//! `sluice`: the gateway (`serve`, `dev`) and its command-line client.

mod cli;
mod dev;
mod exports;
mod front;
mod http;
mod serve;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Args::parse();
    // The SSH command-line analyser runs without a runtime: its threads
    // and their allocator arenas would count against the address-space
    // limit it sets on itself.
    if args.is_analyser() {
        return cli::analyse_shell().unwrap_or_else(|e| cli::report(&e, false));
    }
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
