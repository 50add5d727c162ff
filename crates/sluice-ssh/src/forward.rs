//! Port forwarding, for grants whose profile is in the connection's
//! `forwarding_profiles`, and refused (and recorded) for every other.
//!
//! - Local and dynamic forwards (`ssh -L`, `ssh -D`) arrive as one
//!   `direct-tcpip` channel per connection, to a `host:port` as the host
//!   will resolve it. Each is a request of its own (`forward HOST:PORT`):
//!   the target must match `forward_to`, guardrails may deny it or hold it
//!   for approval, and its decision is recorded before Sluice asks the
//!   host to connect; its end is recorded with the bytes each way.
//! - Remote forwards (`ssh -R`) ask the host to listen (`listen
//!   ADDRESS:PORT`), on its loopback only. The request is judged as above
//!   (an approval never waits here: the connection's requests are answered
//!   in order, so a held listen fails naming its approval, and passes when
//!   asked again); each connection the host then accepts comes back to the
//!   client as a `forwarded-tcpip` channel and its end is recorded against
//!   the listen.
//!
//! Forwarded bytes are not inspected: a forward is a network path, judged
//! by where it leads, like a firewall rule.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use russh::{Channel, ChannelId, ChannelMsg, ChannelOpenFailure};
use sluice_core::audit::detail::{Completed, Failure};
use sluice_core::guardrail::glob_match;
use sluice_core::guardrail::{Action, DecidedBy, Hold, Verdict};

use crate::session::Session;
use crate::subject::Request;

/// Forwarded connections one session may hold open at once.
pub const MAX_FORWARDS: usize = 64;

/// Addresses a remote forward may ask the host to listen on.
const LOOPBACK: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A local or dynamic forward: the client's `direct-tcpip` channel to
/// `target`, judged, then joined to the host's own connection there.
pub async fn local(
    session: Arc<Session>,
    client: Channel<russh::server::Msg>,
    reply: russh::server::ChannelOpenHandle,
    host: String,
    port: u32,
    origin: (String, u32),
) {
    // Judged as the host will read it, and asked for as judged.
    let host = match canonical_host(&host) {
        Ok(h) if (1..=65535).contains(&port) => h,
        Ok(_) => return reply.reject(prohibited("sluice: no such port")).await,
        Err(why) => {
            let request = Request::forward("forward", &format!("{host}:{port}"));
            session.refuse(&request, "default:forwarding", &why).await;
            return reply.reject(prohibited(&format!("sluice: {why}"))).await;
        }
    };
    let target = format!("{host}:{port}");
    let request = Request::forward("forward", &target);
    let verdict = verdict(&session, &request, Some(&target)).await;
    let seq = match session.decide_with(&request, &verdict, "ssh-forward").await {
        Ok(seq) => seq.unwrap_or(0),
        Err(denial) => {
            reply.reject(prohibited(&denial.message)).await;
            return;
        }
    };
    let Some(_slot) = Slot::take(&session) else {
        let message =
            format!("sluice: this session already holds {MAX_FORWARDS} forwarded connections");
        finish(&session, seq, Instant::now(), None, Some(&message));
        reply.reject(ChannelOpenFailure::ResourceShortage).await;
        return;
    };
    let started = Instant::now();
    let opened = match session.backend().await {
        Ok(b) => b
            .handle
            .channel_open_direct_tcpip(host, port, origin.0, origin.1)
            .await
            .map_err(|e| format!("the host could not connect to {target}: {e}")),
        Err(message) => Err(message),
    };
    let remote = match opened {
        Ok(ch) => ch,
        Err(message) => {
            finish(&session, seq, started, None, Some(&message));
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return;
        }
    };
    reply.accept().await;
    let bytes = pipe(client, remote).await;
    finish(&session, seq, started, Some(bytes), None);
}

/// A remote forward: whether the host now listens on `address:port` for
/// this session (`port` 0 asks the host to pick one, and becomes it).
pub async fn listen(session: &Session, address: &str, port: &mut u32) -> bool {
    let target = format!("{address}:{port}");
    let request = Request::forward("listen", &target);
    let mut verdict = verdict(session, &request, None).await;
    if verdict.action != Action::Deny && !LOOPBACK.contains(&address) {
        verdict = refused(
            session,
            format!(
                "a remote forward listens on the host's loopback only (localhost), not {address:?}"
            ),
        );
    }
    // Never wait here: see the module's comment.
    verdict.hold = Hold::Fail;
    let Ok(seq) = session.decide_with(&request, &verdict, "ssh-forward").await else {
        return false;
    };
    let seq = seq.unwrap_or(0);
    let mut listeners = session.listeners.lock().await;
    let bound = match session.backend().await {
        Ok(b) => b.handle.tcpip_forward(address, *port).await.ok(),
        Err(_) => None,
    };
    let Some(bound) = bound else {
        let message = format!("the host would not listen on {target}");
        finish(session, seq, Instant::now(), None, Some(&message));
        return false;
    };
    if *port == 0 {
        *port = bound;
    }
    listeners.insert((address.to_string(), *port), seq);
    true
}

