//! `ssh host COMMAND`: the command line is judged as a whole before any of
//! it reaches the host. Denied, the client reads why on stderr and the
//! command "exits" 126 (as a shell says a command cannot run). Allowed,
//! the line runs on the host in the shell the analysis assumed, and its
//! streams and exit status pass through; the outcome is recorded.

use std::sync::Arc;
use std::time::Instant;

use russh::server::Msg;
use russh::{Channel, ChannelMsg, Sig};
use sluice_core::audit::detail::{Completed, Failure};

use crate::conn::PtyRequest;
use crate::outmask::OutMask;
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
    let request = Request::command_bounded(&line).await;
    let seq = match session.decide(&request, &request.facts, "ssh").await {
        Ok(seq) => seq,
        Err(denial) => {
            refuse(&client, &denial.message).await;
            return;
        }
    };
    let started = Instant::now();
    let (backend, mut host) = match session.channel().await {
        Ok(c) => c,
        Err(message) => {
            refuse(&client, &message).await;
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
    if let Err(e) = host.exec(true, with_group_marker(shell, &line)).await {
        tracing::warn!(error = %e, "ssh backend exec failed");
        refuse(&client, "sluice: the host refused to run the command").await;
        return;
    }
    // On a terminal, stderr is stdout: the marker comes there.
    let marked = if pty.is_some() {
        Stream::Out
    } else {
        Stream::Err
    };
    let masker = session.masker.clone();
    let mut out = masker.as_deref().map(OutMask::new);
    let mut err = masker.as_deref().map(OutMask::new);
    let status = pump(
        &mut client,
        &mut host,
        &backend,
        marked,
        (&mut out, &mut err),
    )
    .await;
    let mut masked = std::collections::BTreeMap::new();
    for m in out.iter().chain(err.iter()) {
        m.count_into(&mut masked);
    }
    record(&session, seq, started, status, masked);
    let _ = client.close().await;
}

/// The first line the command's stderr carries: its process group, so
/// Sluice can stop the command when its session ends (sshd does not
/// deliver `signal` requests to root's sessions, and a closed channel
/// stops only a command that reads or writes). Not passed to the client.
const GROUP_MARKER: &str = "\u{1e}sluice-pgid:";

/// The line as the host's login shell is given it: note the process group
/// (sshd makes each command a session leader, so `$$` is its group) on
/// stderr, then become the pinned shell running the line. Works in every
/// POSIX login shell.
fn with_group_marker(shell: &str, line: &str) -> String {
    format!(
        "printf '\\036sluice-pgid:%s\\n' \"$$\" >&2; {}",
        sluice_shell::pinned(shell, line)
    )
}

/// Takes the group marker off the start of the command's stderr.
#[derive(Default)]
struct Marker {
    held: Vec<u8>,
    done: bool,
    group: Option<u32>,
}

impl Marker {
    /// What of `data` the client gets (the marker line held back).
    fn strip(&mut self, data: &[u8]) -> Vec<u8> {
        if self.done {
            return data.to_vec();
        }
        self.held.extend_from_slice(data);
        let Some(end) = self.held.iter().position(|&b| b == b'\n') else {
            if self.held.len() > 64 {
                self.done = true;
                return std::mem::take(&mut self.held);
            }
            return Vec::new();
        };
        self.done = true;
        let line = String::from_utf8_lossy(&self.held[..end]).into_owned();
        let number = line.trim_end_matches('\r');
        match number
            .strip_prefix(GROUP_MARKER)
            .and_then(|n| n.parse().ok())
        {
            Some(group) => {
                self.group = Some(group);
                self.held.drain(..=end);
                std::mem::take(&mut self.held)
            }
            None => std::mem::take(&mut self.held),
        }
    }
}

/// Stops a command's process group on the host (Sluice's own request,
/// not the agent's: not judged).
async fn stop_group(backend: &crate::backend::Backend, group: u32) {
    if let Ok(ch) = backend.handle.channel_open_session().await {
        let _ = ch
            .exec(false, format!("kill -TERM -- -{group} 2>/dev/null"))
            .await;
        let _ = ch.close().await;
    }
}

/// Carries streams both ways until the command ends; its exit status, or
/// `None` if the host sent none (killed, or the client left first).
/// Which of the command's streams carries the group marker.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// A stream's masking, when the session has one.
type Masks<'a, 'm> = (&'a mut Option<OutMask<'m>>, &'a mut Option<OutMask<'m>>);

/// `data` as the client may see it: through the stream's masking.
fn through(mask: &mut Option<OutMask<'_>>, data: &[u8]) -> Vec<u8> {
    match mask {
        Some(m) => m.push(data),
        None => data.to_vec(),
    }
}

/// Passes what the maskings hold (an idle line, or the stream's end).
async fn drain(client: &Channel<Msg>, (out, err): Masks<'_, '_>) {
    if let Some(m) = out {
        let held = m.flush();
        if !held.is_empty() {
            let _ = client.data_bytes(held).await;
        }
    }
    if let Some(m) = err {
        let held = m.flush();
        if !held.is_empty() {
            let _ = client.extended_data_bytes(1, held).await;
        }
    }
}

async fn pump(
    client: &mut Channel<Msg>,
    host: &mut Channel<russh::client::Msg>,
    backend: &crate::backend::Backend,
    marked: Stream,
    (out, err): Masks<'_, '_>,
) -> Option<u32> {
    let mut marker = Marker::default();
    let mut status = None;
    loop {
        let holding = out.as_ref().is_some_and(OutMask::holding)
            || err.as_ref().is_some_and(OutMask::holding);
        tokio::select! {
            _ = tokio::time::sleep(crate::outmask::IDLE), if holding => {
                drain(client, (&mut *out, &mut *err)).await;
            }
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
                    // The client left (or its session was ended): stop the
                    // command, not only its pipes.
                    let _ = host.signal(Sig::TERM).await;
                    if let Some(group) = marker.group {
                        stop_group(backend, group).await;
                    }
                    let _ = host.close().await;
                    break;
                }
                Some(_) => {}
            },
            m = host.wait() => match m {
                Some(ChannelMsg::Data { data }) => {
                    let data = if marked == Stream::Out { marker.strip(&data) } else { data.to_vec() };
                    let data = through(out, &data);
                    if !data.is_empty() && client.data_bytes(data).await.is_err() { break; }
                }
                Some(ChannelMsg::ExtendedData { data, ext }) => {
                    let data = if ext == 1 && marked == Stream::Err {
                        marker.strip(&data)
                    } else {
                        data.to_vec()
                    };
                    let data = if ext == 1 { through(err, &data) } else { data };
                    if !data.is_empty() {
                        let _ = client.extended_data_bytes(ext, data).await;
                    }
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    drain(client, (&mut *out, &mut *err)).await;
                    status = Some(exit_status);
                    let _ = client.exit_status(exit_status).await;
                }
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    // Killed by a signal: told as a shell tells it.
                    tracing::debug!(signal = ?signal_name, "the command was killed by a signal");
                    status = Some(255);
                    let _ = client.exit_status(255).await;
                }
                Some(ChannelMsg::Eof) => {
                    drain(client, (&mut *out, &mut *err)).await;
                    let _ = client.eof().await;
                }
                Some(ChannelMsg::Close) | None => {
                    drain(client, (&mut *out, &mut *err)).await;
                    break;
                }
                Some(_) => {}
            },
        }
    }
    status
}

/// The command's outcome, after its decision (joined by `seq`).
fn record(
    session: &Session,
    seq: Option<u64>,
    started: Instant,
    status: Option<u32>,
    masked: std::collections::BTreeMap<String, u64>,
) {
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
    session.completed(&Completed {
        seq: seq.unwrap_or(0),
        index: 0,
        protocol: "ssh".into(),
        outcome: outcome.into(),
        command: None,
        rows: None,
        duration_ms: started.elapsed().as_micros() as f64 / 1000.0,
        error,
        masked,
        ..Completed::default()
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_marker_is_taken_off_stderr_however_it_arrives() {
        let mut m = Marker::default();
        assert!(m.strip(b"\x1esluice-pg").is_empty());
        assert_eq!(m.strip(b"id:4242\nreal error\n"), b"real error\n");
        assert_eq!(m.group, Some(4242));
        assert_eq!(m.strip(b"more"), b"more");

        let mut plain = Marker::default();
        assert_eq!(plain.strip(b"no marker\n"), b"no marker\n");
        assert_eq!(plain.group, None);
    }
}
