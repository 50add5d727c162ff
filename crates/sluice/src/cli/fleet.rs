//! `sluice fleet status`: the gateways sharing the store, as `/v1/fleet`
//! reports them.

use anyhow::Result;
use clap::Subcommand;
use serde_json::Value;
use std::process::ExitCode;

use super::client::Client;

#[derive(Subcommand)]
pub enum FleetCommand {
    /// Members (version, policy hash, state, last heartbeat) and leases.
    /// Exits 1 when a live gateway runs a policy that differs from the
    /// fleet's.
    Status {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: FleetCommand) -> Result<ExitCode> {
    let client = Client::from_env()?;
    let FleetCommand::Status { json } = cmd;
    let body = client.get("/v1/fleet").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        print_status(&body);
    }
    Ok(if body["consistent"].as_bool() == Some(true) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_status(b: &Value) {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let short = |h: &Value| s(h).chars().take(12).collect::<String>();
    println!(
        "policy {} {}",
        short(&b["policy_hash"]),
        if b["consistent"].as_bool() == Some(true) {
            "(every live gateway runs it)"
        } else {
            "(NOT every live gateway runs it: see the flagged ones)"
        }
    );
    println!(
        "{:<20} {:<9} {:<9} {:<13} {:<25} {:<22} HOST",
        "GATEWAY", "STATE", "VERSION", "POLICY", "LAST HEARTBEAT", "API"
    );
    for m in b["members"].as_array().into_iter().flatten() {
        let mut id = s(&m["id"]);
        if m["id"] == b["this"] {
            id.push('*');
        }
        let flag = if m["policy_matches"].as_bool() == Some(false) {
            "!"
        } else {
            ""
        };
        println!(
            "{:<20} {:<9} {:<9} {:<13} {:<25} {:<22} {}",
            id,
            s(&m["state"]),
            s(&m["version"]),
            format!("{}{flag}", short(&m["policy_hash"])),
            s(&m["heartbeat_at"]),
            s(&m["api"]),
            s(&m["host"])
        );
    }
    for l in b["leases"].as_array().into_iter().flatten() {
        let held = if l["held"].as_bool() == Some(true) {
            "held by"
        } else {
            "lapsed, last held by"
        };
        println!(
            "lease {:<13} {held} {} until {}",
            s(&l["name"]),
            s(&l["holder"]),
            s(&l["expires_at"])
        );
    }
}
