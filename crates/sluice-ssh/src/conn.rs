//! One client connection: login (the grant's secret, or an OIDC token),
//! then its channels, each handed to a runner task (so a held command
//! never stalls the connection) — `exec`, `shell` and the `sftp`
//! subsystem — and everything else refused and recorded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use russh::server::{Auth, ChannelOpenHandle, Handler, Msg, Session as Wire};
use russh::{Channel, ChannelId, MethodKind, MethodSet, Pty};
use sluice_core::audit::detail::SessionRejected;
use sluice_core::audit::{AuditEvent, EventKind};
use sluice_core::config::ConnectionKind;
use sluice_core::guardrail::StatementClass;
use sluice_core::secret::ScramVerifier;
use sluice_core::{Grant, GrantStatus};
use sluice_gate::is_grant_id;
use tokio::net::TcpStream;

use crate::Shared;
use crate::session::Session;
use crate::subject::Request;

/// A terminal the client asked for, replayed on the backend's channel.
#[derive(Debug, Clone)]
pub struct PtyRequest {
    pub term: String,
    pub cols: u32,
    pub rows: u32,
    pub px_width: u32,
    pub px_height: u32,
    pub modes: Vec<(Pty, u32)>,
}

/// Serves one TCP connection to its end.
pub async fn serve(
    shared: Arc<Shared>,
    tcp: TcpStream,
    addr: SocketAddr,
    pending: sluice_gate::Pending,
) {
    let authenticated = Arc::new(AtomicBool::new(false));
    let handler = Conn {
        pending: Some(pending),
        shared: shared.clone(),
        addr,
        session: None,
        channels: HashMap::new(),
        ptys: HashMap::new(),
        authenticated: authenticated.clone(),
        prompted: false,
        verified: None,
    };
    let (tcp, cutter) = crate::cut::Cuttable::new(tcp);
    let auth_timeout = shared.config.ssh.auth_timeout.0;
    // The version exchange and key exchange happen inside run_stream: a
    // client that sends nothing is cut off there too.
    let opening = {
        let cutter = cutter.clone();
        let authenticated = authenticated.clone();
        tokio::spawn(async move {
            tokio::time::sleep(auth_timeout).await;
            if !authenticated.load(Ordering::SeqCst) {
                tracing::info!(client.addr = %addr, "ssh login timed out");
                cutter.cut();
            }
        })
    };
    let running = match russh::server::run_stream(shared.server.clone(), tcp, handler).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(client.addr = %addr, error = %e, "ssh handshake failed");
            return;
        }
    };
    // Pre-authentication time is capped (the task above); after login the
    // session runs until its client, its grant or the gateway ends it.
    log_end(addr, running.await);
    opening.abort();
}

fn log_end(addr: SocketAddr, r: Result<(), russh::Error>) {
    if let Err(e) = r {
        tracing::debug!(client.addr = %addr, error = %e, "ssh connection ended");
    }
}

struct Conn {
    shared: Arc<Shared>,
    addr: SocketAddr,
    session: Option<Arc<Session>>,
    channels: HashMap<ChannelId, Channel<Msg>>,
    ptys: HashMap<ChannelId, PtyRequest>,
    authenticated: Arc<AtomicBool>,
    /// The listener's place for a connection logging in, given back at
    /// login (or when the connection ends).
    pending: Option<sluice_gate::Pending>,
    /// Keyboard-interactive: the secret's prompt was sent.
    prompted: bool,
    /// A login proven, opened as a session once russh confirms it.
    verified: Option<Verified>,
}

/// A proven login before its session opens.
struct Verified {
    grant: Grant,
    conn: sluice_core::config::ConnectionConfig,
    seat: sluice_gate::Seat,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(session) = self.session.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move { session.close("client closed").await });
        }
    }
}

fn reject() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(MethodSet::from(
            &[
                MethodKind::PublicKey,
                MethodKind::Password,
                MethodKind::KeyboardInteractive,
            ][..],
        )),
        partial_success: false,
    }
}

impl Conn {
    /// Checks `user` and `secret`: a grant id and its secret, or a
    /// connection name and an OIDC token. The session opens at
    /// `auth_succeeded`.
    async fn login(&mut self, user: &str, secret: &str) -> Auth {
        let grant = match self.grant_of(user, secret).await {
            Ok(g) => g,
            Err(reason) => {
                self.refuse(user, reason).await;
                return reject();
            }
        };
        self.admit(user, grant).await
    }

