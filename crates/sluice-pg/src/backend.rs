//! Opening a backend session with the credential Sluice holds.
//!
//! TLS per the connection's mode, a neutral startup packet built by Sluice
//! (UTF-8, `application_name` "sluice", and `default_transaction_read_only`
//! for `read` grants), then SCRAM-SHA-256, md5, cleartext or trust. The
//! client's own settings come after, with `set_config` (see
//! [`crate::settings`]), so that a reset returns the session to this
//! neutral state and never to an earlier client's. Backend error text goes
//! to the log only: it may name the backend user, and the client must
//! learn nothing about it.
//!
//! A cleartext password request is answered only over TLS that verified the
//! backend's certificate (`tls = "verify-full"`): anyone able to answer for
//! the backend's address could otherwise ask for the password and receive it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;
use sluice_core::Profile;
use sluice_core::config::{ConnectionConfig, Password, TlsMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::codec::{Frame, FrameReader};
use crate::errors::PgError;
use crate::messages::error_fields;
use crate::params::Parameters;
use crate::settings;
use sluice_tls::{self as tls, Stream};

/// Largest message accepted from a backend during its startup.
const STARTUP_CAP: usize = 1 << 20;

/// Time allowed to open a backend session.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to reach one connection's backend, resolved once.
pub struct Target {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    password: Option<Password>,
    tls: Option<tokio_rustls::TlsConnector>,
    /// The backend's certificate is checked against a CA and its name:
    /// only then may the password itself cross the wire.
    verified: bool,
    /// The profile's statement timeout, set at session start.
    pub statement_timeout: Option<Duration>,
}

impl Target {
    /// The backend for `conn` under `profile`: the read credential for
    /// `read` grants when one is configured.
    pub fn resolve(conn: &ConnectionConfig, profile: Profile) -> Result<Target, PgError> {
        let (user, password) = match (&conn.read_credential, profile) {
            (Some(cred), Profile::Read) => (cred.user.clone(), cred.password()),
            _ => (conn.user.clone(), conn.password()),
        };
        let password = password.map_err(PgError::Backend)?;
        Ok(Target {
            host: conn.host.clone(),
            port: conn.port(),
            database: conn.database.clone(),
            user,
            password,
            tls: tls::connector(conn.tls, conn.ca_file.as_deref())?,
            verified: conn.tls == TlsMode::VerifyFull,
            statement_timeout: conn.limits.statement_timeout.of(profile),
        })
    }

    /// A TCP (and TLS, if configured) connection to the backend.
    pub async fn transport(&self) -> Result<Stream, PgError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| PgError::Backend(format!("connect {}:{}: {e}", self.host, self.port)))?;
        tcp.set_nodelay(true)?;
        let Some(connector) = &self.tls else {
            return Ok(Stream::Plain(tcp));
        };
        let mut tcp = tcp;
        let mut req = BytesMut::new();
        frontend::ssl_request(&mut req);
        tcp.write_all(&req).await?;
        let mut answer = [0u8; 1];
        tcp.read_exact(&mut answer).await?;
        if answer[0] != b'S' {
            return Err(PgError::Backend("backend refused TLS".into()));
        }
        let name = tls::server_name(&self.host)?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| PgError::Backend(format!("TLS to backend: {e}")))?;
        Ok(Stream::Client(Box::new(tls)))
    }
}

/// What an idle backend session is called while no client uses it.
const IDLE_NAME: &str = "sluice";

/// A backend session after its ReadyForQuery.
pub struct Backend {
    pub reader: FrameReader<Stream>,
    /// What the server reported, relayed to each client at its startup.
    pub parameters: Parameters,
    /// The backend's own cancel key: never shown to the client.
    pub key: (i32, i32),
    /// When the session was opened (its lifetime is bounded).
    pub opened: Instant,
}

impl Backend {
    /// A session's parts put back together after a client's session.
    pub fn rejoin(
        stream: Stream,
        parameters: Parameters,
        key: (i32, i32),
        opened: Instant,
    ) -> Self {
        Backend {
            reader: FrameReader::new(stream, STARTUP_CAP),
            parameters,
            key,
            opened,
        }
    }

