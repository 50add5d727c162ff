//! `sluice grant request|show|revoke`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{Value, json};
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use super::client::Client;

#[derive(Subcommand)]
pub enum GrantCommand {
    /// Ask for a just-in-time grant to one connection.
    Request {
        /// The connection's name, e.g. "playground".
        connection: String,
        /// How long the grant should live, e.g. "10m" (capped by the access rule).
        #[arg(long)]
        ttl: Option<String>,
        /// Why you need it (recorded in the audit log).
        #[arg(long, default_value = "")]
        reason: String,
        /// A specific profile (read, write, admin) when several rules apply.
        #[arg(long)]
        profile: Option<String>,
        /// If the grant needs approval, wait for the decision.
        #[arg(long)]
        wait: bool,
        /// An SSH public key file (e.g. ~/.ssh/id_ed25519.pub) to log in to
        /// an SSH connection with, instead of the grant's secret.
        #[arg(long, value_name = "FILE")]
        ssh_key: Option<std::path::PathBuf>,
        /// Print the grant as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one grant.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a grant now; its live sessions end at once.
    Revoke {
        id: String,
        /// Print the revoked grant as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Your grants, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: GrantCommand) -> Result<ExitCode> {
    let client = Client::from_env()?;
    match cmd {
        GrantCommand::Request {
            connection,
            ttl,
            reason,
            profile,
            wait,
            ssh_key,
            json,
        } => {
            let mut body = json!({ "connection": connection, "reason": reason });
            if let Some(path) = ssh_key {
                let key = std::fs::read_to_string(&path).map_err(|e| {
                    anyhow::anyhow!("cannot read the SSH key {}: {e}", path.display())
                })?;
                body["ssh_key"] = key.trim().into();
            }
            if let Some(t) = ttl {
                body["ttl"] = t.into();
            }
            if let Some(p) = profile {
                body["profile"] = p.into();
            }
            let mut grant = client.post("/v1/grants", &body).await?;
            if wait && grant["status"] == "pending" {
                grant = wait_for_decision(&client, &grant).await?;
            }
            print_grant(&grant, json);
            Ok(status_code(&grant))
        }
        GrantCommand::Show { id, json } => {
            let grant = client.get(&format!("/v1/grants/{id}")).await?;
            print_grant(&grant, json);
            Ok(ExitCode::SUCCESS)
        }
        GrantCommand::List { json } => {
            let body = client.get("/v1/grants").await?;
            let items = body["grants"].as_array().cloned().unwrap_or_default();
            if json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else if items.is_empty() {
                println!("no grants");
            } else {
                for g in &items {
                    println!(
                        "{:<30} {:<8} {:<16} {:<6} expires {}",
                        str_of(&g["id"]),
                        str_of(&g["status"]),
                        str_of(&g["connection"]),
                        str_of(&g["profile"]),
                        str_of(&g["expires_at"])
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        GrantCommand::Revoke { id, json } => {
            let grant = client.delete(&format!("/v1/grants/{id}")).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&grant)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "grant {} is {}",
                grant["id"].as_str().unwrap_or(&id),
                str_of(&grant["status"])
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Long-polls until the grant leaves `pending`, with a live elapsed-time line.
pub(crate) async fn wait_for_decision(client: &Client, grant: &Value) -> Result<Value> {
    let id = str_of(&grant["id"]).to_string();
    let started = Instant::now();
    let mut current = grant.clone();
    while current["status"] == "pending" {
        eprint!(
            "\rwaiting for approval of {id} ... {}s (expires {})   ",
            started.elapsed().as_secs(),
            str_of(&current["expires_at"])
        );
        let _ = std::io::stderr().flush();
        current = client.get(&format!("/v1/grants/{id}?wait=5s")).await?;
    }
    eprintln!();
    Ok(current)
}

/// 0 for a grant that is or may become usable; the outcome's code otherwise.
fn status_code(grant: &Value) -> ExitCode {
    match grant["status"].as_str() {
        Some("active") | Some("pending") => ExitCode::SUCCESS,
        other => super::failure::Code::of_outcome(other.unwrap_or("")).exit(),
    }
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn print_grant(g: &Value, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(g).unwrap_or_default());
        return;
    }
    println!("grant       {}", str_of(&g["id"]));
    println!("status      {}", str_of(&g["status"]));
    println!(
        "connection  {} (profile {})",
        str_of(&g["connection"]),
        str_of(&g["profile"])
    );
    println!("expires at  {}", str_of(&g["expires_at"]));
    if let Some(who) = g["identity"]["name"].as_str() {
        println!("identity    {who} ({})", str_of(&g["identity"]["kind"]));
    }
    let cap = &g["ttl_capped"];
    if cap.is_object() {
        println!(
            "note        asked for {}s; rule {} allows at most {}s, so the grant lives {}s",
            cap["asked_secs"],
            str_of(&cap["rule"]),
            cap["max_secs"],
            cap["max_secs"]
        );
    }
    let a = &g["approval"];
    if g["status"] == "denied" && a.is_object() {
        println!(
            "denied by   {}: {}",
            str_of(&a["decided_by"]),
            a["reason"].as_str().unwrap_or("(no reason given)")
        );
    }
    let c = &g["credentials"];
    if c.is_object() {
        println!();
        println!("credentials (shown once; Sluice keeps only a verifier):");
        println!("  host      {}", str_of(&c["host"]));
        println!("  port      {}", c["port"]);
        println!("  user      {}", str_of(&c["user"]));
        println!("  password  {}", str_of(&c["password"]));
        println!("  database  {}", str_of(&c["database"]));
        println!("  dsn       {}", str_of(&c["dsn"]));
    } else if g["status"] == "pending" {
        println!();
        let groups: Vec<&str> = a["approver_groups"]
            .as_array()
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        println!(
            "waiting for approval {} by a member of {}",
            str_of(&a["id"]),
            if groups.is_empty() {
                "the approver groups".to_string()
            } else {
                groups.join(", ")
            }
        );
        if let Some(url) = a["url"].as_str() {
            println!("  decided at {url}");
        }
        println!(
            "  `sluice grant show {}` prints the credentials, once, after approval (or run with --wait)",
            str_of(&g["id"])
        );
    }
}
