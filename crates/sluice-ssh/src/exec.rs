//! `ssh host COMMAND`: the command line is judged as a whole before any of
//! it reaches the host. Denied, the client reads why on stderr and the
//! command "exits" 126 (as a shell says a command cannot run). Allowed,
//! the line runs on the host in the shell the analysis assumed, and its
//! streams and exit status pass through; the outcome is recorded.

use std::sync::Arc;
use std::time::Instant;

use russh::server::Msg;
use russh::{Channel, ChannelMsg, Sig};
use sluice_core::audit::EventKind;
use sluice_core::audit::detail::{self, Completed, Failure};

use crate::conn::PtyRequest;
use crate::session::Session;
use crate::subject::Request;

/// The exit status of a command that did not run.
pub const REFUSED: u32 = 126;

/// Runs one `exec` request on its channel.
pub async fn run(
    session: Arc<Session>,
    mut client: Channel<Msg>,
    command: Vec<u8>,
    pty: Option<PtyRequest>,
) {
    let max = session.shared.config.ssh.max_command_bytes;
    let line = match String::from_utf8(command) {
        Ok(l) if l.len() <= max => l,
        Ok(l) => {
            let request = Request::other(
                &format!("{}…", l.chars().take(200).collect::<String>()),
                sluice_core::guardrail::StatementClass::Unknown,
                "command line too long",
            );
            session
                .refuse(&request, "default:command-size", "command line too long")
                .await;
            refuse(
                &client,
                &format!(
                    "sluice: the command line is {} bytes, more than this gateway judges ({max})",
                    l.len()
                ),
            )
            .await;
            return;
        }
        Err(_) => {
            refuse(&client, "sluice: the command line is not UTF-8 text").await;
            return;
        }
    };
    let request = Request::command(&line);
    let seq = match session.decide(&request, &request.facts, "ssh").await {
        Ok(seq) => seq,
        Err(denial) => {
            refuse(&client, &denial.message).await;
            return;
        }
    };
    let started = Instant::now();
    let backend = match session.backend().await {
        Ok(b) => b,
        Err(message) => {
            refuse(&client, &message).await;
            return;
        }
    };
    let mut host = match backend.handle.channel_open_session().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "ssh backend channel failed");
            refuse(&client, "sluice: the host did not open a channel").await;
            return;
        }
    };
    if let Some(p) = &pty
        && let Err(e) = host
            .request_pty(
                true,
                &p.term,
                p.cols,
                p.rows,
                p.px_width,
                p.px_height,
                &p.modes,
            )
            .await
    {
        tracing::debug!(error = %e, "backend pty request failed");
    }
    let shell = session
        .conn
        .ssh
        .as_ref()
        .map_or("/bin/bash", |s| s.shell.as_str());
    if let Err(e) = host.exec(true, sluice_shell::pinned(shell, &line)).await {
        tracing::warn!(error = %e, "ssh backend exec failed");
        refuse(&client, "sluice: the host refused to run the command").await;
        return;
    }
    let status = pump(&mut client, &mut host).await;
    record(&session, seq, started, status);
    let _ = client.close().await;
}

/// Carries streams both ways until the command ends; its exit status, or
/// `None` if the host sent none (killed, or the client left first).
async fn pump(client: &mut Channel<Msg>, host: &mut Channel<russh::client::Msg>) -> Option<u32> {
    let mut status = None;
    loop {
        tokio::select! {
            m = client.wait() => match m {
                Some(ChannelMsg::Data { data }) => {
                    if host.data_bytes(data).await.is_err() { break; }
                }
                Some(ChannelMsg::Eof) => { let _ = host.eof().await; }
                Some(ChannelMsg::WindowChange { col_width, row_height, pix_width, pix_height }) => {
                    let _ = host.window_change(col_width, row_height, pix_width, pix_height).await;
                }
                Some(ChannelMsg::Signal { signal }) => { let _ = host.signal(signal).await; }
                Some(ChannelMsg::Close) | None => {
                    // The client left: stop the command, not only its pipes.
                    let _ = host.signal(Sig::TERM).await;
                    let _ = host.close().await;
                    break;
                }
                Some(_) => {}
            },
            m = host.wait() => match m {
                Some(ChannelMsg::Data { data }) => {
                    if client.data_bytes(data).await.is_err() { break; }
                }
                Some(ChannelMsg::ExtendedData { data, ext }) => {
                    let _ = client.extended_data_bytes(ext, data).await;
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    status = Some(exit_status);
                    let _ = client.exit_status(exit_status).await;
                }
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    // Killed by a signal: told as a shell tells it.
                    tracing::debug!(signal = ?signal_name, "the command was killed by a signal");
                    status = Some(255);
                    let _ = client.exit_status(255).await;
                }
                Some(ChannelMsg::Eof) => { let _ = client.eof().await; }
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            },
        }
    }
    status
}

/// The command's outcome, after its decision (joined by `seq`).
fn record(session: &Session, seq: Option<u64>, started: Instant, status: Option<u32>) {
    let (outcome, error) = match status {
        Some(0) => ("ok", None),
        Some(n) => (
            "error",
            Some(Failure {
                sqlstate: Some(format!("exit {n}")),
                message: None,
            }),
        ),
        None => (
            "error",
            Some(Failure {
                sqlstate: None,
                message: Some("ended without an exit status".into()),
            }),
        ),
    };
    let event = session
        .event(EventKind::StatementCompleted)
        .detail(detail::to_value(&Completed {
            seq: seq.unwrap_or(0),
            index: 0,
            protocol: "ssh".into(),
            outcome: outcome.into(),
            command: None,
            rows: None,
            duration_ms: started.elapsed().as_micros() as f64 / 1000.0,
            error,
            masked: Default::default(),
        }));
    if session.shared.audit.record_later(event).is_err() {
        tracing::warn!(session.id = %session.id, "a command's outcome could not be recorded");
    }
}

/// Tells the client why nothing ran, and ends the channel as a command
/// that could not run.
pub async fn refuse(client: &Channel<Msg>, message: &str) {
    let text = format!("{message}\r\n");
    let _ = client.extended_data_bytes(1, text.into_bytes()).await;
    let _ = client.exit_status(REFUSED).await;
    let _ = client.eof().await;
    let _ = client.close().await;
}
