//! `sluice sessions list|show|replay`: recorded sessions, from the API.

use anyhow::{Result, bail};
use clap::Subcommand;
use serde_json::Value;
use sluice_audit::replay::{self, Timeline};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use super::client::Client;

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// Recorded sessions, newest first (yours, or all for admins and approvers).
    List {
        /// Only this identity (subject or display name).
        #[arg(long)]
        identity: Option<String>,
        /// Only this connection.
        #[arg(long)]
        connection: Option<String>,
        /// Sessions open at or after this time (RFC 3339, or a duration ago: 2h).
        #[arg(long)]
        since: Option<String>,
        /// Sessions opened at or before this time (RFC 3339, or a duration ago).
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// A session's summary and whole timeline, at once.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Plays a session back at its recorded pace: statements, decisions,
    /// results as the client saw them.
    Replay {
        id: String,
        /// 1 (as recorded), 10 (ten times faster), any factor, or max (no waiting).
        #[arg(long, default_value = "1")]
        speed: String,
    },
    /// Writes a recorded interactive shell as an asciicast v2 file on
    /// stdout (`sluice sessions cast s_… > shell.cast; asciinema play shell.cast`).
    Cast {
        id: String,
        /// Which shell of the session, by its request number (default: the first).
        #[arg(long)]
        shell: Option<u64>,
    },
}

pub async fn run(cmd: SessionsCommand) -> Result<ExitCode> {
    let client = Client::from_env()?;
    match cmd {
        SessionsCommand::List {
            identity,
            connection,
            since,
            until,
            limit,
            json,
        } => {
            let mut query = vec![format!("limit={limit}")];
            for (k, v) in [
                ("identity", identity),
                ("connection", connection),
                ("since", since),
                ("until", until),
            ] {
                if let Some(v) = v {
                    query.push(format!("{k}={}", encode(&v)));
                }
            }
            let body = client
                .get(&format!("/v1/sessions?{}", query.join("&")))
                .await?;
            let items = body["sessions"].as_array().cloned().unwrap_or_default();
            if json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else if items.is_empty() {
                println!("no recorded sessions match");
            } else {
                for s in &items {
                    println!("{}", list_line(s));
                }
            }
        }
        SessionsCommand::Show { id, json } => {
            let body = client.get(&format!("/v1/sessions/{}", encode(&id))).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                play(&timeline_of(&body)?, None).await?;
            }
        }
        SessionsCommand::Replay { id, speed } => {
            let speed = parse_speed(&speed)?;
            let body = client.get(&format!("/v1/sessions/{}", encode(&id))).await?;
            play(&timeline_of(&body)?, speed).await?;
        }
        SessionsCommand::Cast { id, shell } => {
            let query = shell.map(|s| format!("?shell={s}")).unwrap_or_default();
            let cast = client
                .get_text(&format!("/v1/sessions/{}/cast{query}", encode(&id)))
                .await?;
            std::io::stdout().lock().write_all(cast.as_bytes())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `None` is "max": no waiting.
fn parse_speed(s: &str) -> Result<Option<f64>> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(None);
    }
    match s.trim_end_matches('x').parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(Some(f)),
        _ => bail!("--speed must be a positive factor (1, 10) or max"),
    }
}

fn timeline_of(body: &Value) -> Result<Timeline> {
    Ok(serde_json::from_value(body["timeline"].clone())?)
}

/// Prints the timeline, sleeping the recorded gaps divided by `speed`.
async fn play(t: &Timeline, speed: Option<f64>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let mut at = 0i64;
    for line in replay::render(t) {
        if let Some(speed) = speed {
            let gap = (line.offset_ms - at).max(0) as f64 / speed;
            if gap >= 1.0 {
                out.flush()?;
                tokio::time::sleep(Duration::from_millis(gap as u64)).await;
            }
        }
        at = at.max(line.offset_ms);
        writeln!(out, "{}", line.text)?;
    }
    out.flush()?;
    Ok(())
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn list_line(v: &Value) -> String {
    let who = v["identity"]["name"]
        .as_str()
        .or(v["identity"]["subject"].as_str())
        .unwrap_or("?");
    let counts = match (
        v["statements_allowed"].as_u64(),
        v["statements_denied"].as_u64(),
    ) {
        (Some(a), Some(d)) => format!("{a} allowed, {d} denied"),
        _ => String::new(),
    };
    let duration = v["duration_ms"]
        .as_u64()
        .map(|ms| format!("{}.{:03}s", ms / 1000, ms % 1000))
        .unwrap_or_else(|| "-".into());
    format!(
        "{}  {}  {:<16} {:<14} {:<6} {:>9}  {}",
        s(&v["id"]),
        s(&v["opened_at"]),
        who,
        s(&v["connection"]),
        s(&v["state"]),
        duration,
        counts
    )
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_and_encoding() {
        assert_eq!(parse_speed("max").unwrap(), None);
        assert_eq!(parse_speed("10").unwrap(), Some(10.0));
        assert_eq!(parse_speed("2x").unwrap(), Some(2.0));
        assert!(parse_speed("0").is_err());
        assert!(parse_speed("fast").is_err());
        assert_eq!(encode("a b+c@x"), "a%20b%2Bc%40x");
    }
}
