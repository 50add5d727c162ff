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
        /// Print the approval as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deny a pending request; the requester sees the reason.
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
        /// Print the approval as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Wait until an approval is decided (as its requester or an approver).
    /// Exits 0 when approved, 7 when denied or withdrawn, 8 when expired,
    /// 6 when the wait runs out first. For an agent whose held statement failed at
    /// once: wait, then run the same statement again.
    Wait {
        id: String,
        /// Longest to wait ("30s", "15m").
        #[arg(long, default_value = "15m")]
        timeout: String,
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
        ApprovalsCommand::Approve {
            id,
            reason,
            shape,
            json,
        } => {
            let scope = if shape { "shape" } else { "once" };
            let a = client
                .post(
                    &format!("/v1/approvals/{id}/approve"),
                    &json!({ "reason": reason, "scope": scope }),
                )
                .await?;
            report(&a, json);
        }
        ApprovalsCommand::Wait { id, timeout } => return wait(&client, &id, &timeout).await,
        ApprovalsCommand::Deny { id, reason, json } => {
            let a = client
                .post(
                    &format!("/v1/approvals/{id}/deny"),
                    &json!({ "reason": reason }),
                )
                .await?;
            report(&a, json);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Polls the approval until it is decided or `timeout` passes.
async fn wait(client: &Client, id: &str, timeout: &str) -> Result<ExitCode> {
    let limit = humantime::parse_duration(timeout).map_err(|e| {
        anyhow::anyhow!("--timeout {timeout:?}: {e} (write it like \"30s\" or \"15m\")")
    })?;
    let deadline = std::time::Instant::now() + limit;
    loop {
        let a = client.get(&format!("/v1/approvals/{id}")).await?;
        match a["status"].as_str() {
            Some("pending") => {}
            Some("approved") => {
                println!(
                    "approval {id} is approved by {}: run the statement again",
                    s(&a["decided_by"])
                );
                return Ok(ExitCode::SUCCESS);
            }
            Some(status) => {
                let reason = a["decision_reason"].as_str().unwrap_or("");
                println!("approval {id} is {status}: {reason}");
                return Ok(super::failure::Code::of_outcome(status).exit());
            }
            None => anyhow::bail!("approval {id}: unexpected answer {a}"),
        }
        if std::time::Instant::now() >= deadline {
            eprintln!("approval {id} is still pending after {timeout}");
            return Ok(super::failure::Code::Pending.exit());
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
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

fn report(a: &Value, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(a).unwrap_or_default());
        return;
    }
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