    /// Writes `bytes` and flushes.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), PgError> {
        send(&mut self.reader, bytes).await
    }

    /// The next message; the backend closing is an error.
    pub async fn next(&mut self) -> Result<Frame, PgError> {
        next(&mut self.reader).await
    }

    /// Ends the session politely (Terminate), best effort.
    pub async fn close(mut self) {
        let stream = self.reader.get_mut();
        let bye = async {
            stream.write_all(&[b'X', 0, 0, 0, 4]).await?;
            stream.shutdown().await
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), bye).await;
    }
}

/// Opens a session on `target` for a client with startup `params`.
pub async fn open(
    target: Arc<Target>,
    params: &[(String, String)],
    grant_id: &str,
    profile: Profile,
) -> Result<Backend, PgError> {
    let mut backend = connect(&target, profile).await?;
    let wanted = settings::wanted(params, grant_id, profile, target.statement_timeout);
    settings::apply(&mut backend, &wanted).await?;
    Ok(backend)
}

/// Opens a neutral session on `target`: no client's settings yet.
pub async fn connect(target: &Target, profile: Profile) -> Result<Backend, PgError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, connect_inner(target, profile)).await {
        Ok(Ok(backend)) => Ok(backend),
        Err(_) => Err(PgError::Backend("backend startup timed out".into())),
        // However opening it failed (refused, reset, a broken reply), the
        // client hears that the backend is unavailable; the log and the
        // audit event keep the cause.
        Ok(Err(e @ PgError::Backend(_))) => Err(e),
        Ok(Err(e)) => Err(PgError::Backend(format!("backend startup failed: {e}"))),
    }
}

async fn connect_inner(target: &Target, profile: Profile) -> Result<Backend, PgError> {
    let opened = Instant::now();
    let stream = target.transport().await?;
    let mut reader = FrameReader::new(stream, STARTUP_CAP);
    let startup = startup_params(target, profile);
    let mut buf = BytesMut::new();
    frontend::startup_message(startup.iter().map(|(k, v)| (*k, v.as_str())), &mut buf)?;
    send(&mut reader, &buf).await?;
    authenticate(&mut reader, target).await?;
    let mut parameters = Parameters::default();
    let mut key = (0, 0);
    loop {
        let frame = next(&mut reader).await?;
        match frame.tag {
            b'S' => {
                if !parameters.report(frame.body()) {
                    return Err(PgError::Backend("malformed ParameterStatus".into()));
                }
            }
            b'K' => {
                let b = frame.body();
                if b.len() < 8 {
                    return Err(PgError::Backend("short BackendKeyData".into()));
                }
                key = (
                    i32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                    i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                );
            }
            b'Z' => break,
            b'N' => {}
            b'E' => return Err(backend_error(&frame)),
            t => {
                return Err(PgError::Backend(format!(
                    "unexpected message {:?}",
                    t as char
                )));
            }
        }
    }
    Ok(Backend {
        reader,
        parameters,
        key,
        opened,
    })
}

/// The backend's startup packet: nothing from any client.
///
/// Settings given here are the session's start values, which `RESET`,
/// `RESET ALL` and `DISCARD ALL` return to, and they outrank role and
/// database defaults: so the pinned lexing settings
/// ([`sluice_sql::session::PINNED`]), read-only for `read` grants and the
/// profile's statement timeout hold whatever the server's configuration.
fn startup_params(target: &Target, profile: Profile) -> Vec<(&'static str, String)> {
    let mut options = Vec::new();
    for (name, value) in sluice_sql::session::PINNED {
        if *name != "client_encoding" {
            options.push(format!("-c {name}={value}"));
        }
    }
    if profile == Profile::Read {
        // Defense in depth: even a statement analysis missed cannot write.
        options.push("-c default_transaction_read_only=on".into());
    }
    if let Some(t) = target.statement_timeout {
        options.push(format!("-c statement_timeout={}", t.as_millis().max(1)));
    }
    vec![
        ("user", target.user.clone()),
        ("database", target.database.clone()),
        ("application_name", IDLE_NAME.to_string()),
        // Sluice analyses SQL as UTF-8, so the backend must read it as UTF-8:
        // under a client encoding like SJIS a multibyte character can swallow
        // the backslash before a quote, ending a string literal where the
        // analysis saw it go on, and run what it took for string content.
        ("client_encoding", "UTF8".to_string()),
        ("options", options.join(" ")),
    ]
}