/// Stops a remote forward this session asked for.
pub async fn unlisten(session: &Session, address: &str, port: u32) -> bool {
    let key = (address.to_string(), port);
    if session.listeners.lock().await.remove(&key).is_none() {
        return false;
    }
    match session.backend().await {
        Ok(b) => b.handle.cancel_tcpip_forward(address, port).await.is_ok(),
        Err(_) => false,
    }
}

/// A connection the host accepted on a remote forward's listener: passed
/// back to the client, and its end recorded against the listen.
pub async fn accepted(
    session: Arc<Session>,
    remote: Channel<russh::client::Msg>,
    reply: russh::client::ChannelOpenHandle,
    listener: (String, u32),
    origin: (String, u32),
) {
    let seq = session.listeners.lock().await.get(&listener).copied();
    let Some(seq) = seq else {
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        return;
    };
    let Some(_slot) = Slot::take(&session) else {
        reply.reject(ChannelOpenFailure::ResourceShortage).await;
        return;
    };
    let started = Instant::now();
    let client = session
        .client
        .channel_open_forwarded_tcpip(listener.0, listener.1, origin.0, origin.1)
        .await;
    match client {
        Ok(client) => {
            reply.accept().await;
            let bytes = pipe(client, remote).await;
            finish(&session, seq, started, Some(bytes), None);
        }
        Err(e) => {
            let message = format!("the client did not take the forwarded connection: {e}");
            finish(&session, seq, started, None, Some(&message));
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
        }
    }
}

/// The verdict on a forward. The profile must be in
/// `forwarding_profiles`, and a forward's target must match `forward_to`;
/// within that, a guardrail matching the request decides (deny, or hold
/// for approval), and without one the forward is allowed.
async fn verdict(session: &Session, request: &Request, target: Option<&str>) -> Verdict {
    let profile = session.grant.profile;
    let ssh = session.conn.ssh.as_ref();
    if !ssh.is_some_and(|s| s.forwarding_profiles.contains(&profile)) {
        return refused(
            session,
            format!("profile {profile} may not forward ports on this connection"),
        );
    }
    if let Some(target) = target {
        let reachable = ssh.is_some_and(|s| {
            s.forward_to
                .iter()
                .any(|g| g.trim() == "*" || glob_match(g.trim(), target))
        });
        if !reachable {
            return refused(
                session,
                format!("{target} is not among this connection's forward_to destinations"),
            );
        }
    }
    let by_rules = session.verdict(&request.facts).await;
    if by_rules.by == DecidedBy::Rule {
        return by_rules;
    }
    Verdict {
        action: Action::Allow,
        rule: "default:forwarding".into(),
        reason: format!("profile {profile} may forward ports (recorded)"),
        by: DecidedBy::Profile(profile),
        hold: Hold::Wait,
    }
}

fn refused(session: &Session, reason: String) -> Verdict {
    Verdict {
        action: Action::Deny,
        rule: "default:forwarding".into(),
        reason,
        by: DecidedBy::Profile(session.grant.profile),
        hold: Hold::Wait,
    }
}

/// The refusal the client's `ssh` prints ("administratively prohibited:
/// sluice: …").
fn prohibited(message: &str) -> ChannelOpenFailure {
    ChannelOpenFailure::Other {
        code: 1,
        reason: message.to_string(),
    }
}

/// Joins two channels until either closes: `(bytes the client sent,
/// bytes it received)`. The client's channel ends with its session (its
/// connection closing ends `wait`), so a revoked grant's forwards end too.
async fn pipe<A, B>(mut client: Channel<A>, mut remote: Channel<B>) -> (u64, u64)
where
    A: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static,
    B: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    let (mut sent, mut received) = (0u64, 0u64);
    loop {
        tokio::select! {
            m = client.wait() => match m {
                Some(ChannelMsg::Data { data }) => {
                    sent += data.len() as u64;
                    if remote.data_bytes(data).await.is_err() { break; }
                }
                Some(ChannelMsg::Eof) => { let _ = remote.eof().await; }
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            },
            m = remote.wait() => match m {
                Some(ChannelMsg::Data { data }) => {
                    received += data.len() as u64;
                    if client.data_bytes(data).await.is_err() { break; }
                }
                Some(ChannelMsg::Eof) => { let _ = client.eof().await; }
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            },
        }
    }
    let _ = client.close().await;
    let _ = remote.close().await;
    (sent, received)
}

