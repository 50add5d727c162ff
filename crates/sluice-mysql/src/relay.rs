//! `sluice connect` for MySQL: a local client, unchanged, carried to the
//! gateway's MySQL listener through a grant the relay holds.
//!
//! The relay reads the gateway's greeting first and offers the local
//! client the same capabilities (without TLS and compression: the local
//! hop is loopback and in the clear; the hop to the gateway is TLS with
//! the pinned certificate when the grant names one), so what the client negotiates with
//! the relay is what the relay negotiates with the gateway and the bytes
//! after the login pass through unchanged. The client's own user name and
//! password are ignored (whoever reaches the local port uses the grant, as
//! for Postgres); its database is kept when it names one. The relay logs
//! in to the gateway as the grant, as any client would, and tells the
//! client OK or the gateway's refusal.

use mysql_common::constants::{CapabilityFlags as F, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, HandshakeResponse};
use rand::RngCore;
use sluice_tls::Stream;
use std::time::Duration;
use tokio::net::TcpStream;

use crate::backend::{BackendError, Greeting, Tls, log_in};
use crate::packet;

/// How long the local client has to answer the greeting.
const CLIENT_TIME: Duration = Duration::from_secs(30);
/// The largest handshake answer read from the local client.
const HANDSHAKE_MAX: usize = 64 * 1024;

/// The grant the relay logs in with.
pub struct Grant<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub database: &'a str,
    /// The SHA-256 (hex) of the listener's certificate when the grant
    /// names one: the hop is then TLS with exactly that certificate.
    pub tls_pin: Option<&'a str>,
}

/// Carries one local client to the gateway at `gateway` as `grant`, until
/// either side closes.
pub async fn carry(
    local: TcpStream,
    gateway: (&str, u16),
    grant: &Grant<'_>,
) -> Result<(), BackendError> {
    let addr = format!("{}:{}", gateway.0, gateway.1);
    let tcp = TcpStream::connect(&addr)
        .await
        .map_err(|e| BackendError::Connect(addr.clone(), e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let _ = local.set_nodelay(true);
    let mut gw = Stream::Plain(tcp);
    let mut local = Stream::Plain(local);
    let greeting = Greeting::read(&mut gw).await?;
    let offered = greeting.caps
        & !(F::CLIENT_SSL | F::CLIENT_COMPRESS | F::CLIENT_ZSTD_COMPRESSION_ALGORITHM);
    packet::write(&mut local, 0, &local_greeting(&greeting.version, offered)).await?;
    let answer = packet::read(&mut local, HANDSHAKE_MAX, Some(CLIENT_TIME))
        .await
        .map_err(|e| BackendError::Protocol(format!("the local client: {e}")))?;
    let reply_seq = answer.seq.wrapping_add(1);
    let Ok(resp) = ParseBuf(&answer.payload).parse::<HandshakeResponse>(()) else {
        let why = "the local client's handshake is not one this relay reads (TLS is not offered on the local port)";
        packet::write(&mut local, reply_seq, &err(1043, "08S01", why)).await?;
        return Err(BackendError::Protocol(why.into()));
    };
    let caps = resp.capabilities() & offered;
    let database = resp
        .db_name()
        .filter(|d| !d.is_empty())
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .unwrap_or_else(|| grant.database.to_string());
    drop(resp);
    let tls = match grant.tls_pin {
        Some(pin) => Some(Tls {
            connector: sluice_tls::pinned_connector(pin),
            name: sluice_tls::server_name(gateway.0).map_err(|e| BackendError::Tls(e.0))?,
        }),
        None => None,
    };
    let creds = (grant.user, grant.password);
    match log_in(gw, &greeting, creds, &database, caps, tls).await {
        Ok((mut gw, _)) => {
            packet::write(&mut local, reply_seq, &ok()).await?;
            tokio::io::copy_bidirectional(&mut local, &mut gw).await?;
            Ok(())
        }
        Err(e) => {
            let said = match &e {
                BackendError::Refused(text) => format!("the gateway refused the grant: {text}"),
                other => format!("cannot log in to the gateway: {other}"),
            };
            packet::write(&mut local, reply_seq, &err(1045, "28000", &said)).await?;
            Err(e)
        }
    }
}

/// The greeting the local client sees: the gateway's version and
/// capabilities, a fresh nonce, the native plugin (any answer is taken).
fn local_greeting(version: &str, caps: F) -> Vec<u8> {
    let mut nonce = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    // Printable, without NUL, as servers send it.
    for b in &mut nonce {
        *b = b'!' + (*b % 90);
    }
    crate::wire::greeting(
        version.as_bytes(),
        1,
        &nonce,
        caps,
        AuthPlugin::MysqlNativePassword.as_bytes(),
    )
}

/// An OK packet ending the login.
fn ok() -> Vec<u8> {
    let status = StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits().to_le_bytes();
    vec![0x00, 0, 0, status[0], status[1], 0, 0]
}

/// An ERR packet with `code`, `state` and `message`.
fn err(code: u16, state: &str, message: &str) -> Vec<u8> {
    let mut out = vec![0xff];
    out.extend_from_slice(&code.to_le_bytes());
    out.push(b'#');
    out.extend_from_slice(state.as_bytes());
    out.extend_from_slice(message.as_bytes());
    out
}
