//! `sluice login`, `logout`, `whoami`: a token kept for the gateway
//! (`SLUICE_URL`) so every other command works without `SLUICE_TOKEN`.
//! The token itself is never printed.

use anyhow::Result;
use serde_json::{Value, json};
use std::process::ExitCode;

use super::cache;
use super::client::Client;
use super::failure::{Code, fail};
use super::token::{self, TokenArgs};

/// Gets a token as `sluice token` would, checks that the gateway accepts
/// it, and caches it.
pub async fn login(mut a: TokenArgs, json: bool) -> Result<ExitCode> {
    a.json = json;
    let tokens = token::obtain(&a).await?;
    let client = Client::from_env()?.with_token(&tokens.access);
    // The gateway must accept it: a token it refuses is not kept.
    let me = client.get("/v1/whoami").await?;
    let path = cache::store(client.base(), &tokens, &token::issuer_of(&a))?;
    let exp = cache::claims(&tokens.access)["exp"].clone();
    if json {
        println!(
            "{}",
            json!({
                "identity": me,
                "expires_at": exp,
                "refreshable": tokens.refresh.is_some(),
                "cache": path,
            })
        );
    } else {
        println!(
            "logged in to {} as {} ({}); the token expires at {}; kept in {}",
            client.base(),
            s(&me["name"]),
            s(&me["kind"]),
            when(&exp),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Forgets the gateway's cached token.
pub fn logout(json: bool) -> Result<ExitCode> {
    let client = Client::from_env()?;
    let had = cache::remove(client.base())?;
    if json {
        println!("{}", json!({ "logged_out": had, "gateway": client.base() }));
    } else if had {
        println!("logged out of {}", client.base());
    } else {
        println!("not logged in to {}", client.base());
    }
    Ok(ExitCode::SUCCESS)
}

/// Who the gateway takes the current token for.
pub async fn whoami(json: bool) -> Result<ExitCode> {
    let client = Client::from_env()?;
    let Some(token) = client.bearer() else {
        return Err(fail(
            Code::Unauthorized,
            "not logged in: run `sluice login` (or set SLUICE_TOKEN)",
        ));
    };
    let exp = cache::claims(token)["exp"].clone();
    let me = client.get("/v1/whoami").await?;
    if json {
        let mut out = me.clone();
        out["token_expires_at"] = exp;
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let groups: Vec<&str> = me["groups"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    println!("identity  {} ({})", s(&me["name"]), s(&me["subject"]));
    println!("kind      {}", s(&me["kind"]));
    println!("groups    {}", groups.join(", "));
    println!("issuer    {}", s(&me["issuer"]));
    println!("expires   {}", when(&exp));
    Ok(ExitCode::SUCCESS)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn when(exp: &Value) -> String {
    exp.as_i64()
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| "(unknown)".into())
}

/// The gateway's readiness, who the token is, and the grants in force.
pub async fn status(json: bool) -> Result<ExitCode> {
    let client = Client::from_env()?;
    let (ready, said) = client.ready().await;
    let me = match client.bearer() {
        Some(_) => client.get("/v1/whoami").await.ok(),
        None => None,
    };
    let grants: Vec<Value> = match &me {
        Some(_) => client.get("/v1/grants").await?["grants"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|g| g["status"] == "active" || g["status"] == "pending")
            .collect(),
        None => Vec::new(),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "gateway": client.base(),
                "ready": ready,
                "readiness": said,
                "identity": me,
                "grants": grants,
            }))?
        );
    } else {
        println!("gateway   {} ({said})", client.base());
        match &me {
            Some(m) => println!("identity  {} ({})", s(&m["name"]), s(&m["kind"])),
            None => println!("identity  not logged in (`sluice login`)"),
        }
        for g in &grants {
            println!(
                "grant     {} {} on {} until {}",
                s(&g["id"]),
                s(&g["status"]),
                s(&g["connection"]),
                s(&g["expires_at"])
            );
        }
    }
    Ok(if ready {
        ExitCode::SUCCESS
    } else {
        Code::Unavailable.exit()
    })
}
