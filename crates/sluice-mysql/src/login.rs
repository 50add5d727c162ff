//! A client's handshake and login. Sluice greets as a server announcing
//! `caching_sha2_password` and always asks for full authentication, so it
//! learns the secret itself and checks it against the grant's stored
//! verifier (the same neutral hash every protocol uses): over TLS the
//! client sends it as is; without TLS it is encrypted to the gateway's
//! RSA key (the plugin's own key exchange). A client that answers the
//! greeting naming `mysql_native_password` (the MariaDB client's default,
//! and older drivers') is checked by that plugin's challenge instead,
//! against the grant's `SHA1(SHA1(secret))`; any other plugin is switched
//! to `caching_sha2_password`.
//!
//! The user is the grant id and the password its secret; or the user is
//! the connection's name and the password an OIDC token, over TLS only.
//! Everything before login is capped small and must finish within
//! `auth_timeout`.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use mysql_common::constants::CapabilityFlags as F;
use mysql_common::io::ParseBuf;
use mysql_common::packets::HandshakeResponse;
use rand::RngCore;
use sluice_core::config::{ConnectionConfig, ConnectionKind};
use sluice_core::grant::{Grant, GrantStatus};
use sluice_core::secret::{ScramVerifier, native_check, native_verifier};
use sluice_gate::{Seat, is_grant_id};
use sluice_tls::Stream;
use tokio::net::TcpStream;

use crate::Shared;
use crate::packet::{self, ReadError};
use crate::wire::{self, er};

/// The largest packet read before login.
const PRE_AUTH_MAX: usize = 64 * 1024;
/// `caching_sha2_password`.
const PLUGIN: &[u8] = b"caching_sha2_password";
/// `mysql_native_password`.
const NATIVE: &[u8] = b"mysql_native_password";
/// `mysql_clear_password`, for tokens over TLS.
const CLEAR: &[u8] = b"mysql_clear_password";

/// A client that proved a grant.
pub struct LoggedIn {
    pub io: Stream,
    /// The capabilities both sides speak.
    pub caps: F,
    /// The next sequence number of the login exchange (for its OK).
    pub seq: u8,
    pub grant: Grant,
    pub conn: ConnectionConfig,
    pub seat: Seat,
}

/// What the client offered as proof of a grant.
enum Proof {
    /// The secret itself (or a token), as full authentication sends it.
    Secret(String),
    /// A `mysql_native_password` answer to the greeting's nonce.
    Native { nonce: [u8; 20], scramble: Vec<u8> },
}

/// Why a login failed: the client's words (never a secret).
pub struct Refused {
    pub reason: &'static str,
    pub grant: Option<String>,
}

