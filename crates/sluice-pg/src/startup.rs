//! The client's side of startup: TLS negotiation, cancel requests, and the
//! login (SCRAM-SHA-256 against a grant's verifier, or an OIDC token as a
//! cleartext password over TLS). Runs under the listener's `auth_timeout`,
//! with small frame caps, and opens no backend connection: only a proven,
//! usable grant for this connection gets that far.

use std::net::SocketAddr;

use bytes::Bytes;
use sluice_core::audit::detail::SessionRejected;
use sluice_core::audit::{AuditEvent, EventKind};
use sluice_core::secret::ScramVerifier;
use sluice_core::{Grant, GrantStatus};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::codec::{Frame, FrameReader, take_cstr, take_i32};
use crate::errors::{ClientError, PgError};
use crate::messages::{self, StartupPacket};
use crate::proxy::Shared;
use crate::scram::{MECHANISM, ScramError, ScramServer};
use sluice_gate::is_grant_id;
use sluice_tls::Stream;

/// How long a refused login's record is waited for, once the client has
/// been told.
const REFUSAL_RECORD_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Largest startup packet accepted.
pub const STARTUP_CAP: usize = 10 * 1024;
/// Largest password or SASL message accepted (a big OIDC token fits).
pub const PASSWORD_CAP: usize = 16 * 1024;

/// What a new connection turned out to be.
pub enum Opening {
    /// A CancelRequest; the connection carries nothing else.
    Cancel { pid: i32, secret: i32 },
    /// A proven login with a usable grant.
    Login(Box<Login>),
    /// Refused; the client was told why and the refusal audited.
    Refused,
}

/// A client that proved a usable grant for a configured connection.
pub struct Login {
    pub reader: FrameReader<Stream>,
    pub params: Vec<(String, String)>,
    pub grant: Grant,
    pub addr: SocketAddr,
}

/// Negotiates and authenticates one client connection.
pub async fn open(shared: &Shared, tcp: TcpStream, addr: SocketAddr) -> Result<Opening, PgError> {
    let (mut reader, minor, params) = match negotiate(shared, tcp).await? {
        Negotiated::Cancel { pid, secret } => return Ok(Opening::Cancel { pid, secret }),
        Negotiated::Startup(r, minor, params) => (r, minor, params),
    };
    let mut login = LoginAttempt {
        shared,
        addr,
        reader: &mut reader,
        user: String::new(),
        database: String::new(),
    };
    match login.run(minor, &params).await {
        Ok(Ok(grant)) => Ok(Opening::Login(Box::new(Login {
            reader,
            params,
            grant,
            addr,
        }))),
        Ok(Err((client, reason))) => {
            login.refuse(client, reason).await;
            Ok(Opening::Refused)
        }
        Err(e) => {
            login
                .refuse(e.to_client(), "protocol error during login")
                .await;
            Err(e)
        }
    }
}

enum Negotiated {
    Cancel { pid: i32, secret: i32 },
    Startup(FrameReader<Stream>, u16, Vec<(String, String)>),
}

/// SSLRequest / GSSENCRequest / CancelRequest until a StartupMessage.
async fn negotiate(shared: &Shared, tcp: TcpStream) -> Result<Negotiated, PgError> {
    tcp.set_nodelay(true)?;
    let mut reader = FrameReader::new(Stream::Plain(tcp), STARTUP_CAP);
    loop {
        let frame = reader.next_startup().await?.ok_or(PgError::Truncated)?;
        match StartupPacket::parse(&frame)? {
            StartupPacket::Cancel { pid, secret } => return Ok(Negotiated::Cancel { pid, secret }),
            StartupPacket::Startup { minor, params } => {
                return Ok(Negotiated::Startup(reader, minor, params));
            }
            StartupPacket::GssEnc => {
                refuse_buffered(&reader)?;
                reader.get_mut().write_all(b"N").await?;
            }
            StartupPacket::Ssl => {
                refuse_buffered(&reader)?;
                let acceptor = match (&shared.acceptor, reader.get_mut()) {
                    (Some(a), Stream::Plain(_)) => a.clone(),
                    (None, Stream::Plain(_)) => {
                        reader.get_mut().write_all(b"N").await?;
                        continue;
                    }
                    _ => return Err(PgError::Protocol("SSLRequest inside TLS".into())),
                };
                reader.get_mut().write_all(b"S").await?;
                let (Stream::Plain(tcp), _) = reader.into_parts() else {
                    unreachable!("checked above");
                };
                let tls = acceptor.accept(tcp).await?;
                reader = FrameReader::new(Stream::Server(Box::new(tls)), STARTUP_CAP);
            }
        }
    }
}