/// Records a forwarded connection's end (joined to its request by `seq`).
fn finish(
    session: &Session,
    seq: u64,
    started: Instant,
    bytes: Option<(u64, u64)>,
    error: Option<&str>,
) {
    session.completed(&Completed {
        seq,
        protocol: "ssh-forward".into(),
        outcome: if error.is_some() { "error" } else { "ok" }.into(),
        duration_ms: started.elapsed().as_micros() as f64 / 1000.0,
        error: error.map(|m| Failure {
            sqlstate: None,
            message: Some(m.to_string()),
        }),
        bytes_sent: bytes.map(|b| b.0),
        bytes_received: bytes.map(|b| b.1),
        ..Completed::default()
    });
}

/// One of a session's [`MAX_FORWARDS`] places, given back when dropped.
struct Slot<'a>(&'a Session);

impl<'a> Slot<'a> {
    fn take(session: &'a Session) -> Option<Slot<'a>> {
        let held = session.forwards.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(session);
        (held < MAX_FORWARDS).then_some(slot)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.forwards.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A forward's host as the host's resolver will read it: an IP address in
/// any spelling `inet_aton` takes (`127.1`, `0x7f.1`, `2130706433`) in its
/// one canonical form, a DNS name in lower case without its final dot;
/// anything else is refused rather than guessed at.
pub fn canonical_host(host: &str) -> Result<String, String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(v6) = bare.parse::<std::net::Ipv6Addr>() {
        return Ok(match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        });
    }
    if let Some(v4) = inet_aton(bare) {
        return Ok(v4.to_string());
    }
    let name = bare.strip_suffix('.').unwrap_or(bare).to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    // Numbers `inet_aton` refused (`256.1.1.1`, `08.1`): not a name either.
    let number = |l: &str| {
        l.chars().all(|c| c.is_ascii_digit())
            || l.strip_prefix("0x")
                .is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
    };
    let numeric = name.split('.').all(number);
    if name.len() > 253 || !name.split('.').all(label_ok) || numeric {
        return Err(format!(
            "{host:?} is not a host name or address Sluice can judge"
        ));
    }
    Ok(name)
}

/// The IPv4 address `inet_aton` reads `s` as: one to four parts, each
/// decimal, octal (leading 0) or hex (0x); the last part fills the bytes
/// the others left.
fn inet_aton(s: &str) -> Option<std::net::Ipv4Addr> {
    let parts: Vec<u64> = s
        .split('.')
        .map(|p| {
            let (digits, radix) = match p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
                Some(h) => (h, 16),
                None if p.len() > 1 && p.starts_with('0') => (&p[1..], 8),
                None => (p, 10),
            };
            if digits.is_empty() && radix != 16 {
                return None;
            }
            if digits.is_empty() {
                return Some(0);
            }
            u64::from_str_radix(digits, radix).ok()
        })
        .collect::<Option<_>>()?;
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let (head, last) = parts.split_at(parts.len() - 1);
    if head.iter().any(|&b| b > 255) {
        return None;
    }
    let room = 8 * (4 - head.len() as u32);
    if last[0] >= 1u64 << room {
        return None;
    }
    let mut n = last[0];
    for (i, b) in head.iter().enumerate() {
        n |= b << (24 - 8 * i as u32);
    }
    Some(std::net::Ipv4Addr::from(n as u32))
}

#[cfg(test)]
mod tests {
    use super::canonical_host;

    #[test]
    fn every_spelling_of_an_address_is_judged_as_one() {
        for spelling in [
            "127.0.0.1",
            "127.1",
            "127.0.1",
            "0x7f.1",
            "0177.0.0.1",
            "2130706433",
            "0x7f000001",
            "::ffff:127.0.0.1",
            "[::ffff:127.0.0.1]",
        ] {
            assert_eq!(canonical_host(spelling).unwrap(), "127.0.0.1", "{spelling}");
        }
        assert_eq!(canonical_host("10.0.0.5").unwrap(), "10.0.0.5");
        assert_eq!(canonical_host("::1").unwrap(), "::1");
        assert_eq!(canonical_host("0:0::1").unwrap(), "::1");
    }

    #[test]
    fn names_are_lower_case_without_the_final_dot() {
        assert_eq!(canonical_host("DB.Internal.").unwrap(), "db.internal");
        assert_eq!(canonical_host("localhost").unwrap(), "localhost");
        // Hex-looking words are names unless `inet_aton` reads them.
        assert_eq!(canonical_host("cafe.bad").unwrap(), "cafe.bad");
    }

    #[test]
    fn what_a_resolver_might_read_otherwise_is_refused() {
        for odd in [
            "",
            "256.1.1.1",
            "1.2.3.4.5",
            "db internal",
            "db%eth0",
            "08.1.1.1",
            "0x1ffffffff",
            "a..b",
            "host:22",
            "fe80::1%eth0",
        ] {
            assert!(canonical_host(odd).is_err(), "{odd:?}");
        }
    }
}