/// Greets the client and logs it in; on a refusal the client has been
/// told why and the refusal is returned for the record.
pub async fn login(
    shared: &Arc<Shared>,
    tcp: TcpStream,
    addr: SocketAddr,
    connection_id: u32,
) -> Result<LoggedIn, (Option<Stream>, Refused)> {
    let mut io = Stream::Plain(tcp);
    let timeout = shared.config.mysql.auth_timeout.0;
    let mut nonce = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut nonce);
    // The nonce must hold no NUL (clients read it as a C string).
    for b in &mut nonce {
        *b = (*b % 94) + 33;
    }
    let greeting = greeting(shared, connection_id, &nonce);
    let fail = |io, reason| {
        Err((
            Some(io),
            Refused {
                reason,
                grant: None,
            },
        ))
    };
    if packet::write(&mut io, 0, &greeting).await.is_err() {
        return fail(io, "client went away");
    }
    let mut p = match packet::read(&mut io, PRE_AUTH_MAX, Some(timeout)).await {
        Ok(p) => p,
        Err(e) => return fail(io, pre_auth_error(&e)),
    };
    let mut tls = false;
    if p.payload.len() == 32 && caps_of(&p.payload).contains(F::CLIENT_SSL) {
        let Some(acceptor) = shared.acceptor.clone() else {
            return fail(io, "TLS asked of a listener without a certificate");
        };
        let Stream::Plain(tcp) = io else {
            unreachable!("TLS starts once")
        };
        io = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
            Ok(Ok(s)) => Stream::Server(Box::new(s)),
            _ => {
                return Err((
                    None,
                    Refused {
                        reason: "TLS handshake failed",
                        grant: None,
                    },
                ));
            }
        };
        tls = true;
        p = match packet::read(&mut io, PRE_AUTH_MAX, Some(timeout)).await {
            Ok(p) => p,
            Err(e) => return fail(io, pre_auth_error(&e)),
        };
    }
    let mut seq = p.seq.wrapping_add(1);
    let Ok(resp) = ParseBuf(&p.payload).parse::<HandshakeResponse>(()) else {
        return refuse(
            io,
            seq,
            er::HANDSHAKE,
            "a malformed handshake response",
            None,
        )
        .await;
    };
    if shared.config.mysql.require_tls && !tls {
        let why = "this gateway requires TLS (use --ssl / ssl-mode=REQUIRED)";
        return refuse(io, seq, er::ACCESS_DENIED, why, None).await;
    }
    let caps = resp.capabilities() & wire::offered(tls);
    if !caps.contains(wire::required()) {
        let why = "the client does not speak the protocol 4.1 with plugin authentication";
        return refuse(io, seq, er::HANDSHAKE, why, None).await;
    }
    let user = String::from_utf8_lossy(resp.user()).into_owned();
    let asked_db = resp
        .db_name()
        .filter(|d| !d.is_empty())
        .map(|d| String::from_utf8_lossy(d).into_owned());
    let plugin = resp.auth_plugin().map(|p| p.as_bytes().to_vec());
    let scramble = resp.scramble_buf().to_vec();
    drop(resp);
    if !tls && !is_grant_id(&user) {
        // A token could not even be sent: RSA-OAEP carries at most 214
        // bytes, and tokens are longer. Say so before asking for it.
        let why = "a token is accepted as the password over TLS only";
        return refuse(io, seq, er::ACCESS_DENIED, why, None).await;
    }
    let proof = if tls && !is_grant_id(&user) {
        // A token, inside TLS: asked for in the clear, as it is (the
        // plugin's full authentication would send the same).
        match switch(&mut io, &mut seq, CLEAR, &[], timeout).await {
            Ok(p) => Ok(Proof::Secret(clear_text(p))),
            Err(reason) => Err(reason),
        }
    } else if plugin.as_deref() == Some(NATIVE) {
        // A client that names the native plugin but had no nonce for it
        // (the greeting named another) answers empty: ask again, naming it.
        let scramble = if scramble.len() == 20 {
            Ok(scramble)
        } else {
            let mut data = nonce.to_vec();
            data.push(0);
            switch(&mut io, &mut seq, NATIVE, &data, timeout).await
        };
        scramble.map(|scramble| Proof::Native { nonce, scramble })
    } else {
        if plugin.as_deref() != Some(PLUGIN) {
            // Switch the client to the plugin whose exchange Sluice runs.
            let mut data = nonce.to_vec();
            data.push(0);
            if let Err(reason) = switch(&mut io, &mut seq, PLUGIN, &data, timeout).await {
                return fail(io, reason);
            }
        }
        full_authentication(shared, &mut io, &mut seq, tls, &nonce)
            .await
            .map(Proof::Secret)
    };
    let proof = match proof {
        Ok(p) => p,
        Err(reason) => return refuse(io, seq, er::ACCESS_DENIED, reason, grant_of(&user)).await,
    };
    let proved = prove(shared, &user, &proof, tls, addr).await;
    let grant = match proved {
        Ok(g) => g,
        Err(reason) => return refuse(io, seq, er::ACCESS_DENIED, reason, grant_of(&user)).await,
    };
    let Some(conn) = shared.config.connection(&grant.connection).cloned() else {
        return refuse(
            io,
            seq,
            er::ACCESS_DENIED,
            "unknown connection",
            Some(grant.id),
        )
        .await;
    };
    if let Some(db) = asked_db
        && db != conn.database
    {
        let why = "the grant is for another database";
        let _ = db;
        return refuse(io, seq, er::DB_DENIED, why, Some(grant.id)).await;
    }
    let seat = match shared.seats.take(&grant, &conn.limits) {
        Ok(s) => s,
        Err(e) => {
            tracing::info!(reason = %e, "mysql session refused by a session limit");
            shared.metrics.login(&grant.connection, "limit");
            return refuse(io, seq, er::TOO_MANY, "session limit", Some(grant.id)).await;
        }
    };
    Ok(LoggedIn {
        io,
        caps,
        seq,
        grant,
        conn,
        seat,
    })
}

/// The server greeting: protocol 10, the configured version, a 20-byte
/// nonce, the capabilities offered, `caching_sha2_password`.
fn greeting(shared: &Shared, connection_id: u32, nonce: &[u8; 20]) -> Vec<u8> {
    wire::greeting(
        shared.config.mysql.server_version.as_bytes(),
        connection_id,
        nonce,
        wire::offered(shared.acceptor.is_some()),
        PLUGIN,
    )
}

fn caps_of(payload: &[u8]) -> F {
    let bits = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
    F::from_bits_truncate(bits)
}

/// Asks the client to answer with `plugin` (AuthSwitchRequest); its
/// answer.
async fn switch(
    io: &mut Stream,
    seq: &mut u8,
    plugin: &[u8],
    data: &[u8],
    timeout: std::time::Duration,
) -> Result<Vec<u8>, &'static str> {
    let mut switch = vec![0xfe];
    switch.extend_from_slice(plugin);
    switch.push(0);
    switch.extend_from_slice(data);
    packet::write(io, *seq, &switch)
        .await
        .map_err(|_| "client went away")?;
    let p = packet::read(io, PRE_AUTH_MAX, Some(timeout))
        .await
        .map_err(|e| pre_auth_error(&e))?;
    *seq = p.seq.wrapping_add(1);
    Ok(p.payload)
}