/// Bytes pipelined after an SSLRequest would be read as if they came through
/// the TLS channel (CVE-2021-23214): refuse them.
fn refuse_buffered(reader: &FrameReader<Stream>) -> Result<(), PgError> {
    if reader.buffered() > 0 {
        return Err(PgError::Protocol(
            "data sent before the encryption answer".into(),
        ));
    }
    Ok(())
}

/// A refusal: what the client is told and what the audit log records.
type Refusal = (ClientError, &'static str);

struct LoginAttempt<'a> {
    shared: &'a Shared,
    addr: SocketAddr,
    reader: &'a mut FrameReader<Stream>,
    user: String,
    database: String,
}

impl LoginAttempt<'_> {
    async fn run(
        &mut self,
        minor: u16,
        params: &[(String, String)],
    ) -> Result<Result<Grant, Refusal>, PgError> {
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let unsupported: Vec<&str> = params
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| k.starts_with("_pq_."))
            .collect();
        if minor > 0 || !unsupported.is_empty() {
            self.send(&messages::negotiate_protocol(&unsupported))
                .await?;
        }
        let Some(user) = get("user") else {
            return Ok(Err((ClientError::missing_param("user"), "no user")));
        };
        self.database = get("database").unwrap_or_else(|| user.clone());
        self.user = user;
        if self.shared.config.postgres.require_tls && !self.reader.get_ref().is_tls() {
            return Ok(Err((ClientError::tls_required(), "TLS required")));
        }
        self.reader.set_cap(PASSWORD_CAP);
        let grant = if is_grant_id(&self.user) {
            self.scram_login().await?
        } else {
            self.token_login().await?
        };
        Ok(grant
            .and_then(|g| self.usable(g))
            .and_then(|g| self.settings_allowed(g, params)))
    }

    /// The client's startup settings, judged like the `SET`s that would do
    /// the same: one Sluice would refuse refuses the login.
    fn settings_allowed(
        &self,
        grant: Grant,
        params: &[(String, String)],
    ) -> Result<Grant, Refusal> {
        let cap = self
            .shared
            .config
            .connection(&grant.connection)
            .and_then(|c| c.limits.statement_timeout.of(grant.profile));
        match crate::settings::client_settings(params, cap) {
            Ok(_) => Ok(grant),
            Err(why) => Err((
                ClientError::startup_setting_refused(&why),
                "startup setting refused",
            )),
        }
    }

    /// SCRAM-SHA-256 against the grant's verifier; a decoy verifier for
    /// unknown ids, so both fail the same way at the proof.
    async fn scram_login(&mut self) -> Result<Result<Grant, Refusal>, PgError> {
        let mut list = MECHANISM.as_bytes().to_vec();
        list.extend_from_slice(b"\0\0");
        self.send(&messages::authentication(messages::AUTH_SASL, &list))
            .await?;
        let first = self.password_frame().await?;
        let client_first = sasl_initial(&first)?;
        let grant = match self.shared.control.grant(&self.user).await {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(error = %e, "grant lookup failed");
                return Ok(Err((
                    ClientError::store_unavailable(),
                    "grant store unavailable",
                )));
            }
        };
        let verifier = grant
            .as_ref()
            .and_then(|g| ScramVerifier::parse(&g.scram_verifier))
            .unwrap_or_else(ScramServer::decoy);
        let server = ScramServer::start(verifier, client_first).map_err(scram_protocol)?;
        let payload = server.server_first().to_vec();
        self.send(&messages::authentication(
            messages::AUTH_SASL_CONTINUE,
            &payload,
        ))
        .await?;
        let last = self.password_frame().await?;
        match server.finish(last.body()) {
            Ok(final_msg) => {
                self.send(&messages::authentication(
                    messages::AUTH_SASL_FINAL,
                    &final_msg,
                ))
                .await?;
            }
            Err(ScramError::ProofMismatch) => {
                return Ok(Err((
                    ClientError::bad_password(&self.user),
                    "wrong secret or unknown grant",
                )));
            }
            Err(e) => return Err(scram_protocol(e)),
        }
        Ok(grant.ok_or((ClientError::bad_password(&self.user), "unknown grant")))
    }

    /// The fallback: an OIDC token as a cleartext password, over TLS only.
    async fn token_login(&mut self) -> Result<Result<Grant, Refusal>, PgError> {
        if !self.reader.get_ref().is_tls() {
            return Ok(Err((
                ClientError::token_needs_tls(),
                "token login without TLS",
            )));
        }
        self.send(&messages::authentication(messages::AUTH_CLEARTEXT, &[]))
            .await?;
        let frame = self.password_frame().await?;
        let mut body = frame.body();
        let token =
            take_cstr(&mut body).ok_or_else(|| PgError::Protocol("bad password message".into()))?;
        // No grant is made for a connection this listener does not serve.
        let postgres = self
            .shared
            .config
            .connection(&self.database)
            .is_some_and(|c| c.kind == sluice_core::config::ConnectionKind::Postgres);
        if !postgres {
            return Ok(Err((
                ClientError::unknown_connection(&self.database),
                "unknown connection",
            )));
        }
        let result = self
            .shared
            .control
            .grant_from_token(token, &self.database, self.addr)
            .await;
        Ok(result.map_err(|refused| {
            (
                ClientError::login_refused(&refused.message),
                "token refused",
            )
        }))
    }

    /// A proven grant must be active, unexpired, for this connection, and
    /// the connection must exist.
    fn usable(&self, grant: Grant) -> Result<Grant, Refusal> {
        let now = sluice_core::clock::now();
        if grant.status != GrantStatus::Active {
            let refusal = ClientError::grant_not_usable(&grant.id, grant.status.as_str());
            return Err((refusal, "grant not active"));
        }
        if now >= grant.expires_at {
            return Err((
                ClientError::grant_not_usable(&grant.id, "expired"),
                "grant expired",
            ));
        }
        if grant.connection != self.database {
            let refusal = ClientError::wrong_connection(&grant.id, &self.database);
            return Err((refusal, "grant is for another connection"));
        }
        // A grant for another protocol's connection (an SSH host) opens
        // nothing here.
        let postgres = self
            .shared
            .config
            .connection(&self.database)
            .is_some_and(|c| c.kind == sluice_core::config::ConnectionKind::Postgres);
        if !postgres {
            return Err((
                ClientError::unknown_connection(&self.database),
                "unknown connection",
            ));
        }
        Ok(grant)
    }

    /// Tells the client, audits the refusal, and gives up the connection.
    /// The client is told first: a store that is away (a common cause of
    /// refusals) must not leave it waiting out its auth timeout for its
    /// answer. The record is then waited for, briefly: the connection
    /// keeps its place among those logging in meanwhile, so a flood of
    /// refused logins is held back by the audit log rather than crowding
    /// out other events.
    async fn refuse(&mut self, client: ClientError, reason: &str) {
        let _ = self.send(&client.to_bytes()).await;
        let mut event = AuditEvent::new(EventKind::SessionRejected)
            .connection(&self.database)
            .with(&SessionRejected {
                reason: reason.to_string(),
                cause: None,
                client_addr: Some(self.addr.to_string()),
                sqlstate: Some(client.code.to_string()),
            });
        if is_grant_id(&self.user) {
            event = event.grant(&self.user);
        }
        match tokio::time::timeout(REFUSAL_RECORD_WAIT, self.shared.audit.record(event)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "could not audit a refused login"),
            Err(_) => tracing::error!(
                "could not audit a refused login: the audit log did not answer in time"
            ),
        }
        let label = self.shared.label(&self.database);
        self.shared.metrics.login(label, "refused");
        let grant = if is_grant_id(&self.user) {
            self.user.as_str()
        } else {
            ""
        };
        tracing::info!(client.addr = %self.addr, conn.name = %label, grant.id = %grant, reason, "login refused");
    }

    async fn send(&mut self, bytes: &Bytes) -> Result<(), PgError> {
        let stream = self.reader.get_mut();
        stream.write_all(bytes).await?;
        stream.flush().await?;
        Ok(())
    }

    /// The next message, which must be a password/SASL message (`p`).
    async fn password_frame(&mut self) -> Result<Frame, PgError> {
        let frame = self.reader.next().await?.ok_or(PgError::Truncated)?;
        if frame.tag != b'p' {
            return Err(PgError::Protocol("expected a password message".into()));
        }
        Ok(frame)
    }
}

/// The client-first message inside SASLInitialResponse.
fn sasl_initial(frame: &Frame) -> Result<&[u8], PgError> {
    let mut body = frame.body();
    let mechanism =
        take_cstr(&mut body).ok_or_else(|| PgError::Protocol("bad SASL message".into()))?;
    if mechanism != MECHANISM {
        return Err(PgError::Protocol("unsupported SASL mechanism".into()));
    }
    let len = take_i32(&mut body).ok_or_else(|| PgError::Protocol("bad SASL message".into()))?;
    if len < 0 || len as usize != body.len() {
        return Err(PgError::Protocol("bad SASL message length".into()));
    }
    Ok(body)
}

fn scram_protocol(e: ScramError) -> PgError {
    PgError::Protocol(format!("SCRAM: {e}"))
}
