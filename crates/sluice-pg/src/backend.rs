//! Opening a backend session with the credential Sluice holds.
//!
//! TLS per the connection's mode, a startup packet built by Sluice (the
//! client's harmless parameters, the grant id in `application_name`, and
//! `default_transaction_read_only` for `read` grants), then SCRAM-SHA-256,
//! md5, cleartext or trust. Backend error text goes to the log only: it may
//! name the backend user, and the client must learn nothing about it.
//!
//! A cleartext password request is answered only over TLS that verified the
//! backend's certificate (`tls = "verify-full"`): anyone able to answer for
//! the backend's address could otherwise ask for the password and receive it.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;
use sluice_core::Profile;
use sluice_core::config::{ConnectionConfig, Password, TlsMode};
use sluice_core::guardrail::StatementClass;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::codec::{Frame, FrameReader};
use crate::errors::PgError;
use crate::messages::error_fields;
use crate::tls::{self, Stream};

/// Startup parameters a client may set on the backend session. Others are
/// dropped: a startup parameter is a GUC that no statement analysis sees
/// (`options`, `default_transaction_read_only`, `role`, `replication`, …).
/// `search_path` passes only when the `SET` doing the same would be
/// harmless; `client_encoding` never does (see [`startup_params`]).
const PASSED_PARAMS: &[&str] = &[
    "application_name",
    "DateStyle",
    "TimeZone",
    "IntervalStyle",
    "extra_float_digits",
    "search_path",
];

/// PostgreSQL truncates names to 63 bytes; the grant id must survive that.
const MAX_NAME: usize = 63;

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
            port: conn.port,
            database: conn.database.clone(),
            user,
            password,
            tls: tls::connector(conn.tls, conn.ca_file.as_deref())?,
            verified: conn.tls == TlsMode::VerifyFull,
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

/// A backend session after its ReadyForQuery.
pub struct Backend {
    pub reader: FrameReader<Stream>,
    /// ParameterStatus messages, relayed to the client unchanged.
    pub parameters: Vec<Frame>,
    /// The backend's own cancel key: never shown to the client.
    pub key: (i32, i32),
}

/// Opens a session on `target` for a client with startup `params`.
pub async fn open(
    target: Arc<Target>,
    params: &[(String, String)],
    grant_id: &str,
    profile: Profile,
) -> Result<Backend, PgError> {
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        open_inner(&target, params, grant_id, profile),
    )
    .await
    .map_err(|_| PgError::Backend("backend startup timed out".into()))?
}

async fn open_inner(
    target: &Target,
    params: &[(String, String)],
    grant_id: &str,
    profile: Profile,
) -> Result<Backend, PgError> {
    let stream = target.transport().await?;
    let mut reader = FrameReader::new(stream, STARTUP_CAP);
    let startup = startup_params(target, params, grant_id, profile);
    let mut buf = BytesMut::new();
    frontend::startup_message(
        startup.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &mut buf,
    )?;
    send(&mut reader, &buf).await?;
    authenticate(&mut reader, target).await?;
    let mut parameters = Vec::new();
    let mut key = (0, 0);
    loop {
        let frame = next(&mut reader).await?;
        match frame.tag {
            b'S' => parameters.push(frame),
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
    })
}

/// The backend's startup packet.
fn startup_params(
    target: &Target,
    params: &[(String, String)],
    grant_id: &str,
    profile: Profile,
) -> Vec<(String, String)> {
    let mut out = vec![
        ("user".to_string(), target.user.clone()),
        ("database".to_string(), target.database.clone()),
    ];
    let mut app = None;
    for (k, v) in params {
        if k == "application_name" {
            app = Some(v.as_str());
        } else if PASSED_PARAMS.contains(&k.as_str()) && harmless_setting(k, v) {
            out.push((k.clone(), v.clone()));
        }
    }
    out.push(("application_name".into(), application_name(app, grant_id)));
    // Sluice analyses SQL as UTF-8, so the backend must read it as UTF-8:
    // under a client encoding like SJIS a multibyte character can swallow
    // the backslash before a quote, ending a string literal where the
    // analysis saw it go on, and run what it took for string content.
    out.push(("client_encoding".into(), "UTF8".into()));
    if profile == Profile::Read {
        // Defense in depth: even a statement analysis missed cannot write.
        out.push((
            "options".into(),
            "-c default_transaction_read_only=on".into(),
        ));
    }
    out
}

/// True when `SET name TO value` is a harmless session statement to the
/// analysis: e.g. no `search_path` that puts a schema before pg_catalog,
/// where it could shadow built-ins. Anything it cannot judge is dropped.
fn harmless_setting(name: &str, value: &str) -> bool {
    if name != "search_path" {
        return true;
    }
    let analysis = sluice_sql::analyze(&format!("SET {name} TO {value}"));
    matches!(&analysis.statements[..], [only] if only.class == StatementClass::Session)
}

/// The client's application name with the grant id appended, shortened so
/// the grant id survives PostgreSQL's 63-byte limit.
pub fn application_name(client: Option<&str>, grant_id: &str) -> String {
    match client.filter(|c| !c.is_empty()) {
        None => grant_id.to_string(),
        Some(c) => {
            let room = MAX_NAME.saturating_sub(grant_id.len() + 1);
            let mut end = c.len().min(room);
            while !c.is_char_boundary(end) {
                end -= 1;
            }
            format!("{} {grant_id}", &c[..end])
        }
    }
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
fn backend_error(frame: &Frame) -> PgError {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_harmless_search_path_passes() {
        assert!(harmless_setting("search_path", "public"));
        assert!(harmless_setting("search_path", "\"$user\", public"));
        assert!(harmless_setting("search_path", "pg_catalog, public"));
        assert!(!harmless_setting("search_path", "evil, pg_catalog"));
        assert!(!harmless_setting("search_path", "public; DROP TABLE t"));
        assert!(!harmless_setting("search_path", "'"));
    }

    #[test]
    fn application_name_keeps_the_grant_id() {
        let g = "g_abcdefghijklmnopqrstuvwxyz";
        assert_eq!(application_name(None, g), g);
        assert_eq!(application_name(Some("psql"), g), format!("psql {g}"));
        let long = "x".repeat(100);
        let name = application_name(Some(&long), g);
        assert!(name.len() <= MAX_NAME && name.ends_with(g));
    }
}