/// A password sent in the clear: its bytes up to the NUL, as text.
fn clear_text(mut bytes: Vec<u8>) -> String {
    if bytes.last() == Some(&0) {
        bytes.pop();
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// The secret the client knows, by `caching_sha2_password`'s full
/// authentication: in the clear over TLS, RSA-encrypted without.
async fn full_authentication(
    shared: &Shared,
    io: &mut Stream,
    seq: &mut u8,
    tls: bool,
    nonce: &[u8; 20],
) -> Result<String, &'static str> {
    let timeout = shared.config.mysql.auth_timeout.0;
    // AuthMoreData: perform_full_authentication.
    *seq = packet::write(io, *seq, &[0x01, 0x04])
        .await
        .map_err(|_| "client went away")?;
    let p = packet::read(io, PRE_AUTH_MAX, Some(timeout))
        .await
        .map_err(|e| pre_auth_error(&e))?;
    *seq = p.seq.wrapping_add(1);
    let clear = if tls {
        p.payload
    } else {
        let sealed = if p.payload == [0x02] {
            // The client asks for the key.
            let mut key = vec![0x01];
            key.extend_from_slice(shared.rsa.public_pem.as_bytes());
            *seq = packet::write(io, *seq, &key)
                .await
                .map_err(|_| "client went away")?;
            let p = packet::read(io, PRE_AUTH_MAX, Some(timeout))
                .await
                .map_err(|e| pre_auth_error(&e))?;
            *seq = p.seq.wrapping_add(1);
            p.payload
        } else {
            p.payload
        };
        let mut clear = shared
            .rsa
            .decrypt(&sealed)
            .ok_or("the password could not be decrypted")?;
        for (i, b) in clear.iter_mut().enumerate() {
            *b ^= nonce[i % nonce.len()];
        }
        clear
    };
    Ok(clear_text(clear))
}

/// The grant `user` and `proof` prove, or why not.
async fn prove(
    shared: &Shared,
    user: &str,
    proof: &Proof,
    tls: bool,
    addr: SocketAddr,
) -> Result<Grant, &'static str> {
    let grant = if is_grant_id(user) {
        let found = match shared.control.grant(user).await {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(error = %e, "grant lookup failed");
                return Err("grant store unavailable");
            }
        };
        // An unknown grant is checked against a decoy, so both fail alike.
        let ok = proves(found.as_ref(), proof);
        match found {
            Some(g) if ok => g,
            _ => return Err("wrong secret or unknown grant"),
        }
    } else {
        let Proof::Secret(secret) = proof else {
            return Err("a token is accepted as the password over TLS only");
        };
        let mysql = shared
            .config
            .connection(user)
            .is_some_and(|c| c.kind == ConnectionKind::Mysql);
        if !mysql {
            return Err("unknown connection");
        }
        if !tls {
            return Err("a token is accepted as the password over TLS only");
        }
        shared
            .control
            .grant_from_token(secret, user, addr)
            .await
            .map_err(|_| "token refused")?
    };
    if grant.status != GrantStatus::Active {
        return Err("grant not active");
    }
    if grant.expires_at <= sluice_core::clock::now() {
        return Err("grant expired");
    }
    match shared.config.connection(&grant.connection) {
        Some(c) if c.kind == ConnectionKind::Mysql => Ok(grant),
        _ => Err("grant is not for a mysql connection"),
    }
}

/// True when `proof` proves `grant`'s secret; the same work when there is
/// no grant.
fn proves(grant: Option<&Grant>, proof: &Proof) -> bool {
    match proof {
        Proof::Secret(secret) => {
            static DECOY: LazyLock<String> =
                LazyLock::new(|| ScramVerifier::derive("decoy").to_text());
            let verifier = grant.map_or(DECOY.as_str(), |g| g.scram_verifier.as_str());
            let ok = ScramVerifier::parse(verifier).is_some_and(|v| v.verify(secret));
            ok && grant.is_some()
        }
        Proof::Native { nonce, scramble } => {
            // Grants issued before the native verifier was kept have none:
            // their clients must use caching_sha2_password. Those and
            // unknown grants are checked against a decoy (the same work).
            static DECOY: LazyLock<String> = LazyLock::new(|| native_verifier("decoy"));
            let verifier = grant
                .map(|g| g.native_verifier.as_str())
                .filter(|v| !v.is_empty());
            let ok = native_check(verifier.unwrap_or(DECOY.as_str()), nonce, scramble);
            ok && verifier.is_some()
        }
    }
}

fn grant_of(user: &str) -> Option<String> {
    is_grant_id(user).then(|| user.to_string())
}

fn pre_auth_error(e: &ReadError) -> &'static str {
    match e {
        ReadError::Timeout(_) => "authentication timed out",
        ReadError::TooLarge { .. } => "a packet too large before login",
        _ => "client went away",
    }
}

/// Tells the client why, in an ERR packet, and hands the refusal back.
async fn refuse(
    mut io: Stream,
    seq: u8,
    code: (u16, &str),
    reason: &'static str,
    grant: Option<String>,
) -> Result<LoggedIn, (Option<Stream>, Refused)> {
    let message = format!("sluice: access denied: {reason}");
    let _ = packet::write(&mut io, seq, &wire::err(code, &message)).await;
    Err((Some(io), Refused { reason, grant }))
}
