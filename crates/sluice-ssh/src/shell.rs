//! An interactive shell: allowed or refused by the grant's profile
//! (`shell_profiles`), never judged keystroke by keystroke (line editing,
//! completion and programs reading the terminal make typed text no
//! reliable account of what runs). An allowed shell is recorded whole:
//! what the terminal showed and what was typed, timed.

use std::sync::Arc;

use russh::server::Msg;
use russh::{Channel, ChannelMsg, Sig};
use sluice_core::guardrail::{Action, DecidedBy, Hold, StatementClass, Verdict};

use crate::conn::PtyRequest;
use crate::exec::refuse;
use crate::session::Session;
use crate::subject::Request;
use crate::terminal::{FLUSH_EVERY, Recorder};

/// Runs one shell request on its channel.
pub async fn run(session: Arc<Session>, mut client: Channel<Msg>, pty: Option<PtyRequest>) {
    let profile = session.grant.profile;
    let allowed = session
        .conn
        .ssh
        .as_ref()
        .is_some_and(|s| s.shell_profiles.contains(&profile));
    let request = Request::other(
        "(interactive shell)",
        StatementClass::Admin,
        "an interactive shell runs whatever is typed",
    );
    let verdict = Verdict {
        action: if allowed { Action::Allow } else { Action::Deny },
        rule: "default:shell".into(),
        reason: if allowed {
            format!("profile {profile} may open an interactive shell (recorded)")
        } else {
            format!(
                "profile {profile} runs commands only, no interactive shell: run `ssh HOST COMMAND`"
            )
        },
        by: DecidedBy::Profile(profile),
        hold: Hold::Wait,
    };
    let seq = match session.decide_with(&request, &verdict, "ssh-shell").await {
        Ok(seq) => seq.unwrap_or(0),
        Err(denial) => {
            refuse(&client, &denial.message).await;
            return;
        }
    };
    let (_backend, mut host) = match session.channel().await {
        Ok(c) => c,
        Err(message) => {
            refuse(&client, &message).await;
            return;
        }
    };
    let (cols, rows, term) = match &pty {
        Some(p) => {
            let _ = host
                .request_pty(
                    true,
                    &p.term,
                    p.cols,
                    p.rows,
                    p.px_width,
                    p.px_height,
                    &p.modes,
                )
                .await;
            (p.cols, p.rows, p.term.clone())
        }
        None => (80, 24, String::new()),
    };
    if host.request_shell(true).await.is_err() {
        refuse(&client, "sluice: the host refused a shell").await;
        return;
    }
    let mut rec = Recorder::new(seq, cols, rows, &term);
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => rec.tick(&session),
            m = client.wait() => match m {
                Some(ChannelMsg::Data { data }) => {
                    rec.note(&session, "i", &data);
                    if host.data_bytes(data).await.is_err() { break; }
                }
                Some(ChannelMsg::WindowChange { col_width, row_height, pix_width, pix_height }) => {
                    rec.resize(col_width, row_height);
                    let _ = host.window_change(col_width, row_height, pix_width, pix_height).await;
                }
                Some(ChannelMsg::Eof) => { let _ = host.eof().await; }
                Some(ChannelMsg::Close) | None => {
                    let _ = host.signal(Sig::HUP).await;
                    let _ = host.close().await;
                    break;
                }
                Some(_) => {}
            },
            m = host.wait() => match m {
                Some(ChannelMsg::Data { data }) => {
                    rec.note(&session, "o", &data);
                    if client.data_bytes(data).await.is_err() { break; }
                }
                Some(ChannelMsg::ExtendedData { data, ext }) => {
                    rec.note(&session, "o", &data);
                    let _ = client.extended_data_bytes(ext, data).await;
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    let _ = client.exit_status(exit_status).await;
                }
                Some(ChannelMsg::Eof) => { let _ = client.eof().await; }
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            },
        }
    }
    rec.flush(&session);
    let _ = client.close().await;
}