async fn authenticate(reader: &mut FrameReader<Stream>, target: &Target) -> Result<(), PgError> {
    let password = || {
        target
            .password
            .as_ref()
            .map(|p| p.expose().as_bytes())
            .ok_or_else(|| {
                PgError::Backend("backend asks for a password and none is configured".into())
            })
    };
    let mut scram: Option<ScramSha256> = None;
    loop {
        let frame = next(reader).await?;
        if frame.tag == b'E' {
            return Err(backend_error(&frame));
        }
        if frame.tag != b'R' || frame.body().len() < 4 {
            return Err(PgError::Backend(
                "unexpected message during authentication".into(),
            ));
        }
        let body = frame.body();
        let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let data = &body[4..];
        let mut out = BytesMut::new();
        match code {
            0 => return Ok(()),
            3 if !target.verified => {
                return Err(PgError::Backend(
                    "backend asks for the password in cleartext; Sluice sends it only over \
                     tls = \"verify-full\" (or configure the server for scram-sha-256)"
                        .into(),
                ));
            }
            3 => frontend::password_message(password()?, &mut out)?,
            5 if data.len() == 4 => {
                let salt = [data[0], data[1], data[2], data[3]];
                let hash = postgres_protocol::authentication::md5_hash(
                    target.user.as_bytes(),
                    password()?,
                    salt,
                );
                frontend::password_message(hash.as_bytes(), &mut out)?;
            }
            10 => {
                let offered = data.split(|b| *b == 0).any(|m| m == b"SCRAM-SHA-256");
                if !offered {
                    return Err(PgError::Backend("backend offers no SCRAM-SHA-256".into()));
                }
                let client = ScramSha256::new(password()?, ChannelBinding::unsupported());
                frontend::sasl_initial_response("SCRAM-SHA-256", client.message(), &mut out)?;
                scram = Some(client);
            }
            11 => {
                let client = scram
                    .as_mut()
                    .ok_or_else(|| PgError::Backend("SASL out of order".into()))?;
                client
                    .update(data)
                    .map_err(|e| PgError::Backend(format!("SCRAM: {e}")))?;
                frontend::sasl_response(client.message(), &mut out)?;
            }
            12 => {
                let client = scram
                    .as_mut()
                    .ok_or_else(|| PgError::Backend("SASL out of order".into()))?;
                client
                    .finish(data)
                    .map_err(|e| PgError::Backend(format!("SCRAM server proof: {e}")))?;
                continue;
            }
            other => {
                return Err(PgError::Backend(format!(
                    "unsupported authentication method {other}"
                )));
            }
        }
        send(reader, &out).await?;
    }
}

/// Sends a cancel request for the backend session with `key`, on a fresh
/// connection as the protocol requires.
pub async fn cancel(target: &Target, key: (i32, i32)) -> Result<(), PgError> {
    let mut stream = target.transport().await?;
    let mut buf = BytesMut::new();
    frontend::cancel_request(key.0, key.1, &mut buf);
    stream.write_all(&buf).await?;
    stream.flush().await?;
    // The backend closes the connection when done; wait for that briefly.
    let mut sink = [0u8; 16];
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut sink)).await;
    Ok(())
}

async fn send(reader: &mut FrameReader<Stream>, bytes: &[u8]) -> Result<(), PgError> {
    let stream = reader.get_mut();
    stream.write_all(bytes).await?;
    stream.flush().await?;
    Ok(())
}

async fn next(reader: &mut FrameReader<Stream>) -> Result<Frame, PgError> {
    reader
        .next()
        .await?
        .ok_or_else(|| PgError::Backend("backend closed the connection during startup".into()))
}

/// A backend ErrorResponse as a log-only error.
pub fn backend_error(frame: &Frame) -> PgError {
    let fields = error_fields(frame.body());
    let get = |c: u8| {
        fields
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| *v)
            .unwrap_or("")
    };
    PgError::Backend(format!("{} {}: {}", get(b'S'), get(b'C'), get(b'M')))
}