    /// Takes a session's seat for a proven grant; the session opens at
    /// `auth_succeeded`.
    async fn admit(&mut self, user: &str, grant: Grant) -> Auth {
        let Some(conn) = self.shared.config.connection(&grant.connection).cloned() else {
            self.refuse(user, "unknown connection").await;
            return reject();
        };
        let seat = match self.shared.seats.take(&grant, &conn.limits) {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(reason = %e, "ssh session refused by a session limit");
                self.shared.metrics.login(&grant.connection, "limit");
                self.refuse(user, "session limit").await;
                return reject();
            }
        };
        self.verified = Some(Verified { grant, conn, seat });
        Auth::Accept
    }

    /// Logs in grant `user` by the public key registered with it: the key
    /// (its signature already checked by russh) must be the grant's own.
    async fn login_by_key(&mut self, user: &str, offered: &russh::keys::PublicKey) -> Auth {
        let grant = match self.shared.control.grant(user).await {
            Ok(Some(g)) if is_grant_id(user) && same_key(g.ssh_key.as_deref(), offered) => g,
            _ => {
                self.refuse(user, "unknown grant or not its key").await;
                return reject();
            }
        };
        match self.usable(grant) {
            Ok(grant) => self.admit(user, grant).await,
            Err(reason) => {
                self.refuse(user, reason).await;
                reject()
            }
        }
    }

    /// Whether `offered` is the public key registered on grant `user`.
    async fn registered_key(&self, user: &str, offered: &russh::keys::PublicKey) -> bool {
        if !is_grant_id(user) {
            return false;
        }
        let Ok(Some(grant)) = self.shared.control.grant(user).await else {
            return false;
        };
        same_key(grant.ssh_key.as_deref(), offered)
    }

    /// The grant `user` and `secret` prove, or why not (in words safe for
    /// the record: never the secret).
    async fn grant_of(&self, user: &str, secret: &str) -> Result<Grant, &'static str> {
        let grant = if is_grant_id(user) {
            let grant = match self.shared.control.grant(user).await {
                Ok(Some(g)) => g,
                Ok(None) => {
                    // The same work as a real check, so both fail alike.
                    let _ = ScramVerifier::derive("decoy").verify(secret);
                    return Err("wrong secret or unknown grant");
                }
                Err(e) => {
                    tracing::error!(error = %e, "grant lookup failed");
                    return Err("grant store unavailable");
                }
            };
            let ok = ScramVerifier::parse(&grant.scram_verifier).is_some_and(|v| v.verify(secret));
            if !ok {
                return Err("wrong secret or unknown grant");
            }
            grant
        } else {
            // The connection's name as the user, an OIDC token as the
            // password: SSH's channel is encrypted, so the token travels
            // as safely as over TLS. No grant is made for a connection
            // this listener does not serve.
            let ssh = self
                .shared
                .config
                .connection(user)
                .is_some_and(|c| c.kind == ConnectionKind::Ssh);
            if !ssh {
                return Err("unknown connection");
            }
            self.shared
                .control
                .grant_from_token(secret, user, self.addr)
                .await
                .map_err(|_| "token refused")?
        };
        self.usable(grant)
    }

    /// A proven grant must be active, unexpired, and for an SSH connection.
    fn usable(&self, grant: Grant) -> Result<Grant, &'static str> {
        if grant.status != GrantStatus::Active {
            return Err("grant not active");
        }
        if grant.expires_at <= sluice_core::clock::now() {
            return Err("grant expired");
        }
        match self.shared.config.connection(&grant.connection) {
            Some(c) if c.kind == ConnectionKind::Ssh => Ok(grant),
            _ => Err("grant is not for an ssh connection"),
        }
    }

    /// Records a refused login.
    async fn refuse(&self, user: &str, reason: &str) {
        let mut event = AuditEvent::new(EventKind::SessionRejected).with(&SessionRejected {
            reason: reason.to_string(),
            cause: None,
            client_addr: Some(self.addr.to_string()),
            sqlstate: None,
        });
        if is_grant_id(user) {
            event = event.grant(user);
        }
        if let Err(e) = self.shared.audit.record(event).await {
            tracing::error!(error = %e, "could not audit a refused ssh login");
        }
        self.shared.metrics.login("unknown", "refused");
        tracing::info!(client.addr = %self.addr, reason, "ssh login refused");
    }

    fn session(&self) -> Result<Arc<Session>, russh::Error> {
        self.session.clone().ok_or(russh::Error::Inconsistent)
    }

    /// Records a request Sluice does not pass.
    async fn refused(&self, text: &str, rule: &str, reason: &str) {
        if let Some(s) = &self.session {
            let request = Request::other(text, StatementClass::Admin, reason);
            s.refuse(&request, rule, reason).await;
        }
    }
}

