//! One command through a gateway's own SSH listener, as a grant's holder
//! would run it with `ssh`: for the MCP endpoint's `exec` tool, so the
//! command meets the same gate (classification, guardrails, approvals,
//! masking, recording, audit) as any SSH session, by construction.
//!
//! The listener's host key is checked against the expected fingerprint
//! before the grant's secret is sent, as an agent pinning it would.

use std::sync::Arc;
use std::time::Duration;

use russh::ChannelMsg;
use russh::client;

use crate::keys::Pin;

/// What the command left, capped.
#[derive(Debug, Default)]
pub struct Ran {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The exit status, when the command ended with one.
    pub status: Option<u32>,
    /// Output past the cap was dropped (and the command ended early).
    pub cut: bool,
}

struct Pinned(Pin);

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        presented: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = presented else {
            return Ok(false);
        };
        Ok(self.0.matches(key))
    }
}

/// Runs `command` at `addr` as `user` with `password`, the listener's key
/// being `expected_key` (a SHA-256 fingerprint). Each of stdout and stderr
/// keeps at most `max_bytes`; past it, or past `limit` in time, the
/// command is left (its channel closed).
pub async fn run(
    addr: (&str, u16),
    expected_key: &str,
    user: &str,
    password: &str,
    command: &str,
    max_bytes: usize,
    limit: Duration,
) -> Result<Ran, String> {
    let config = Arc::new(client::Config {
        inactivity_timeout: Some(limit),
        ..client::Config::default()
    });
    let work = async {
        let pin = Pin::parse(expected_key)?;
        let mut handle = client::connect(config, addr, Pinned(pin))
            .await
            .map_err(|e| format!("cannot reach the gateway's SSH listener: {e}"))?;
        let auth = handle
            .authenticate_password(user, password)
            .await
            .map_err(|e| e.to_string())?;
        if !auth.success() {
            return Err("the gateway refused the grant's secret (expired or revoked?)".into());
        }
        let mut channel = handle
            .channel_open_session()
            .await
            .map_err(|e| e.to_string())?;
        channel
            .exec(true, command.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut ran = Ran::default();
        while let Some(msg) = channel.wait().await {
            let (sink, data) = match &msg {
                ChannelMsg::Data { data } => (&mut ran.stdout, data),
                ChannelMsg::ExtendedData { data, ext: 1 } => (&mut ran.stderr, data),
                ChannelMsg::ExitStatus { exit_status } => {
                    ran.status = Some(*exit_status);
                    continue;
                }
                ChannelMsg::Close => break,
                _ => continue,
            };
            let room = max_bytes.saturating_sub(sink.len());
            sink.extend_from_slice(&data[..data.len().min(room)]);
            if data.len() > room {
                ran.cut = true;
                break;
            }
        }
        let _ = channel.close().await;
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        Ok(ran)
    };
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| format!("no end within {}s", limit.as_secs()))?
}
