//! `sluice approvals list|approve|deny`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{Value, json};
use std::process::ExitCode;

use super::client::Client;

#[derive(Subcommand)]
pub enum ApprovalsCommand {
    /// Approvals waiting for a decision (or all, with --all).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending request.
    Approve {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
        /// Approve every statement of this shape for the rest of the grant.
        #[arg(long)]
        shape: bool,
    },
    /// Deny a pending request; the requester sees the reason.
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

pub async fn run(cmd: ApprovalsCommand) -> Result<ExitCode> {
    let client = Client::from_env()?;
    match cmd {
        ApprovalsCommand::List { all, json } => {
            let path = if all {
                "/v1/approvals?status=all"
            } else {
                "/v1/approvals"
            };
            let body = client.get(path).await?;
            let items = body["approvals"].as_array().cloned().unwrap_or_default();
            if json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else if items.is_empty() {
                println!("nothing waits for approval");
            } else {
                for a in &items {
                    print_line(a);
                }
            }
        }
        ApprovalsCommand::Approve { id, reason, shape } => {
            let scope = if shape { "shape" } else { "once" };
            let a = client
                .post(
                    &format!("/v1/approvals/{id}/approve"),
                    &json!({ "reason": reason, "scope": scope }),
                )
                .await?;
            report(&a);
        }
        ApprovalsCommand::Deny { id, reason } => {
            let a = client
                .post(
                    &format!("/v1/approvals/{id}/deny"),
                    &json!({ "reason": reason }),
                )
                .await?;
            report(&a);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn print_line(a: &Value) {
    let what = match a["kind"].as_str() {
        Some("statement") => format!("statement: {}", one_line(s(&a["statement"]))),
        _ => format!("grant {} ({})", s(&a["grant_id"]), s(&a["reason"])),
    };
    println!(
        "{}  {:<8}  {:<12}  {} on {}  {}  [{}/{}]",
        s(&a["id"]),
        s(&a["status"]),
        s(&a["requester"]["name"]),
        s(&a["kind"]),
        s(&a["connection"]),
        what,
        a["approvals"],
        a["min_approvals"]
    );
}

fn one_line(sql: &str) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 80 {
        format!("{}…", flat.chars().take(80).collect::<String>())
    } else {
        flat
    }
}

fn report(a: &Value) {
    match a["status"].as_str() {
        Some("pending") => println!(
            "vote recorded: approval {} has {} of {} approvals",
            s(&a["id"]),
            a["approvals"],
            a["min_approvals"]
        ),
        _ => println!("approval {} is {}", s(&a["id"]), s(&a["status"])),
    }
}