impl Handler for Conn {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        Ok(self.login(user, password).await)
    }

    /// A key is worth signing with only if it is the one registered on
    /// grant `user`. Clients offer every key they hold, so a wrong offer is
    /// turned away quietly: not recorded, not counted as a failed login.
    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.registered_key(user, offer.public_key).await {
            Auth::Accept
        } else {
            reject()
        })
    }

    /// Only keys that passed `auth_publickey_offered` reach this; russh has
    /// checked the client holds the key's private half.
    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.login_by_key(user, key.public_key).await)
    }

    /// OpenSSH asks for the password this way when it prefers
    /// keyboard-interactive: one prompt, the grant's secret (or the token).
    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        match response {
            Some(mut answers) if self.prompted => {
                self.prompted = false;
                let Some(secret) = answers.next() else {
                    return Ok(reject());
                };
                let secret = String::from_utf8_lossy(&secret).into_owned();
                Ok(self.login(user, &secret).await)
            }
            _ => {
                self.prompted = true;
                Ok(Auth::Partial {
                    name: "sluice".into(),
                    instructions: "".into(),
                    prompts: vec![("Grant secret (or token): ".into(), false)].into(),
                })
            }
        }
    }

    async fn auth_succeeded(&mut self, wire: &mut Wire) -> Result<(), Self::Error> {
        let Some(v) = self.verified.take() else {
            return Err(russh::Error::Inconsistent);
        };
        let session = Session::open(
            self.shared.clone(),
            v.grant,
            v.conn,
            v.seat,
            self.addr.to_string(),
            wire.handle(),
        )
        .await;
        self.session = Some(session);
        self.authenticated.store(true, Ordering::SeqCst);
        self.pending = None;
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        if self.session.is_none() {
            return Ok(());
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        self.ptys.remove(&channel);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        cols: u32,
        rows: u32,
        px_width: u32,
        px_height: u32,
        modes: &[(Pty, u32)],
        wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        self.ptys.insert(
            channel,
            PtyRequest {
                term: term.to_string(),
                cols,
                rows,
                px_width,
                px_height,
                modes: modes.to_vec(),
            },
        );
        wire.channel_success(channel)?;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        let session = self.session()?;
        let Some(client) = self.channels.remove(&channel) else {
            wire.channel_failure(channel)?;
            return Ok(());
        };
        wire.channel_success(channel)?;
        let command = data.to_vec();
        let pty = self.ptys.remove(&channel);
        tokio::spawn(crate::exec::run(session, client, command, pty));
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        let session = self.session()?;
        let Some(client) = self.channels.remove(&channel) else {
            wire.channel_failure(channel)?;
            return Ok(());
        };
        wire.channel_success(channel)?;
        let pty = self.ptys.remove(&channel);
        tokio::spawn(crate::shell::run(session, client, pty));
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        let session = self.session()?;
        let offered = name == "sftp" && session.conn.ssh.as_ref().is_some_and(|s| s.sftp);
        if !offered {
            self.refused(
                &format!("subsystem {name}"),
                "default:subsystem",
                &format!("the {name} subsystem is not offered on this connection"),
            )
            .await;
            wire.channel_failure(channel)?;
            return Ok(());
        }
        let Some(client) = self.channels.remove(&channel) else {
            wire.channel_failure(channel)?;
            return Ok(());
        };
        wire.channel_success(channel)?;
        tokio::spawn(crate::sftp::run(session, client));
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        _value: &str,
        wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        // The value is the client's and may be anything: only the name is
        // recorded.
        self.refused(
            &format!("env {name}"),
            "default:env",
            "environment variables are not passed to the host",
        )
        .await;
        wire.channel_failure(channel)?;
        Ok(())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single: bool,
        _protocol: &str,
        _cookie: &str,
        _screen: u32,
        wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        self.refused(
            "x11 forwarding",
            "default:forwarding",
            "X11 forwarding is not offered",
        )
        .await;
        wire.channel_failure(channel)?;
        Ok(())
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _wire: &mut Wire,
    ) -> Result<bool, Self::Error> {
        self.refused(
            "agent forwarding",
            "default:forwarding",
            "agent forwarding is not offered: Sluice holds the host's credential",
        )
        .await;
        Ok(false)
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _wire: &mut Wire,
    ) -> Result<bool, Self::Error> {
        let session = self.session()?;
        Ok(crate::forward::listen(&session, address, port).await)
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _wire: &mut Wire,
    ) -> Result<bool, Self::Error> {
        let session = self.session()?;
        Ok(crate::forward::unlisten(&session, address, port).await)
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        origin: &str,
        origin_port: u32,
        reply: ChannelOpenHandle,
        _wire: &mut Wire,
    ) -> Result<(), Self::Error> {
        // Judged in its own task, so a forward held for approval never
        // stalls the connection; dropping the reply refuses the channel.
        let session = self.session()?;
        tokio::spawn(crate::forward::local(
            session,
            channel,
            reply,
            host.to_string(),
            port,
            (origin.to_string(), origin_port),
        ));
        Ok(())
    }
}

/// Whether `offered` is the `registered` OpenSSH public key line (comments
/// aside); no registered key matches nothing.
fn same_key(registered: Option<&str>, offered: &russh::keys::PublicKey) -> bool {
    let Some(registered) = registered.and_then(|k| sluice_core::grant::ssh_public_key(k).ok())
    else {
        return false;
    };
    let offered = offered.to_openssh().unwrap_or_default();
    sluice_core::grant::ssh_public_key(&offered).is_ok_and(|o| o == registered)
}
